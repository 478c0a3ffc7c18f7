"""The ``gvendi`` command line: one registry of commands, one exit-code table, ``main(argv) -> int``.

    gvendi demo
    gvendi score my.jsonl --proxy tiny --json
    gvendi score org/dataset --split train --prompt-column question --completion-column answer --limit 1000
    gvendi score my.jsonl --config gvendi.yaml --batch-size 4      # settings from a file, flags override it

Every command is registered from :data:`COMMANDS` (one module per group); a module that cannot be imported shows up
as a command that says why, instead of vanishing. Every command takes ``--config FILE`` and ``--quiet``, and exits
0 on success, 2 on a user error (bad flags, config, data), 1 on a runtime failure and 130 on Ctrl-C
(:mod:`gvendi.cli.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

# Before torch loads: OpenMP threads that sleep while they wait, instead of spinning. On a machine shared with other
# work (a laptop, a CI runner, a node with other jobs) spinning threads fight over the cores and `gvendi demo` runs
# 4-5x slower; on an idle machine PASSIVE costs nothing measurable (benchmarks/results/threads.md). A value the user
# set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["COMMANDS", "build_parser", "main"]

#: the command registry: module → the commands its ``register(subparsers)`` adds
COMMANDS: dict[str, tuple[str, ...]] = {
    "gvendi.cli.score": ("score", "demo", "featurize"),
    "gvendi.cli.curation": ("select", "compare", "report"),
    "gvendi.cli.synthesize": ("synthesize",),
    "gvendi.cli.push": ("push",),
}


def _unavailable(subparsers: argparse._SubParsersAction, names: Sequence[str], module: str, err: ImportError) -> None:
    """Commands whose module failed to import: each says why (and exits 1) instead of being hidden."""
    reason = f"{type(err).__name__}: {err}"

    def handler(args: argparse.Namespace) -> int:
        raise ImportError(
            f"this command could not be loaded ({module}: {reason}); reinstall gvendi, or install the "
            "extra it needs (pip install 'gvendi[synthesis]')."
        )

    for name in names:
        parser = subparsers.add_parser(name, help=f"(unavailable: {reason})", add_help=True)
        parser.add_argument("rest", nargs=argparse.REMAINDER, help="ignored: the command could not be loaded.")
        parser.set_defaults(handler=handler)


def _add_common(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--config FILE`` on a command that lacks them."""
    from .options import CONFIG_HELP

    if not any(option in parser._option_string_actions for option in ("--quiet", "--no-progress")):
        parser.add_argument(
            "--quiet",
            "--no-progress",
            dest="quiet",
            action="store_true",
            help="no progress bars (gvendi's, transformers', datasets'); also GVENDI_DISABLE_PROGRESS_BAR=1.",
        )
    if "--config" not in parser._option_string_actions:
        parser.add_argument("--config", dest="config_file", metavar="FILE", default=None, help=CONFIG_HELP)
        parser._gvendi_config_file = True


def build_parser() -> argparse.ArgumentParser:
    """The ``gvendi`` parser with every command of :data:`COMMANDS`."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="gvendi", description="G-Vendi gradient diversity and Prismatic Synthesis.")
    parser.add_argument("--version", action="version", version=f"gvendi {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, names in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            _unavailable(subparsers, names, module_name, err)
            continue
        module.register(subparsers)
    for command in subparsers.choices.values():
        _add_common(command)
    return parser


def _quiet_requested(args: argparse.Namespace) -> bool:
    return getattr(args, "quiet", False) is True or getattr(args, "no_progress", False) is True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 2 a user error, 1 a runtime failure, 130 Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["--version"], ["-V"]):  # answered without building the sub-commands (no torch, no transformers)
        from .. import __version__

        print(f"gvendi {__version__}")
        return 0
    from .errors import report_error
    from .options import parse_with_config_file

    parser = build_parser()
    try:
        args = parse_with_config_file(parser, argv)
    except ValueError as err:  # the --config file: unknown keys, bad values
        command = next((token for token in argv if not token.startswith("-")), "")
        return report_error(f"gvendi {command}".strip(), err) or 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if _quiet_requested(args):
        from ..utils import disable_progress_bars

        disable_progress_bars()
    prog = f"gvendi {args.command}"
    try:
        check: Callable[[argparse.Namespace], None] | None = getattr(args, "check", None)
        if check is not None:
            check(args)  # every flag checked before any data or model loads
        return int(args.handler(args) or 0)
    except BaseException as exc:  # noqa: BLE001 - mapped by the one table; anything else re-raised
        code = report_error(prog, exc, args)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
