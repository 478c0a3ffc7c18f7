"""Per-example scores: each example's leave-one-out change of G-Vendi, and how rare its cluster is.

Removing row ``x`` (unit length) from the accumulated ``S = Σ_i x_i x_iᵀ = V diag(λ) Vᵀ`` is a rank-one downdate,
``S − x xᵀ``. With ``z = Vᵀ x``, its eigenvalues ``μ_j = λ_j − δ_j`` are the roots of the secular equation

    1 − Σ_m z_m² / (λ_m − μ) = 0,        λ_{j+1} ≤ μ_j ≤ λ_j   (interlacing),

one per interval between consecutive poles. So one eigendecomposition of ``S`` (``O(k³)``, once) and, per example,
a projection ``z = Vᵀ x`` plus a vectorised safeguarded Newton solve of the k roots (``O(k²)`` per iteration, a
handful of iterations) give the left-out spectrum exactly, with no re-scoring. Poles the row does not touch
(``z_m ≈ 0``) and tied eigenvalues (rotated into one) are deflated first, as in LAPACK's divide-and-conquer solver.
Each shift ``δ_j`` is found relative to its own pole, and the entropy change is summed in a cancellation-free form,
so the result matches a brute-force re-scoring to ~1e-12.

The G-Vendi without row i then follows from ``H = log T − Φ / T`` with ``Φ = Σ μ log μ`` and ``T = Σ μ``.
``contribution_i = G-Vendi(all) − G-Vendi(all but i)``: positive when the example adds a direction, negative when
removing it would raise the diversity (a redundant, over-represented example).

A first-order version (``exact=False``), ``ΔΦ ≈ −Σ_j z_j² (1 + log λ_j)``, costs one ``[N,k]×[k,k]`` GEMM for all
rows; it ranks well and is how :mod:`gvendi.report` shortlists rows before scoring them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .utils import progress_bar

__all__ = ["ContributionResult", "contributions", "leave_one_out"]

_TIE = 1e-13  # eigenvalues closer than this (relative to λ_max) are one eigenspace
_DEFLATE = 1e-26  # z_m² below this moves its eigenvalue by less than round-off: the pole is left as it is


@dataclass
class ContributionResult:
    """Per-example diversity scores.

    Attributes:
        gvendi (`float`): G-Vendi of all rows.
        leave_one_out (`np.ndarray`): (N,) G-Vendi of all rows but row i.
        contribution (`np.ndarray`): (N,) ``gvendi − leave_one_out``: what row i adds (negative: redundant).
        cluster (`np.ndarray`): (N,) spherical k-means label of each row.
        cluster_size (`np.ndarray`): (N,) size of row i's cluster.
        rarity (`np.ndarray`): (N,) ``N / (K · cluster_size)``: 1 for an average cluster, larger for rarer ones.
        exact (`bool`): whether ``leave_one_out`` was solved exactly (else first order).
    """

    gvendi: float
    leave_one_out: np.ndarray
    contribution: np.ndarray
    cluster: np.ndarray
    cluster_size: np.ndarray
    rarity: np.ndarray
    exact: bool = True

    def to_columns(self) -> dict[str, list]:
        """The per-row columns ``gvendi_contribution``, ``gvendi_leave_one_out``, ``gvendi_cluster``,
        ``gvendi_cluster_size`` and ``gvendi_rarity``, as lists (for ``Dataset.add_column``)."""
        return {
            "gvendi_contribution": self.contribution.tolist(),
            "gvendi_leave_one_out": self.leave_one_out.tolist(),
            "gvendi_cluster": self.cluster.tolist(),
            "gvendi_cluster_size": self.cluster_size.tolist(),
            "gvendi_rarity": self.rarity.tolist(),
        }


def _phi(values: np.ndarray) -> np.ndarray:
    safe = np.where(values > 0, values, 1.0)
    return np.where(values > 0, values * np.log(safe), 0.0)


def _phi_shift(lam: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``φ(λ − δ) − φ(λ)`` with ``φ(t) = t log t``: ``−δ log(λ−δ) + λ log1p(−δ/λ)`` for small shifts (no
    cancellation), the plain difference once ``δ > λ/2`` (where ``1 − δ/λ`` would lose digits)."""
    mu = np.clip(lam - delta, 0.0, None)
    small = delta < 0.5 * lam
    safe_mu = np.where(mu > 0, mu, 1.0)
    shifted = -delta * np.log(safe_mu) + lam * np.log1p(-np.where(small, delta / lam, 0.0))
    return np.where(small, shifted, _phi(mu) - _phi(lam))


