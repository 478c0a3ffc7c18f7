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
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

# Before torch loads: OpenMP threads that sleep while they wait, instead of spinning. On a machine shared with other
# work (a laptop, a CI runner, a node with other jobs) spinning threads fight over the cores and `gvendi demo` runs
# 4-5x slower; on an idle machine PASSIVE costs nothing measurable (benchmarks/results/threads.md). A value the user
# set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["main"]

_NETWORK_NOTE = (
    "The default proxy, Qwen/Qwen2.5-0.5B-Instruct, is downloaded from the Hugging Face Hub on first use (network "
    "needed once, then cached); --proxy tiny runs offline."
)


def _add_featurizer_arguments(parser: argparse.ArgumentParser) -> None:
    from .projection import DEFAULT_PROJECTION, PROJECTIONS
    from .proxy import DEFAULT_PROXY

    group = parser.add_argument_group("gradient features")
    group.add_argument(
        "--proxy",
        default=DEFAULT_PROXY,
        help=f"Hub id, local folder, or 'tiny' (bundled, offline). Default {DEFAULT_PROXY}: needs the network once "
        "(then cached; offline, `hf download` it first).",
    )
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
    group.add_argument("--prompt-column", default="prompt", help="column of prompts (user turns); default 'prompt'.")
    group.add_argument(
        "--completion-column",
        default="completion",
        help="column of completions (assistant turns, whose loss gradient is measured); default 'completion'.",
    )
    group.add_argument("--messages-column", default=None, help="a column of chat conversations instead of text pairs.")


def check_featurizer_args(args: argparse.Namespace) -> None:
    """Check every featurizer flag before anything loads (a bad value fails in a second, not after the gradients).

    Raises:
        ValueError: the flag, its value and what is allowed.
    """
    from .projection import PROJECTIONS

    if args.dim < 1:
        raise ValueError(f"--dim must be an integer ≥ 1 (got {args.dim}); the paper uses 1024.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1 (got {args.batch_size}).")
    if args.max_length is not None and args.max_length < 2:
        raise ValueError(f"--max-length must be ≥ 2 (got {args.max_length}): a prompt token and a completion token.")
    if args.projection not in PROJECTIONS:
        raise ValueError(f"--projection must be one of {list(PROJECTIONS)} (got {args.projection!r}).")
    for flag in ("prompt_column", "completion_column", "messages_column"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise ValueError(f"--{flag.replace('_', '-')} is empty; name a column of the data.")
    if args.device is not None or args.dtype is not None:
        from .proxy import resolve_dtype
        from .utils import resolve_device

        try:
            device = resolve_device(args.device)
        except ValueError as err:
            raise ValueError(f"--device: {err}") from None
        try:
            resolve_dtype(args.dtype, device)
        except ValueError as err:
            raise ValueError(f"--dtype: {err}") from None


def _check_common(args: argparse.Namespace) -> None:
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise ValueError(f"--limit must be ≥ 1 (got {args.limit}).")
    q = getattr(args, "q", None)
    if q is not None and not q > 0:  # also NaN
        raise ValueError(f"--q must be a number > 0 (got {q}); 1 is the paper's G-Vendi, inf gives 1/λ_max.")


def _check_score_args(args: argparse.Namespace) -> None:
    _check_common(args)
    check_featurizer_args(args)


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
    from .utils import resolve_device
    from .vendi import _check_q, score

    _check_q(args.q)  # before any data or model is loaded
    resolve_device(args.device)
    table = load_table(args.data, split=args.split, config=args.config, limit=args.limit)
    featurizer = _featurizer_from_args(args, show_progress=not _quiet_requested(args))
    start = time.perf_counter()
    features = featurizer.featurize(table)
    result = score(features, q=args.q, provenance={**featurizer.provenance, "data": args.data}, ci=args.ci,
                   n_boot=args.n_boot)
    seconds = time.perf_counter() - start
    if args.per_example:
        from .io import write_table
        from .per_example import contributions

        scores = contributions(features, seed=args.seed, show_progress=True)
        for name, column in scores.to_columns().items():
            table = table.add_column(name, column)
        write_table(table, args.per_example)
        print(f"per-example scores ({', '.join(scores.to_columns())}) -> {args.per_example}", file=sys.stderr)
    rate = featurizer.throughput
    if args.json:
        # strict JSON: a non-finite number (q=inf) is written as the string "inf", never as the bare Infinity
        print(json.dumps(_finite({**result.to_dict(), "seconds": round(seconds, 3), "tokens": rate.tokens,
                                  "examples_per_s": round(rate.examples_per_s, 3),
                                  "tokens_per_s": round(rate.tokens_per_s, 1)}), allow_nan=False))
    else:
        print(f"featurized {rate.describe()}", file=sys.stderr)
        interval = f"  {result.ci_level:.0%} CI [{result.ci[0]:.4f}, {result.ci[1]:.4f}]" if result.ci else ""
        print(f"G-Vendi: {result.value:.4f}{interval}  (N={result.num_samples}, dim={result.dim}, q={result.q}, "
              f"proxy={featurizer.provenance['proxy']}, projection={featurizer.projection}, {seconds:.1f}s)")
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


def _register_score(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="G-Vendi of a data set (file, saved folder or Hub id).",
        description="G-Vendi of a data set: a .jsonl/.json/.parquet/.csv file, a saved dataset folder or a Hub "
        "dataset id, with columns 'prompt' and 'completion' (or see --prompt-column, --messages-column). "
        + _NETWORK_NOTE,
    )
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    parser.add_argument(
        "--split", default=None, help="split of a Hub dataset or of a DatasetDict folder (default 'train'); "
        "a single file has none."
    )
    parser.add_argument("--config", default=None, help="Hub dataset configuration.")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N rows.")
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
    _add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_score, check=_check_score_args)


