"""Comparing data sets by gradient diversity: does mixture B add anything to A?

For sets ``A_1 … A_m`` with summed moments ``S_s`` and counts ``N_s``, the union's moment is ``Σ_s S_s`` (exact: the
accumulator states add). Reported per set:

- ``gvendi``: the set's own G-Vendi;
- ``adds``: ``G-Vendi(union) − G-Vendi(union without the set)``, what the set adds to all the others (for two sets,
  ``G-Vendi(A ∪ B) − G-Vendi(A)``); a copy of a set already present adds 0;
- ``direction_share``: of the union's effective directions (its top ``round(G-Vendi(union))`` eigenvectors ``v_j``),
  the average share of the per-example mass ``v_jᵀ S_s v_j / N_s`` that falls to this set — size-free, so two copies
  of one set share every direction half and half, and a set alone in its directions owns them.

Intervals come from one joint bootstrap: each replicate resamples every set's block moments
(:class:`~gvendi.bootstrap.BootstrapAccumulator`) independently and recomputes every quantity, so the interval of
``adds`` accounts for the sampling noise of both sides. A set passed twice (identical state) is one sample: its
copies share every resample, so a set compared with itself adds exactly 0, interval included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["ComparisonResult", "compare"]


@dataclass
class ComparisonResult:
    """G-Vendi of each set and of their union, what each adds, and its share of the union's directions.

    Attributes:
        names (`list[str]`): one per set.
        sets (`list[dict]`): per set ``name``, ``num_samples``, ``gvendi``, ``adds``, ``direction_share`` and, with
            intervals, ``gvendi_ci`` and ``adds_ci``.
        union (`dict`): ``num_samples``, ``gvendi`` (and ``gvendi_ci``) of all sets together.
        config (`dict`): ``ci``, ``n_boot``, ``seed``, ``dim``.
    """

    names: list[str]
    sets: list[dict[str, Any]]
    union: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"sets": self.sets, "union": self.union, **self.config}


def _vendi(moment: torch.Tensor, count: float) -> float:
    from .bootstrap import vendi_of_moments

    return vendi_of_moments(moment[None], [count])[0]


def _quantities(moments: list[torch.Tensor], counts: list[float]) -> tuple[list[float], float, list[float]]:
    """(each set's G-Vendi, the union's, and each set's ``adds``) from the sets' summed moments."""
    total_moment, total_count = sum(moments), float(sum(counts))
    union = _vendi(total_moment, total_count)
    own = [_vendi(m, c) for m, c in zip(moments, counts)]
    if len(moments) == 1:
        return own, union, [union]
    adds = [union - _vendi(total_moment - m, total_count - c) for m, c in zip(moments, counts)]
    return own, union, adds


def _direction_shares(moments: list[torch.Tensor], counts: list[float], union_value: float) -> list[float]:
    total = sum(moments) / float(sum(counts))
    _, vectors = torch.linalg.eigh((total + total.T) / 2)
    top = vectors[:, -max(1, int(round(union_value))) :]  # [k,D] the union's effective directions
    mass = torch.stack([((top.T @ m) * top.T).sum(dim=1) / c for m, c in zip(moments, counts)])  # [m,D]
    owned = mass / mass.sum(dim=0, keepdim=True).clamp_min(1e-300)
    return owned.mean(dim=1).tolist()


def compare(
    feature_sets: Sequence[Any],
    names: Sequence[str] | None = None,
    *,
    ci: float | None = 0.95,
    n_boot: int = 200,
    seed: int = 0,
) -> ComparisonResult:
    """G-Vendi of each feature set and of their union, what each adds, and each one's share of the union's directions.

    Args:
        feature_sets: two or more (N_s, dim) arrays (numpy, torch, lists of rows) of the same dim.
        names (list of `str`, *optional*): labels (default ``set0``, ``set1``, …).
        ci (`float`, *optional*, defaults to 0.95): bootstrap confidence level; `None` for no intervals.
        n_boot (`int`, *optional*, defaults to 200): joint bootstrap resamples.
        seed (`int`, *optional*, defaults to 0): seeds block assignment and resampling.

    Returns:
        `ComparisonResult`

    Example:
        >>> import numpy as np
        >>> a = np.eye(4)[:2]
        >>> result = compare([a, a, np.eye(4)[2:]], ["a", "a again", "b"], ci=None)
        >>> [round(s["adds"], 6) for s in result.sets], round(result.union["gvendi"], 3)
        ([-0.220237, -0.220237, 1.779763], 3.78)
    """
    from .bootstrap import BootstrapAccumulator, bootstrap_interval, check_level
    from .selection import _unit_features

    if len(feature_sets) < 1:
        raise ValueError("compare needs at least one feature set (two to compare).")
    names = list(names) if names is not None else [f"set{i}" for i in range(len(feature_sets))]
    if len(names) != len(feature_sets):
        raise ValueError(f"got {len(names)} names for {len(feature_sets)} feature sets: give one name per set.")
    if ci is not None:
        check_level(ci)
    rows = [_unit_features(f, torch.float64) for f in feature_sets]
    dims = {r.shape[1] for r in rows}
    if len(dims) != 1:
        raise ValueError(
            f"feature sets have different dims {[r.shape[1] for r in rows]}: featurize them with the same "
            "proxy, projection and dim."
        )
    moments = [r.T @ r for r in rows]  # [k,k] each
    counts = [float(r.shape[0]) for r in rows]
    own, union, adds = _quantities(moments, counts)
    shares = _direction_shares(moments, counts, union)
    sets = [
        {"name": n, "num_samples": int(c), "gvendi": v, "adds": a, "direction_share": s}
        for n, c, v, a, s in zip(names, counts, own, adds, shares)
    ]
    union_record: dict[str, Any] = {"num_samples": int(sum(counts)), "gvendi": union}
    if ci is not None:
        # a set given twice is one sample, not two: identical sets share one resampler and its draws
        first_of = [
            next(j for j in range(i + 1) if counts[j] == counts[i] and torch.equal(moments[j], moments[i]))
            for i in range(len(rows))
        ]
        resamplers = {j: BootstrapAccumulator(rows[j].shape[1], seed=seed + j).update(rows[j]) for j in set(first_of)}
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(int(n_boot)):
            sampled = {j: next(iter(acc.resampled_moments(1, rng))) for j, acc in resamplers.items()}
            picked = [sampled[j] for j in first_of]
            draws.append(_quantities([m[0] for m, _ in picked], [float(c[0]) for _, c in picked]))
        for i, record in enumerate(sets):
            record["gvendi_ci"] = bootstrap_interval([d[0][i] for d in draws], ci, record["gvendi"])
            record["adds_ci"] = _difference_interval([d[2][i] for d in draws], ci, record["adds"])
        union_record["gvendi_ci"] = bootstrap_interval([d[1] for d in draws], ci, union)
    config = {"ci": ci, "n_boot": int(n_boot) if ci is not None else None, "seed": int(seed), "dim": dims.pop()}
    return ComparisonResult(names=names, sets=sets, union=union_record, config=config)


def _difference_interval(replicates: Sequence[float], level: float, estimate: float) -> tuple[float, float]:
    """Basic bootstrap interval of a difference (which, unlike a score, may be negative: no clamp at 1)."""
    alpha = 1.0 - level
    q_low, q_high = np.quantile(np.asarray(replicates, dtype=np.float64), [alpha / 2, 1 - alpha / 2])
    return float(2 * estimate - q_high), float(2 * estimate - q_low)
