"""The diversity report on 10,000 rows × 1024 synthetic features (issue 19, item 5).

    python benchmarks/bench_report.py                      # 10,000 × 1024, with texts, n_boot = 100
    python benchmarks/bench_report.py --rows 2000 --dim 256

The features are the selection benchmark's pool (noisy copies of directions with planted duplicates); texts are
short synthetic lines, so word-level metrics run too. Embedding Vendi is left out (it needs a proxy forward pass per
row, which `gvendi report` runs on real data). Writes benchmarks/results/report.json and report.md, and the report
itself to benchmarks/results/report_sample.html only with --keep.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import torch  # noqa: E402
from bench_select import make_pool  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from gvendi.report import build_report, write_report

    x = make_pool(args.rows, args.dim, centers=max(10, args.rows // 50))
    texts = [f"problem {i}: {i % 17} apples and {i % 13} pears make {i % 17 + i % 13} fruit" for i in range(args.rows)]
    info = _common.machine_info(args.threads)
    build_seconds, report = _common.timed(lambda: build_report(x, texts, n_boot=args.n_boot))
    out = Path(tempfile.mkdtemp()) / "report.html" if not args.keep else _common.RESULTS / "report_sample.html"
    write_seconds, _ = _common.timed(lambda: write_report(report, str(out)))
    timings = {k: round(v, 2) for k, v in report.config["timings_s"].items()}
    payload = {
        "rows": args.rows,
        "dim": args.dim,
        "n_boot": args.n_boot,
        "machine": info,
        "build_seconds": round(build_seconds, 2),
        "write_seconds": round(write_seconds, 2),
        "stages_s": timings,
        "html_bytes": out.stat().st_size,
        "gvendi": report.metrics["gvendi"],
    }
    rows = [[stage, seconds] for stage, seconds in timings.items()] + [["write HTML", round(write_seconds, 2)]]
    markdown = (
        "# Report benchmark\n\n"
        f"`build_report` + `write_report` on {args.rows:,} × {args.dim} synthetic unit features with texts, "
        f"n_boot = {args.n_boot}, {report.metrics['num_clusters']} clusters; CPU {info['cpu']}, {args.threads} "
        "threads, "
        f"load average {info['load_average_1_5_15']} at start (shared machine); {info['date_utc']} UTC.\n\n"
        + _common.markdown_table(["stage", "seconds"], rows)
        + f"\n\n- Total: {build_seconds + write_seconds:.1f} s; self-contained HTML {out.stat().st_size / 1024:.0f} "
        "KiB.\n"
        f"- Command: `python benchmarks/bench_report.py --rows {args.rows} --dim {args.dim} --n-boot {args.n_boot}`.\n"
    )
    _common.write_results("report", payload, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
