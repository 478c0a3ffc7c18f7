"""Publish a finished Prismatic Synthesis NLI run as the PrismNLI data set.

    # 1. an NLI run (see `gvendi synthesize --help`; this one uses an OpenAI-compatible server such as vLLM)
    gvendi synthesize --task nli --generator http://127.0.0.1:8000 --backend openai \
        --model Qwen/Qwen2.5-72B-Instruct --rounds 4 --per-round 3000 --proxy Qwen/Qwen2.5-0.5B-Instruct \
        --benchmark mnli_dev.jsonl --out runs/prismnli
    # 2. look at exactly what would be uploaded (no token needed)
    python hub_scripts/push_prismnli.py runs/prismnli --repo-id my-org/PrismNLI --license cc-by-4.0 \
        --dry-run out/prismnli
    python -c "import datasets; print(datasets.load_dataset('out/prismnli', split='train').features)"
    # 3. publish (the token comes from HF_TOKEN or `hf auth login`)
    python hub_scripts/push_prismnli.py runs/prismnli --repo-id my-org/PrismNLI --license cc-by-4.0

The license is required and never defaulted: choose one that respects the terms of the generator and solver
models and of the seed data. Rows: id, premise, hypothesis, label (ClassLabel: entailment, neutral,
contradiction), source, round, cluster, votes, generator, solver (see docs/publishing.md).
"""

import sys

from gvendi.hub.cli import recipe_main


def main(argv: list[str] | None = None) -> int:
    """Parse the recipe's arguments and publish (or dry-run) the NLI run; returns the exit code."""
    return recipe_main("nli", "PrismNLI", argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
