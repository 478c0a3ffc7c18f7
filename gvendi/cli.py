"""The ``gvendi`` command line: ``score``, ``demo``, ``featurize``, ``select``, ``compare``, ``report``, ``synthesize``,
``push``.

Each sub-command lives with the code it drives and registers itself through ``register_cli(subparsers)``;
``main(argv)`` returns an exit code so that tests can call it.

    gvendi demo
    gvendi score my.jsonl --proxy tiny --json
    gvendi score org/dataset --split train --prompt-column question --completion-column answer --limit 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _add_featurizer_arguments(parser: argparse.ArgumentParser) -> None:
    from .projection import DEFAULT_PROJECTION, PROJECTIONS
    from .proxy import DEFAULT_PROXY

    group = parser.add_argument_group("gradient features")
    group.add_argument("--proxy", default=DEFAULT_PROXY, help="Hub id, local folder, or 'tiny' (bundled, offline).")
    group.add_argument("--revision", default=None, help="Hub revision of the proxy.")
    group.add_argument("--dim", type=int, default=1024, help="projection dimension k (default 1024, as in the paper).")
    group.add_argument(
        "--projection",
        default=DEFAULT_PROJECTION,
        choices=list(PROJECTIONS),
        help="'factored' (default: fast at any width), 'sketch' (slow at large vocabularies) or 'dense' (the paper's, "
        "slowest).",
    )
    group.add_argument("--seed", type=int, default=0, help="projection seed.")
    group.add_argument("--batch-size", type=int, default=8, help="examples per forward/backward pass.")
    group.add_argument("--max-length", type=int, default=None, help="truncate token sequences to this length.")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: a GPU when available).")
    group.add_argument("--dtype", default=None, help="float32, bfloat16 … (default: bf16 on GPU, fp32 on CPU).")
    group.add_argument("--prompt-column", default="prompt")
    group.add_argument("--completion-column", default="completion")
    group.add_argument("--messages-column", default=None, help="a column of chat conversations instead of text pairs.")


def _featurizer_from_args(args: argparse.Namespace, *, show_progress: bool = True):
    from .featurizer import GradientFeaturizer

    return GradientFeaturizer(
        args.proxy,
        revision=args.revision,
        dim=args.dim,
        projection=args.projection,
        seed=args.seed,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        dtype=args.dtype,
        prompt_column=args.prompt_column,
        completion_column=args.completion_column,
        messages_column=args.messages_column,
        show_progress=show_progress,
    )


# score ---------------------------------------------------------------------------------------------------------
def _run_score(args: argparse.Namespace) -> int:
    from .io import load_table
    from .vendi import score

    table = load_table(args.data, split=args.split, config=args.config, limit=args.limit)
    featurizer = _featurizer_from_args(args)
    start = time.perf_counter()
    features = featurizer.featurize(table)
    result = score(features, q=args.q, provenance={**featurizer.provenance, "data": args.data}, ci=args.ci,
                   n_boot=args.n_boot)
    seconds = time.perf_counter() - start
    if args.per_example:
        from .contributions import contributions
        from .io import write_table

        scores = contributions(features, seed=args.seed, show_progress=True)
        for name, column in scores.to_columns().items():
            table = table.add_column(name, column)
        write_table(table, args.per_example)
        print(f"per-example scores ({', '.join(scores.to_columns())}) -> {args.per_example}", file=sys.stderr)
    rate = featurizer.throughput
    if args.json:
        print(json.dumps({**result.to_dict(), "seconds": round(seconds, 3), "tokens": rate.tokens,
                          "examples_per_s": round(rate.examples_per_s, 3), "tokens_per_s": round(rate.tokens_per_s, 1)}))
    else:
        print(f"featurized {rate.describe()}", file=sys.stderr)
        interval = f"  {result.ci_level:.0%} CI [{result.ci[0]:.4f}, {result.ci[1]:.4f}]" if result.ci else ""
        print(f"G-Vendi: {result.value:.4f}{interval}  (N={result.num_samples}, dim={result.dim}, q={result.q}, "
              f"proxy={featurizer.provenance['proxy']}, projection={featurizer.projection}, {seconds:.1f}s)")
    return 0


def _register_score(subparsers) -> None:
    parser = subparsers.add_parser("score", help="G-Vendi of a data set (file, saved folder or Hub id).")
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    parser.add_argument("--split", default="train")
    parser.add_argument("--config", default=None, help="Hub dataset configuration.")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N rows.")
    parser.add_argument("--q", type=float, default=1.0, help="order of the Vendi Score (1 = the paper's G-Vendi).")
    parser.add_argument("--json", action="store_true", help="print one JSON object with a 'gvendi' key.")
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
    _add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_score)


# demo ----------------------------------------------------------------------------------------------------------
def _run_demo(args: argparse.Namespace) -> int:
    import random

    from .data import load_math_sample
    from .featurizer import GradientFeaturizer
    from .vendi import score

    if args.size < 8 or args.size % 8:
        raise ValueError(f"--size must be a positive multiple of 8 (got {args.size}), so every subset splits evenly.")
    rows = load_math_sample()
    by_template: dict[str, list[dict]] = {}
    for row in rows:
        by_template.setdefault(row["template"], []).append(row)
    templates = sorted(by_template)
    rng = random.Random(args.seed)
    rng.shuffle(templates)
    featurizer = GradientFeaturizer("tiny", dim=args.dim, seed=args.seed, show_progress=False)
    print(f"G-Vendi of {args.size}-example subsets of the bundled math sample, tiny proxy, dim={args.dim}")
    print(f"{'templates':>9}  {'G-Vendi':>8}  templates used")
    results = []
    for count in (1, 2, 4, 8):
        chosen = templates[:count]
        subset = [row for name in chosen for row in rng.sample(by_template[name], args.size // count)]
        value = score(featurizer.featurize(subset)).value
        results.append({"templates": count, "gvendi": value, "names": chosen})
        print(f"{count:>9}  {value:>8.2f}  {', '.join(chosen)}")
    if args.json:
        print(json.dumps(results))
    return 0


def _register_demo(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="offline demo: G-Vendi rises with the number of solution templates.")
    parser.add_argument("--size", type=int, default=64, help="examples per subset, a multiple of 8 (default 64).")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_run_demo)


# wiring --------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="gvendi", description="G-Vendi gradient diversity and Prismatic Synthesis.")
    parser.add_argument("--version", action="version", version=f"gvendi {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register_score(subparsers)
    _register_demo(subparsers)
    for module_name in ("gvendi.featurize_cli", "gvendi.curation_cli", "gvendi.synthesis.cli", "gvendi.hub"):
        try:
            module = __import__(module_name, fromlist=["register_cli"])
        except ImportError:
            continue
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 1 a user error reported on stderr, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"gvendi {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gvendi {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
