"""Exact sums of G-Vendi states across ranks, over ``torch.distributed`` (the identity in one process).

Every state gvendi keeps is a sum: a :class:`~gvendi.vendi.VendiAccumulator` is ``S = Σ_i x_i x_iᵀ`` and a count, a
:class:`~gvendi.bootstrap.BootstrapAccumulator` one such sum per block. Summing them over ranks therefore gives the
state of one process that saw every rank's rows (up to float64 summation order). Small states travel as their unit
rows (one ``all_gather``), so a merged window keeps row form and is scored from its small Gram matrix as in one
process; large ones as float64 sums and counts (one ``all_reduce``). The world is whatever ``torch.distributed``
(which ``accelerate`` and the ``Trainer`` initialise) says; without an initialised process group every function here
returns its input.

The functions are collectives: call them on every rank, in the same order. Ranks may hold different names and
numbers of rows (or none): the shapes of the collectives depend only on what all ranks agree on first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .bootstrap import BootstrapAccumulator
from .vendi import VendiAccumulator

__all__ = ["rank", "reduce_accumulators", "reduce_bootstrap", "world_size"]


def world_size() -> int:
    """Processes in the default ``torch.distributed`` group (1 when none is initialised)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def rank() -> int:
    """This process's rank in the default group (0 when none is initialised)."""
    return torch.distributed.get_rank() if world_size() > 1 else 0


def _device() -> torch.device:
    """Where collective buffers must live: the current GPU for NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather_objects(value: Any) -> list[Any]:
    gathered: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def _gather_rows(rows: list[torch.Tensor | None], counts: list[list[int]], dim: int) -> list[list[torch.Tensor]]:
    """``rows[s]`` ([n, k] or None) of every rank for each slot ``s``; ``counts[s][r]`` is rank r's row count.
    Returns, per slot, each rank's rows in rank order (one padded ``all_gather``)."""
    longest = max(max(per_rank) for per_rank in counts)
    device = _device()
    packed = torch.zeros(len(rows), longest, dim, dtype=torch.float64, device=device)  # [S, most rows, k]
    for slot, mine in enumerate(rows):
        if mine is not None and mine.shape[0]:
            packed[slot, : mine.shape[0]] = mine.to(device)
    everyone = [torch.empty_like(packed) for _ in range(world_size())]
    torch.distributed.all_gather(everyone, packed)
    everyone = [tensor.cpu() for tensor in everyone]
    return [[everyone[r][slot, : counts[slot][r]] for r in range(len(everyone))] for slot in range(len(rows))]


def _sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` (float64) summed over ranks, back on the CPU."""
    tensor = tensor.to(_device())
    torch.distributed.all_reduce(tensor)
    return tensor.cpu()


def reduce_accumulators(local: Mapping[str, VendiAccumulator], dim: int) -> dict[str, VendiAccumulator]:
    """Every rank's accumulators, summed over ranks by name (a collective: call it on every rank).

    Args:
        local (`Mapping[str, VendiAccumulator]`): this rank's accumulators (any names; a rank may hold none).
        dim (`int`): their dimension k (needed by a rank that holds none).

    Returns:
        `dict[str, VendiAccumulator]`: for each name held by any rank, the accumulator of all ranks' rows, identical on
        every rank. A name with at most ``dim`` rows over all ranks, each rank holding rows, arrives as rows (rank
        order); the others as summed second moments and counts. In one process: ``dict(local)``.
    """
    if world_size() == 1:
        return dict(local)
    held = {name: (acc.count, acc.unit_rows() is not None) for name, acc in local.items()}
    by_rank = _gather_objects(held)
    names = sorted(set().union(*map(set, by_rank)))
    counts = {name: [rank_held.get(name, (0, True))[0] for rank_held in by_rank] for name in names}
    as_rows = [
        name
        for name in names
        if sum(counts[name]) <= dim and all(rank_held.get(name, (0, True))[1] for rank_held in by_rank)
    ]
    as_moments = [name for name in names if name not in as_rows]
    merged: dict[str, VendiAccumulator] = {}
    if as_rows:
        mine = [local[name].unit_rows() if name in local else None for name in as_rows]
        for name, per_rank in zip(as_rows, _gather_rows(mine, [counts[name] for name in as_rows], dim)):
            merged[name] = VendiAccumulator(dim, normalize=False)
            for rows in per_rank:
                merged[name].update(rows)
    if as_moments:
        packed = torch.zeros(len(as_moments), dim * dim + 1, dtype=torch.float64)  # [S, k·k + 1]: S, then the count
        for slot, name in enumerate(as_moments):
            if name in local:
                packed[slot, :-1] = local[name].second_moment.reshape(-1).cpu()
                packed[slot, -1] = local[name].count
        packed = _sum(packed)
        for slot, name in enumerate(as_moments):
            state = {
                "dim": dim,
                "count": round(float(packed[slot, -1])),
                "second_moment": packed[slot, :-1].view(dim, dim),
            }
            merged[name] = VendiAccumulator.from_state_dict(state)
    return merged


def reduce_bootstrap(local: BootstrapAccumulator) -> BootstrapAccumulator:
    """Every rank's bootstrap state, summed over ranks (a collective: call it on every rank).

    When every rank still keeps its rows (each row its own block), the result keeps all of them, in rank order; else
    every rank pools its rows into the ``n_blocks`` blocks and the block sums and counts are summed over ranks (the
    blocks stay i.i.d.: each row's block was drawn independently of the data). Merge the result into a state that is
    the same on every rank (``target.merge(result)``) to keep it so. In one process: ``local``.
    """
    if world_size() == 1:
        return local
    by_rank = _gather_objects((local.count, local.exact))
    if all(exact for _, exact in by_rank):
        mine = local.rows() if local.count else None
        per_rank = _gather_rows([mine], [[count for count, _ in by_rank]], local.dim)[0]
        return BootstrapAccumulator.from_rows(torch.cat(per_rank), n_blocks=local.n_blocks)
    moments, counts = local.block_sums()
    packed = _sum(torch.cat([moments.reshape(-1), counts.double()]))
    split = local.n_blocks * local.dim * local.dim
    return BootstrapAccumulator.from_blocks(
        packed[:split].view(local.n_blocks, local.dim, local.dim), packed[split:].round().long()
    )
