"""Spherical (cosine) k-means on unit feature rows, and the sparse-cluster rule of Prismatic Synthesis.

Prismatic Synthesis (Jung et al., 2025) clusters the pool's G-Vendi features, calls the clusters smaller than
the median size *sparse*, and keeps a new example only when its nearest (frozen) centroid is sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .utils import progress_bar, resolve_device

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


def spherical_kmeans(
    features,
    n_clusters: int,
    *,
    n_iter: int = 20,
    seed: int = 0,
    device: str | None = None,
    batch_rows: int = 65536,
    show_progress: bool = True,
) -> KMeansResult:
    """Lloyd's algorithm with cosine similarity: assign to the nearest unit centroid, re-average, re-normalise.

    Initialisation is k-means++ on cosine distance, seeded. An emptied cluster is re-seeded with the row farthest
    from its centroid, so every cluster stays non-empty while N ≥ K. Runs on a GPU when one is present.

    Args:
        features (`np.ndarray` or `torch.Tensor`): (N, dim) rows; unit-normalised inside.
        n_clusters (`int`): K, with ``1 ≤ K ≤ N``.
        n_iter (`int`, *optional*, defaults to 20): Lloyd iterations (the paper's setting).
        seed (`int`, *optional*, defaults to 0): seeds the initialisation.
        device (`str`, *optional*): ``"cpu"``, ``"cuda"``, …; the first GPU when omitted and available.

    Returns:
        `KMeansResult`
    """
    dev = resolve_device(device)
    x = _unit_rows(features, dev)
    n = x.shape[0]
    if not (isinstance(n_clusters, (int, np.integer)) and 1 <= n_clusters <= n):
        raise ValueError(f"n_clusters must be between 1 and the number of rows ({n}); got {n_clusters!r}.")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))

    def nearest(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        best_sim, best_idx = [], []
        for s in range(0, n, batch_rows):
            sims = x[s : s + batch_rows] @ c.T  # [n,dim]×[dim,K] → [n,K]
            value, index = sims.max(dim=1)
            best_sim.append(value)
            best_idx.append(index)
        return torch.cat(best_sim), torch.cat(best_idx)

    # k-means++ seeding on cosine distance (1 - cos), sampled on CPU so every device draws the same rows
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = 1.0 - x @ x[first]
    for _ in range(1, n_clusters):
        weights = closest.clamp_min(0).double().cpu()
        if float(weights.sum()) <= 0:
            remaining = torch.ones(n, dtype=torch.float64)
            remaining[chosen] = 0
            weights = remaining
        pick = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(pick)
        closest = torch.minimum(closest, 1.0 - x @ x[pick])
    centroids = x[chosen].clone()

    bar = progress_bar(range(n_iter), desc="spherical k-means", disable=not show_progress or n_iter == 0)
    labels = nearest(centroids)[1]
    for _ in bar:
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        sizes = torch.bincount(labels, minlength=n_clusters)
        empty = (sizes == 0).nonzero().flatten()
        if empty.numel():
            sims, _ = nearest(centroids)
            far = torch.argsort(sims)[: empty.numel()]
            sums[empty] = x[far]
        centroids = sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)
        new_labels = nearest(centroids)[1]
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
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
    """
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError("sizes must be a non-empty 1-D array of cluster sizes.")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1] (got {ratio}); 0.5 means 'smaller than the median'.")
    threshold = np.quantile(sizes, ratio)
    sparse = np.flatnonzero(sizes < threshold)
    return sparse if sparse.size else np.arange(sizes.size)
