"""``gvendi score``, ``gvendi featurize`` and ``gvendi demo``: G-Vendi of a data set, sharded features, the demo.

    gvendi score my.jsonl --proxy tiny --json
    gvendi featurize my.jsonl --out feats/ --proxy tiny                   # one process
    accelerate launch -m gvendi featurize my.jsonl --out feats/           # every GPU (or CPU process) of the launch
    gvendi featurize my.jsonl --out feats/ --rank 3 --world-size 8        # one member of a job array
    gvendi demo

``featurize``: each rank writes its shards (features + accumulator) with a completion marker; a rerun of the same
command skips finished shards. When every shard is done, one process merges them into ``features.npy`` and
``gvendi.json`` (see :mod:`gvendi.sharded` for the folder layout).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from .options import add_config_arguments, config_from_args

__all__ = [
    "add_data_arguments",
    "add_featurizer_arguments",
    "check_featurizer_args",
    "featurizer_from_args",
    "register",
]

NETWORK_NOTE = (
    "The default proxy, Qwen/Qwen2.5-0.5B-Instruct, is downloaded from the Hugging Face Hub on first use (network "
    "needed once, then cached); --proxy tiny runs offline."
)


def add_featurizer_arguments(parser: argparse.ArgumentParser) -> None:
    """The featurizer's flags: one per :class:`gvendi.config.GVendiConfig` field, help from the field."""
    add_config_arguments(parser, old_spellings=("--seed",))


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--split``, ``--data-config`` and ``--limit``: which rows of a data set to read."""
    parser.add_argument(
        "--split",
        default=None,
        help="split of a Hub dataset or a DatasetDict folder (default 'train'); a file has none.",
    )
    parser.add_argument("--data-config", default=None, help="configuration (subset) of a Hub dataset.")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows.")


def check_featurizer_args(args: argparse.Namespace) -> None:
    """Check every featurizer flag before anything loads (a bad value fails in a second, not after the gradients)
    and keep the resulting config as ``args.gvendi_config``; also ``--limit`` and ``--q`` where a command has them.

    Raises:
        ValueError: the flag, its value and what is allowed.
    """
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise ValueError(f"--limit must be ≥ 1 (got {args.limit}).")
    q = getattr(args, "q", None)
    if q is not None and not q > 0:  # also NaN
        raise ValueError(f"--q must be a number > 0 (got {q}); 1 is the paper's G-Vendi, inf gives 1/λ_max.")
    args.gvendi_config = config_from_args(args)


def featurizer_from_args(args: argparse.Namespace, *, show_progress: bool = True, **overrides):
    """The featurizer of ``args.gvendi_config`` (see :func:`check_featurizer_args`)."""
    from ..featurizer import GradientFeaturizer

    config = getattr(args, "gvendi_config", None) or config_from_args(args)
    if overrides:
        config = config.replace(**overrides)
    return GradientFeaturizer(config=config, show_progress=show_progress)


def _quiet(args: argparse.Namespace) -> bool:
    return getattr(args, "quiet", False) is True


# score ---------------------------------------------------------------------------------------------------------
def _run_score(args: argparse.Namespace) -> int:
    from ..io import load_table
    from ..vendi import score

    table = load_table(args.data, split=args.split, config=args.data_config, limit=args.limit)
    featurizer = featurizer_from_args(args, show_progress=not _quiet(args))
    start = time.perf_counter()
    features = featurizer.featurize(table)
    result = score(
        features, q=args.q, provenance={**featurizer.provenance, "data": args.data}, ci=args.ci, n_boot=args.n_boot
    )
    seconds = time.perf_counter() - start
    if args.per_example:
        from ..io import write_table
        from ..per_example import contributions

        scores = contributions(features, seed=args.seed, show_progress=True)
        for name, column in scores.to_columns().items():
            table = table.add_column(name, column)
        write_table(table, args.per_example)
        print(f"per-example scores ({', '.join(scores.to_columns())}) -> {args.per_example}", file=sys.stderr)
    rate = featurizer.throughput
    if args.json:
        # strict JSON: a non-finite number (q=inf) is written as the string "inf", never as the bare Infinity
        print(
            json.dumps(
                _finite(
                    {
                        **result.to_dict(),
                        "seconds": round(seconds, 3),
                        "tokens": rate.tokens,
                        "examples_per_s": round(rate.examples_per_s, 3),
                        "tokens_per_s": round(rate.tokens_per_s, 1),
                    }
                ),
                allow_nan=False,
            )
        )
    else:
        print(f"featurized {rate.describe()}", file=sys.stderr)
        interval = f"  {result.ci_level:.0%} CI [{result.ci[0]:.4f}, {result.ci[1]:.4f}]" if result.ci else ""
        print(
            f"G-Vendi: {result.value:.4f}{interval}  (N={result.num_samples}, dim={result.dim}, q={result.q}, "
            f"proxy={featurizer.provenance['proxy']}, projection={featurizer.projection}, {seconds:.1f}s)"
        )
    return 0


def _finite(value):
    """``value`` with every non-finite float replaced by its name (``"inf"``, ``"-inf"``, ``"nan"``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _register_score(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="G-Vendi of a data set (file, saved folder or Hub id).",
        description="G-Vendi of a data set: a .jsonl/.json/.parquet/.csv file, a saved dataset folder or a Hub "
        "dataset id, with columns 'prompt' and 'completion' (or see --prompt-column, --messages-column). "
        + NETWORK_NOTE,
    )
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    add_data_arguments(parser)
    parser.add_argument("--q", type=float, default=1.0, help="order of the Vendi Score (1 = the paper's G-Vendi).")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one strict JSON object with a 'gvendi' key (q=inf is written as the string \"inf\").",
    )
    parser.add_argument(
        "--ci",
        type=float,
        nargs="?",
        const=0.95,
        default=None,
        metavar="LEVEL",
        help="add a bootstrap confidence interval (default level 0.95), resampled from k×k block moments.",
    )
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for --ci (default 200).")
    parser.add_argument(
        "--per-example",
        metavar="FILE",
        default=None,
        help="also write the rows with each one's leave-one-out contribution to G-Vendi and cluster rarity "
        "(.jsonl/.json/.parquet/.csv, or a folder).",
    )
    add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_score, check=_check_score_args)


