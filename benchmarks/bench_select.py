"""Diversity-aware selection at scale: greedy log-det selection of 10,000 of 100,000 × 1024 rows (issue 19, item 1).

    python benchmarks/bench_select.py                          # target: ≤ 300 s on 2 CPU cores
    python benchmarks/bench_select.py --rows 20000 --k 2000 --methods greedy random cluster-balanced k-center

The pool is a mixture: noisy copies of ``--centers`` directions, a quarter of the rows replaced by exact duplicates
of a few hundred rows (planted redundancy). Each method's selected set is scored with G-Vendi; the random selection
at the same k is the reference. Writes benchmarks/results/select.json and select.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def make_pool(rows: int, dim: int, *, centers: int = 2000, duplicate_share: float = 0.25, seed: int = 0) -> np.ndarray:
    """Unit rows: noisy copies of ``centers`` random directions, with ``duplicate_share`` of the rows overwritten by
    exact copies of 500 of the others."""
    generator = np.random.default_rng(seed)
    directions = generator.normal(size=(centers, dim)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    x = directions[generator.integers(0, centers, rows)]
    x += 0.8 / np.sqrt(dim) * generator.normal(size=(rows, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = int(duplicate_share * rows)
    sources = generator.choice(rows, size=min(500, rows), replace=False)
    targets = generator.choice(np.setdiff1d(np.arange(rows), sources), size=copies, replace=False)
    x[targets] = x[generator.choice(sources, size=copies)]
    return x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--k", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["greedy", "random"])
    parser.add_argument("--out", default="select", help="results file stem under benchmarks/results/.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import gvendi

    x = make_pool(args.rows, args.dim)
    info = _common.machine_info(args.threads)
    rows = []
    for method in args.methods:
        seconds, result = _common.timed(lambda m=method: gvendi.select(x, args.k, method=m, seed=0))
        value = gvendi.score(x[result.indices]).value
        rows.append(
            {
                "method": method,
                "seconds": round(seconds, 2),
                "gvendi": round(value, 3),
                "distinct_rows": int(np.unique(x[result.indices], axis=0).shape[0]),
            }
        )
        print(rows[-1], flush=True)
    reference = next((r["gvendi"] for r in rows if r["method"] == "random"), None)
    payload = {
        "rows": args.rows,
        "dim": args.dim,
        "k": args.k,
        "machine": info,
        "results": rows,
        "pool_gvendi": round(gvendi.score(x).value, 3),
    }
    table = _common.markdown_table(
        ["method", "seconds", "G-Vendi of the kept set", "vs random", "distinct kept rows"],
        [
            [
                r["method"],
                r["seconds"],
                r["gvendi"],
                f"{r['gvendi'] / reference:.2f}×" if reference else "–",
                r["distinct_rows"],
            ]
            for r in rows
        ],
    )
    markdown = (
        "# Selection benchmark\n\n"
        f"Select k = {args.k:,} of {args.rows:,} × {args.dim} unit rows (noisy copies of 2,000 directions, 25% of the "
        "rows "
        f"exact duplicates of 500 others; G-Vendi of the whole pool {payload['pool_gvendi']}); CPU {info['cpu']}, "
        f"{args.threads} threads, load average {info['load_average_1_5_15']} at start (shared machine); "
        f"{info['date_utc']} UTC. Target for greedy: ≤ 300 s.\n\n"
        f"{table}\n\n"
        f"- Command: `python benchmarks/bench_select.py --rows {args.rows} --dim {args.dim} --k {args.k} "
        f"--methods {' '.join(args.methods)}`.\n"
        "- Seconds are wall time of `gvendi.select` alone (features already in memory); G-Vendi is scored "
        "afterwards.\n"
    )
    _common.write_results(args.out, payload, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
