"""`python -m minidocker ...` is the CLI, the same as the `minidocker` command (layer: CLI)."""
import sys

from minidocker.cli import main

sys.exit(main())
