"""``python -m gvendi.cli`` (e.g. ``accelerate launch -m gvendi.cli featurize …``): the ``gvendi`` command line."""

import sys

from gvendi.cli import main

if __name__ == "__main__":
    sys.exit(main())
