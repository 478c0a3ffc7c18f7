"""Publish the G-Vendi evaluate measurement as a Hugging Face Space (gradio), with its module card.

    # 1. look at the Space folder (app.py, gvendi.py, requirements.txt, README.md); no token needed
    python hub_scripts/push_measurement_space.py --repo-id my-org/gvendi --dry-run out/gvendi-space
    # 2. publish (the token comes from HF_TOKEN or `hf auth login`)
    python hub_scripts/push_measurement_space.py --repo-id my-org/gvendi
    # 3. use it from anywhere
    python -c "import evaluate; m = evaluate.load('my-org/gvendi'); print(m.description)"

Name the Space `gvendi`: `evaluate.load("ORG/gvendi")` downloads `gvendi.py` from it, and that file imports the
module class from the installed package (`from gvendi.measurement import Gvendi`), so `requirements.txt` must
install gvendi: by default from its source repository (`gvendi @ git+https://github.com/gvendi/gvendi.git`, as gvendi
is not on PyPI); `--requirement "gvendi==X.Y"` once a release is. Pushing again without changes makes no commit.
"""

import argparse
import logging
import sys

from gvendi.hub.cli import add_publish_arguments, run_publish
from gvendi.hub.space import SOURCE_REQUIREMENT


def make_parser() -> argparse.ArgumentParser:
    """The recipe's arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_publish_arguments(
        parser,
        repo_help="the Space, e.g. my-org/gvendi",
        target="Space",
        dry_run_help="write the Space folder, send nothing",
    )
    parser.add_argument(
        "--requirement",
        default=SOURCE_REQUIREMENT,
        help=f"requirements.txt line that installs gvendi (default: {SOURCE_REQUIREMENT!r}, from source)",
    )
    parser.add_argument("--sdk-version", default=None, help="pin the Space's gradio version (default: the Hub's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build and publish (or dry-run) the Space; returns the exit code (0 ok, 1 Hub failure, 2 bad input)."""
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from gvendi.hub.space import push_measurement_space

    return run_publish(
        "push_measurement_space",
        push_measurement_space,
        args,
        _report,
        gvendi_requirement=args.requirement,
        sdk_version=args.sdk_version,
    )


def _report(result) -> None:
    """Print what the push did."""
    if result.dry_run:
        print(f"dry run: wrote {', '.join(result.files)} to {result.folder} (nothing uploaded)")
    elif result.changed:
        print(f"pushed {len(result.uploaded)} file(s) to Space {result.repo_id}@{result.revision} ({result.commit})")
    else:
        print(f"Space {result.repo_id}@{result.revision} is already up to date ({result.commit}); no commit made")


if __name__ == "__main__":
    sys.exit(main())
