"""Featurizing a data set in resumable shards, spread over processes, GPUs and nodes.

The rows are cut into fixed shards of ``shard_rows`` rows (shard ``i`` holds rows ``i·shard_rows …``); rank ``r`` of
``world_size`` featurizes the shards ``i`` with ``i % world_size == r``. Because the cut does not depend on the number
of processes, every shard is batched the same way whatever runs it, so one process and many give the same features,
and a rerun after a crash only redoes the shards that have no completion marker.

Layout of the output folder::

    run.json                    what is being computed (featurizer fingerprint and provenance, rows, shard size)
    shards/shard-00003.npy      features of shard 3, (rows, dim) float32 unit rows
    shards/shard-00003.acc.npz  its VendiAccumulator state (k×k float64 sum and row count)
    shards/shard-00003.done     completion marker, written last (JSON: rows, checksum)
    features.npy                the merged (N, dim) features, in input order
    gvendi.json                 G-Vendi of the exactly merged accumulators, with provenance

Every file is written to a temporary name and renamed into place, so a killed process leaves either a complete shard
or none. The merge adds the shard accumulators in shard order (float64), so its score does not depend on how many
processes ran or in which order they finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import ConfigFieldError
from .utils import atomic_write, progress_bar
from .vendi import VendiAccumulator

__all__ = ["ShardPlan", "featurize_shards", "merge_shards", "resolve_rank"]

RUN_FILE = "run.json"
FEATURES_FILE = "features.npy"
RESULT_FILE = "gvendi.json"


@dataclass
class ShardPlan:
    """How the rows of one run are cut into shards; saved as ``run.json`` and checked on every rerun.

    Attributes:
        num_rows (`int`): rows in the data set (after ``--limit``).
        shard_rows (`int`): rows per shard (the last shard may be shorter).
        dim (`int`): feature dimension k.
        fingerprint (`str`): the featurizer's fingerprint (proxy, projection, seed, dim, columns, …).
        provenance (`dict`): what produced the features (proxy id/revision/digest, projection, dim, seed, version).
        data (`str`): where the rows came from (informational).
    """

    num_rows: int
    shard_rows: int
    dim: int
    fingerprint: str
    provenance: dict[str, Any]
    data: str = ""

    @property
    def num_shards(self) -> int:
        return -(-self.num_rows // self.shard_rows)

    def rows_of(self, shard: int) -> range:
        return range(shard * self.shard_rows, min(self.num_rows, (shard + 1) * self.shard_rows))

    def shards_of(self, rank: int, world_size: int) -> list[int]:
        return [shard for shard in range(self.num_shards) if shard % world_size == rank]

    def matches(self, other: ShardPlan) -> list[str]:
        """Names of the fields that differ from ``other`` (a rerun must agree on all but ``data``)."""
        return [
            name
            for name in ("num_rows", "shard_rows", "dim", "fingerprint")
            if getattr(self, name) != getattr(other, name)
        ]


def resolve_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int, Any]:
    """This process's ``(rank, world_size, state)``.

    An explicit ``rank``/``world_size`` wins (independent processes, e.g. a job array). Otherwise, under
    ``accelerate launch`` / ``torchrun`` (``WORLD_SIZE`` set), `accelerate.PartialState` provides them and joins the
    process group (NCCL on GPUs, gloo on CPUs), and ``state`` is returned for barriers; else a single process.
    """
    if rank is not None or world_size is not None:
        world_size = 1 if world_size is None else int(world_size)
        rank = 0 if rank is None else int(rank)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigFieldError(
                "rank",
                rank,
                f"{{rank}} must be in [0, {{world_size}}) and {{world_size}} ≥ 1 (got rank={rank}, world size="
                f"{world_size}).",
            )
        return rank, world_size, None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())  # cpu=True: gloo across CPU processes
        return state.process_index, state.num_processes, state
    return 0, 1, None


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a reader never sees half a file)."""
    atomic_write(path, lambda handle: np.save(handle, array))


