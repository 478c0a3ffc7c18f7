"""``gvendi featurize DATA --out DIR``: sharded, resumable featurization on one or many processes.

    gvendi featurize my.jsonl --out feats/ --proxy tiny                   # one process
    accelerate launch -m gvendi.cli featurize my.jsonl --out feats/       # every GPU (or CPU process) of the launch
    gvendi featurize my.jsonl --out feats/ --rank 3 --world-size 8        # one member of a job array

Each rank writes its shards (features + accumulator) with a completion marker; a rerun of the same command skips
finished shards. When every shard is done, one process merges them into ``features.npy`` and ``gvendi.json``. See
:mod:`gvendi.sharded` for the folder layout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["register_cli", "run_featurize"]


def run_featurize(args: argparse.Namespace) -> int:
    from .cli import _featurizer_from_args
    from .io import load_table
    from .sharded import (
        RUN_FILE,
        featurize_shards,
        merge_shards,
        plan_for,
        prepare_run,
        resolve_rank,
        wait_for_shards,
    )

    rank, world_size, state = resolve_rank(args.rank, args.world_size)
    table = load_table(args.data, split=args.split, config=args.config, limit=args.limit)
    if state is not None and args.device is None:
        args.device = str(state.device)  # this process's GPU under accelerate launch (or the CPU)
    featurizer = _featurizer_from_args(args, show_progress=not args.quiet)
    plan = plan_for(featurizer, len(table), args.shard_rows, data=args.data)

    if rank == 0:
        prepare_run(args.out, plan, overwrite=args.overwrite)
    if state is not None:
        state.wait_for_everyone()
    else:
        deadline = time.monotonic() + 60
        while rank != 0 and not (Path(args.out) / RUN_FILE).is_file():
            if time.monotonic() > deadline:
                raise ValueError(f"rank 0 has not created {args.out}/{RUN_FILE} within 60 s; start rank 0 too.")
            time.sleep(0.2)
    if rank != 0:
        prepare_run(args.out, plan)  # checks that this rank computes the same thing

    def featurize(rows: range):
        from .sharded import encode_rows

        return featurizer.featurize_encoded(encode_rows(featurizer, table, rows), row_offset=rows[0] if len(rows) else 0)

    featurizer.show_progress = False
    start = time.perf_counter()
    counts = featurize_shards(
        featurize, args.out, plan, rank=rank, world_size=world_size, show_progress=not args.quiet
    )
    seconds = time.perf_counter() - start

    summary = {
        "rank": rank,
        "world_size": world_size,
        "shards_done": counts["done"],
        "shards_skipped": counts["skipped"],
        "num_shards": plan.num_shards,
        "seconds": round(seconds, 3),
        "out": str(args.out),
    }
    if state is not None:
        state.wait_for_everyone()
        missing = [] if rank == 0 else None
    elif world_size > 1:
        missing = wait_for_shards(args.out, plan, timeout=args.wait) if rank == 0 else None
    else:
        missing = []
    if rank == 0:
        if missing:
            summary["merged"] = False
            summary["missing_shards"] = missing
            print(
                json.dumps(summary)
                if args.json
                else f"rank 0: {len(missing)} shards still missing after {args.wait:.0f}s; rerun to finish and merge."
            )
            return 1
        result = merge_shards(args.out, plan, q=args.q)
        summary.update(merged=True, gvendi=result["gvendi"], num_samples=result["num_samples"])
    if state is not None:
        state.wait_for_everyone()
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")  # one write: lines of concurrent ranks sharing a pipe stay whole
        sys.stdout.flush()
    elif rank == 0:
        print(
            f"G-Vendi: {summary['gvendi']:.4f}  (N={summary['num_samples']}, {plan.num_shards} shards, "
            f"{counts['done']} computed here, {counts['skipped']} reused; features in {args.out}/features.npy)"
        )
    return 0


def register_cli(subparsers) -> None:
    """Add ``featurize`` to the ``gvendi`` command line."""
    from .cli import _add_featurizer_arguments

    parser = subparsers.add_parser(
        "featurize", help="write G-Vendi features of a data set in resumable shards (multi-process / multi-GPU)."
    )
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    parser.add_argument("--out", required=True, help="output folder (created; a rerun resumes it).")
    parser.add_argument(
        "--split", default=None, help="split of a Hub dataset or a DatasetDict folder (default 'train'); a file has none."
    )
    parser.add_argument("--config", default=None, help="Hub dataset configuration.")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows.")
    parser.add_argument("--shard-rows", type=int, default=4096, help="rows per shard (the unit of resumption).")
    parser.add_argument("--rank", type=int, default=None, help="this process's rank (default: from accelerate, or 0).")
    parser.add_argument(
        "--world-size", type=int, default=None, help="number of processes (default: from accelerate, or 1)."
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=3600.0,
        help="without accelerate, seconds rank 0 waits for the other ranks' shards before merging.",
    )
    parser.add_argument("--overwrite", action="store_true", help="discard an existing run in --out.")
    parser.add_argument("--q", type=float, default=1.0, help="order of the Vendi Score in gvendi.json.")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line per process.")
    parser.add_argument(
        "--quiet", "--no-progress", dest="quiet", action="store_true",
        help="no progress bars (gvendi's, transformers', datasets'); also GVENDI_DISABLE_PROGRESS_BAR=1.",
    )
    _add_featurizer_arguments(parser)
    parser.set_defaults(handler=run_featurize, check=_check_featurize_args)


def _check_featurize_args(args: argparse.Namespace) -> None:
    from .cli import _check_common, check_featurizer_args

    _check_common(args)
    check_featurizer_args(args)
    if args.shard_rows < 1:
        raise ValueError(f"--shard-rows must be ≥ 1 (got {args.shard_rows}).")
    if args.world_size is not None and args.world_size < 1:
        raise ValueError(f"--world-size must be ≥ 1 (got {args.world_size}).")
    if args.rank is not None and (args.rank < 0 or (args.world_size is not None and args.rank >= args.world_size)):
        raise ValueError(f"--rank must be in [0, world size) (got {args.rank}).")
