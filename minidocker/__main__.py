"""`python -m minidocker ...` is the CLI (the same as the `minidocker` command)."""
import sys

from .cli import main

sys.exit(main())
