"""``python -m gvendi.synthesis.cli synthesize ...``: the ``synthesize`` command now lives in
:mod:`gvendi.cli.synthesize`; this module keeps the old entry point and names working."""

import sys

from gvendi.cli.synthesize import _overrides, build_parser, main, run_synthesize
from gvendi.cli.synthesize import register as register_cli

__all__ = ["_overrides", "build_parser", "main", "register_cli", "run_synthesize"]

if __name__ == "__main__":
    sys.exit(main())
