"""Bootstrap intervals for G-Vendi from ``k×k`` states, without re-featurizing.

G-Vendi is a function of the summed second moment ``S = Σ_i x_i x_iᵀ`` and the count, and a bootstrap resample
only reweights the rows: ``S* = Σ_i c_i x_i x_iᵀ`` with multinomial counts ``c``. So the resamples never need the
rows again, only their moments grouped into blocks:

- up to ``n_blocks`` rows, each row is its own block: this is the ordinary (exact) nonparametric bootstrap;
- beyond that, every row is assigned to one of ``n_blocks`` blocks at random (seeded), each block keeps its own
  ``k×k`` sum and count, and a resample draws blocks with replacement: ``S* = Σ_b c_b S_b``. Because the
  assignment is random, the blocks are i.i.d. and this is the bootstrap of the block means — the same sampling
  variance for a sum, at ``n_blocks`` ``k×k`` matrices of memory instead of N rows.

The interval is the basic bootstrap interval ``[2θ̂ − Q(1 − α/2), 2θ̂ − Q(α/2)]`` for ``ci = 1 − α`` (``Q`` the
quantiles of the resampled scores, ``θ̂`` the estimate): G-Vendi of a sample is biased low (a finite sample spreads
the spectrum unevenly) and resamples, which repeat rows, are lower still by about the same amount, so the interval
reflects the shift back and targets the population value. It measures sampling uncertainty (which rows happened to
be drawn), not the projection's approximation error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["BootstrapAccumulator", "bootstrap_interval", "default_blocks"]

_BLOCK_MEMORY = 256 * 2**20  # bytes of block moments kept by default


def default_blocks(dim: int) -> int:
    """Blocks kept by default: as many ``k×k`` float64 matrices as fit in 256 MB, between 20 and 200."""
    return int(np.clip(_BLOCK_MEMORY // (8 * dim * dim), 20, 200))


class BootstrapAccumulator:
    """Streams unit rows into per-block ``k×k`` moments for bootstrap resampling.

    The state is a sum (rows, or block sums and counts), so it merges across shards and ranks
    (:meth:`merge`, :func:`gvendi.distributed.reduce_bootstrap`) and round-trips through :meth:`state_dict`, the
    random generator's position included: a restored accumulator assigns later rows as the original would have.

    Args:
        dim (`int`): feature dimension k.
        n_blocks (`int`, *optional*): blocks kept (default :func:`default_blocks`); while at most ``exact_rows`` rows
            have arrived each row is its own block.
        seed (`int`, *optional*, defaults to 0): seeds the assignment of rows to blocks.
        exact_rows (`int`, *optional*, defaults to ``n_blocks``): rows kept as their own blocks before they are pooled
            (more than ``n_blocks`` only makes sense for a state that is merged into another one, e.g. a rank's rows
            since the last cross-rank sum).
    """

    def __init__(self, dim: int, *, n_blocks: int | None = None, seed: int = 0, exact_rows: int | None = None):
        self.dim = int(dim)
        self.n_blocks = int(n_blocks) if n_blocks is not None else default_blocks(self.dim)
        if self.n_blocks < 2:
            raise ValueError(f"n_blocks must be ≥ 2 (got {n_blocks}).")
        self.exact_rows = self.n_blocks if exact_rows is None else int(exact_rows)
        self._rng = np.random.default_rng(seed)
        self._rows: list[torch.Tensor] = []
        self._moments: torch.Tensor | None = None  # [B,k,k]
        self._counts: np.ndarray | None = None
        self.count = 0

    def _to_blocks(self) -> None:
        rows = torch.cat(self._rows) if self._rows else torch.zeros(0, self.dim, dtype=torch.float64)
        self._moments = torch.zeros(self.n_blocks, self.dim, self.dim, dtype=torch.float64)
        self._counts = np.zeros(self.n_blocks, dtype=np.int64)
        self._rows = []
        self._add_to_blocks(rows)

    def _add_to_blocks(self, rows: torch.Tensor) -> None:
        blocks = self._rng.integers(0, self.n_blocks, rows.shape[0])
        for block in np.unique(blocks):
            part = rows[torch.from_numpy(blocks == block)]
            self._moments[block].addmm_(part.T, part)  # [k,n]×[n,k] → [k,k]
            self._counts[block] += part.shape[0]

    def update(self, unit_rows: torch.Tensor) -> BootstrapAccumulator:
        """Add (n, k) float64 unit rows (already checked and normalised, as `VendiAccumulator` keeps them)."""
        if self._moments is None and self.count + unit_rows.shape[0] <= self.exact_rows:
            self._rows.append(unit_rows)
        else:
            if self._moments is None:
                self._to_blocks()
            self._add_to_blocks(unit_rows)
        self.count += unit_rows.shape[0]
        return self

    @property
    def exact(self) -> bool:
        """Whether every row is its own block (the ordinary bootstrap)."""
        return self._moments is None

    def rows(self) -> torch.Tensor:
        """The kept unit rows [count, k] (only while :attr:`exact`)."""
        if self._moments is not None:
            raise ValueError("the rows were pooled into blocks; only their block sums are kept.")
        return torch.cat(self._rows) if self._rows else torch.zeros(0, self.dim, dtype=torch.float64)

    def block_sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S_b, N_b)``: the [B,k,k] block sums and (B,) counts, pooling kept rows into blocks first."""
        if self._moments is None:
            self._to_blocks()
        return self._moments, torch.from_numpy(self._counts)

    def merge(self, other: BootstrapAccumulator) -> BootstrapAccumulator:
        """Add another state: its kept rows are assigned to this state's blocks as if they arrived here; its blocks
        are added block by block (exact: the states are sums; ``other`` is unchanged)."""
        if not isinstance(other, BootstrapAccumulator) or other.dim != self.dim:
            raise ValueError(f"can only merge a BootstrapAccumulator of dim {self.dim}, got {other!r}.")
        if other.exact:
            if other.count:
                self.update(other.rows())
            return self
        if other.n_blocks != self.n_blocks:
            raise ValueError(f"cannot merge bootstrap states of {other.n_blocks} and {self.n_blocks} blocks.")
        if self._moments is None:
            self._to_blocks()
        self._moments += other._moments
        self._counts += other._counts
        self.count += other.count
        return self

    @classmethod
    def from_rows(cls, rows: torch.Tensor, *, n_blocks: int) -> BootstrapAccumulator:
        """A state keeping ``rows`` ([n,k] float64 unit rows) as their own blocks (however many)."""
        acc = cls(rows.shape[1], n_blocks=n_blocks, exact_rows=max(n_blocks, rows.shape[0]))
        acc._rows, acc.count = ([rows] if rows.shape[0] else []), int(rows.shape[0])
        return acc

    @classmethod
    def from_blocks(cls, moments: torch.Tensor, counts: torch.Tensor) -> BootstrapAccumulator:
        """A state of block sums ``moments`` [B,k,k] over ``counts`` (B,) rows each."""
        acc = cls(moments.shape[-1], n_blocks=moments.shape[0])
        acc._moments = moments.to(torch.float64).clone()
        acc._counts = np.asarray(counts, dtype=np.int64).copy()
        acc.count = int(acc._counts.sum())
        return acc

    def state_dict(self) -> dict[str, Any]:
        """Rows or block sums, counts and the generator's position (tensors and plain values, for ``torch.save``)."""
        return {
            "dim": self.dim,
            "n_blocks": self.n_blocks,
            "exact_rows": self.exact_rows,
            "count": self.count,
            "rows": self.rows().clone() if self.exact else None,
            "moments": None if self.exact else self._moments.clone(),
            "counts": None if self.exact else torch.from_numpy(self._counts.copy()),
            "rng": self._rng.bit_generator.state,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> BootstrapAccumulator:
        if state["moments"] is None:
            acc = cls.from_rows(torch.as_tensor(state["rows"], dtype=torch.float64), n_blocks=int(state["n_blocks"]))
        else:
            acc = cls.from_blocks(torch.as_tensor(state["moments"]), torch.as_tensor(state["counts"]).numpy())
        acc.exact_rows = int(state["exact_rows"])
        acc._rng.bit_generator.state = state["rng"]
        return acc

    def __repr__(self) -> str:
        return (
            f"BootstrapAccumulator(dim={self.dim}, n_blocks={self.n_blocks}, count={self.count}, exact={self.exact})"
        )

    def resampled_moments(self, n_boot: int, rng: np.random.Generator, chunk: int = 0) -> Any:
        """Yield ``(S*, N*)`` batches: [c,k,k] reweighted moments and their (c,) row counts, ``n_boot`` in all."""
        chunk = chunk or max(1, (1 << 24) // (self.dim * self.dim))  # ≤ 128 MB of float64 moments at a time
        if self._moments is None:
            rows = torch.cat(self._rows)
            n = rows.shape[0]
            weights = torch.from_numpy(rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)).double()  # [R,n]
            for start in range(0, n_boot, chunk):
                w = weights[start : start + chunk]
                yield torch.einsum("rn,ni,nj->rij", w, rows, rows), w.sum(dim=1).long().numpy()  # [r,k,k]
            return
        picks = rng.multinomial(self.n_blocks, np.full(self.n_blocks, 1.0 / self.n_blocks), size=n_boot)  # [R,B]
        flat = self._moments.reshape(self.n_blocks, -1)
        for start in range(0, n_boot, chunk):
            w = picks[start : start + chunk]
            moments = (torch.from_numpy(w).double() @ flat).reshape(-1, self.dim, self.dim)  # [r,B]×[B,k²] → [r,k,k]
            yield moments, w @ self._counts

    def resampled_scores(self, n_boot: int, *, q: float = 1.0, seed: int = 0) -> np.ndarray:
        """``n_boot`` bootstrap replicates of the Vendi Score of order ``q``."""
        rng = np.random.default_rng(seed)
        values = []
        for moments, counts in self.resampled_moments(n_boot, rng):
            values.extend(vendi_of_moments(moments, counts, q=q))
        return np.asarray(values)


def vendi_of_moments(moments: torch.Tensor, counts: Any, *, q: float = 1.0) -> list[float]:
    """Vendi Scores of summed second moments ``S`` [r,k,k] of ``counts`` (r,) unit rows each (clamped into
    ``[1, min(N, k)]``), from one batched eigensolve."""
    from .vendi import clamp_vendi, vendi_from_eigenvalues

    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if (counts <= 0).any():
        raise ValueError("a resample with 0 rows has no G-Vendi.")
    scaled = (moments + moments.transpose(-1, -2)) / (2.0 * torch.from_numpy(counts)[:, None, None])
    spectra = torch.linalg.eigvalsh(scaled).numpy()
    dim = moments.shape[-1]
    return [clamp_vendi(vendi_from_eigenvalues(np.clip(v, 0.0, None), q), c, dim) for v, c in zip(spectra, counts)]


def bootstrap_interval(replicates: np.ndarray, level: float, estimate: float) -> tuple[float, float]:
    """Basic (reverse-percentile) interval ``[2θ̂ − Q(1−α/2), 2θ̂ − Q(α/2)]`` for ``level = 1 − α``.

    Resampling duplicates rows, and duplicates lower diversity, so the replicates sit below the estimate by about as
    much as the estimate sits below the population value; the basic interval reflects that shift back (a percentile
    interval would be shifted the wrong way and under-cover). The interval may therefore lie partly above the point
    estimate. It is clamped at 1 from below.
    """
    check_level(level)
    alpha = 1.0 - level
    q_low, q_high = np.quantile(np.asarray(replicates, dtype=np.float64), [alpha / 2, 1 - alpha / 2])
    return max(1.0, float(2 * estimate - q_high)), max(1.0, float(2 * estimate - q_low))


def check_level(level: Any) -> float:
    if not (isinstance(level, (int, float)) and 0 < level < 1 and not math.isnan(level)):
        raise ValueError(f"ci must be a confidence level in (0, 1), e.g. 0.95 (got {level!r}).")
    return float(level)
