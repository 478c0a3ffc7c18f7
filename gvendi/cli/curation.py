"""Curation doors of the ``gvendi`` command line: ``select``, ``compare`` and ``report``.

    gvendi select data.jsonl --k 1000 --out kept.jsonl --proxy tiny           # greedy G-Vendi selection
    gvendi select data.jsonl --k 1000 --out kept/ --method cluster-balanced --quality-column reward --min-quality 0.5
    gvendi select data.jsonl --features feats/ --k 1000 --out kept.parquet    # reuse `gvendi featurize` output
    gvendi compare a.jsonl b.jsonl --proxy tiny                               # does B add anything to A?
    gvendi report data.jsonl --out report.html --proxy tiny

Each door only reads inputs, calls the core (:mod:`gvendi.selection`, :mod:`gvendi.per_example`,
:mod:`gvendi.bootstrap`, :mod:`gvendi.report`) and writes outputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .score import add_data_arguments, add_featurizer_arguments, check_featurizer_args, featurizer_from_args

__all__ = ["features_for", "register"]


def _is_feature_source(source: str) -> bool:
    path = Path(source)
    return path.suffix.lower() == ".npy" or (path.is_dir() and (path / "features.npy").is_file())


def features_for(args: argparse.Namespace, table: Any, *, features: str | None = None) -> tuple[np.ndarray, dict]:
    """Features of ``table``: loaded from ``features`` (a ``.npy`` file or a ``gvendi featurize`` folder) when given,
    else computed with the featurizer the command-line flags describe. Returns (features, provenance)."""
    from ..io import load_features

    if features is not None:
        array = np.asarray(load_features(features), dtype=np.float32)
        if table is not None and array.shape[0] != len(table):
            raise ValueError(
                f"--features {features!r} has {array.shape[0]} rows but the data has {len(table)}: they must be the "
                "features of the same rows, in order (drop --limit, or featurize again)."
            )
        return array, {"features": str(features)}
    featurizer = featurizer_from_args(args)
    return featurizer.featurize(table), dict(featurizer.provenance)


# select --------------------------------------------------------------------------------------------------------
def _random_reference(features: np.ndarray, k: int, allowed: np.ndarray | None, draws: int = 5) -> dict[str, float]:
    """G-Vendi of ``draws`` seeded uniform random k-subsets of the allowed rows (mean and spread)."""
    from ..vendi import score

    candidates = np.arange(features.shape[0]) if allowed is None else np.flatnonzero(allowed)
    values = [
        score(features[np.random.default_rng(s).choice(candidates, k, replace=False)]).value for s in range(draws)
    ]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "draws": draws}


def _run_select(args: argparse.Namespace) -> int:
    from ..io import load_table, write_table
    from ..selection import select
    from ..vendi import score

    table = load_table(args.data, split=args.split, config=args.data_config, limit=args.limit)
    quality = None
    if args.quality_column is not None:
        if args.quality_column not in table.column_names:
            raise ValueError(
                f"--quality-column {args.quality_column!r} is not a column; the data has {table.column_names}."
            )
        quality = np.asarray(table[args.quality_column], dtype=np.float64)
    elif args.min_quality is not None:
        raise ValueError("--min-quality needs --quality-column (the column holding each row's quality).")
    features, provenance = features_for(args, table, features=args.features)
    result = select(
        features,
        args.k,
        method=args.method,
        quality=quality,
        min_quality=args.min_quality,
        seed=args.selection_seed,
        n_clusters=args.n_clusters,
    )
    kept = table.select(result.indices.tolist())
    written = write_table(kept, args.out)
    allowed = None if quality is None or args.min_quality is None else quality >= args.min_quality
    selected_value = score(features[result.indices]).value
    reference = _random_reference(features, args.k, allowed)
    summary = {
        "selected": {"gvendi": selected_value, "num_samples": len(result)},
        "random_same_k": reference,
        "ratio_to_random": selected_value / reference["mean"],
        "pool": {"gvendi": score(features).value, "num_samples": int(features.shape[0])},
        "out": written,
        **{f"select_{key}": value for key, value in result.config.items()},
        "data": args.data,
        **provenance,
    }
    summary_path = Path(args.summary) if args.summary else Path(str(Path(written)) + ".summary.json")
    summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(
            f"kept {len(result)} of {features.shape[0]} rows ({args.method}) -> {written}\n"
            f"G-Vendi  kept: {selected_value:.2f}   "
            f"random at k={args.k}: {reference['mean']:.2f} ± {reference['std']:.2f}"
            f"   pool: {summary['pool']['gvendi']:.2f}\nsummary: {summary_path}"
        )
    return 0


def _register_select(subparsers: argparse._SubParsersAction) -> None:
    from ..selection import SELECTION_METHODS

    parser = subparsers.add_parser("select", help="keep the k rows that keep G-Vendi highest (greedy, clusters, …).")
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    parser.add_argument("--k", type=int, required=True, help="rows to keep.")
    parser.add_argument(
        "--out", required=True, help="where the kept rows go: .jsonl/.json/.parquet/.csv, or a folder."
    )
    parser.add_argument(
        "--method",
        default="greedy",
        choices=list(SELECTION_METHODS),
        help="greedy (log-det, the default), cluster-balanced (sparse clusters first), random or k-center.",
    )
    parser.add_argument(
        "--features", default=None, help="precomputed features (.npy, or a `gvendi featurize` folder)."
    )
    parser.add_argument("--quality-column", default=None, help="a numeric column that weights the choice (> 0).")
    parser.add_argument("--min-quality", type=float, default=None, help="never keep rows whose quality is below this.")
    parser.add_argument("--n-clusters", type=int, default=None, help="cluster-balanced: K (default 1%% of the rows).")
    parser.add_argument(
        "--selection-seed", type=int, default=0, help="seeds random draws and k-means (not --projection-seed)."
    )
    parser.add_argument("--summary", default=None, help="JSON summary path (default: OUT.summary.json).")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object.")
    add_data_arguments(parser)
    add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_select, check=check_featurizer_args)


# compare -------------------------------------------------------------------------------------------------------
def _run_compare(args: argparse.Namespace) -> int:
    from ..comparison import compare
    from ..io import load_features, load_table

    feature_sets, featurizer, provenance = [], None, {}
    for source in args.sets:
        if _is_feature_source(source):
            feature_sets.append(np.asarray(load_features(source), dtype=np.float32))
            continue
        if featurizer is None:
            featurizer = featurizer_from_args(args)
            provenance = dict(featurizer.provenance)
        table = load_table(source, split=args.split, config=args.data_config, limit=args.limit)
        feature_sets.append(featurizer.featurize(table))
    names = args.names.split(",") if args.names else [Path(s).name for s in args.sets]
    result = compare(
        feature_sets, names, ci=None if args.no_ci else args.ci, n_boot=args.n_boot, seed=args.selection_seed
    )
    if args.json:
        print(json.dumps({**result.to_dict(), **provenance}, default=str))
        return 0

    def interval(record, key):
        return f"[{record[key][0]:.2f}, {record[key][1]:.2f}]" if key in record else ""

    width = max(len(n) for n in [*names, "union"])
    print(
        f"{'set':<{width}}  {'N':>7}  {'G-Vendi':>8}  {'interval':>16}  {'adds':>7}  {'interval':>16}  direction share"
    )
    for r in result.sets:
        print(
            f"{r['name']:<{width}}  {r['num_samples']:>7}  {r['gvendi']:>8.2f}  {interval(r, 'gvendi_ci'):>16}  "
            f"{r['adds']:>+7.2f}  {interval(r, 'adds_ci'):>16}  {r['direction_share']:.0%}"
        )
    u = result.union
    print(f"{'union':<{width}}  {u['num_samples']:>7}  {u['gvendi']:>8.2f}  {interval(u, 'gvendi_ci'):>16}")
    return 0


def _register_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="G-Vendi of sets and their union: does B add anything to A?")
    parser.add_argument("sets", nargs="+", help="feature files (.npy / `gvendi featurize` folders) or data files.")
    parser.add_argument("--names", default=None, help="comma-separated labels (default: the file names).")
    parser.add_argument("--ci", type=float, default=0.95, help="bootstrap confidence level (default 0.95).")
    parser.add_argument("--no-ci", action="store_true", help="no intervals (faster).")
    parser.add_argument("--n-boot", type=int, default=200, help="joint bootstrap resamples (default 200).")
    parser.add_argument("--selection-seed", type=int, default=0, help="seeds the bootstrap (not --projection-seed).")
    parser.add_argument("--json", action="store_true", help="print one JSON object.")
    add_data_arguments(parser)
    add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_compare, check=check_featurizer_args)


# report --------------------------------------------------------------------------------------------------------
def _texts_of(table: Any, args: argparse.Namespace) -> list[str] | None:
    columns = [c for c in (args.prompt_column, args.completion_column) if c in table.column_names]
    if args.messages_column and args.messages_column in table.column_names:
        return [" ".join(str(m.get("content", "")) for m in conv) for conv in table[args.messages_column]]
    if not columns:
        return None
    values = [table[c] for c in columns]
    return ["\n".join(str(v) for v in parts) for parts in zip(*values)]


def _run_report(args: argparse.Namespace) -> int:
    from ..io import load_table
    from ..report import build_report, embedding_features, write_report

    table = load_table(args.data, split=args.split, config=args.data_config, limit=args.limit)
    embeddings = None
    if args.features is None:
        featurizer = featurizer_from_args(args)
        features, provenance = featurizer.featurize(table), dict(featurizer.provenance)
        if not args.no_embedding:
            embeddings = embedding_features(featurizer, table)
    else:
        features, provenance = features_for(args, table, features=args.features)
    report = build_report(
        features,
        _texts_of(table, args),
        embeddings=embeddings,
        ci=args.ci,
        n_boot=args.n_boot,
        n_clusters=args.n_clusters,
        seed=args.selection_seed,
        title=args.title or f"Diversity report: {Path(args.data).name}",
        provenance={"data": args.data, **provenance},
    )
    written = write_report(report, args.out)
    m = report.metrics
    line = f"G-Vendi {m['gvendi']:.2f} ({m['ci_level']:.0%} CI {m['gvendi_ci'][0]:.2f}–{m['gvendi_ci'][1]:.2f})"
    if "distinct_2" in m:
        line += f", distinct-2 {m['distinct_2']:.3f}, compression ratio {m['compression_ratio']:.2f}"
    if "embedding_vendi" in m:
        line += f", embedding Vendi {m['embedding_vendi']:.2f}"
    print(f"{line}\nreport -> {written}")
    return 0


def _register_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="an HTML/Markdown diversity report with plots and examples.")
    parser.add_argument("data", help=".jsonl/.json/.parquet/.csv file, a saved dataset folder, or a Hub dataset id.")
    parser.add_argument("--out", required=True, help="report.html (self-contained) or report.md (PNGs beside it).")
    parser.add_argument(
        "--features", default=None, help="precomputed features (.npy, or a `gvendi featurize` folder)."
    )
    parser.add_argument("--no-embedding", action="store_true", help="skip embedding Vendi (one forward pass per row).")
    parser.add_argument("--ci", type=float, default=0.95, help="bootstrap level of G-Vendi's interval.")
    parser.add_argument("--n-boot", type=int, default=100, help="bootstrap resamples (default 100).")
    parser.add_argument("--n-clusters", type=int, default=None, help="k-means K (default √N, 2–50).")
    parser.add_argument(
        "--selection-seed", type=int, default=0, help="seeds k-means and the bootstrap (not --projection-seed)."
    )
    parser.add_argument("--title", default=None, help="the report's title (default: the data's name).")
    add_data_arguments(parser)
    add_featurizer_arguments(parser)
    parser.set_defaults(handler=_run_report, check=check_featurizer_args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``select``, ``compare`` and ``report`` to the ``gvendi`` command line."""
    _register_select(subparsers)
    _register_compare(subparsers)
    _register_report(subparsers)
