"""Scoring at scale: 1,000,000 × 1024 unit features streamed from a `datasets` dataset on disk (issue 6, item 3).

    python benchmarks/bench_scoring.py                    # 100k / 300k / 1M rows (~10 min on 2 shared CPU cores)
    python benchmarks/bench_scoring.py --sizes 100000,300000 --workdir /tmp/gvendi-scoring

Writes float32 unit rows (a fixed-size list column, written chunk by chunk with ``datasets``' ArrowWriter) to an Arrow
file, opens it as a memory-mapped ``datasets.Dataset``, and times ``gvendi.score(ds["gvendi_grad"])`` on the first
100k, 300k and 1M rows: the column is read in Arrow slices and folded into a k×k float64 accumulator, so memory does
not grow with N. For comparison, ``vendi_score.vendi.score_dual`` (the reference package's dual form) runs on the
same rows loaded into memory, at the sizes where that fits (``--reference-max``).

Memory is sampled every 2 ms: "private" is the peak ``RssAnon`` above the level before the call (what the process
allocated); "with mapped pages" is the peak total RSS above it, which also counts the dataset's memory-mapped file
pages (page cache the kernel reclaims under pressure). Writes benchmarks/results/scoring.json and scoring.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

DIM = 1024
COLUMN = "gvendi_grad"


def write_features(path: Path, rows: int, *, chunk: int = 20_000, seed: int = 0) -> float:
    """Write ``rows`` random unit rows (low-rank plus noise, so the score is not trivially k) to an Arrow file."""
    import datasets
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter

    features = datasets.Features({COLUMN: datasets.List(datasets.Value("float32"), length=DIM)})
    generator = np.random.default_rng(seed)
    basis = generator.normal(size=(64, DIM)).astype(np.float32)
    start = time.perf_counter()
    with ArrowWriter(features=features, path=str(path), writer_batch_size=chunk) as writer:
        for begin in range(0, rows, chunk):
            n = min(chunk, rows - begin)
            x = generator.normal(size=(n, 64)).astype(np.float32) @ basis
            x += 0.5 * generator.normal(size=(n, DIM)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            values = pa.array(x.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(values, DIM)
            writer.write_table(pa.table({COLUMN: column}))
        writer.finalize()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000", help="row counts to time (comma-separated).")
    parser.add_argument("--reference-max", type=int, default=300_000, help="largest N given to vendi_score in memory.")
    parser.add_argument("--workdir", default=None, help="folder for the Arrow file (default: a temporary folder).")
    parser.add_argument("--keep", action="store_true", help="keep the Arrow file afterwards.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="scoring")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]

    import datasets

    from gvendi import score

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gvendi-scoring-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "features.arrow"
    payload = {"machine": _common.machine_info(args.threads), "dim": DIM, "sizes": sizes, "runs": []}
    try:
        if not path.exists() or datasets.Dataset.from_file(str(path)).num_rows < max(sizes):
            seconds = write_features(path, max(sizes))
            print(f"wrote {max(sizes):,} rows ({path.stat().st_size / 2**30:.2f} GiB) in {seconds:.0f}s", flush=True)
        dataset = datasets.Dataset.from_file(str(path))
        payload["file_gib"] = path.stat().st_size / 2**30
        for n in sizes:
            subset = dataset.select(range(n))  # contiguous: a zero-copy slice of the memory-mapped table
            gc.collect()
            with _common.PeakRSS(track_anon=True) as peak:
                seconds, result = _common.timed(lambda subset=subset: score(subset[COLUMN]))
            run = {
                "method": "gvendi.score (streamed from disk)",
                "rows": n,
                "seconds": seconds,
                "rows_per_s": n / seconds,
                "gvendi": result.value,
                "private_peak_mb": (peak.peak_anon - peak.baseline_anon) / 2**20,
                "process_private_peak_mb": peak.peak_anon / 2**20,
                "rss_peak_with_mapped_pages_mb": peak.delta_mb,
                "process_rss_peak_mb": peak.peak_mb,
            }
            payload["runs"].append(run)
            print(run, flush=True)
            if n <= args.reference_max:
                from vendi_score.vendi import score_dual

                array = subset.with_format("numpy")[COLUMN]
                array = np.asarray(array, dtype=np.float32)
                gc.collect()
                with _common.PeakRSS(track_anon=True) as peak:
                    seconds, value = _common.timed(lambda array=array: float(score_dual(array)))
                run = {
                    "method": "vendi_score.score_dual (in memory)",
                    "rows": n,
                    "seconds": seconds,
                    "rows_per_s": n / seconds,
                    "gvendi": value,
                    "private_peak_mb": (peak.peak_anon - peak.baseline_anon) / 2**20,
                    "process_private_peak_mb": peak.peak_anon / 2**20,
                    "rss_peak_with_mapped_pages_mb": peak.delta_mb,
                    "process_rss_peak_mb": peak.peak_mb,
                    "input_array_mb": array.nbytes / 2**20,
                    "relative_difference_to_gvendi": abs(value - result.value) / result.value,
                }
                payload["runs"].append(run)
                print(run, flush=True)
                del array
                gc.collect()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    gvendi_runs = [r for r in payload["runs"] if r["method"].startswith("gvendi")]
    if len(gvendi_runs) >= 2:
        first, last = gvendi_runs[0], gvendi_runs[-1]
        payload["linearity"] = {
            "seconds_per_million_rows": [r["seconds"] / r["rows"] * 1e6 for r in gvendi_runs],
            "time_ratio_last_to_first": last["seconds"] / first["seconds"],
            "size_ratio_last_to_first": last["rows"] / first["rows"],
        }
    payload["machine"]["load_average_at_end"] = list(os.getloadavg())

    header = [
        "method",
        "rows",
        "seconds",
        "rows/s",
        "s per 1M rows",
        "G-Vendi",
        "private Δ (MB)",
        "process private peak (MB)",
        "RSS Δ incl. mapped file pages (MB)",
    ]
    rows = [
        [
            r["method"],
            f"{r['rows']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['seconds'] / r['rows'] * 1e6:.0f}",
            f"{r['gvendi']:.4f}",
            f"{r['private_peak_mb']:.0f}",
            f"{r['process_private_peak_mb']:.0f}",
            f"{r['rss_peak_with_mapped_pages_mb']:.0f}",
        ]
        for r in payload["runs"]
    ]
    machine = payload["machine"]
    markdown = "\n".join(
        [
            "# Scoring benchmark",
            "",
            f"{DIM}-dim float32 unit rows in a memory-mapped Arrow file ({payload.get('file_gib', 0):.2f} GiB, "
            "fixed-size list "
            f"column) read through `datasets`; CPU {machine['cpu']}, {machine['torch_threads']} threads, load average "
            f"{machine['load_average_1_5_15']} at start (shared machine); {machine['date_utc']} UTC.",
            "",
            _common.markdown_table(header, rows),
            "",
            "- private Δ: peak `RssAnon` above its level before the call (memory the call allocated); process private "
            "peak:",
            "  the whole process's peak `RssAnon` (Python, torch, datasets, earlier allocations included).",
            "- RSS Δ incl. mapped file pages: also counts the dataset's memory-mapped file pages (page cache, "
            "reclaimable).",
            "- vendi_score runs on the rows already loaded in memory (their array is not counted in its peak).",
        ]
    )
    _common.write_results(args.name, payload, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
