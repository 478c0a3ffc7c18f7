"""The Vendi Score of unit feature rows, through a streaming k×k accumulator.

G-Vendi (Jung et al., 2025) is the Vendi Score (Friedman & Dieng, 2023) of the cosine kernel between
projected per-example gradients. With unit rows ``x_i`` the kernel matrix ``K = X Xᵀ / N`` and the
``k×k`` second-moment matrix ``Σ = Xᵀ X / N`` share their non-zero eigenvalues, so a ``k×k``
accumulator is enough and memory never grows with ``N``::

    Σ        = (1/N) Σ_i x_i x_iᵀ                    trace 1
    VS_q     = exp( log(Σ_λ λ^q) / (1 − q) )          order q (Pasarkar & Dieng, 2023)
    VS_1     = exp( −Σ_λ λ log λ )                    Shannon, the paper's G-Vendi
    VS_inf   = 1 / λ_max

The value lies in ``[1, min(N, k)]``: one row scores 1, N identical rows score 1, k orthonormal rows score k.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["GVendiResult", "VendiAccumulator", "clamp_vendi", "entropy_q", "score", "vendi_from_eigenvalues"]

# Eigenvalues below this (relative to the largest) are round-off of a rank-deficient Σ, not mass.
_EIGEN_FLOOR = 1e-12
# Rows converted to float64 at a time when streaming (k = 1024: 128 MB per batch), bounding peak memory.
_BATCH_ROWS = 16384


def _check_q(q: Any) -> float:
    """``q`` as a float, or a ``ValueError`` naming it (booleans and non-numbers are refused)."""
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)) or not q > 0:
        raise ValueError(f"q must be a number > 0 (got q={q!r}); q=1.0 is the paper's G-Vendi, float('inf') 1/λ_max.")
    return float(q)


def entropy_q(eigenvalues: np.ndarray, q: float = 1.0) -> float:
    """Rényi entropy of order ``q`` of a probability vector of eigenvalues (zeros ignored).

    Args:
        eigenvalues (`np.ndarray`): non-negative values summing to 1.
        q (`float`, *optional*, defaults to 1.0): order, ``q > 0``; 1 is Shannon, ``float("inf")`` min-entropy.

    Returns:
        `float`: the entropy in nats.

    Computed in log space (``log Σ p^q`` as a log-sum-exp, and through ``log1p``/``expm1`` near ``q = 1``), so large
    orders (``q = 1000``) do not underflow to the maximum score and orders just above 1 do not lose digits.
    """
    if not q > 0:
        raise ValueError(f"q must be > 0 (got q={q!r}); use q=1.0 for the paper's G-Vendi.")
    p = np.asarray(eigenvalues, dtype=np.float64)
    p = p[p > _EIGEN_FLOOR * max(float(p.max(initial=0.0)), 1e-300)]
    if p.size == 0:
        return 0.0
    p = p / p.sum()
    log_p = np.log(p)
    if q == 1.0:
        return float(-(p * log_p).sum())
    if math.isinf(q):
        return float(-log_p.max())
    if abs(q - 1.0) < 0.5:
        # near q = 1, Σ p^q = 1 + Σ p (p^(q-1) − 1): log1p/expm1 keep the digits that log(Σ p^q) would cancel away
        return float(np.log1p((p * np.expm1((q - 1.0) * log_p)).sum()) / (1.0 - q))
    # log Σ p^q = logsumexp(q log p): p^q underflows to 0 for large q, its logarithm does not
    scaled = q * log_p
    top = float(scaled.max())
    return float((top + np.log(np.exp(scaled - top).sum())) / (1.0 - q))


def vendi_from_eigenvalues(eigenvalues: np.ndarray, q: float = 1.0) -> float:
    """Vendi Score ``exp(H_q)`` from the eigenvalues of a trace-1 similarity matrix."""
    p = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    total = p.sum()
    if total <= 0:
        raise ValueError("all eigenvalues are zero: no non-zero feature rows were accumulated.")
    return float(math.exp(entropy_q(p / total, q)))


def clamp_vendi(value: float, count: float, dim: int) -> float:
    """A score pushed back into its valid range ``[1, min(N, k)]`` (the eigensolver's round-off can leave it)."""
    return min(max(value, 1.0), float(min(count, dim)))


@dataclass
class GVendiResult:
    """A G-Vendi value and what produced it.

    Attributes:
        value (`float`): the score, in ``[1, min(num_samples, dim)]``.
        num_samples (`int`): rows accumulated (N).
        dim (`int`): feature dimension (k).
        q (`float`): the order of the score.
        provenance (`dict`): proxy id and revision, projection, seed, gvendi version, … whatever made the features.
        ci (`tuple`, *optional*): ``(low, high)`` bootstrap interval when asked for (``score(..., ci=0.95)``).
        ci_level (`float`, *optional*): its confidence level.
        n_boot (`int`, *optional*): bootstrap resamples behind it.
    """

    value: float
    num_samples: int
    dim: int
    q: float = 1.0
    provenance: dict[str, Any] = field(default_factory=dict)
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    n_boot: int | None = None

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``gvendi``, ``num_samples``, ``dim``, ``q`` and the provenance fields."""
        out = {"gvendi": self.value, "num_samples": self.num_samples, "dim": self.dim, "q": self.q}
        if self.ci is not None:
            out.update(ci_low=self.ci[0], ci_high=self.ci[1], ci_level=self.ci_level, n_boot=self.n_boot)
        out.update(self.provenance)
        return out

    def __repr__(self) -> str:
        interval = f", ci=({self.ci[0]:.4f}, {self.ci[1]:.4f})" if self.ci is not None else ""
        return (
            f"GVendiResult(value={self.value:.4f}, num_samples={self.num_samples}, dim={self.dim}, q={self.q}"
            f"{interval})"
        )


def _arrow_lists_to_numpy(batch: Any) -> np.ndarray | None:
    """An Arrow array of equal-length numeric lists (a ``datasets`` fixed-length feature column) as an (n, d) view
    of its values buffer, without a Python object per row; ``None`` when ``batch`` is not such an array."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow comes with datasets
        return None
    if isinstance(batch, pa.ChunkedArray):
        batch = batch.combine_chunks() if batch.num_chunks != 1 else batch.chunk(0)
    if not isinstance(batch, pa.Array) or batch.null_count:
        return None
    if pa.types.is_fixed_size_list(batch.type):
        width = batch.type.list_size
    elif pa.types.is_list(batch.type) or pa.types.is_large_list(batch.type):
        if len(batch) == 0:
            return None
        lengths = pc.list_value_length(batch)
        width = pc.min(lengths).as_py()
        if width != pc.max(lengths).as_py():
            return None  # ragged rows: the generic path reports them
    else:
        return None
    values = batch.flatten()
    if values.null_count or not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        return None
    return values.to_numpy(zero_copy_only=False).reshape(len(batch), width)


def _has_complex(rows: Any) -> bool:
    if isinstance(rows, (list, tuple)):
        return any(_has_complex(item) for item in rows[:4096])
    return isinstance(rows, (complex, np.complexfloating)) or (isinstance(rows, np.ndarray) and np.iscomplexobj(rows))


def _list_kind(rows: Any) -> str:
    """numpy's dtype kind of a list of rows ('U' when any cell is text), or '' when it is not rectangular."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(rows).dtype.kind
    except (ValueError, TypeError):
        return ""


def _refuse_complex(is_complex: bool, row_offset: int) -> None:
    if is_complex:
        raise ValueError(
            f"features from row {row_offset} on are complex numbers; G-Vendi needs real-valued rows (casting would "
            "drop the imaginary part)."
        )


def _to_numpy_2d(batch: Any, *, row_offset: int = 0) -> np.ndarray:
    """Turn one batch (numpy, torch, list of rows, Arrow array/table column) into a float64 (n, d) array."""
    fast = _arrow_lists_to_numpy(batch) if hasattr(batch, "type") else None
    if fast is not None:
        return fast.astype(np.float64)
    if isinstance(batch, torch.Tensor):
        _refuse_complex(batch.is_complex(), row_offset)
        array = batch.detach().to("cpu", torch.float64).numpy()
    else:
        if hasattr(batch, "to_numpy") and not isinstance(batch, np.ndarray):  # Arrow / pandas
            try:
                batch = batch.to_numpy(zero_copy_only=False)
            except TypeError:
                batch = batch.to_numpy()
        if isinstance(batch, np.ndarray) and batch.dtype == object:
            batch = list(batch)
        _refuse_complex(np.iscomplexobj(batch) if isinstance(batch, np.ndarray) else _has_complex(batch), row_offset)
        kind = batch.dtype.kind if isinstance(batch, np.ndarray) else _list_kind(batch)
        if kind in ("U", "S"):
            raise ValueError(
                f"features from row {row_offset} on hold text, not numbers: pass numeric rows (an (N, dim) array)."
            )
        try:
            array = np.asarray(batch, dtype=np.float64)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"features from row {row_offset} on are not a rectangular numeric array (mixed dims or non-numbers?): "
                "pass an (N, dim) array, or rows that all have the same length."
            ) from err
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"features must be 2-D (N, dim); got shape {array.shape} from row {row_offset} on.")
    return array


class VendiAccumulator:
    """Streaming, mergeable ``k×k`` accumulator of unit feature rows; scores the Vendi Score of any order.

    The state is ``S = Σ_i x_i x_iᵀ`` in float64 plus the row count, so updates are order-free and
    ``merge`` of shards or ranks is exact (up to float64 summation order). Until ``dim`` rows have arrived the rows
    themselves are kept instead (no more memory than ``S``): an update is then a copy, and the score comes from the
    ``N×N`` Gram matrix ``X Xᵀ``, which has the same non-zero eigenvalues, so small windows score in microseconds.

    Args:
        dim (`int`): the feature dimension k (``dim ≥ 1``).
        normalize (`bool`, *optional*, defaults to `True`): unit-normalise each row before accumulating.
        device (`str` or `torch.device`, *optional*): where the state lives (CPU by default).

    Example:
        >>> import numpy as np
        >>> acc = VendiAccumulator(dim=4)
        >>> acc.update(np.eye(4))  # returns the accumulator, so updates chain
        VendiAccumulator(dim=4, count=4)
        >>> round(acc.score().value, 6)
        4.0
    """

    def __init__(self, dim: int, *, normalize: bool = True, device: str | torch.device | None = None):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be an integer ≥ 1 (got dim={dim!r}).")
        self.dim = int(dim)
        self.normalize = normalize
        self.device = torch.device(device or "cpu")
        self._moment: torch.Tensor | None = None  # S, once more than `dim` rows arrived (or on request)
        self._rows: list[torch.Tensor] = []  # the unit rows themselves before that
        self.count = 0
        self.provenance: dict[str, Any] = {}

    @property
    def second_moment(self) -> torch.Tensor:
        """``S = Σ_i x_i x_iᵀ`` [k,k] float64 (formed from the kept rows on first access)."""
        if self._moment is None:
            self._moment = self._moment_of_rows()
            self._rows = []
        return self._moment

    def _moment_of_rows(self) -> torch.Tensor:
        moment = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.device)
        for rows in self._rows:
            moment.addmm_(rows.T, rows)  # [k,n]×[n,k] → [k,k]
        return moment

    def _check_rows(self, rows: torch.Tensor, row_offset: int) -> torch.Tensor:
        if rows.shape[1] != self.dim:
            raise ValueError(
                f"feature rows {row_offset}..{row_offset + rows.shape[0] - 1} have dim {rows.shape[1]}, "
                f"but this accumulator has dim {self.dim}: all rows must come from the same projection."
            )
        finite = torch.isfinite(rows).all(dim=1)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0]) + row_offset
            raise ValueError(f"feature row {bad} contains NaN or inf: drop or recompute that example.")
        if self.normalize:
            # divide by the largest entry first: the norm of a 1e200 (or 1e-200) row overflows (underflows) otherwise
            peak = rows.abs().amax(dim=1, keepdim=True)
            rows = rows / torch.where(peak > 0, peak, torch.ones_like(peak))
            norms = rows.norm(dim=1, keepdim=True)
            zero = norms.squeeze(1) == 0
            if bool(zero.any()):
                bad = int(zero.nonzero()[0, 0]) + row_offset
                raise ValueError(
                    f"feature row {bad} is all zeros, so it has no direction: its example produced no gradient "
                    "(empty or fully masked completion?). Drop it before scoring."
                )
            rows = rows / norms
        return rows

    def _add_unit_rows(self, rows: torch.Tensor) -> None:
        if self._moment is None and self.count + rows.shape[0] <= self.dim:
            self._rows.append(rows if rows.is_contiguous() else rows.contiguous())
        else:
            self.second_moment.addmm_(rows.T, rows)  # [k,n]×[n,k] → [k,k]
        self.count += rows.shape[0]

    def update(self, batch: Any) -> VendiAccumulator:
        """Add a batch of rows (numpy, torch, list of rows or an Arrow column) of shape (n, dim)."""
        if isinstance(batch, torch.Tensor):
            _refuse_complex(batch.is_complex(), self.count)
            rows = batch.detach().to(self.device, torch.float64)
            if rows.ndim == 1:
                rows = rows[None, :]
            if rows.ndim != 2:
                raise ValueError(f"features must be 2-D (N, dim); got shape {tuple(rows.shape)}.")
        else:
            rows = torch.from_numpy(_to_numpy_2d(batch, row_offset=self.count)).to(self.device)
        if rows.shape[0] == 0:
            return self
        rows = self._check_rows(rows, self.count)
        if not self.normalize:
            rows = rows.clone()  # kept rows must not alias the caller's array
        self._add_unit_rows(rows)
        return self

    def merge(self, other: VendiAccumulator) -> VendiAccumulator:
        """Add another accumulator's rows into this one (exact: the states are sums; ``other`` is unchanged)."""
        if not isinstance(other, VendiAccumulator):
            raise TypeError(f"can only merge another VendiAccumulator, got {type(other).__name__}.")
        if other.dim != self.dim:
            raise ValueError(f"cannot merge accumulators of dim {self.dim} and {other.dim}.")
        if other._moment is None:
            for rows in other._rows:
                self._add_unit_rows(rows.to(self.device))
            return self
        self.second_moment.add_(other._moment.to(self.device))
        self.count += other.count
        return self

    def unit_rows(self) -> torch.Tensor | None:
        """The accumulated unit rows ``[count, k]`` while they are kept (up to ``dim`` rows), else ``None``."""
        if self._moment is not None:
            return None
        if not self._rows:
            return torch.zeros(0, self.dim, dtype=torch.float64, device=self.device)
        return torch.cat(self._rows) if len(self._rows) > 1 else self._rows[0]

    def same_state(self, other: VendiAccumulator) -> bool:
        """Whether both accumulators hold exactly the same rows (the same count and bitwise-equal state)."""
        if self.count != other.count or (self._moment is None) != (other._moment is None):
            return False
        if self._moment is not None:
            return torch.equal(self._moment, other._moment)
        return len(self._rows) == len(other._rows) and all(
            a is b or torch.equal(a, b) for a, b in zip(self._rows, other._rows)
        )

    def eigenvalues(self) -> np.ndarray:
        """Non-zero spectrum of ``Σ = S / N`` (trace 1 for unit rows), descending: ``min(N, k)`` values."""
        if self.count == 0:
            raise ValueError("no rows accumulated: G-Vendi of 0 examples is undefined. Pass at least one example.")
        if self._moment is None:
            rows = torch.cat(self._rows) if len(self._rows) > 1 else self._rows[0]
            matrix = (rows @ rows.T).cpu() / self.count  # N×N Gram: the same non-zero eigenvalues as S/N
        else:
            matrix = (self._moment / self.count).cpu()
        # torch's solver runs in torch's own thread pool (numpy's BLAS pool beside it can stall a loaded CPU)
        values = torch.linalg.eigvalsh((matrix + matrix.T) / 2.0).numpy()
        return np.clip(values[::-1], 0.0, None)

    def score(self, q: float = 1.0) -> GVendiResult:
        """The Vendi Score of order ``q`` of everything accumulated so far."""
        q = _check_q(q)
        value = vendi_from_eigenvalues(self.eigenvalues(), q)
        value = clamp_vendi(value, self.count, self.dim)
        return GVendiResult(
            value=value, num_samples=self.count, dim=self.dim, q=float(q), provenance=dict(self.provenance)
        )

    def state_dict(self) -> dict[str, Any]:
        """Serialisable state (for checkpoints and ``torch.distributed`` gathers)."""
        moment = self._moment.cpu().clone() if self._moment is not None else self._moment_of_rows().cpu()
        return {"dim": self.dim, "count": self.count, "second_moment": moment}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> VendiAccumulator:
        acc = cls(int(state["dim"]))
        acc.second_moment.copy_(torch.as_tensor(state["second_moment"], dtype=torch.float64))
        acc.count = int(state["count"])
        return acc

    def __repr__(self) -> str:
        return f"VendiAccumulator(dim={self.dim}, count={self.count})"


def _iter_batches(features: Any, batch_rows: int) -> Iterable[Any]:
    """Yield row batches from an array, a tensor, a `datasets` column or an iterable of batches."""
    if isinstance(features, (np.ndarray, torch.Tensor)):
        for start in range(0, features.shape[0], batch_rows):
            yield features[start : start + batch_rows]
        return
    # `datasets` Column (lazy) or Arrow ChunkedArray: read chunk by chunk, never all at once
    if hasattr(features, "chunks"):
        for chunk in features.chunks:
            for start in range(0, len(chunk), batch_rows):
                yield chunk.slice(start, batch_rows)
        return
    if type(features).__name__ == "Column" and hasattr(features, "source"):
        # read Arrow slices (memory-mapped, zero-copy) instead of Python lists of floats
        source, name = features.source, features.column_name
        arrow = source.with_format("arrow") if hasattr(source, "with_format") else None
        for start in range(0, len(source), batch_rows):
            if arrow is not None:
                yield arrow[start : start + batch_rows].column(name)
            else:
                yield source[start : start + batch_rows][name]
        return
    if isinstance(features, list):
        if features and isinstance(features[0], (int, float, np.floating)):
            yield features  # one single row
            return
        if features and isinstance(features[0], (np.ndarray, torch.Tensor)) and getattr(features[0], "ndim", 1) == 2:
            yield from features  # a list of batches
            return
        for start in range(0, len(features), batch_rows):
            yield features[start : start + batch_rows]
        return
    yield from features  # any other iterable: treated as a stream of batches


def score(
    features: Any,
    q: float = 1.0,
    *,
    dim: int | None = None,
    provenance: Mapping[str, Any] | None = None,
    ci: float | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> GVendiResult:
    """G-Vendi (the Vendi Score of the cosine kernel) of feature rows, streamed through a k×k accumulator.

    Args:
        features: an (N, dim) numpy array or torch tensor, a list of rows, a `datasets` column / Arrow array of
            fixed-length lists, or an iterable of (n, dim) batches (streamed, never held in memory at once).
            Rows are unit-normalised inside.
        q (`float`, *optional*, defaults to 1.0): order of the score; 1 is the paper's G-Vendi, ``inf`` gives 1/λ_max.
        dim (`int`, *optional*): expected feature dimension; inferred from the first batch when omitted.
        provenance (`dict`, *optional*): what produced the features, copied into the result.
        ci (`float`, *optional*): a confidence level (e.g. 0.95) for a basic bootstrap interval in ``.ci``,
            resampled from ``k×k`` block moments kept while streaming (see :mod:`gvendi.bootstrap`); the features
            are read once.
        n_boot (`int`, *optional*, defaults to 200): bootstrap resamples (each costs one ``k×k`` eigensolve).
        seed (`int`, *optional*, defaults to 0): seeds the bootstrap.

    Returns:
        `GVendiResult`: ``.value`` (also ``float(result)``), ``num_samples``, ``dim``, ``q``, provenance and, with
        ``ci``, ``.ci = (low, high)``.

    Example:
        >>> import numpy as np
        >>> float(score(np.ones((5, 3))))  # five identical rows: one effective direction
        1.0
        >>> round(score(np.eye(3)).value, 6)
        3.0
    """
    q = _check_q(q)
    if ci is not None:
        from .bootstrap import check_level

        check_level(ci)
        if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 10):
            raise ValueError(f"n_boot must be an integer ≥ 10 (got {n_boot!r}); 200 or more for a 95% interval.")
    accumulator: VendiAccumulator | None = VendiAccumulator(dim) if dim is not None else None
    resampler = None
    for batch in _iter_batches(features, batch_rows=_BATCH_ROWS):
        if accumulator is None:
            if isinstance(batch, torch.Tensor):
                first = batch if batch.ndim == 2 else batch[None, :]
            else:
                first = _to_numpy_2d(batch)
            if first.shape[0] == 0:
                continue
            accumulator = VendiAccumulator(int(first.shape[1]))
        if ci is None:
            accumulator.update(batch)
            continue
        if resampler is None:
            from .bootstrap import BootstrapAccumulator

            resampler = BootstrapAccumulator(accumulator.dim, seed=seed)
        rows = torch.as_tensor(_to_numpy_2d(batch, row_offset=accumulator.count), dtype=torch.float64)
        if rows.shape[0]:
            rows = accumulator._check_rows(rows, accumulator.count)
            accumulator._add_unit_rows(rows)
            resampler.update(rows)
    if accumulator is None or accumulator.count == 0:
        raise ValueError("no feature rows to score (0 rows): G-Vendi needs at least one example.")
    if provenance:
        accumulator.provenance.update(provenance)
    result = accumulator.score(q)
    if resampler is not None:
        from .bootstrap import bootstrap_interval

        result.ci = bootstrap_interval(resampler.resampled_scores(int(n_boot), q=q, seed=seed), ci, result.value)
        result.ci_level, result.n_boot = float(ci), int(n_boot)
    return result