def _save_npz(path: Path, **arrays: Any) -> None:
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def _save_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(payload, indent=2, default=str) + "\n")


def _shard_paths(out_dir: Path, shard: int) -> tuple[Path, Path, Path]:
    base = out_dir / "shards" / f"shard-{shard:05d}"
    return base.with_suffix(".npy"), base.with_suffix(".acc.npz"), base.with_suffix(".done")


def _checksum(array: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest()


def shard_done(out_dir: Path, plan: ShardPlan, shard: int) -> bool:
    """Whether ``shard`` has a completion marker that agrees with the plan and its files."""
    features_path, acc_path, marker_path = _shard_paths(out_dir, shard)
    if not (marker_path.is_file() and features_path.is_file() and acc_path.is_file()):
        return False
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        return False
    rows = plan.rows_of(shard)
    return (
        marker.get("start") == rows.start
        and marker.get("stop") == rows.stop
        and marker.get("fingerprint") == plan.fingerprint
    )


def prepare_run(out_dir: str | os.PathLike, plan: ShardPlan, *, overwrite: bool = False) -> Path:
    """Create the output folder and ``run.json``, or check that an existing run is the same computation."""
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    run_path = out / RUN_FILE
    if run_path.is_file() and not overwrite:
        saved = json.loads(run_path.read_text())
        previous = ShardPlan(
            **{k: saved[k] for k in ("num_rows", "shard_rows", "dim", "fingerprint", "provenance", "data")}
        )
        differing = plan.matches(previous)
        if differing:
            raise ConfigFieldError(
                "out",
                str(out),
                f"{out} holds a different featurization ({', '.join(differing)} differ from this run); "
                "pass another {out} folder, or {overwrite=True} to start it again.",
            )
        return out
    if overwrite:
        for path in (out / "shards").glob("shard-*"):
            path.unlink()
        for name in (FEATURES_FILE, RESULT_FILE):
            (out / name).unlink(missing_ok=True)
    payload = {**asdict(plan), "num_shards": plan.num_shards, "gvendi_version": __version__, "created": time.time()}
    _save_json(run_path, payload)
    return out


def featurize_shards(
    featurize: Callable[[range], np.ndarray],
    out_dir: str | os.PathLike,
    plan: ShardPlan,
    *,
    rank: int = 0,
    world_size: int = 1,
    show_progress: bool = True,
) -> dict[str, int]:
    """Featurize this rank's unfinished shards; returns ``{"done": …, "skipped": …}`` shard counts.

    Args:
        featurize: maps a range of row indices to their (rows, dim) float32 unit features.
        out_dir: the run folder (see :func:`prepare_run`).
        plan (`ShardPlan`): the cut of the rows.
        rank, world_size (`int`): this process's share: shards ``i`` with ``i % world_size == rank``.
    """
    out = Path(out_dir)
    mine = plan.shards_of(rank, world_size)
    todo = [shard for shard in mine if not shard_done(out, plan, shard)]
    counts = {"done": 0, "skipped": len(mine) - len(todo)}
    bar = progress_bar(
        total=sum(len(plan.rows_of(s)) for s in todo),
        desc=f"gvendi featurize [rank {rank}/{world_size}]",
        unit="ex",
        disable=not show_progress,
    )
    try:
        for shard in todo:
            rows = plan.rows_of(shard)
            features = np.ascontiguousarray(featurize(rows), dtype=np.float32)
            if features.shape != (len(rows), plan.dim):
                raise RuntimeError(
                    f"shard {shard}: expected features of shape {(len(rows), plan.dim)}, got {features.shape}."
                )
            accumulator = VendiAccumulator(plan.dim).update(features)
            features_path, acc_path, marker_path = _shard_paths(out, shard)
            _save_npy(features_path, features)
            state = accumulator.state_dict()
            _save_npz(acc_path, second_moment=state["second_moment"].numpy(), count=state["count"])
            marker = {
                "shard": shard,
                "start": rows.start,
                "stop": rows.stop,
                "fingerprint": plan.fingerprint,
                "checksum": _checksum(features),
                "rank": rank,
                "world_size": world_size,
                "time": time.time(),
            }
            _save_json(marker_path, marker)  # written last: from now on the shard counts as done
            counts["done"] += 1
            bar.update(len(rows))
    finally:
        bar.close()
    return counts


def missing_shards(out_dir: str | os.PathLike, plan: ShardPlan) -> list[int]:
    return [shard for shard in range(plan.num_shards) if not shard_done(Path(out_dir), plan, shard)]


def merge_shards(out_dir: str | os.PathLike, plan: ShardPlan, *, q: float = 1.0) -> dict[str, Any]:
    """Write ``features.npy`` (rows in input order, streamed shard by shard) and ``gvendi.json`` (the score of the
    accumulators added in shard order). Raises `ValueError` naming the shards that are not finished."""
    out = Path(out_dir)
    missing = missing_shards(out, plan)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise ValueError(
            f"cannot merge {out}: {len(missing)} of {plan.num_shards} shards are not finished ({shown}); "
            "rerun the same command (finished shards are skipped)."
        )
    accumulator = VendiAccumulator(plan.dim)
    features_tmp = _tmp_name(out / FEATURES_FILE)
    merged = np.lib.format.open_memmap(features_tmp, mode="w+", dtype=np.float32, shape=(plan.num_rows, plan.dim))
    for shard in range(plan.num_shards):
        features_path, acc_path, marker_path = _shard_paths(out, shard)
        rows = plan.rows_of(shard)
        features = np.load(features_path)
        if _checksum(features) != json.loads(marker_path.read_text())["checksum"]:
            raise ValueError(f"shard {shard} of {out} does not match its checksum; delete {marker_path} and rerun.")
        merged[rows.start : rows.stop] = features
        with np.load(acc_path) as state:
            accumulator.merge(
                VendiAccumulator.from_state_dict(
                    {
                        "dim": plan.dim,
                        "count": int(state["count"]),
                        "second_moment": torch.from_numpy(state["second_moment"]),
                    }
                )
            )
    merged.flush()
    del merged
    os.replace(features_tmp, out / FEATURES_FILE)
    accumulator.provenance.update(plan.provenance)
    result = accumulator.score(q)
    payload = {
        **result.to_dict(),
        "num_shards": plan.num_shards,
        "shard_rows": plan.shard_rows,
        "features": FEATURES_FILE,
        "data": plan.data,
    }
    _save_json(out / RESULT_FILE, payload)
    return payload


def wait_for_shards(out_dir: str | os.PathLike, plan: ShardPlan, *, timeout: float, poll: float = 1.0) -> list[int]:
    """Poll until every shard is finished or ``timeout`` seconds pass; returns the shards still missing."""
    deadline = time.monotonic() + timeout
    while True:
        missing = missing_shards(out_dir, plan)
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(poll)


def plan_for(featurizer: Any, num_rows: int, shard_rows: int, data: str = "") -> ShardPlan:
    """The `ShardPlan` of a `GradientFeaturizer` over ``num_rows`` rows."""
    if not isinstance(shard_rows, int) or shard_rows < 1:
        raise ConfigFieldError(
            "shard_rows", shard_rows, f"{{shard_rows}} must be an integer ≥ 1 (got {shard_rows!r})."
        )
    return ShardPlan(
        num_rows=num_rows,
        shard_rows=shard_rows,
        dim=featurizer.dim,
        fingerprint=featurizer.fingerprint,
        provenance=featurizer.provenance,
        data=data,
    )


def encode_rows(featurizer: Any, table: Any, rows: Sequence[int] | range) -> list:
    """Encode rows ``rows`` of a `datasets.Dataset` (or dict of columns) with the featurizer (row numbers kept)."""
    if isinstance(rows, range) and hasattr(table, "select"):
        batch = table.select(rows).to_dict()
    else:
        batch = {k: [v[i] for i in rows] for k, v in table.items()}
    return featurizer.encode(batch, row_offset=rows[0] if len(rows) else 0)
