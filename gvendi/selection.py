"""Diversity-aware subset selection: keep ``k`` of ``N`` examples so that the kept set's G-Vendi stays high.

Four methods, one entry point (:func:`select`):

- ``"greedy"``: greedy maximisation of the log-det surrogate of G-Vendi,
  ``f(S) = log det(I + Σ_{i∈S} y_i y_iᵀ)`` with ``y_i = sqrt(α·w_i) x_i`` (unit rows ``x_i``, quality weights ``w_i``,
  default ``α = dim / k``). ``f`` is monotone submodular, its value is ``Σ_j log(1 + α λ_j)`` over the eigenvalues of
  the kept rows' second moment, which — like G-Vendi's entropy — rewards spreading a fixed trace over many
  directions. The gain of a candidate is ``log(1 + y_iᵀ M y_i)`` with ``M = (I + Σ_S y yᵀ)⁻¹``; each pick updates
  ``M`` by Sherman–Morrison (``M ← M − w wᵀ``, ``w = M y / sqrt(1 + yᵀ M y)``), so nothing is ever re-factorised.
  Gains only shrink, so candidates' gains are kept as upper bounds and refreshed lazily: a block of ``w`` vectors is
  applied to every candidate at once as one GEMM (``[N,d]×[d,B]``), and within a block only the few candidates that
  could still win are refreshed. The result is the plain greedy selection (up to ties), at ``O(N·d·k)`` GEMM work.
- ``"cluster-balanced"``: the Prismatic Synthesis rule turned into selection: spherical k-means, then every cluster
  gets the same quota (a cluster smaller than its quota is kept whole and its spare quota goes to the others), so an
  example's chance of being kept is inversely proportional to its cluster's size; the sparse clusters (smaller than
  the median) are drawn first, then the others, round-robin.
- ``"random"`` (seeded; quality-weighted when a quality is given) and ``"k-center"`` (farthest-point traversal on
  cosine distance), the baselines.

``quality`` weights the choice (``y_i`` is scaled by ``sqrt(w_i)`` in the greedy objective, the draw probability is
multiplied by ``w_i`` in the random and cluster-balanced methods, the k-center distance by ``w_i``) and
``min_quality`` gates it (candidates below it are never kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .utils import progress_bar

__all__ = ["SELECTION_METHODS", "SelectionResult", "select"]

SELECTION_METHODS = ("greedy", "cluster-balanced", "random", "k-center")
Method = Literal["greedy", "cluster-balanced", "random", "k-center"]


@dataclass
class SelectionResult:
    """The kept rows and how they were chosen.

    Attributes:
        indices (`np.ndarray`): (k,) int64 row indices into the input, in the order they were picked.
        method (`str`): one of :data:`SELECTION_METHODS`.
        gains (`np.ndarray`, *optional*): greedy only: each pick's gain ``log(1 + yᵀ M y)`` of the log-det surrogate.
        config (`dict`): the resolved parameters (k, seed, alpha, n_clusters, …), JSON-ready.
    """

    indices: np.ndarray
    method: str
    gains: np.ndarray | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _unit_features(features: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, dim) unit rows on the CPU in ``dtype``; a zero or non-finite row is an error naming it."""
    from .vendi import _to_numpy_2d

    if isinstance(features, torch.Tensor):
        x = features.detach().to("cpu", dtype)
    else:
        x = torch.from_numpy(np.ascontiguousarray(_to_numpy_2d(features))).to(dtype)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, dim) array; got shape {tuple(x.shape)}.")
    norms = x.norm(dim=1, keepdim=True)
    bad = (norms.squeeze(1) == 0) | ~torch.isfinite(x).all(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(f"feature row {row} is all zeros or not finite, so it has no direction; drop it first.")
    return x / norms


def _check_quality(quality: Any, n: int, min_quality: float | None) -> tuple[np.ndarray | None, np.ndarray]:
    """Validated weights (or None) and the boolean mask of candidates allowed by ``min_quality``."""
    allowed = np.ones(n, dtype=bool)
    if quality is None:
        if min_quality is not None:
            raise ValueError("min_quality needs a quality: pass quality= (a value per row), or drop min_quality.")
        return None, allowed
    weights = np.asarray(quality, dtype=np.float64).reshape(-1)
    if weights.shape[0] != n:
        raise ValueError(f"quality has {weights.shape[0]} values but features have {n} rows: give one per row.")
    if not np.isfinite(weights).all():
        row = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise ValueError(f"quality of row {row} is not finite ({weights[row]}); fill or drop it.")
    if min_quality is not None:
        allowed &= weights >= float(min_quality)
    if (weights[allowed] <= 0).any():
        row = int(np.flatnonzero(allowed & (weights <= 0))[0])
        raise ValueError(
            f"quality of row {row} is {weights[row]}, but weights must be > 0; gate such rows with min_quality "
            "or shift the scores to be positive."
        )
    return weights, allowed


def select(
    features: Any,
    k: int,
    *,
    method: Method = "greedy",
    quality: Any = None,
    min_quality: float | None = None,
    seed: int = 0,
    alpha: float | None = None,
    n_clusters: int | None = None,
    block_size: int = 64,
    show_progress: bool = False,
) -> SelectionResult:
    """Choose ``k`` rows of ``features`` that keep the set diverse.

    Args:
        features: (N, dim) rows (numpy, torch, list of rows or an Arrow column); unit-normalised inside.
        k (`int`): how many rows to keep, ``1 ≤ k ≤`` the number of allowed rows.
        method (`str`, *optional*, defaults to ``"greedy"``): ``"greedy"``, ``"cluster-balanced"``, ``"random"`` or
            ``"k-center"`` (see the module docstring).
        quality (array of N floats, *optional*): positive weight per row (a reward-model score, a length prior …).
        min_quality (`float`, *optional*): rows whose quality is below this are never kept.
        seed (`int`, *optional*, defaults to 0): seeds random draws, the k-center start and k-means.
        alpha (`float`, *optional*): greedy only: the surrogate's scale α; defaults to ``dim / k``, so the kept
            set's eigenvalues (which sum to k) sit around ``1/α`` when spread evenly.
        n_clusters (`int`, *optional*): cluster-balanced only: K; defaults to ``clip(N // 100, 2, k)`` (the paper's
            1% of the pool, at most one cluster per kept row).
        block_size (`int`, *optional*, defaults to 64): greedy only: picks between two full refreshes of the gains.
        show_progress (`bool`, *optional*, defaults to `False`): a progress bar over the picks.

    Returns:
        `SelectionResult`: ``indices`` (k,) in pick order, plus the method's ``gains`` and resolved ``config``.

    Example:
        >>> import numpy as np
        >>> x = np.vstack([np.eye(4), np.tile(np.eye(4)[:1], (6, 1))])  # 4 directions, row 0 repeated 6 more times
        >>> sorted(select(x, 4).indices.tolist())
        [0, 1, 2, 3]
    """
    if method not in SELECTION_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(SELECTION_METHODS)}.")
    x = _unit_features(features)
    n, dim = x.shape
    weights, allowed = _check_quality(quality, n, min_quality)
    available = int(allowed.sum())
    if not (isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= available):
        extra = f" ({n - available} of {n} rows are below min_quality)" if available < n else ""
        raise ValueError(
            f"k must be an integer between 1 and the number of candidate rows, {available}{extra}; got {k!r}."
        )
    k = int(k)
    config: dict[str, Any] = {"k": k, "method": method, "seed": int(seed), "num_candidates": available}
    if min_quality is not None:
        config["min_quality"] = float(min_quality)
    if method == "greedy":
        alpha = float(alpha) if alpha is not None else dim / k
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (got {alpha}).")
        config.update(alpha=alpha, block_size=int(block_size))
        indices, gains = _greedy_logdet(
            x, k, alpha, weights, allowed, block_size=block_size, show_progress=show_progress
        )
        return SelectionResult(indices=indices, method=method, gains=gains, config=config)
    rng = np.random.default_rng(seed)
    if method == "random":
        indices = _weighted_draw(np.flatnonzero(allowed), k, None if weights is None else weights[allowed], rng)
    elif method == "k-center":
        indices = _k_center(x, k, weights, allowed, rng, show_progress=show_progress)
    else:
        if n_clusters is None:
            n_clusters = int(np.clip(available // 100, 2, k)) if available >= 2 else 1
        if not (isinstance(n_clusters, (int, np.integer)) and 1 <= n_clusters <= available):
            raise ValueError(
                f"n_clusters must be between 1 and the number of candidate rows ({available}); got {n_clusters!r}."
            )
        config["n_clusters"] = int(n_clusters)
        indices = _cluster_balanced(x, k, int(n_clusters), weights, allowed, seed, rng)
    return SelectionResult(indices=np.asarray(indices, dtype=np.int64), method=method, config=config)


# greedy log-det ------------------------------------------------------------------------------------------------
def _greedy_logdet(
    x: torch.Tensor,
    k: int,
    alpha: float,
    weights: np.ndarray | None,
    allowed: np.ndarray,
    *,
    block_size: int,
    show_progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    n, dim = x.shape
    scale = np.full(n, alpha) if weights is None else alpha * weights
    y = x * torch.from_numpy(np.sqrt(scale)).float()[:, None]  # [N,d] y_i = sqrt(α w_i) x_i
    base = (y.double() ** 2).sum(dim=1).numpy()  # y_iᵀ M y_i with M = I
    block_start_q = np.where(allowed, base, -np.inf)  # exact residuals at the start of the current block
    bound = block_start_q.copy()  # upper bounds of y_iᵀ M y_i (exact where fresh_at == t)
    fresh_at = np.zeros(n, dtype=np.int64)
    inverse = torch.eye(dim, dtype=torch.float64)  # M = (I + Σ_S y yᵀ)⁻¹ [d,d]
    w_block = torch.zeros(block_size, dim, dtype=torch.float32)  # this block's Sherman–Morrison vectors [B,d]
    chosen, gains = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float64)
    in_block = 0
    probe = max(8, min(256, n))
    bar = progress_bar(range(k), desc="gvendi select (greedy)", disable=not show_progress)
    for t in bar:
        while True:  # lazy step: refresh the candidates that could still win until the best refreshed one leads
            m = min(probe, n)
            if m < n:
                part = np.argpartition(-bound, m)  # part[:m] the m largest bounds, part[m] the largest of the rest
                top, rest_max = part[:m], bound[part[m]]
            else:
                top, rest_max = np.arange(n), -np.inf
            stale = top[(fresh_at[top] != t) & np.isfinite(bound[top])]
            if stale.size and in_block:
                proj = y[torch.from_numpy(stale)] @ w_block[:in_block].T  # [m,d]×[d,b] → [m,b]
                bound[stale] = block_start_q[stale] - (proj.double() ** 2).sum(dim=1).numpy()
            fresh_at[stale] = t
            best = top[np.argmax(bound[top])]
            if bound[best] >= rest_max:
                break
            probe = min(2 * probe, n)
        probe = max(8, probe // 2)
        yb = y[best].double()
        u = inverse @ yb  # [d,d]×[d] → [d]
        quad = max(float(yb @ u), 0.0)
        gains[t] = np.log1p(quad)
        chosen[t] = best
        w = u / np.sqrt(1.0 + quad)
        inverse.addr_(w, w, alpha=-1.0)  # Sherman–Morrison: M ← M − w wᵀ
        w_block[in_block] = w.float()
        in_block += 1
        bound[best] = block_start_q[best] = -np.inf
        if in_block == block_size or t == k - 1:  # apply the block to every candidate: one GEMM
            for start in range(0, n, 16384):  # contiguous slices: no gather; kept rows stay at -inf
                proj = y[start : start + 16384] @ w_block[:in_block].T  # [n,d]×[d,b] → [n,b]
                block_start_q[start : start + 16384] -= (proj.double() ** 2).sum(dim=1).numpy()
            bound[:] = block_start_q
            fresh_at[:] = t + 1
            in_block = 0
    return chosen, gains


# baselines -----------------------------------------------------------------------------------------------------
def _weighted_draw(candidates: np.ndarray, k: int, weights: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """``k`` of ``candidates`` without replacement, with probability ∝ ``weights`` (Efraimidis–Spirakis keys)."""
    if weights is None:
        return rng.choice(candidates, size=k, replace=False)
    keys = np.log(rng.random(candidates.size)) / weights  # larger key first; key = u^(1/w)
    return candidates[np.argsort(-keys, kind="stable")[:k]]


def _k_center(
    x: torch.Tensor,
    k: int,
    weights: np.ndarray | None,
    allowed: np.ndarray,
    rng: np.random.Generator,
    *,
    show_progress: bool,
) -> np.ndarray:
    """Farthest-point traversal on cosine distance ``1 − x·c`` (times the quality weight)."""
    candidates = np.flatnonzero(allowed)
    start = int(candidates[np.argmax(weights[candidates])] if weights is not None else rng.choice(candidates))
    scale = torch.from_numpy(weights if weights is not None else np.ones(x.shape[0])).float()
    distance = (1.0 - x @ x[start]).clamp_min(0) * scale
    distance[torch.from_numpy(~allowed)] = -1.0
    distance[start] = -1.0
    chosen = [start]
    for _ in progress_bar(range(k - 1), desc="gvendi select (k-center)", disable=not show_progress):
        pick = int(torch.argmax(distance))
        chosen.append(pick)
        distance = torch.minimum(distance, (1.0 - x @ x[pick]).clamp_min(0) * scale)  # [N,d]×[d] → [N]
        distance[pick] = -1.0
    return np.asarray(chosen, dtype=np.int64)


def _cluster_balanced(
    x: torch.Tensor,
    k: int,
    n_clusters: int,
    weights: np.ndarray | None,
    allowed: np.ndarray,
    seed: int,
    rng: np.random.Generator,
) -> np.ndarray:
    from .cluster import sparse_clusters, spherical_kmeans

    candidates = np.flatnonzero(allowed)
    km = spherical_kmeans(x[torch.from_numpy(candidates)], n_clusters, seed=seed, device="cpu", show_progress=False)
    sizes = km.sizes
    # equal quotas, water-filled: a cluster smaller than the level is kept whole, the rest share what is left
    quota = np.zeros(n_clusters, dtype=np.int64)
    order = np.argsort(sizes, kind="stable")
    left = k
    for position, c in enumerate(order):
        share = left // (n_clusters - position)
        quota[c] = min(int(sizes[c]), share)
        left -= quota[c]
    for c in order[::-1]:  # integer remainder, if any, to the largest clusters that still have rows
        if left == 0:
            break
        extra = min(left, int(sizes[c] - quota[c]))
        quota[c] += extra
        left -= extra
    picks: list[np.ndarray] = []
    for c in range(n_clusters):
        members = candidates[km.labels == c]
        picks.append(_weighted_draw(members, int(quota[c]), None if weights is None else weights[members], rng))
    sparse = set(sparse_clusters(sizes).tolist())
    groups = [c for c in order if c in sparse] + [c for c in order if c not in sparse]
    out: list[int] = []
    for group in (groups[: len(sparse)], groups[len(sparse) :]):  # sparse clusters first, round-robin within each
        depth = max((len(picks[c]) for c in group), default=0)
        for level in range(depth):
            out.extend(int(picks[c][level]) for c in group if level < len(picks[c]))
    return np.asarray(out, dtype=np.int64)