def _secular_shifts(lam: np.ndarray, z2: np.ndarray, *, iterations: int = 40) -> np.ndarray:
    """Shifts ``δ_j ≥ 0`` with ``λ_j − δ_j`` the eigenvalues of ``diag(λ) − z zᵀ``.

    ``lam`` (r,) strictly descending positive poles (deflated), ``z2`` (r,) their weights ``z_j² > 0``. Root j lies
    in ``δ ∈ (0, gap_j)``, ``gap_j = λ_j − λ_{j+1}`` (the last in ``(0, λ_r]``: the downdate stays positive
    semi-definite). In δ the secular function is ``g(δ) = 1 − L(δ) − R(δ)`` with ``L`` the poles at or left of 0
    (``m ≤ j``) and ``R`` those at or right of ``gap_j`` (``m > j``). Each iteration fits ``L ≈ A + a/δ`` and
    ``R ≈ B + b/(δ − gap)`` to their values and slopes at the current δ and takes the model's root in the interval
    (Li's "middle way", as LAPACK's dlaed4): quadratic convergence from either side, kept inside a bisection bracket.
    """
    r = lam.shape[0]
    lam_t, z2_t = torch.from_numpy(lam), torch.from_numpy(z2)
    gap = torch.from_numpy(np.append(lam[:-1] - lam[1:], lam[-1]))
    diff = lam_t[None, :] - lam_t[:, None]  # [r,r] λ_m − λ_j: the pole of term m sits at δ = −(λ_m − λ_j)
    left = torch.ones(r, r, dtype=torch.bool).tril()  # [j,m] m ≤ j
    last = torch.zeros(r, dtype=torch.bool)
    last[-1] = True
    lo, hi = torch.zeros(r, dtype=torch.float64), gap.clone()
    delta = gap / 2
    for _ in range(iterations):
        denom = diff + delta[:, None]  # [r,r] λ_m − λ_j + δ_j (> 0 for m ≤ j, < 0 for m > j)
        terms = z2_t[None, :] / denom
        slopes = -terms / denom
        l_val = torch.where(left, terms, 0.0).sum(dim=1)
        r_val = terms.sum(dim=1) - l_val
        l_der = torch.where(left, slopes, 0.0).sum(dim=1)
        r_der = slopes.sum(dim=1) - l_der
        g = 1.0 - l_val - r_val
        below = g < 0  # g increases through the root: below it δ is too small
        lo = torch.where(below, delta, lo)
        hi = torch.where(below, hi, delta)
        a = -l_der * delta * delta  # L ≈ A + a/δ
        to_gap = delta - gap
        b = torch.where(last, 0.0, -r_der * to_gap * to_gap)  # R ≈ B + b/(δ − gap); no pole right of the last root
        c = 1.0 - (l_val - a / delta) - torch.where(last, r_val, r_val - b / to_gap)
        big = c * gap + a + b
        disc = (big * big - 4.0 * c * a * gap).clamp_min(0.0)
        model = 2.0 * a * gap / (big + disc.sqrt())  # the root in (0, gap) of c δ(gap−δ) − a(gap−δ) + b δ
        model = torch.where(last, a / c, model)  # with b = 0: c − a/δ = 0
        slack = 1e-12 * hi  # a converged model root may land a few ulps outside the bracket: clamp, don't bisect
        inside = (model >= lo - slack) & (model <= hi + slack) & torch.isfinite(model)
        step = torch.where(inside, torch.minimum(torch.maximum(model, lo), hi), (lo + hi) / 2)
        converged = ((step - delta).abs() <= 1e-14 * step.abs()) | (
            g == 0
        )  # ulp-level oscillation counts as converged
        delta = step
        if bool(converged.all()):
            break
    return delta.clamp(min=torch.zeros_like(gap), max=gap).numpy()


