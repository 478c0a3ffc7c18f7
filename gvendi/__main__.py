"""``python -m gvendi``: the same command line as ``gvendi``."""

import sys

from gvendi.cli import main

if __name__ == "__main__":
    sys.exit(main())
