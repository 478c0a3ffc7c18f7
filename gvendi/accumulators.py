"""Named G-Vendi accumulators over one stream of examples: ``window``, ``cumulative``, ``epoch``, ``stage/<name>``.

A training run asks several questions of the same examples at once: how diverse were the examples since the last
report, since the start, in this epoch, in each curriculum stage. :class:`AccumulatorSet` keeps one
:class:`~gvendi.vendi.VendiAccumulator` per question and feeds them all from one stream:

- :meth:`~AccumulatorSet.add` puts rows into this rank's pending state (one accumulator per stage);
- :meth:`~AccumulatorSet.sync` sums the pending states over ranks (exact, :mod:`gvendi.distributed`) and merges
  the sum into every named accumulator, so after a sync the set is the same on every rank;
- :meth:`~AccumulatorSet.reset` empties the window (at a report) or the epoch (at its end); the cumulative and
  stage accumulators only grow.

With ``ci`` set, a :class:`~gvendi.bootstrap.BootstrapAccumulator` follows the cumulative accumulator (pending per
rank and summed like it) and :meth:`~AccumulatorSet.interval` gives the cumulative value's bootstrap interval. In
one process it is the one ``gvendi.score(rows, ci=ci, n_boot=n_boot, seed=seed)`` gives for the same rows in the
same order, as long as no sync brings more than ``max(dim, n_blocks)`` rows (a larger pending state is pooled into
blocks by a generator of its own: the same interval in distribution).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .bootstrap import BootstrapAccumulator, bootstrap_interval, check_level
from .distributed import rank, reduce_accumulators, reduce_bootstrap
from .utils import stable_seed
from .vendi import VendiAccumulator, _check_q

__all__ = ["NO_STAGE", "AccumulatorSet"]

NO_STAGE = ""
"""The stage of rows added without one (counted in the window, cumulative and epoch, never as ``stage/...``)."""
_RESETTABLE = ("window", "epoch")


class AccumulatorSet:
    """Window, cumulative, epoch and per-stage G-Vendi of one stream of feature rows, mergeable across ranks.

    Args:
        dim (`int`): feature dimension k.
        q (`float`, *optional*, defaults to 1.0): order of the Vendi Score (1 is the paper's G-Vendi).
        ci (`float`, *optional*): a confidence level (e.g. 0.95) for :meth:`interval`; ``None`` keeps no bootstrap
            state.
        n_boot (`int`, *optional*, defaults to 200): bootstrap resamples per interval (each one ``k×k`` eigensolve).
        seed (`int`, *optional*, defaults to 0): seeds the bootstrap (block assignment and resamples).

    Names: ``"window"``, ``"cumulative"``, ``"epoch"`` and ``"stage/<name>"`` for each stage seen (``self[name]``
    is its accumulator, :meth:`value` its G-Vendi). Values describe synced rows only.

    Example:
        >>> import numpy as np
        >>> accumulators = AccumulatorSet(dim=4)
        >>> accumulators.add(np.eye(4)[:2], stages=["a", "a"])
        2
        >>> accumulators.sync()
        >>> accumulators.value("cumulative"), accumulators.value("stage/a")
        (2.0, 2.0)
        >>> accumulators.reset("window")
        >>> accumulators.value("window") is None, accumulators.value("cumulative")
        (True, 2.0)
    """

    def __init__(self, dim: int, *, q: float = 1.0, ci: float | None = None, n_boot: int = 200, seed: int = 0):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be an integer ≥ 1 (got dim={dim!r}).")
        if ci is not None:
            check_level(ci)
        if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 10:
            raise ValueError(f"n_boot must be an integer ≥ 10 (got {n_boot!r}); 200 or more for a 95% interval.")
        self.dim, self.q, self.seed = int(dim), _check_q(q), int(seed)
        self.ci, self.n_boot = (None if ci is None else float(ci)), int(n_boot)
        self.clear()

    def clear(self) -> None:
        """Forget everything (synced and pending)."""
        self._pending: dict[str, VendiAccumulator] = {}
        self._pending_bootstrap: BootstrapAccumulator | None = None
        self.window = VendiAccumulator(self.dim)
        self.cumulative = VendiAccumulator(self.dim)
        self.epoch = VendiAccumulator(self.dim)
        self.stages: dict[str, VendiAccumulator] = {}
        self.window_stages: set[str] = set()  # stages with rows in the current window
        self.bootstrap = None if self.ci is None else BootstrapAccumulator(self.dim, seed=self.seed)
        self.skipped = 0  # rows refused by add(): non-finite or all zeros (an example without gradient)
        self.syncs = 0
        self._scores: list[tuple[VendiAccumulator, float]] = []  # (accumulator, value) since the last change
        self._interval: tuple[float, float] | None = None

    # feeding ------------------------------------------------------------------------------------------------
    def add(self, rows: Any, stages: Sequence[str] | None = None) -> int:
        """Add rows ([n, k], any scale) to this rank's pending state, under their stages (``None``: no stage).

        Rows that are not finite or all zeros carry no direction: they are skipped and counted in :attr:`skipped`.
        Returns the number of rows added.
        """
        rows = torch.as_tensor(rows).detach().to("cpu", torch.float64)
        rows = rows[None, :] if rows.ndim == 1 else rows
        stages = [NO_STAGE] * rows.shape[0] if stages is None else [str(stage) for stage in stages]
        if len(stages) != rows.shape[0]:
            raise ValueError(f"got {rows.shape[0]} rows but {len(stages)} stages: give one stage per row.")
        valid = torch.isfinite(rows).all(dim=1) & (rows.abs().amax(dim=1) > 0)
        self.skipped += int((~valid).sum())
        index = valid.nonzero().squeeze(1)
        if not index.numel():
            return 0
        unit = self.window._check_rows(rows[index], 0)  # the unit rows every accumulator keeps
        kept = [stages[i] for i in index.tolist()]
        for stage in dict.fromkeys(kept):
            mask = torch.tensor([s == stage for s in kept])
            self._pending.setdefault(stage, VendiAccumulator(self.dim, normalize=False)).update(unit[mask])
        if self.bootstrap is not None:
            if self._pending_bootstrap is None:
                self._pending_bootstrap = self._new_pending_bootstrap()
            self._pending_bootstrap.update(unit)
        return int(index.numel())

    def _new_pending_bootstrap(self) -> BootstrapAccumulator:
        """This rank's bootstrap rows since the last sync: kept as rows up to ``max(n_blocks, dim)`` (cheap to
        gather), pooled into blocks by a generator of its own (rank and sync count) beyond."""
        blocks = self.bootstrap.n_blocks
        seed = stable_seed("gvendi-pending-bootstrap", self.seed, rank(), self.syncs)
        return BootstrapAccumulator(self.dim, n_blocks=blocks, seed=seed, exact_rows=max(blocks, self.dim))

    def sync(self) -> None:
        """Sum every rank's pending rows into the named accumulators (a collective when distributed: call it on every
        rank at the same points; ranks may hold different stages and counts, or none)."""
        local, self._pending = self._pending, {}
        for name, delta in reduce_accumulators(local, self.dim).items():
            if delta.count == 0:
                continue
            self._scores = []  # the states change
            for accumulator in (self.window, self.cumulative, self.epoch):
                accumulator.merge(delta)
            self.stages.setdefault(name, VendiAccumulator(self.dim)).merge(delta)
            self.window_stages.add(name)
        if self.bootstrap is not None:
            pending, self._pending_bootstrap = self._pending_bootstrap, None
            delta = reduce_bootstrap(pending if pending is not None else self._new_pending_bootstrap())
            if delta.count:
                self.bootstrap.merge(delta)
                self._interval = None
        self.syncs += 1

    def reset(self, name: str) -> None:
        """Empty ``"window"`` (and its stage list) or ``"epoch"``."""
        if name not in _RESETTABLE:
            raise ValueError(f"only {list(_RESETTABLE)} can be reset (got {name!r}); clear() forgets everything.")
        setattr(self, name, VendiAccumulator(self.dim))
        if name == "window":
            self.window_stages = set()

    # reading ------------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """``window``, ``cumulative``, ``epoch`` and one ``stage/<name>`` per named stage seen."""
        return ["window", "cumulative", "epoch", *(f"stage/{name}" for name in self.stages if name != NO_STAGE)]

    def __getitem__(self, name: str) -> VendiAccumulator:
        if name in ("window", "cumulative", "epoch"):
            return getattr(self, name)
        if name.startswith("stage/") and name[len("stage/") :] in self.stages:
            return self.stages[name[len("stage/") :]]
        raise KeyError(f"no accumulator {name!r}; the set has {self.names()}.")

    def value(self, name: str | VendiAccumulator) -> float | None:
        """G-Vendi of a named accumulator (or of one of the set's accumulators), ``None`` when it is empty.

        Accumulators with identical states (the window, epoch, cumulative and stage ones often are, e.g. in the first
        window) are scored once per change."""
        accumulator = self[name] if isinstance(name, str) else name
        if not accumulator.count:
            return None
        for scored, value in self._scores:
            if scored.same_state(accumulator):
                return value
        value = accumulator.score(self.q).value
        self._scores.append((accumulator, value))
        return value

    def interval(self) -> tuple[float, float] | None:
        """The cumulative value's basic bootstrap interval at level ``ci`` (``None`` without ``ci`` or rows)."""
        if self.bootstrap is None or not self.bootstrap.count:
            return None
        if self._interval is None:
            replicates = self.bootstrap.resampled_scores(self.n_boot, q=self.q, seed=self.seed)
            self._interval = bootstrap_interval(replicates, self.ci, self.value("cumulative"))
        return self._interval

    # checkpoints --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The synced state (tensors and plain values, for ``torch.save(..., weights_only=True)`` loading)."""
        if self._pending or (self._pending_bootstrap is not None and self._pending_bootstrap.count):
            raise RuntimeError("AccumulatorSet.state_dict() holds synced rows only: call sync() first.")
        return {
            "dim": self.dim,
            "window": self.window.state_dict(),
            "window_stages": sorted(self.window_stages),
            "cumulative": self.cumulative.state_dict(),
            "epoch": self.epoch.state_dict(),
            "stages": {name: acc.state_dict() for name, acc in self.stages.items()},
            "skipped": self.skipped,
            "syncs": self.syncs,
            "bootstrap": None if self.bootstrap is None else self.bootstrap.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (pending rows are dropped). With ``ci``, a state saved without bootstrap rows but
        with examples leaves the set without an interval (``bootstrap`` is ``None``): it would miss those examples."""
        dim = int(state["cumulative"]["dim"])
        if dim != self.dim:
            raise ValueError(f"the saved accumulators have dim {dim} but this set has dim={self.dim}.")
        self.clear()
        self.window = VendiAccumulator.from_state_dict(state["window"])
        self.window_stages = set(state["window_stages"])
        self.cumulative = VendiAccumulator.from_state_dict(state["cumulative"])
        self.epoch = VendiAccumulator.from_state_dict(state["epoch"])
        self.stages = {name: VendiAccumulator.from_state_dict(sd) for name, sd in state["stages"].items()}
        self.skipped = int(state.get("skipped", 0))
        self.syncs = int(state.get("syncs", 0))
        if self.bootstrap is not None and state.get("bootstrap") is not None:
            self.bootstrap = BootstrapAccumulator.from_state_dict(state["bootstrap"])
        elif self.cumulative.count:
            self.bootstrap = None

    def __repr__(self) -> str:
        return f"AccumulatorSet(dim={self.dim}, examples={self.cumulative.count}, stages={sorted(self.stages)})"
