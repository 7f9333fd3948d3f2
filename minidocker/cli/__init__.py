"""The minidocker client: the `docker` command (layer: CLI, the top of the engine).

`minidocker.cli:main` is the `minidocker` program (pyproject.toml) and what
`python -m minidocker` runs.  main.py parses and reports errors; commands.py holds
the command table; containers.py, images.py, limits.py, registry.py and system.py
declare the commands; terminal.py and output.py are what they share.
"""
from minidocker.cli.main import main

__all__ = ["main"]
