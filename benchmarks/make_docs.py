"""Rebuild docs/benchmarks.md from the committed results tables.

    python benchmarks/make_docs.py

The page is a short introduction, ``results/summary.md`` (the targets and where they stand, written by hand after a
run), then each ``benchmarks/results/<name>.md`` that exists, headings demoted one level.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
ORDER = (
    "featurize",
    "projection_accuracy",
    "scoring",
    "scoring_1m_fresh_process",
    "kmeans",
    "gpu",
    "callback_overhead_active",
    "callback_overhead",
    "callback_overhead_small",
    "synthesis_client",
    "threads",
)

INTRO = """# Benchmarks

Side-by-side measurements produced by the scripts in `benchmarks/` (see `benchmarks/README.md` for the commands).
Each section below is the table a script wrote to `benchmarks/results/`, with the machine and its load; the JSON
files beside them hold every number. The CPU figures come from a 2-core machine shared with other jobs, so treat
differences under ~10% as noise; the featurization methods are therefore timed interleaved, batch by batch.

Targets (issue 6): the default `sketch` projection takes at most 1.33× a plain forward+backward, is at least 20×
faster than the paper-faithful reference, and is faster than bergson at equal or better accuracy; 1M × 1024 features
score from disk within 1.5 GB in time linear in N; k-means on 100k × 1024, K = 1000, 20 iterations, within 120 s on
2 CPU cores; at least 150 examples/s for Qwen2.5-0.5B at 512 tokens on one GPU.

Beyond one machine, `gvendi featurize DATA --out DIR` cuts the rows into fixed shards and spreads them over
processes: `accelerate launch -m gvendi.cli featurize …` on GPUs, `torchrun --standalone --nproc_per_node N -m
gvendi.cli featurize …` on CPUs, or `--rank R --world-size W` for independent jobs. Each shard is written atomically
with a completion marker, a rerun skips finished shards, and the merge adds the shard accumulators in shard order, so
the features and G-Vendi do not depend on the number of processes (tests/test_sharded.py checks bitwise equality).

{summary}
"""


def main() -> int:
    sections = []
    for name in ORDER:
        path = RESULTS / f"{name}.md"
        if not path.is_file():
            continue
        text = path.read_text().strip()
        lines = [("#" + line) if line.startswith("#") else line for line in text.splitlines()]
        sections.append("\n".join(lines))
    summary_path = RESULTS / "summary.md"
    summary = summary_path.read_text().strip() if summary_path.is_file() else ""
    PAGE.write_text(INTRO.format(summary=summary).rstrip() + "\n\n" + "\n\n".join(sections) + "\n")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