# demo ----------------------------------------------------------------------------------------------------------
def _run_demo(args: argparse.Namespace) -> int:
    if args.evidence:
        from .evidence import evidence_table, load_evidence

        print(json.dumps(load_evidence()) if args.json else evidence_table())
        return 0
    import random

    from .data import load_math_sample
    from .featurizer import GradientFeaturizer
    from .vendi import score

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


def _register_demo(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="offline demo: G-Vendi rises with the number of solution templates.")
    parser.add_argument("--size", type=int, default=64, help="examples per subset, a multiple of 8 (default 64).")
    parser.add_argument("--dim", type=int, default=1024, help="projection dimension k (default 1024).")
    parser.add_argument("--seed", type=int, default=0, help="seed of the template order, subsets and projection.")
    parser.add_argument(
        "--json", action="store_true", help="print the results as one JSON list on stdout (the table goes to stderr)."
    )
    parser.add_argument(
        "--evidence", action="store_true",
        help="show instead the bundled result of benchmarks/bench_correlation.py: how well G-Vendi and the baselines "
        "rank fine-tuning sets by out-of-distribution loss (Spearman ρ with intervals); no model runs.",
    )
    parser.set_defaults(handler=_run_demo, check=_check_demo_args)


def _check_demo_args(args: argparse.Namespace) -> None:
    if args.size < 8 or args.size % 8:
        raise ValueError(f"--size must be a positive multiple of 8 (got {args.size}), so every subset splits evenly.")
    if args.dim < 1:
        raise ValueError(f"--dim must be an integer ≥ 1 (got {args.dim}).")


# wiring --------------------------------------------------------------------------------------------------------
def _add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` (alias ``--no-progress``) on a command that lacks it: no progress bar of gvendi or the libraries."""
    if any(option in parser._option_string_actions for option in ("--quiet", "--no-progress")):
        return
    parser.add_argument(
        "--quiet", "--no-progress", dest="quiet", action="store_true",
        help="no progress bars (gvendi's, transformers', datasets'); also GVENDI_DISABLE_PROGRESS_BAR=1.",
    )


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
    for command in subparsers.choices.values():
        _add_quiet(command)
    return parser


def _quiet_requested(args: argparse.Namespace) -> bool:
    return getattr(args, "quiet", False) is True or getattr(args, "no_progress", False) is True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 1 a user error reported on stderr, 2 bad usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["--version"], ["-V"]):  # answered without building the sub-commands (no torch, no transformers)
        from . import __version__

        print(f"gvendi {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if _quiet_requested(args):
        from .utils import disable_progress_bars

        disable_progress_bars()
    check: Callable[[argparse.Namespace], None] | None = getattr(args, "check", None)
    if check is not None:
        try:  # every flag checked before any data or model loads
            check(args)
        except (ValueError, TypeError) as err:
            print(f"gvendi {args.command}: error: {err}", file=sys.stderr)
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
