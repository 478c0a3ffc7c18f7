"""Seeded, device-independent random projections of per-parameter gradients to ``dim`` features.

Every random number is a function of ``(seed, parameter name, role, element index)``, so the matrices are identical
on CPU and GPU, for any batch size and thread count. The sketches hash each index with integer arithmetic on the
device; the dense matrix draws each fixed chunk of its rows from its own PCG64 stream (NumPy guarantees that raw
stream on every platform and release).

Three projections, both linear maps ``R^{|θ|} → R^{dim}`` applied parameter by parameter and summed:

- ``"sketch"``: a CountSketch. Element ``j`` of parameter ``p`` adds ``s(j)·g_j`` to bucket ``h(j)``
  with ``s`` a random sign and ``h`` uniform over ``dim`` buckets. Inner products are preserved in expectation with
  the same variance as a dense Rademacher map (up to a term that vanishes for spread-out gradients), at the cost
  of one scatter-add per element instead of ``dim`` multiply-adds.
- ``"factored"`` (the default, :data:`DEFAULT_PROJECTION`): a CountSketch of each weight matrix taken through its
  Kronecker factors. A layer's per-example
  gradient is ``Σ_t δ_t x_tᵀ``; folding ``δ_t`` and ``x_t`` with their own small CountSketches (to at most ``fold``
  signed buckets each) and summing the outer products gives ``S_out G S_inᵀ`` exactly, an ``a×b`` grid of cells that
  is then CountSketched into the ``dim`` buckets. The full ``out×in`` gradient is never formed: the per-token cost is
  ``O(out + in)`` plus a ``fold²`` product instead of ``out·in``, which is what lets the Trainer callback ride along a
  training step. Cell collisions add a ``1/(a·b)`` term to the ``1/dim`` pair-collision rate of ``"sketch"``
  (measured in ``tests/test_accuracy.py``). Matrices no larger than ``fold`` on a side are not folded, so there the
  map is ``"sketch"`` itself. Where the hardware multiplies bfloat16 natively the folds and their product are
  bfloat16 (accumulated in float32, each example at its own scale), which rounds cells by at most 2⁻⁹ relative.
- ``"dense"``: the paper's projection. A dense Rademacher matrix with entries ``±1/√dim`` (TRAK's projector),
  generated in bounded-memory chunks of rows, once per batch and applied to all of its examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .utils import fast_bf16, stable_seed

__all__ = [
    "DEFAULT_FOLD",
    "DEFAULT_PROJECTION",
    "PROJECTIONS",
    "CountSketchProjector",
    "DenseProjector",
    "FactoredSketchProjector",
    "Projector",
    "make_projector",
]

PROJECTIONS: tuple[str, ...] = ("sketch", "factored", "dense")
#: the projection every door uses unless told otherwise: measured within 1% of a dense projection at the paper's proxy
#: widths and at ~0.9× a plain forward+backward there (``benchmarks/results/projection_accuracy_real.md``,
#: ``benchmarks/results/featurize_real.md``), where ``"sketch"`` pays for vocabulary × hidden elements per example
DEFAULT_PROJECTION = "factored"
#: the factored projection's default fold (buckets per matrix side)
DEFAULT_FOLD = 128

_M32 = 0xFFFFFFFF


def _hash32(values: torch.Tensor, salt: int) -> torch.Tensor:
    """A 32-bit integer mixer (xor-shift-multiply) on int64 tensors; exact on every device (no overflow)."""
    x = (values ^ (salt & _M32)) & _M32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    return (x >> 16) ^ x


def _mix_index(index: torch.Tensor, salt: int) -> torch.Tensor:
    """Hash 64-bit element indices with a 64-bit salt down to 32 bits (two rounds, low and high halves)."""
    low = _hash32(index & _M32, salt)
    return _hash32(low ^ (index >> 32), salt >> 32)


class Projector:
    """Base class: maps per-example gradients of named parameters into ``dim`` features.

    Args:
        dim (`int`): output dimension k.
        seed (`int`, *optional*, defaults to 0): the projection seed.
    """

    name: str = ""
    #: the name that salts the hashes (a projection that reuses another's hash family names it here)
    hash_family: str = ""
    #: whether the projector takes a linear layer's gradient as its factors (:meth:`add_outer`) instead of whole
    takes_factors: bool = False

    def __init__(self, dim: int, seed: int = 0):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be an integer ≥ 1 (got dim={dim!r}); the paper uses dim=1024.")
        self.dim = dim
        self.seed = int(seed)

    def salt(self, param_name: str, role: str) -> int:
        return stable_seed(self.seed, self.hash_family or self.name, param_name, role)

    def new_output(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """A zero accumulator for one batch; :meth:`finalize` turns it into ``(batch, dim)`` features."""
        return torch.zeros(batch_size, self.dim, device=device, dtype=torch.float32)

    def finalize(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def add_dense(self, out: torch.Tensor, param_name: str, grads: torch.Tensor, offset: int = 0) -> None:
        """Add the projection of per-example gradients ``grads`` [n, m] covering elements ``offset..offset+m`` of a
        parameter (flattened, row-major) into ``out`` [n, ·]."""
        raise NotImplementedError

    def add_rows(
        self,
        out: torch.Tensor,
        param_name: str,
        row_grads: torch.Tensor,
        rows: torch.Tensor,
        example: torch.Tensor,
        row_size: int,
        n_rows: int | None = None,
    ) -> None:
        """Add sparse per-example gradients of a 2-D parameter: ``row_grads`` [m, row_size] are gradients of rows
        ``rows`` [m] of the parameter (which has ``n_rows`` rows), belonging to examples ``example`` [m] (an
        embedding lookup's gradient)."""
        raise NotImplementedError

    def add_outer(
        self,
        out: torch.Tensor,
        param_name: str,
        left: torch.Tensor,
        right: torch.Tensor,
        tokens: torch.Tensor | None = None,
        bias_name: str | None = None,
        delta_side: str = "left",
    ) -> None:
        """Add the projection of per-example gradients ``G_n = Σ_t tokens[n,t]·left[n,t] ⊗ right[n,t]`` of a 2-D
        parameter (``left`` [n,T,rows], ``right`` [n,T,cols], ``tokens`` [n,T] or all ones) without forming them;
        only for ``takes_factors`` projectors. ``delta_side`` names the factor that is the output gradient (its
        scale follows the loss's normalisation; the other factor is the layer input)."""
        raise NotImplementedError(f"the {self.name!r} projection takes whole per-example gradients (add_dense).")

    def config(self) -> dict:
        return {"projection": self.name, "dim": self.dim, "seed": self.seed}


class CountSketchProjector(Projector):
    """CountSketch to ``dim`` buckets, signs folded in as a second block of ``dim`` buckets (no multiply).

    Indices of each parameter are cached per device while their total stays under ``cache_elements``; larger
    models hash their indices on the fly each batch.
    """

    name = "sketch"

    def __init__(self, dim: int, seed: int = 0, *, cache_elements: int = 1 << 27):
        super().__init__(dim, seed)
        self.cache_elements = cache_elements
        self._cache: dict[tuple[str, torch.device, int, int], torch.Tensor] = {}
        self._cached = 0

    def new_output(self, batch_size: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(batch_size, 2 * self.dim, device=device, dtype=torch.float32)

    def finalize(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, : self.dim] - out[:, self.dim :]  # [n,2k] → [n,k]: positive minus negative buckets

    def signed_buckets(self, param_name: str, index: torch.Tensor) -> torch.Tensor:
        """Bucket in ``[0, 2·dim)`` for each element index: ``h(j)`` for sign +1, ``dim + h(j)`` for sign −1."""
        h = _mix_index(index, self.salt(param_name, "bucket"))
        sign_bit = _mix_index(index, self.salt(param_name, "sign")) & 1
        return h % self.dim + self.dim * sign_bit

    def _buckets_for_range(self, param_name: str, offset: int, size: int, device: torch.device) -> torch.Tensor:
        key = (param_name, device, offset, size)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        index = torch.arange(offset, offset + size, device=device, dtype=torch.int64)
        buckets = self.signed_buckets(param_name, index)
        if self._cached + size <= self.cache_elements:
            self._cache[key] = buckets
            self._cached += size
        return buckets

    def add_dense(self, out, param_name, grads, offset=0):
        n, m = grads.shape
        buckets = self._buckets_for_range(param_name, offset, m, grads.device)
        out.scatter_add_(1, buckets.expand(n, m), grads.to(out.dtype))  # [n,m] → [n,2k]

    def _cached_table(self, param_name: str, row_size: int, device: torch.device) -> torch.Tensor | None:
        """The cached buckets of a whole parameter as [rows, row_size], if ``add_dense`` already hashed all of it
        (a tied embedding: the output layer's pass fills the cache before the input embedding's)."""
        for (name, dev, offset, size), buckets in self._cache.items():
            if name == param_name and dev == device and offset == 0 and size % row_size == 0:
                return buckets.view(-1, row_size)
        return None

    def add_rows(self, out, param_name, row_grads, rows, example, row_size, n_rows=None):
        table = self._cached_table(param_name, row_size, rows.device)
        if table is not None and rows.numel() and int(rows.max()) < table.shape[0]:
            buckets = table[rows.to(torch.int64)]  # [m, row_size] in [0, 2k), the same values as hashing below
        else:
            # element index of (row r, column c) is r·row_size + c
            cols = torch.arange(row_size, device=rows.device, dtype=torch.int64)
            index = rows.to(torch.int64)[:, None] * row_size + cols[None, :]  # [m, row_size]
            buckets = self.signed_buckets(param_name, index)  # [m, row_size] in [0, 2k)
        flat = (buckets + example.to(torch.int64)[:, None] * out.shape[1]).reshape(-1)
        out.view(-1).index_add_(0, flat, row_grads.reshape(-1).to(out.dtype))


@dataclass(eq=False)
class _OpenBatch:
    """What one batch of :class:`FactoredSketchProjector` holds between :meth:`~FactoredSketchProjector.new_output`
    and :meth:`~FactoredSketchProjector.finalize`: its output, the blocks it has queued, its per-example scale and
    the column folds its layers share."""

    out: torch.Tensor  # [n, 2k] the batch's output
    #: what each block of queued values is, in order: ``(name, size)`` for a vector, ``(weight, bias, rows, cols)``
    #: for a grid of cells; the blocks fill the first ``staged`` columns of the projector's staging workspace
    layout: list[tuple] = field(default_factory=list)
    staged: int = 0
    inverse: torch.Tensor | None = None  # [n,1] reciprocal per-example scale (see _inverse_scale)
    folded_inputs: dict[tuple, tuple] = field(default_factory=dict)  # column folds and token weights, by input


class FactoredSketchProjector(CountSketchProjector):
    """CountSketch of each weight matrix through its Kronecker factors; see the module docstring.

    Each side of a ``rows×cols`` matrix longer than ``fold`` is folded by a balanced CountSketch: seeded random
    signs, and entry ``i`` summed into bucket ``i mod fold``. Row signs are drawn per parameter; column signs per
    column count, so layers reading the same input (q/k/v, gate/up) fold it once. Cell
    ``(i, j)`` of the folded grid goes to the CountSketch bucket of element ``i·b + j``, so an unfolded matrix (both
    sides ``≤ fold``) is projected exactly as ``"sketch"`` projects it. A linear layer's bias is the weight of a
    constant input, folded with the weight's rows; other vectors (norms) and any gradient handed over whole
    (:meth:`add_dense`) are CountSketched directly.

    Each layer's folded factors are multiplied at once (one small batched GEMM, in ``product_dtype``) into its
    ``a×b`` grid of cells; within a batch (between :meth:`new_output` and :meth:`finalize`) the grids and vector
    gradients are queued in the batch's own :class:`_OpenBatch` and :meth:`finalize` scatters them all into the
    buckets in one call. The projector itself keeps only what does not depend on the batch: the folds, bucket
    tables, product dtypes and the staging workspace that queues reuse.

    Args:
        dim (`int`): output dimension k.
        seed (`int`, *optional*, defaults to 0): the projection seed.
        fold (`int`, *optional*, defaults to 128): the most buckets a matrix side is folded to; the grid of a large
            matrix has ``fold²`` cells. Larger is closer to ``"sketch"`` and slower (measured in
            ``benchmarks/results/projection_accuracy.md`` and ``docs/accuracy.md``: over 12 seeds on near-duplicate
            data fold 128 reads 0.4% below the exact value, fold 64 2.5% below with 3× the seed-to-seed spread).
        product_dtype (`str`, *optional*, defaults to ``"auto"``): the precision of the folded factors and their
            product: ``"float32"``, ``"bfloat16"``, or ``"auto"`` (bfloat16 where the device multiplies it natively
            (CUDA with bf16, CPUs with AVX512-BF16/AMX), float32 elsewhere). bfloat16 rounds each cell by at most
            2⁻⁹ relative, independently: feature rows keep cosine > 0.9999 with float32 ones
            (``tests/test_gradients.py``) and G-Vendi on the bundled proxy is unchanged to 3 decimals; the product
            is 3× faster on such CPUs. Accumulation is always float32. Each example's output gradients are rounded at
            the example's own scale, so features do not depend on how the loss was normalised.
        queue_bytes (`int`, *optional*, defaults to 256 MiB): queued grids beyond this are scattered before the
            batch ends, bounding memory on large models.
    """

    name = "factored"
    hash_family = "sketch"  # cells hash like "sketch" elements, so unfolded matrices project identically
    takes_factors = True
    #: the token axis of the folded factors is zero-padded to a multiple of this, so the product GEMM sees a few
    #: shapes (oneDNN builds a kernel per new shape: 4× the cost of the product itself on a CPU)
    token_multiple = 32
    #: sides of at most this many blocks of ``fold`` entries are folded by slice multiply-adds, longer ones by one
    #: index-add (which reads each entry once instead of issuing two operations per block)
    slice_blocks = 16

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        fold: int = DEFAULT_FOLD,
        product_dtype: str = "auto",
        cache_elements: int = 1 << 27,
        queue_bytes: int = 1 << 28,
    ):
        super().__init__(dim, seed, cache_elements=cache_elements)
        if not isinstance(fold, int) or isinstance(fold, bool) or fold < 1:
            raise ValueError(f"fold must be an integer ≥ 1 (got fold={fold!r}); 128 is the default.")
        if product_dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(
                f"product_dtype must be 'auto', 'float32' or 'bfloat16' (got product_dtype={product_dtype!r})."
            )
        self.fold = fold
        self.product_dtype = product_dtype
        self.queue_bytes = queue_bytes
        self._folds: dict[tuple[str, str, int, torch.device], tuple] = {}  # (bucket_of, sign_of, pieces) by side
        self._tables: dict[tuple, torch.Tensor] = {}  # concatenated bucket tables of a batch's queue, by layout
        self._dtypes: dict[torch.device, torch.dtype] = {}  # product dtype by device
        # the staging workspace a batch queues its values in, kept across batches (a fresh buffer per batch costs
        # page faults on every step); only the open batch writes to it
        self._staging: torch.Tensor | None = None
        self._batch: _OpenBatch | None = None  # the batch between new_output and finalize

    def config(self) -> dict:
        return {**super().config(), "fold": self.fold, "product_dtype": self.product_dtype}

    def dtype_on(self, device: torch.device) -> torch.dtype:
        """The precision of the folded factors and their product on ``device`` (see ``product_dtype``)."""
        dtype = self._dtypes.get(device)
        if dtype is None:
            if self.product_dtype != "auto":
                dtype = getattr(torch, self.product_dtype)
            else:
                dtype = torch.bfloat16 if fast_bf16(torch.device(device)) else torch.float32
            self._dtypes[device] = dtype
        return dtype

    # the folds -------------------------------------------------------------------------------------------------
    def _side(self, param_name: str, role: str, size: int, device: torch.device) -> tuple:
        """The fold of one side of a matrix: ``(bucket_of, sign_of, pieces)``, ``pieces`` being the contiguous runs
        ``(start, bucket, count, signs)`` that :meth:`fold_side` multiply-adds (``None`` past :attr:`slice_blocks`
        blocks, where it index-adds instead).

        Entry ``i`` of block ``b = i // fold`` (contiguous blocks of ``fold`` entries) goes to bucket
        ``(i mod fold + offsets[b]) mod fold`` with a seeded random sign: each block is rotated by its own seeded
        offset, so buckets stay balanced (``⌊size/fold⌋`` or ``⌈size/fold⌉`` entries) and the fold is a few
        multiply-adds of contiguous slices, while two matrices of the same shape (gate and up) pair different
        entries in a bucket (shared pairings would make their collision errors add up instead of averaging out).
        Column folds are shared by every matrix with that many columns (``param_name`` is ignored for them), so
        q/k/v fold their common input once."""
        owner = param_name if role == "rows" else ""
        key = (owner, role, size, device)
        cached = self._folds.get(key)
        if cached is not None:
            return cached
        index = torch.arange(size, device=device, dtype=torch.int64)
        sign_of = 1.0 - 2.0 * (_mix_index(index, self.salt(owner, f"fold-sign-{role}")) & 1).to(torch.float32)
        blocks = torch.arange(-(-size // self.fold), device=device, dtype=torch.int64)
        offsets = _mix_index(blocks, self.salt(owner, f"fold-offset-{role}")) % self.fold
        bucket_of = (index % self.fold + offsets[index // self.fold]) % self.fold
        pieces = None
        if len(offsets) <= self.slice_blocks:
            pieces = []
            for block, offset in enumerate(offsets.tolist()):  # block entry j goes to bucket (j + offset) mod fold
                start, length = block * self.fold, min(self.fold, size - block * self.fold)
                head = min(length, self.fold - offset)  # entries before the rotation wraps around
                for src, dst, count in ((start, offset, head), (start + head, 0, length - head)):
                    if count > 0:
                        pieces.append((src, dst, count, sign_of[src : src + count]))
        folds = (bucket_of, sign_of, pieces)
        self._folds[key] = folds
        return folds

    def element_buckets(
        self, param_name: str, shape: tuple[int, ...], bias_of: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Where each element of a linear or embedding weight of ``shape`` goes, in row-major order: its signed
        bucket in ``[0, 2·dim)`` and its ±1 fold sign. The explicit form of the map :meth:`add_outer` and
        :meth:`add_rows` apply (a reference for tests). Vectors map as in ``"sketch"``, except the bias of a linear
        layer (``bias_of``: its weight's name), which is folded like the weight's rows."""
        count = math.prod(shape)
        if len(shape) != 2 and bias_of is not None and count > self.fold:
            bucket_of, sign_of, *_ = self._side(bias_of, "rows", count, torch.device("cpu"))
            return self.signed_buckets(param_name, bucket_of), sign_of
        if len(shape) != 2:
            return self.signed_buckets(param_name, torch.arange(count)), torch.ones(count)
        sides = []
        for role, size in zip(("rows", "cols"), shape):
            if size > self.fold:
                bucket_of, sign_of, *_ = self._side(param_name, role, size, torch.device("cpu"))
                sides.append((bucket_of, sign_of, self.fold))
            else:
                sides.append((torch.arange(size), torch.ones(size), size))
        (row_bucket, row_sign, _), (col_bucket, col_sign, width) = sides
        cells = (row_bucket[:, None] * width + col_bucket[None, :]).reshape(-1)
        return self.signed_buckets(param_name, cells), (row_sign[:, None] * col_sign[None, :]).reshape(-1)

    def fold_side(self, param_name: str, role: str, values: torch.Tensor) -> torch.Tensor:
        """Fold the last axis of ``values`` (side ``role`` of the matrix ``param_name``) to at most ``fold``, in
        float32 (``values`` itself when the side is not longer than ``fold``)."""
        size, fold = values.shape[-1], self.fold
        if size <= fold:
            return values
        bucket_of, sign_of, pieces = self._side(param_name, role, size, values.device)
        values = values.float()
        if pieces is None:  # many blocks (a vocabulary): one index-add reads each entry once, copies nothing
            flat = values.reshape(-1, size)
            folded = torch.zeros(flat.shape[0], 2 * fold, device=values.device, dtype=values.dtype)
            folded.index_add_(1, bucket_of + fold * (sign_of < 0), flat)  # negative signs in the upper half
            return (folded[:, :fold] - folded[:, fold:]).view(*values.shape[:-1], fold)
        folded = torch.empty(*values.shape[:-1], fold, device=values.device, dtype=values.dtype)
        for src, dst, count, signs in pieces:  # the first block's pieces cover every bucket once
            if src < fold:
                torch.mul(values[..., src : src + count], signs, out=folded[..., dst : dst + count])
            else:
                folded[..., dst : dst + count].addcmul_(values[..., src : src + count], signs)
        return folded

    def _fold_columns(self, right: torch.Tensor, weights: torch.Tensor | None, bias: bool) -> torch.Tensor:
        """Column fold of a layer input ``right`` [n,T,C] for the product (see :meth:`_for_product`), with the token
        ``weights`` appended as a last column when ``bias`` (a linear layer's bias is the weight of a constant input).
        Computed once per input tensor within a batch (q/k/v share theirs)."""
        batch = self._batch
        key = (right.data_ptr(), tuple(right.shape), right.stride(), right.dtype, bias)
        cached = None if batch is None else batch.folded_inputs.get(key)
        if cached is not None:
            return cached[1]
        result = self._for_product(self.fold_side("", "cols", right.float()), weights, bias)
        if batch is not None:
            batch.folded_inputs[key] = (right, result)  # holding `right` keeps its address from being reused
        return result

    def _for_product(
        self,
        values: torch.Tensor,
        weights: torch.Tensor | None = None,
        bias: bool = False,
        inverse: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``values`` [n,T,c] (float32) times the token ``weights`` [n,T,1] and per-example ``inverse`` [n,1,1] (each
        optional), in the product dtype, in one pass; with ``bias``, the multiplier is appended as a last column.
        The token axis is zero-padded to a multiple of :attr:`token_multiple`."""
        n, length, width = values.shape
        multiplier = weights if inverse is None else inverse if weights is None else weights * inverse
        padded = -(-length // self.token_multiple) * self.token_multiple
        result = torch.empty(n, padded, width + bias, device=values.device, dtype=self.dtype_on(values.device))
        if padded > length:
            result[:, length:].zero_()
        if multiplier is None:
            result[:, :length, :width].copy_(values)
        else:
            torch.mul(values, multiplier, out=result[:, :length, :width])
        if bias:
            result[:, :length, width:] = 1 if multiplier is None else multiplier
        return result

    def _token_weights(self, tokens: torch.Tensor | None, n: int, length: int) -> torch.Tensor | None:
        """``tokens`` [n,T] as float32 ``[n,T,1]`` multipliers (converted once per batch)."""
        if tokens is None:
            return None
        batch = self._batch
        key = ("weights", id(tokens))
        cached = None if batch is None else batch.folded_inputs.get(key)
        if cached is None:
            cached = (tokens, tokens.reshape(n, length, 1).to(torch.float32))
            if batch is not None:
                batch.folded_inputs[key] = cached
        return cached[1]

    def _inverse_scale(self, out: torch.Tensor, delta: torch.Tensor) -> torch.Tensor | None:
        """``[n,1]`` reciprocal per-example norms that output gradients are multiplied by before a reduced-precision
        product; ``None`` with float32 products.

        The rounding to bfloat16 then does not depend on how the loss was normalised (batch size, gradient
        accumulation, number of processes), so the Trainer's features equal the featurizer's. Within a batch one
        scale per example serves every layer (taken from the first output gradient seen, after its fold: the fold
        is linear, so it scales with the loss too), so the queued values need no rescaling; :meth:`finalize`
        multiplies the norms back."""
        if self.dtype_on(delta.device) == torch.float32:
            return None
        batch = self._open_batch(out)
        if batch is not None and batch.inverse is not None:
            return batch.inverse
        norms = torch.linalg.vector_norm(delta.reshape(delta.shape[0], -1).float(), dim=1)
        inverse = torch.where(norms > 0, norms.reciprocal(), torch.ones_like(norms)).reshape(-1, 1)
        if batch is not None:
            batch.inverse = inverse
        return inverse

    # one batch -------------------------------------------------------------------------------------------------
    def new_output(self, batch_size: int, device: torch.device) -> torch.Tensor:
        out = super().new_output(batch_size, device)
        self._batch = _OpenBatch(out)
        return out

    def finalize(self, out: torch.Tensor) -> torch.Tensor:
        batch = self._open_batch(out)
        if batch is not None:
            self._flush(batch)
            if batch.inverse is not None:
                out.div_(batch.inverse)  # back to the gradients' own scale
            self._batch = None
        return super().finalize(out)

    def _open_batch(self, out: torch.Tensor) -> _OpenBatch | None:
        """The open batch if ``out`` is its output (an output made elsewhere is projected directly)."""
        batch = self._batch
        return batch if batch is not None and batch.out is out else None

    def _flush(self, batch: _OpenBatch) -> None:
        """Scatter every queued grid and vector into the buckets at once (one table per layout, cached)."""
        out = batch.out
        layout, width, batch.layout, batch.staged = tuple(batch.layout), batch.staged, [], 0
        if not layout:
            return
        key = (out.device, layout)
        table = self._tables.get(key)
        if table is None:
            table = torch.cat([self._block_table(entry, out.device) for entry in layout])
            if len(self._tables) < 64:
                self._tables[key] = table
        n = out.shape[0]
        out.scatter_add_(1, table.expand(n, -1), self._staging[:n, :width])

    def _stage(self, batch: _OpenBatch, entry: tuple, size: int) -> torch.Tensor:
        """The ``[n, size]`` block of the staging buffer for the batch's next queued values (scattering its queue
        first when it would pass ``queue_bytes``)."""
        out = batch.out
        n = out.shape[0]
        if batch.staged and (batch.staged + size) * n * 4 > self.queue_bytes:
            self._flush(batch)
        needed = batch.staged + size
        buffer = self._staging
        if buffer is None or buffer.device != out.device or buffer.shape[0] < n or buffer.shape[1] < needed:
            rows = max(n, 0 if buffer is None else buffer.shape[0])
            cols = max(needed, 0 if buffer is None else 2 * buffer.shape[1])
            grown = torch.empty(rows, cols, device=out.device, dtype=torch.float32)
            if batch.staged:
                grown[:n, : batch.staged] = buffer[:n, : batch.staged]
            self._staging = buffer = grown
        batch.layout.append(entry)
        block = buffer[:n, batch.staged : needed]
        batch.staged = needed
        return block

    def _block_table(self, entry: tuple, device: torch.device) -> torch.Tensor:
        """Signed buckets of one block of queued values: a vector, or a grid of cells (plus a bias column)."""
        if len(entry) == 2:
            name, size = entry
            return self._buckets_for_range(name, 0, size, device)
        weight, bias, rows, cols = entry
        table = self._buckets_for_range(weight, 0, rows * cols, device).view(rows, cols)
        if bias is not None:
            table = torch.cat([table, self._buckets_for_range(bias, 0, rows, device)[:, None]], dim=1)
        return table.reshape(-1)

    # adding gradients ------------------------------------------------------------------------------------------
    def add_dense(self, out, param_name, grads, offset=0):
        batch = self._open_batch(out)
        if batch is None:
            return super().add_dense(out, param_name, grads, offset)
        inverse = self._inverse_scale(out, grads)  # at the batch's common scale
        if offset:
            return super().add_dense(out, param_name, grads if inverse is None else grads * inverse, offset)
        block = self._stage(batch, (param_name, grads.shape[1]), grads.shape[1])
        block.copy_(grads) if inverse is None else torch.mul(grads, inverse, out=block)

    def add_outer(self, out, param_name, left, right, tokens=None, bias_name=None, delta_side="left"):
        """``tokens`` [n,T], if given, weights each token's product (0 drops a padding token). ``bias_name`` also
        adds the gradient ``Σ_t tokens·left`` of that vector (a linear layer's bias), folded like the rows."""
        if delta_side not in ("left", "right"):
            raise ValueError(f"delta_side must be 'left' or 'right' (got {delta_side!r}).")
        # the output gradient is folded first: its fold, which scales with the loss like the gradient itself, sets
        # the batch's common scale (one pass over it, not two, which matters for a vocabulary-sized side)
        if delta_side == "left":
            folded_delta = self.fold_side(param_name, "rows", left.float())  # [n,T,a]
        else:
            folded_delta = self.fold_side("", "cols", right.float())  # [n,T,b]
        inverse = self._inverse_scale(out, folded_delta)
        if inverse is not None:
            inverse = inverse.reshape(-1, 1, 1)
        weights = self._token_weights(tokens, *right.shape[:2])
        if delta_side == "left":
            folded_right = self._fold_columns(right, weights, bias_name is not None)  # [n,T,b(+1)]
            folded_left = self._for_product(folded_delta, inverse=inverse)  # [n,T,a]
        else:  # an output gradient on the right is never shared with another layer: nothing to cache
            folded_right = self._for_product(folded_delta, weights, bias_name is not None, inverse)
            folded_left = self._for_product(self.fold_side(param_name, "rows", left.float()))
        cells = torch.bmm(folded_left.transpose(1, 2), folded_right)  # [n,a,b(+1)]: the folded gradient
        rows, cols = cells.shape[1], cells.shape[2] - (bias_name is not None)
        batch = self._open_batch(out)
        if batch is not None:  # stays at the batch's common scale until finalize
            self._stage(batch, (param_name, bias_name, rows, cols), cells.shape[1] * cells.shape[2]).view(
                cells.shape
            ).copy_(cells)
            return
        cells = cells.float() if inverse is None else cells.float().div_(inverse)
        if bias_name is not None:
            super().add_dense(out, bias_name, cells[:, :, -1])
            cells = cells[:, :, :-1]
        super().add_dense(out, param_name, cells.reshape(left.shape[0], -1))

    def add_rows(self, out, param_name, row_grads, rows, example, row_size, n_rows=None):
        if n_rows is None:
            raise ValueError("the 'factored' projection needs the row count of the parameter (n_rows).")
        values = self.fold_side(param_name, "cols", row_grads.float())  # [m,b]
        batch = self._open_batch(out)
        if batch is not None:  # at the batch's common scale
            if batch.inverse is None:
                squares = torch.zeros(out.shape[0], device=out.device, dtype=torch.float32)
                squares.index_add_(0, example, values.square().sum(dim=1))  # per-example squared norms (of the fold)
                self._inverse_scale(out, squares.sqrt_()[:, None])
            if batch.inverse is not None:
                values = values * batch.inverse[example]
        width = values.shape[-1]
        rows = rows.to(torch.int64)
        if n_rows > self.fold:
            bucket_of, sign_of, *_ = self._side(param_name, "rows", n_rows, rows.device)
            values = values * sign_of[rows][:, None]
            rows = bucket_of[rows]
        cell_buckets = self._buckets_for_range(param_name, 0, min(n_rows, self.fold) * width, rows.device)
        buckets = cell_buckets.view(-1, width)[rows]  # [m,b] in [0, 2k)
        flat = (buckets + example.to(torch.int64)[:, None] * out.shape[1]).reshape(-1)
        out.view(-1).index_add_(0, flat, values.reshape(-1).to(out.dtype))


class DenseProjector(Projector):
    """The paper's dense Rademacher projection, ``P ∈ {±1/√dim}^{dim×|θ|}``, generated in chunks of rows.

    Rows ``c·chunk … (c+1)·chunk`` of a parameter's block (one row per gradient element, ``chunk`` = 1,024) are the
    bits of a PCG64 stream seeded by ``(seed, parameter, c)``; chunk boundaries are fixed, so the matrix does not
    depend on how a caller slices the gradient. Each call generates the rows it needs once and applies them to every
    example it is given, at about 300M entries/s on one CPU core; nothing is cached (memory stays bounded by
    ``block_rows``). This is the paper-faithful reference, not the fast path: its cost is ``|θ|·dim`` per batch,
    whatever the batch.
    """

    name = "dense"
    chunk = 1024
    takes_factors = True  # a layer's gradient is formed a block of rows at a time, for all examples at once

    def __init__(self, dim: int, seed: int = 0, *, block_rows: int = 8192):
        super().__init__(dim, seed)
        self.block_rows = max(self.chunk, block_rows // self.chunk * self.chunk)
        self._scale = 1.0 / math.sqrt(dim)
        self._words = (dim + 63) // 64  # 64-bit words per row

    def _bits(self, param_name: str, chunks: np.ndarray) -> np.ndarray:
        """Sign bits of whole chunks of rows: ``[len(chunks)·chunk, dim]`` uint8 in {0, 1}."""
        salt = self.salt(param_name, "rademacher")
        words = np.empty((len(chunks), self.chunk * self._words), dtype="<u8")
        for i, c in enumerate(chunks.tolist()):
            stream = np.random.PCG64(np.random.SeedSequence([salt & 0xFFFFFFFF, salt >> 32, int(c)]))
            words[i] = stream.random_raw(words.shape[1])
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")
        return bits.reshape(-1, self._words * 64)[:, : self.dim]

    def _rows(self, param_name: str, index: torch.Tensor) -> torch.Tensor:
        """Sign bits (float32 0/1) of the matrix rows ``index`` [m], on ``index``'s device."""
        flat = index.detach().to("cpu", torch.int64).numpy()
        chunks, where = np.unique(flat // self.chunk, return_inverse=True)
        bits = self._bits(param_name, chunks)
        rows = bits.reshape(len(chunks), self.chunk, self.dim)[where.reshape(-1), flat % self.chunk]
        return torch.from_numpy(rows).to(device=index.device, dtype=torch.float32)

    def _range_rows(self, param_name: str, start: int, stop: int, device: torch.device) -> torch.Tensor:
        """Sign bits (float32 0/1) of the contiguous rows ``start … stop``."""
        first, last = start // self.chunk, (stop - 1) // self.chunk
        bits = self._bits(param_name, np.arange(first, last + 1))[
            start - first * self.chunk : stop - first * self.chunk
        ]
        return torch.from_numpy(bits).to(device=device, dtype=torch.float32)

    def signs(self, param_name: str, index: torch.Tensor) -> torch.Tensor:
        """Rademacher rows ``[len(index), dim]`` (values ±1/√dim) for the given element indices."""
        return (self._rows(param_name, index) * 2.0 - 1.0) * self._scale

    def _apply(self, out: torch.Tensor, grads: torch.Tensor, bits: torch.Tensor) -> None:
        # g·(2B − 1)/√k = (2·g·B − Σg)/√k: one GEMM on the 0/1 bits, no ±1 matrix formed
        grads = grads.to(out.dtype)
        out.add_((2.0 * (grads @ bits) - grads.sum(dim=1, keepdim=True)) * self._scale)

    def add_dense(self, out, param_name, grads, offset=0):
        m = grads.shape[1]
        for start in range(0, m, self.block_rows):
            stop = min(m, start + self.block_rows)
            self._apply(
                out, grads[:, start:stop], self._range_rows(param_name, offset + start, offset + stop, grads.device)
            )

    def add_outer(self, out, param_name, left, right, tokens=None, bias_name=None, delta_side="left"):
        """Forms ``G_n = Σ_t tokens·left ⊗ right`` a block of its rows at a time for every example (one batched GEMM
        per block) and projects each block with rows generated once for the whole batch."""
        if delta_side not in ("left", "right"):
            raise ValueError(f"delta_side must be 'left' or 'right' (got {delta_side!r}).")
        left, right = left.float(), right.float()
        if tokens is not None:
            left = left * tokens.to(left.dtype)[..., None]
        n, n_rows, n_cols = left.shape[0], left.shape[-1], right.shape[-1]
        if bias_name is not None:
            self.add_dense(out, bias_name, left.sum(dim=1))
        step = max(1, self.block_rows // n_cols)
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            block = torch.bmm(left[:, :, start:stop].transpose(1, 2), right)  # [n,r,T]×[n,T,C] → [n,r,C]
            self.add_dense(out, param_name, block.reshape(n, -1), offset=start * n_cols)

    def add_rows(self, out, param_name, row_grads, rows, example, row_size, n_rows=None):
        unique_rows, inverse = torch.unique(rows, return_inverse=True)
        # per-example gradient restricted to the touched rows: [n, U, row_size]
        compact = torch.zeros(out.shape[0], unique_rows.numel(), row_size, device=out.device, dtype=out.dtype)
        compact.index_put_((example, inverse), row_grads.to(out.dtype), accumulate=True)
        step = max(1, self.block_rows // row_size)
        cols = torch.arange(row_size, device=rows.device, dtype=torch.int64)
        for start in range(0, unique_rows.numel(), step):
            block = unique_rows[start : start + step]
            index = (block.to(torch.int64)[:, None] * row_size + cols[None, :]).reshape(-1)
            grads = compact[:, start : start + block.numel()].reshape(out.shape[0], -1)
            self._apply(out, grads, self._rows(param_name, index))


def make_projector(
    projection: str | Projector, dim: int, seed: int | None = None, *, fold: int | None = None
) -> Projector:
    """Build a projector by name (``"sketch"``, ``"factored"`` or ``"dense"``), or pass an existing one through.

    Args:
        projection: the name, or a `Projector` (returned as it is).
        dim (`int`): feature dimension k.
        seed (`int`, *optional*): projection seed (default 0). With a `Projector`, omit it or pass the projector's
            own seed: a different one is refused, so a recorded seed is always the one that made the features.
        fold (`int`, *optional*): ``"factored"`` only, the fold (default :data:`DEFAULT_FOLD`).

    Raises:
        ValueError: an unknown name, or settings that contradict the `Projector` handed over.
    """
    if isinstance(projection, Projector):
        if projection.dim != dim:
            raise ValueError(f"the projector has dim {projection.dim} but dim={dim} was requested.")
        if seed is not None and int(seed) != projection.seed:
            raise ValueError(
                f"the projector has seed {projection.seed} but seed={seed} was requested; pass seed={projection.seed} "
                "(or no seed), or build the projector with the seed you want."
            )
        if fold is not None and fold != getattr(projection, "fold", fold):
            raise ValueError(f"the projector has fold {projection.fold} but fold={fold} was requested.")
        return projection
    seed = 0 if seed is None else seed
    if fold is not None and fold != DEFAULT_FOLD and projection != "factored":
        raise ValueError(f"fold applies to projection='factored' only (got fold={fold}, projection={projection!r}).")
    if projection == "sketch":
        return CountSketchProjector(dim, seed)
    if projection == "factored":
        return FactoredSketchProjector(dim, seed, fold=DEFAULT_FOLD if fold is None else fold)
    if projection == "dense":
        return DenseProjector(dim, seed)
    raise ValueError(
        f"unknown projection {projection!r}: choose 'factored' (the default: CountSketch through each layer's "
        "Kronecker factors), 'sketch' (CountSketch of each layer's per-example gradient) or "
        "'dense' (the paper's dense Rademacher projection, slow)."
    )
