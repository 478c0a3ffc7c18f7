"""Publish a finished Prismatic Synthesis math run as the PrismMath data set.

    # 1. a math run (see `gvendi synthesize --help`; this one needs a TGI server for the generator)
    gvendi synthesize --task math --generator http://127.0.0.1:8080 --rounds 4 --per-round 3000 \
        --proxy Qwen/Qwen2.5-0.5B-Instruct --benchmark math500.jsonl --out runs/prismmath
    # 2. look at exactly what would be uploaded (no token needed)
    python hub_scripts/push_prismmath.py runs/prismmath --repo-id my-org/PrismMath --license cc-by-4.0 \
        --dry-run out/prismmath
    python -c "import datasets; print(datasets.load_dataset('out/prismmath', split='train'))"
    # 3. publish (the token comes from HF_TOKEN or `hf auth login`)
    python hub_scripts/push_prismmath.py runs/prismmath --repo-id my-org/PrismMath --license cc-by-4.0

The license is required and never defaulted: choose one that respects the terms of the generator and solver
models and of the seed data. Rows: id, problem, solution, answer, source, round, cluster, votes, generator,
solver (see docs/publishing.md). Pushing the same run again makes no commit.
"""

import sys

from gvendi.hub.cli import recipe_main


def main(argv: list[str] | None = None) -> int:
    """Parse the recipe's arguments and publish (or dry-run) the math run; returns the exit code."""
    return recipe_main("math", "PrismMath", argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
