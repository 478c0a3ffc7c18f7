"""Spherical (cosine) k-means on unit feature rows, and the sparse-cluster rule of Prismatic Synthesis.

Prismatic Synthesis (Jung et al., 2025) clusters the pool's G-Vendi features, calls the clusters smaller than
the median size *sparse*, and keeps a new example only when its nearest (frozen) centroid is sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .utils import fast_bf16, progress_bar, resolve_device

__all__ = ["KMeansResult", "assign_clusters", "sparse_clusters", "spherical_kmeans"]


@dataclass
class KMeansResult:
    """Centroids (K, dim) float32 unit rows, labels (N,) int64 and sizes (K,) int64."""

    centroids: np.ndarray
    labels: np.ndarray
    sizes: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])


def _unit_rows(features, device: torch.device) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features, dtype=np.float32) if not isinstance(features, torch.Tensor) else features)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, dim) array; got shape {tuple(x.shape)}.")
    x = x.to(device, torch.float32)
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        bad = int((norms.squeeze(1) == 0).nonzero()[0, 0])
        raise ValueError(f"feature row {bad} is all zeros and has no direction; drop it before clustering.")
    return x / norms


def assign_clusters(features, centroids, *, device: str | None = None, batch_rows: int = 65536) -> np.ndarray:
    """Index of the nearest centroid (largest cosine) for each row; centroids stay frozen."""
    dev = resolve_device(device)
    c = _unit_rows(centroids, dev)
    x = _unit_rows(features, dev)
    labels = [(x[s : s + batch_rows] @ c.T).argmax(dim=1) for s in range(0, x.shape[0], batch_rows)]  # [n,K] → [n]
    return torch.cat(labels).cpu().numpy().astype(np.int64)


# bf16 rounds each entry of a unit vector by at most 2^-9 of its value, so a bf16 dot product of two unit vectors
# (accumulated in fp32) is within 2·2^-9 + 2^-18 + d·2^-24 of the exact one (Cauchy–Schwarz); 0.005 covers d ≤ 2^14.
_BF16_DOT_ERROR = 0.005


_BF16_MIN_WORK = 1 << 34  # n·K·d multiply-adds per assignment pass below which plain fp32 is as fast


def _nearest_exact(x: torch.Tensor, c: torch.Tensor, c_low: torch.Tensor | None, candidates: int = 8):
    """Largest cosine and its centroid for each row of ``x`` [n,d] against unit centroids ``c`` [K,d].

    With ``c_low`` (the centroids in bf16) the [n,K] similarities are screened in bf16, three times faster on hardware
    with bf16 units, then made exact: a row whose bf16 winner leads the runner-up by more than twice the bf16 error
    bound is decided; otherwise its top ``candidates`` are re-scored in fp32, and a row whose candidates do not cover
    every centroid within the error bound is re-scored against all of them. The index is the fp32 argmax (up to fp32
    round-off ties); the value is the fp32 cosine for re-scored rows and the bf16 one (within 0.005) for the others.
    """
    if c_low is None:
        return (x @ c.T).max(dim=1)  # [n,d]×[d,K] → [n,K] → [n]
    if c.shape[0] == 1:
        return (x @ c[0]), torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    sims = x.to(torch.bfloat16) @ c_low.T  # [n,K] bf16 (fp32 accumulation)
    k = min(max(candidates, 2), c.shape[0])
    top_values, top_index = sims.float().topk(k, dim=1)  # [n,k]
    best_value, best_index = top_values[:, 0].clone(), top_index[:, 0].clone()
    ambiguous = (top_values[:, 0] - top_values[:, 1] <= 2 * _BF16_DOT_ERROR).nonzero().flatten()
    for start in range(0, ambiguous.numel(), 4096):  # blocks bound the [m,k,d] gather to 4096·k·d floats
        rows = ambiguous[start : start + 4096]
        index = top_index[rows]  # [m,k]
        exact = torch.bmm(c[index], x[rows].unsqueeze(2)).squeeze(2)  # [m,k,d]×[m,d,1] → [m,k]
        value, position = exact.max(dim=1)
        best_value[rows] = value
        best_index[rows] = index.gather(1, position[:, None]).squeeze(1)
    uncovered = ambiguous[top_values[ambiguous, -1] >= top_values[ambiguous, 0] - 2 * _BF16_DOT_ERROR]
    if uncovered.numel() and k < c.shape[0]:  # the true best may lie beyond the candidates: score all centroids
        value, index = (x[uncovered] @ c.T).max(dim=1)
        best_value[uncovered], best_index[uncovered] = value, index
    return best_value, best_index


def spherical_kmeans(
    features,
    n_clusters: int,
    *,
    n_iter: int = 20,
    seed: int = 0,
    device: str | None = None,
    batch_rows: int = 65536,
    init_sample: int | None = None,
    show_progress: bool = True,
) -> KMeansResult:
    """Lloyd's algorithm with cosine similarity: assign to the nearest unit centroid, re-average, re-normalise.

    Initialisation is k-means++ on cosine distance, seeded, run on a random subsample of ``init_sample`` rows
    (default ``max(16·K, 8192)``; all rows when N is smaller): k-means++ takes K sequential passes over its rows, which
    would dominate on large pools, and Lloyd's iterations wash out the difference. An emptied cluster is re-seeded with
    the row farthest from its centroid, so every cluster stays non-empty while N ≥ K. Runs on a GPU when one is
    present.
    On large problems, where bf16 products are fast (recent GPUs, CPUs with AVX512-BF16 or AMX), similarities are
    screened in bf16 and the close calls re-scored in fp32, so assignments equal the fp32 ones (see
    ``_nearest_exact``).

    Args:
        features (`np.ndarray` or `torch.Tensor`): (N, dim) rows; unit-normalised inside.
        n_clusters (`int`): K, with ``1 ≤ K ≤ N``.
        n_iter (`int`, *optional*, defaults to 20): Lloyd iterations (the paper's setting).
        seed (`int`, *optional*, defaults to 0): seeds the initialisation.
        device (`str`, *optional*): ``"cpu"``, ``"cuda"``, …; the first GPU when omitted and available.
        batch_rows (`int`, *optional*, defaults to 65536): rows compared with all centroids at a time.
        init_sample (`int`, *optional*): rows the k-means++ initialisation runs on (default ``max(16·K, 8192)``).

    Returns:
        `KMeansResult`
    """
    dev = resolve_device(device)
    x = _unit_rows(features, dev)
    n = x.shape[0]
    if not (isinstance(n_clusters, (int, np.integer)) and 1 <= n_clusters <= n):
        raise ValueError(f"n_clusters must be between 1 and the number of rows ({n}); got {n_clusters!r}.")
    n_clusters = int(n_clusters)
    if init_sample is None:
        init_sample = max(16 * n_clusters, 8192)
    if not (isinstance(init_sample, (int, np.integer)) and init_sample >= n_clusters):
        raise ValueError(f"init_sample must be an integer ≥ n_clusters ({n_clusters}); got {init_sample!r}.")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    # the bf16 screen pays off on large problems only (its refinement has a fixed cost per row)
    low_precision = fast_bf16(dev) and n * n_clusters * x.shape[1] >= _BF16_MIN_WORK

    def nearest(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c_low = c.to(torch.bfloat16) if low_precision else None
        best_sim, best_idx = [], []
        for s in range(0, n, batch_rows):
            value, index = _nearest_exact(x[s : s + batch_rows], c, c_low)
            best_sim.append(value)
            best_idx.append(index)
        return torch.cat(best_sim), torch.cat(best_idx)

    # k-means++ seeding on cosine distance (1 - cos), sampled on CPU so every device draws the same rows
    if init_sample < n:
        sample = torch.randperm(n, generator=generator)[:init_sample].to(dev)
        pool = x[sample]
    else:
        sample, pool = None, x
    m = pool.shape[0]
    first = int(torch.randint(m, (1,), generator=generator))
    chosen = [first]
    closest = 1.0 - pool @ pool[first]
    for _ in range(1, n_clusters):
        weights = closest.clamp_min(0).double().cpu()
        if float(weights.sum()) <= 0:
            remaining = torch.ones(m, dtype=torch.float64)
            remaining[chosen] = 0
            weights = remaining
        pick = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(pick)
        closest = torch.minimum(closest, 1.0 - pool @ pool[pick])
    centroids = pool[chosen].clone()
    del pool, closest

    bar = progress_bar(total=n_iter, desc="spherical k-means", unit="it", disable=not show_progress or n_iter == 0)
    sims, labels = nearest(centroids)
    for _ in range(n_iter):
        bar.update(1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        sizes = torch.bincount(labels, minlength=n_clusters)
        empty = (sizes == 0).nonzero().flatten()
        if empty.numel():
            far = torch.argsort(sims)[: empty.numel()]  # the rows least similar to their own centroid
            sums[empty] = x[far]
        centroids = sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)
        sims, new_labels = nearest(centroids)
        if torch.equal(new_labels, labels):
            bar.set_postfix_str("converged", refresh=False)
            bar.update(bar.total - bar.n)  # converged early: the bar ends full, not at 3/20
            break
        labels = new_labels
    bar.close()
    sizes = torch.bincount(labels, minlength=n_clusters)
    return KMeansResult(
        centroids=centroids.cpu().numpy().astype(np.float32),
        labels=labels.cpu().numpy().astype(np.int64),
        sizes=sizes.cpu().numpy().astype(np.int64),
    )


def sparse_clusters(sizes, *, ratio: float = 0.5) -> np.ndarray:
    """Indices of the sparse clusters: those strictly smaller than the ``ratio`` quantile of cluster sizes.

    ``ratio=0.5`` is the median rule of the released code (the paper's figure uses the smallest 20%). If no cluster
    qualifies (all sizes equal), every cluster counts as sparse.

    Args:
        sizes (`KMeansResult` or array of `int`): a :func:`spherical_kmeans` result, or its ``sizes``.
        ratio (`float`, *optional*, defaults to 0.5): the size quantile below which a cluster is sparse.
    """
    if isinstance(sizes, KMeansResult):
        sizes = sizes.sizes
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError(
            f"sizes must be a KMeansResult or a non-empty 1-D array of cluster sizes (got shape {sizes.shape}); "
            "pass spherical_kmeans(...) or its .sizes."
        )
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1] (got {ratio}); 0.5 means 'smaller than the median'.")
    threshold = np.quantile(sizes, ratio)
    sparse = np.flatnonzero(sizes < threshold)
    return sparse if sparse.size else np.arange(sizes.size)