def _check_score_args(args: argparse.Namespace) -> None:
    from ..vendi import _check_q

    check_featurizer_args(args)
    _check_q(args.q)
    if args.n_boot < 1:
        raise ValueError(f"--n-boot must be ≥ 1 (got {args.n_boot}).")


# demo ----------------------------------------------------------------------------------------------------------
def _run_demo(args: argparse.Namespace) -> int:
    if args.evidence:
        from ..evidence import evidence_table, load_evidence

        print(json.dumps(load_evidence()) if args.json else evidence_table())
        return 0
    import random

    from ..data import load_math_sample
    from ..featurizer import GradientFeaturizer
    from ..vendi import score

    rows = load_math_sample()
    by_template: dict[str, list[dict]] = {}
    for row in rows:
        by_template.setdefault(row["template"], []).append(row)
    templates = sorted(by_template)
    rng = random.Random(args.seed)
    rng.shuffle(templates)
    featurizer = GradientFeaturizer("tiny", dim=args.dim, seed=args.seed, show_progress=False)
    table = sys.stderr if args.json else sys.stdout  # with --json, stdout holds the JSON only
    print(f"G-Vendi of {args.size}-example subsets of the bundled math sample, tiny proxy, dim={args.dim}", file=table)
    print(f"{'templates':>9}  {'G-Vendi':>8}  templates used", file=table)
    results = []
    for count in (1, 2, 4, 8):
        chosen = templates[:count]
        subset = [row for name in chosen for row in rng.sample(by_template[name], args.size // count)]
        value = score(featurizer.featurize(subset)).value
        results.append({"templates": count, "gvendi": value, "names": chosen})
        print(f"{count:>9}  {value:>8.2f}  {', '.join(chosen)}", file=table, flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


def _register_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="offline demo: G-Vendi rises with the number of solution templates.")
    parser.add_argument("--size", type=int, default=64, help="examples per subset, a multiple of 8 (default 64).")
    parser.add_argument("--dim", type=int, default=1024, help="projection dimension k (default 1024).")
    parser.add_argument("--seed", type=int, default=0, help="seed of the template order, subsets and projection.")
    parser.add_argument(
        "--json", action="store_true", help="print the results as one JSON list on stdout (the table goes to stderr)."
    )
    parser.add_argument(
        "--evidence",
        action="store_true",
        help="show instead the bundled result of benchmarks/bench_correlation.py: how well G-Vendi and the baselines "
        "rank fine-tuning sets by out-of-distribution loss (Spearman ρ with intervals); no model runs.",
    )
    parser.set_defaults(handler=_run_demo, check=_check_demo_args)


def _check_demo_args(args: argparse.Namespace) -> None:
    if args.size < 8 or args.size % 8:
        raise ValueError(f"--size must be a positive multiple of 8 (got {args.size}), so every subset splits evenly.")
    if args.dim < 1:
        raise ValueError(f"--dim must be an integer ≥ 1 (got {args.dim}).")


# featurize -----------------------------------------------------------------------------------------------------
def _run_featurize(args: argparse.Namespace) -> int:
    from ..io import load_table
    from ..sharded import (
        RUN_FILE,
        featurize_shards,
        merge_shards,
        plan_for,
        prepare_run,
        resolve_rank,
        wait_for_shards,
    )

    rank, world_size, state = resolve_rank(args.rank, args.world_size)
    table = load_table(args.data, split=args.split, config=args.data_config, limit=args.limit)
    overrides = {}
    if state is not None and args.gvendi_config.device is None:
        overrides["device"] = str(state.device)  # this process's GPU under accelerate launch (or the CPU)
    featurizer = featurizer_from_args(args, show_progress=not args.quiet, **overrides)
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
        from ..sharded import encode_rows

        return featurizer.featurize_encoded(
            encode_rows(featurizer, table, rows), row_offset=rows[0] if len(rows) else 0
        )

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


def _register_featurize(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "featurize", help="write G-Vendi features of a data set in resumable shards (multi-process / multi-GPU)."
    )
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    parser.add_argument("--out", required=True, help="output folder (created; a rerun resumes it).")
    add_data_arguments(parser)
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
    add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_featurize, check=_check_featurize_args)


def _check_featurize_args(args: argparse.Namespace) -> None:
    check_featurizer_args(args)
    if args.shard_rows < 1:
        raise ValueError(f"--shard-rows must be ≥ 1 (got {args.shard_rows}).")
    if args.world_size is not None and args.world_size < 1:
        raise ValueError(f"--world-size must be ≥ 1 (got {args.world_size}).")
    if args.rank is not None and (args.rank < 0 or (args.world_size is not None and args.rank >= args.world_size)):
        raise ValueError(f"--rank must be in [0, world size) (got {args.rank}).")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score``, ``demo`` and ``featurize`` to the ``gvendi`` command line."""
    _register_score(subparsers)
    _register_demo(subparsers)
    _register_featurize(subparsers)
