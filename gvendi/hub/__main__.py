"""``python -m gvendi.hub push RUN_DIR --repo-id ORG/NAME --license ID [--dry-run OUT_DIR]``."""

import sys

from gvendi.cli.push import main

if __name__ == "__main__":
    sys.exit(main())
