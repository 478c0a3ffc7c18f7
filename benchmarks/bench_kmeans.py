"""Clustering at scale: spherical k-means on 100,000 × 1024 unit vectors, K = 1000, 20 iterations (issue 6, item 4).

    python benchmarks/bench_kmeans.py                     # target: ≤ 120 s on 2 CPU cores
    python benchmarks/bench_kmeans.py --rows 20000 --clusters 200 --compare-fp32

``gvendi.spherical_kmeans`` runs where torch finds a GPU (``--device`` to force one). On CPUs with bf16 units
(AVX512-BF16 / AMX) and on GPUs, similarities are screened in bf16 and close calls re-scored in fp32, so the
assignments are the fp32 ones; ``--compare-fp32`` also times the plain fp32 path and checks the labels agree. The
k-means++ initialisation runs on a random subsample of max(16·K, 8192) rows. The data: isotropic random unit rows by
default (no cluster structure, so all 20 iterations run: the worst case), or ``--centers C`` noisy copies of C
directions. Writes benchmarks/results/kmeans.json and kmeans.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def make_features(rows: int, dim: int, *, centers: int = 0, noise: float = 0.7, seed: int = 0) -> np.ndarray:
    """Unit rows: isotropic Gaussian directions (``centers=0``: no structure, so Lloyd's iterations keep moving and
    all of them run), or noisy copies of ``centers`` random directions."""
    generator = np.random.default_rng(seed)
    if centers == 0:
        x = generator.normal(size=(rows, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    directions = generator.normal(size=(centers, dim)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    x = directions[generator.integers(0, centers, rows)]
    x = x + noise / np.sqrt(dim) * generator.normal(size=(rows, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--centers",
        type=int,
        default=0,
        help="0: unstructured rows (all iterations run); else noisy copies of this many directions.",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda … (default: a GPU when present).")
    parser.add_argument("--compare-fp32", action="store_true", help="also run with the bf16 screen disabled.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="kmeans")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import gvendi.cluster as cluster
    from gvendi import spherical_kmeans
    from gvendi.utils import resolve_device

    device = resolve_device(args.device)
    x = make_features(args.rows, args.dim, centers=args.centers)
    payload = {
        "machine": _common.machine_info(args.threads),
        "rows": args.rows,
        "dim": args.dim,
        "clusters": args.clusters,
        "iterations": args.iterations,
        "centers": args.centers,
        "device": str(device),
        "bf16_screen": cluster.fast_bf16(device) and args.rows * args.clusters * args.dim >= cluster._BF16_MIN_WORK,
        "runs": [],
    }

    def run(label: str) -> dict:
        iterations = {"count": 0}
        original = cluster.progress_bar

        def counting_bar(iterable=None, **kwargs):  # counts Lloyd iterations actually run (early stop on convergence)
            for item in original(iterable, **kwargs):
                iterations["count"] += 1
                yield item

        cluster.progress_bar = counting_bar
        try:
            with _common.PeakRSS() as peak:
                seconds, result = _common.timed(
                    lambda: spherical_kmeans(
                        x, args.clusters, n_iter=args.iterations, seed=0, device=args.device, show_progress=False
                    )
                )
        finally:
            cluster.progress_bar = original
        if device.type == "cuda":
            torch.cuda.synchronize()
        entry = {
            "path": label,
            "seconds": seconds,
            "lloyd_iterations_run": iterations["count"],
            "peak_rss_delta_mb": peak.delta_mb,
            "non_empty_clusters": int((result.sizes > 0).sum()),
            "median_cluster_size": float(np.median(result.sizes)),
            "mean_cosine_to_centroid": float((x * result.centroids[result.labels]).sum(1).mean()),
        }
        print(entry, flush=True)
        return entry, result

    label = "bf16 screen + fp32 refinement" if payload["bf16_screen"] else "fp32"
    entry, result = run(label)
    payload["runs"].append(entry)
    if args.compare_fp32 and payload["bf16_screen"]:
        original = cluster.fast_bf16
        cluster.fast_bf16 = lambda device: False
        try:
            entry32, result32 = run("fp32")
        finally:
            cluster.fast_bf16 = original
        entry32["labels_equal_to_bf16_path"] = bool(np.array_equal(result.labels, result32.labels))
        payload["runs"].append(entry32)

    payload["machine"]["load_average_at_end"] = list(os.getloadavg())
    machine = payload["machine"]
    header = [
        "path",
        "seconds",
        "Lloyd iterations run",
        "peak RSS Δ (MB)",
        "non-empty clusters",
        "median size",
        "mean cos to centroid",
    ]
    rows = [
        [
            r["path"],
            f"{r['seconds']:.1f}",
            r["lloyd_iterations_run"],
            f"{r['peak_rss_delta_mb']:.0f}",
            r["non_empty_clusters"],
            f"{r['median_cluster_size']:.0f}",
            f"{r['mean_cosine_to_centroid']:.4f}",
        ]
        for r in payload["runs"]
    ]
    markdown = "\n".join(
        [
            "# Spherical k-means benchmark",
            "",
            f"{args.rows:,} × {args.dim} unit rows "
            f"({'isotropic random' if not args.centers else f'around {args.centers} directions'}), "
            f"K = {args.clusters}, {args.iterations} Lloyd iterations (stops early if "
            f"the labels stop changing), device {device}; CPU {machine['cpu']}, {machine['torch_threads']} threads, "
            "load "
            f"average {machine['load_average_1_5_15']} at start (shared machine); {machine['date_utc']} UTC. Target ≤ "
            "120 s.",
            "",
            _common.markdown_table(header, rows),
            "",
            "- Seconds include the k-means++ initialisation (on a max(16·K, 8192)-row subsample) and every assignment "
            "pass.",
        ]
    )
    if len(payload["runs"]) > 1:
        markdown += f"\n- fp32 and bf16-screened labels equal: {payload['runs'][1]['labels_equal_to_bf16_path']}."
    _common.write_results(args.name, payload, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
