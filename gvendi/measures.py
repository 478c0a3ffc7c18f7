"""The baseline diversity measures G-Vendi is compared with, and the rank statistics that compare them.

``distinct_n`` (n-gram diversity) and ``self_similarity`` (mean pairwise cosine of embeddings) are the paper's
text-side baselines; the embedding Vendi Score is ``gvendi.score`` of :func:`gvendi.report.embedding_features`.
``spearman`` and ``bootstrap_spearman`` say how well a measure ranks a family of training sets by an outcome
(``benchmarks/bench_correlation.py`` uses them over fine-tuning runs; see ``docs/evidence.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique over total lower-cased, whitespace-split word n-grams, pooled over all texts (Li et al., 2016).

    Args:
        texts (`Sequence[str]`): the texts of one set.
        n (`int`): the n-gram order, ≥ 1.

    Returns:
        `float`: in (0, 1]; 0.0 when no text has ``n`` words.

    Example:
        >>> distinct_n(["a b a b"], 2)  # bigrams (a b), (b a), (a b): 2 unique of 3
        0.6666666666666666
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer ≥ 1 (got n={n!r}).")
    words = [str(text).lower().split() for text in texts]
    grams = [tuple(w[i : i + n]) for w in words for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_similarity(embeddings: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows: (Σ_ij cos_ij − N) / (N(N−1)).

    Dividing by the number of pairs makes it independent of the set size; lower means more diverse.

    Args:
        embeddings (`np.ndarray`): (N, d) rows, N ≥ 2; zero rows are rejected.

    Returns:
        `float`: in [−1, 1].

    Example:
        >>> round(self_similarity(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])), 12)  # pairs: 0, 1/√2, 1/√2
        0.471404520791
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"embeddings must be an (N, d) array with N ≥ 2 (got shape {x.shape}).")
    norms = np.linalg.norm(x, axis=1)
    if not np.all(norms > 0):
        raise ValueError(f"embeddings row {int(np.argmin(norms)) + 1} is all zeros; a cosine needs a direction.")
    x = x / norms[:, None]
    total = x.sum(0)  # Σ_ij x_i·x_j = ||Σ_i x_i||², O(N·d) without the N×N matrix
    n = x.shape[0]
    return float((total @ total - n) / (n * (n - 1)))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks, ties given their mean rank.

    Args:
        x (`Sequence[float]`): one value per item.
        y (`Sequence[float]`): one value per item, same length (≥ 2).

    Returns:
        `float`: in [−1, 1]; NaN when either side is constant (no ranking to compare).

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 45])
        1.0
        >>> spearman([1, 2, 3], [3, 2, 1])
        -1.0
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"x and y must be 1-D of the same length ≥ 2 (got shapes {a.shape} and {b.shape}).")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("x and y must be finite; drop or fix the items with NaN or inf.")
    ra, rb = _ranks(a) - (len(a) + 1) / 2, _ranks(b) - (len(b) + 1) / 2
    denominator = np.sqrt((ra @ ra) * (rb @ rb))
    return float(np.clip(ra @ rb / denominator, -1.0, 1.0)) if denominator > 0 else float("nan")


def bootstrap_spearman(
    x: Sequence[float], y: Sequence[float], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Spearman's ρ with a percentile bootstrap interval over the items (resampled with replacement).

    Resamples in which one side is constant have no ρ and are skipped; ``used`` counts the others.

    Args:
        x (`Sequence[float]`): one value per item (e.g. a diversity measure per training set).
        y (`Sequence[float]`): one value per item (e.g. the outcome of training on that set).
        n_boot (`int`, *optional*, defaults to 2000): resamples.
        level (`float`, *optional*, defaults to 0.95): the interval's coverage, in (0, 1).
        seed (`int`, *optional*, defaults to 0): seeds the resampling.

    Returns:
        `dict[str, float]`: ``rho`` (on all items), ``low``, ``high``, ``used``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level!r}), e.g. 0.95.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise ValueError(f"n_boot must be an integer ≥ 10 (got {n_boot!r}).")
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rho = spearman(a, b)
    generator = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        pick = generator.integers(0, len(a), len(a))
        value = spearman(a[pick], b[pick])
        if not np.isnan(value):
            draws.append(value)
    if not draws:
        return {"rho": rho, "low": float("nan"), "high": float("nan"), "used": 0}
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return {"rho": rho, "low": float(low), "high": float(high), "used": len(draws)}
