"""The ``gvendi push`` command line now lives in :mod:`gvendi.cli.push`; these names stay importable from here."""

from gvendi.cli.push import add_publish_arguments, main, push_command, recipe_main, run_publish
from gvendi.cli.push import register as register_cli

__all__ = ["add_publish_arguments", "main", "push_command", "recipe_main", "register_cli", "run_publish"]