def _spectrum(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    moment = torch.from_numpy(features.T @ features)  # [k,k] S = Σ x xᵀ (float64)
    lam, vectors = torch.linalg.eigh((moment + moment.T) / 2)
    lam, vectors = lam.flip(0).numpy(), vectors.flip(1).numpy()
    lam[lam < _TIE * max(lam[0], 1e-300)] = 0.0  # round-off of a rank-deficient S
    return lam, vectors


def _entropy(phi_sum: float, total: float) -> float:
    return float(np.log(total) - phi_sum / total)


def leave_one_out(
    features: Any, *, indices: Any = None, exact: bool = True, show_progress: bool = False
) -> np.ndarray:
    """G-Vendi (q = 1) of the rows without row i, for each i (or each of ``indices``), from one eigendecomposition.

    Args:
        features: (N, dim) rows, unit-normalised inside (float64), ``N ≥ 2``.
        indices (array of int, *optional*): only these rows (default: all).
        exact (`bool`, *optional*, defaults to `True`): solve the downdated spectrum exactly (``O(k²)`` per row);
            `False` gives the first-order value from one GEMM.
        show_progress (`bool`, *optional*, defaults to `False`): a bar over the rows.

    Returns:
        `np.ndarray`: float64 G-Vendi values, one per requested row, each in ``[1, min(N − 1, dim)]``.
    """
    from .selection import _unit_features

    x = _unit_features(features, torch.float64).numpy()
    n, dim = x.shape
    if n < 2:
        raise ValueError(f"leave-one-out needs at least 2 rows (got {n}): without its only row a set has no G-Vendi.")
    rows = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"indices must lie in [0, {n}); got {rows.min()}..{rows.max()}.")
    lam, vectors = _spectrum(x)
    total = float(lam.sum())
    phi_total = float(_phi(lam).sum())
    z = x[rows] @ vectors  # [m,k] each row in the eigenbasis
    norms2 = (x[rows] ** 2).sum(axis=1)
    cap = float(min(n - 1, dim))
    if not exact:
        slope = np.where(lam > 0, 1.0 + np.log(np.where(lam > 0, lam, 1.0)), 0.0)
        phi_left = phi_total - (z**2) @ slope
        values = np.exp(np.log(total - norms2) - phi_left / (total - norms2))
        return np.clip(values, 1.0, cap)
    # tie groups: consecutive eigenvalues within _TIE·λ_max are one eigenspace (rotate z into one component)
    live = lam > 0
    starts = np.flatnonzero(np.r_[True, np.abs(np.diff(lam)) > _TIE * lam[0]] & live)
    group_of = np.cumsum(np.r_[True, np.abs(np.diff(lam)) > _TIE * lam[0]]) - 1
    reps = lam[starts]
    values = np.empty(rows.size)
    for position in progress_bar(range(rows.size), desc="gvendi leave-one-out", disable=not show_progress):
        weights = np.bincount(group_of[live], weights=z[position, live] ** 2, minlength=group_of.max() + 1)
        weights = weights[group_of[starts]]
        keep = weights > _DEFLATE
        poles, z2 = reps[keep], weights[keep]
        shift = _secular_shifts(poles, z2) if poles.size else np.zeros(0)
        phi_left = phi_total + float(_phi_shift(poles, shift).sum())
        values[position] = np.exp(_entropy(phi_left, total - norms2[position]))
    return np.clip(values, 1.0, cap)


def contributions(
    features: Any,
    *,
    exact: bool = True,
    n_clusters: int | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> ContributionResult:
    """Each example's leave-one-out change of G-Vendi and its cluster rarity.

    Args:
        features: (N, dim) rows (numpy, torch, list of rows), ``N ≥ 2``; unit-normalised inside.
        exact (`bool`, *optional*, defaults to `True`): exact secular-equation downdates (``O(k²)`` per row after
            one ``O(k³)`` eigendecomposition); `False` for the first-order value (one GEMM for all rows).
        n_clusters (`int`, *optional*): K of the spherical k-means behind ``rarity``; defaults to
            ``clip(N // 10, 1, 1000)`` (the released code's 10%).
        seed (`int`, *optional*, defaults to 0): seeds the k-means.
        show_progress (`bool`, *optional*, defaults to `False`): a bar over the rows.

    Returns:
        `ContributionResult`

    Example:
        >>> import numpy as np
        >>> result = contributions(np.vstack([np.eye(3), np.eye(3)[:1]]))  # row 3 repeats row 0
        >>> result.contribution.round(3).tolist() == [-0.172, 0.939, 0.939, -0.172]  # the repeated row is redundant
        True
    """
    from .cluster import spherical_kmeans
    from .selection import _unit_features
    from .vendi import score

    x = _unit_features(features, torch.float64).numpy()
    n = x.shape[0]
    loo = leave_one_out(x, exact=exact, show_progress=show_progress)
    value = score(x).value
    if n_clusters is None:
        n_clusters = int(np.clip(n // 10, 1, 1000))
    km = spherical_kmeans(x.astype(np.float32), int(n_clusters), seed=seed, device="cpu", show_progress=False)
    size = km.sizes[km.labels]
    return ContributionResult(
        gvendi=value,
        leave_one_out=loo,
        contribution=value - loo,
        cluster=km.labels,
        cluster_size=size,
        rarity=n / (km.n_clusters * size.astype(np.float64)),
        exact=exact,
    )
