"""The ``gvendi push`` command: publish a finished synthesis run folder to the Hub (or dry-run it to a folder).

``python -m gvendi.hub push ...`` runs it on its own; :func:`recipe_main` is the ``hub_scripts/push_prism*.py``
recipes' command line.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["add_publish_arguments", "main", "push_command", "recipe_main", "register", "run_publish"]

_EPILOG = """examples:
  gvendi push runs/math-0 --repo-id my-org/PrismMath --license cc-by-4.0 --dry-run out/prismmath
  HF_TOKEN=hf_... gvendi push runs/math-0 --repo-id my-org/PrismMath --license cc-by-4.0
  gvendi push runs/nli-0 --repo-id my-org/PrismNLI --license cc-by-4.0 --private --revision v1

The token comes from HF_TOKEN or the login cache (`hf auth login`); it is never printed. Pushing the same run
again makes no commit."""


def add_publish_arguments(
    parser: argparse.ArgumentParser,
    *,
    repo_help: str,
    dry_run_help: str,
    target: str = "repository",
    license_help: str | None = None,
    license_required: bool = False,
) -> None:
    """Add the options every push command shares: ``--repo-id``, ``--private``, ``--revision`` and ``--dry-run``.

    With ``license_help``, ``--license`` comes after ``--repo-id``; ``target`` is what ``--private`` makes private.
    """
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help=repo_help)
    if license_help is not None:
        parser.add_argument("--license", required=license_required, default=None, metavar="ID", help=license_help)
    parser.add_argument("--private", action="store_true", help=f"create the {target} private")
    parser.add_argument("--revision", default=None, metavar="REV", help="branch to push to (created if missing)")
    parser.add_argument("--dry-run", default=None, metavar="OUT_DIR", help=dry_run_help)


def run_publish(
    prog: str,
    publish: Callable[..., Any],
    args: argparse.Namespace,
    report: Callable[[Any], None],
    **options: Any,
) -> int:
    """Call ``publish`` with the :func:`add_publish_arguments` options and ``**options``, then ``report`` the result.

    Returns the exit code of the shared table (:mod:`gvendi.cli.errors`): 0 ok, 1 Hub failure (``HubPublishError``),
    2 bad input (``ValueError``); an error is printed, token scrubbed, as ``{prog}: error: ...``.
    """
    from ..hub.publish import scrub
    from .errors import report_error

    try:
        result = publish(
            repo_id=args.repo_id, private=args.private, revision=args.revision, dry_run_dir=args.dry_run, **options
        )
    except Exception as err:
        args.scrub = scrub
        code = report_error(prog, err, args)
        if code is None:
            raise
        return code
    report(result)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push`` sub-command to ``subparsers`` (its handler is ``args.handler(args) -> int``)."""
    parser = subparsers.add_parser(
        "push",
        help="publish a finished synthesis run to the Hugging Face Hub as a dataset",
        description=(
            "Publish a finished synthesis run folder as a Hub dataset: parquet shards under data/ and a dataset "
            "card (README.md) with the run's provenance, G-Vendi and decontamination report, in one commit."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `gvendi synthesize`")
    add_publish_arguments(
        parser,
        repo_help="dataset repository to push to",
        license_help="Hub license id of the data set (e.g. cc-by-4.0); required, gvendi never picks one for you",
        license_required=True,
        dry_run_help="write the files that would be uploaded to OUT_DIR and send nothing",
    )
    parser.add_argument("--pretty-name", default=None, help="display name on the card (default PrismMath/PrismNLI)")
    parser.add_argument("--task", default=None, choices=("math", "nli"), help="refuse a run folder of another task")
    parser.add_argument("--commit-message", default=None, help="commit title")
    parser.set_defaults(handler=push_command)


def push_command(args: argparse.Namespace) -> int:
    """Run ``gvendi push`` from parsed arguments; returns the exit code (0 ok, 1 Hub failure, 2 bad input)."""
    from ..hub.publish import push_run

    return run_publish(
        "gvendi push",
        functools.partial(push_run, args.run_dir),
        args,
        _report_push,
        license=args.license,
        pretty_name=args.pretty_name,
        task=args.task,
        commit_message=args.commit_message,
    )


def _report_push(result) -> None:
    """Print what ``gvendi push`` did (and warn, on stderr, when the run kept no rows)."""
    if getattr(result, "num_generated_rows", None) == 0:
        print(
            "gvendi push: warning: the run generated nothing that was kept (0 generated rows): the data set holds "
            "only the seed pool; check the run's report.md before publishing.",
            file=sys.stderr,
        )
    if result.dry_run:
        print(f"dry run: wrote {len(result.files)} file(s) to {result.folder} (nothing uploaded)")
        for name in result.files:
            print(f"  {name}")
    elif result.changed:
        print(
            f"pushed {len(result.uploaded)} file(s)"
            + (f", deleted {len(result.deleted)}" if result.deleted else "")
            + f" to {result.repo_id}@{result.revision} in commit {result.commit}"
        )
    else:
        print(f"{result.repo_id}@{result.revision} is already up to date (commit {result.commit}); no commit made")


def main(argv: list[str] | None = None) -> int:
    """``python -m gvendi.hub push ...``: the push command without the rest of the gvendi CLI."""
    from . import main as gvendi_main

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "push" and not argv[0].startswith("-"):
        print(f"python -m gvendi.hub runs `push` only (got {argv[0]!r}); use `gvendi {argv[0]}`.", file=sys.stderr)
        return 2
    return gvendi_main(argv)


def recipe_main(task: str, pretty_name: str, argv: list[str] | None = None, *, description: str = "") -> int:
    """The ``hub_scripts/push_prism*.py`` recipes: publish a finished ``task`` run as ``pretty_name``.

    Same options as ``gvendi push`` but the task is enforced, the card is named ``pretty_name`` and ``--license``
    is required by the parser.
    """
    parser = argparse.ArgumentParser(
        prog=f"push_{pretty_name.lower()}.py",
        description=description or f"Publish a finished {task} synthesis run as {pretty_name}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help=f"a finished `gvendi synthesize --task {task}` run folder")
    add_publish_arguments(
        parser,
        repo_help=f"e.g. my-org/{pretty_name}",
        license_help="Hub license id of the data set (required)",
        license_required=True,
        dry_run_help="write the files to OUT_DIR, send nothing",
    )
    parser.add_argument("--commit-message", default=None, help="commit title")
    args = parser.parse_args(argv)
    args.task, args.pretty_name = task, pretty_name
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return push_command(args)
