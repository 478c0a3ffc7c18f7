"""Seeded, device-independent random projections of per-parameter gradients to ``dim`` features.

Every random number is a function of ``(seed, parameter name, role, element index)`` computed with integer
hashing, so the matrices are identical on CPU and GPU, for any batch size and thread count. Nothing is drawn
from a stateful generator.

Two projections, both linear maps ``R^{|θ|} → R^{dim}`` applied parameter by parameter and summed:

- ``"sketch"`` (default): a CountSketch. Element ``j`` of parameter ``p`` adds ``s(j)·g_j`` to bucket ``h(j)``
  with ``s`` a random sign and ``h`` uniform over ``dim`` buckets. Inner products are preserved in expectation with
  the same variance as a dense Rademacher map (up to a term that vanishes for spread-out gradients), at the cost
  of one scatter-add per element instead of ``dim`` multiply-adds.
- ``"dense"``: the paper's projection. A dense Rademacher matrix with entries ``±1/√dim`` (TRAK's projector),
  generated in bounded-memory chunks of rows.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from .utils import stable_seed

__all__ = ["PROJECTIONS", "CountSketchProjector", "DenseProjector", "Projector", "make_projector"]

ProjectionName = Literal["sketch", "dense"]
PROJECTIONS: tuple[str, ...] = ("sketch", "dense")

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

    def __init__(self, dim: int, seed: int = 0):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be an integer ≥ 1 (got dim={dim!r}); the paper uses dim=1024.")
        self.dim = dim
        self.seed = int(seed)

    def salt(self, param_name: str, role: str) -> int:
        return stable_seed(self.seed, self.name, param_name, role)

    def new_output(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """A zero accumulator for one batch; :meth:`finalize` turns it into ``(batch, dim)`` features."""
        return torch.zeros(batch_size, self.dim, device=device, dtype=torch.float32)

    def finalize(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def add_dense(self, out: torch.Tensor, param_name: str, grads: torch.Tensor, offset: int = 0) -> None:
        """Add the projection of per-example gradients ``grads`` [n, m] covering elements ``offset..offset+m`` of a
        parameter (flattened, row-major) into ``out`` [n, ·]."""
        raise NotImplementedError

    def add_rows(self, out: torch.Tensor, param_name: str, row_grads: torch.Tensor, rows: torch.Tensor,
                 example: torch.Tensor, row_size: int) -> None:
        """Add sparse per-example gradients of a 2-D parameter: ``row_grads`` [m, row_size] are gradients of rows
        ``rows`` [m] of the parameter, belonging to examples ``example`` [m] (an embedding lookup's gradient)."""
        raise NotImplementedError

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

    def add_rows(self, out, param_name, row_grads, rows, example, row_size):
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


class DenseProjector(Projector):
    """The paper's dense Rademacher projection, ``P ∈ {±1/√dim}^{dim×|θ|}``, generated in chunks of rows.

    Entry ``(j, c)`` of a parameter's block is the sign of a hash of ``(seed, parameter, j, c)``. Chunks are cached
    per device as int8 signs while their total stays under ``cache_elements`` entries (256 MB by default); beyond that they are regenerated per batch
    (slow, bounded memory: this is the correctness reference, not the fast path).
    """

    name = "dense"

    def __init__(self, dim: int, seed: int = 0, *, chunk_rows: int = 8192, cache_elements: int = 1 << 28):
        super().__init__(dim, seed)
        self.chunk_rows = chunk_rows
        self.cache_elements = cache_elements
        self._cache: dict[tuple[str, torch.device, int, int], torch.Tensor] = {}
        self._cached = 0
        self._scale = 1.0 / math.sqrt(dim)

    def signs(self, param_name: str, index: torch.Tensor) -> torch.Tensor:
        """Rademacher rows ``[len(index), dim]`` (values ±1/√dim) for the given element indices."""
        salt = self.salt(param_name, "rademacher")
        row_hash = _mix_index(index, salt)[:, None]  # [m,1]
        cols = torch.arange(self.dim, device=index.device, dtype=torch.int64)[None, :] * 0x9E3779B1 & _M32
        bits = _hash32(row_hash ^ cols, salt >> 17) >> 15 & 1  # [m,k]
        return (bits.to(torch.float32) * 2.0 - 1.0) * self._scale

    def _matrix(self, param_name: str, offset: int, size: int, device: torch.device) -> torch.Tensor:
        key = (param_name, device, offset, size)
        cached = self._cache.get(key)
        if cached is not None:
            return cached.to(torch.float32) * self._scale  # cached as int8 signs: a quarter of the memory
        index = torch.arange(offset, offset + size, device=device, dtype=torch.int64)
        matrix = self.signs(param_name, index)
        if self._cached + matrix.numel() <= self.cache_elements:
            self._cache[key] = torch.sign(matrix).to(torch.int8)
            self._cached += matrix.numel()
        return matrix

    def add_dense(self, out, param_name, grads, offset=0):
        m = grads.shape[1]
        for start in range(0, m, self.chunk_rows):
            stop = min(m, start + self.chunk_rows)
            matrix = self._matrix(param_name, offset + start, stop - start, grads.device)
            out.addmm_(grads[:, start:stop].to(out.dtype), matrix)  # [n,c]×[c,k] → [n,k]

    def add_rows(self, out, param_name, row_grads, rows, example, row_size):
        unique_rows, inverse = torch.unique(rows, return_inverse=True)
        # per-example gradient restricted to the touched rows: [n, U, row_size]
        compact = torch.zeros(out.shape[0], unique_rows.numel(), row_size, device=out.device, dtype=out.dtype)
        compact.index_put_((example, inverse), row_grads.to(out.dtype), accumulate=True)
        for start in range(0, unique_rows.numel(), max(1, self.chunk_rows // row_size)):
            block = unique_rows[start : start + max(1, self.chunk_rows // row_size)]
            cols = torch.arange(row_size, device=rows.device, dtype=torch.int64)
            index = (block.to(torch.int64)[:, None] * row_size + cols[None, :]).reshape(-1)
            matrix = self.signs(param_name, index)  # [b·row_size, k]
            grads = compact[:, start : start + block.numel()].reshape(out.shape[0], -1)
            out.addmm_(grads, matrix)


def make_projector(projection: str | Projector, dim: int, seed: int = 0) -> Projector:
    """Build a projector by name (``"sketch"`` or ``"dense"``), or pass an existing one through."""
    if isinstance(projection, Projector):
        if projection.dim != dim:
            raise ValueError(f"the projector has dim {projection.dim} but dim={dim} was requested.")
        return projection
    if projection == "sketch":
        return CountSketchProjector(dim, seed)
    if projection == "dense":
        return DenseProjector(dim, seed)
    raise ValueError(
        f"unknown projection {projection!r}: choose 'sketch' (fast default, per-layer CountSketch) or "
        "'dense' (the paper's dense Rademacher projection, slow)."
    )
