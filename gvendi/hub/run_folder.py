"""Read a finished synthesis run folder, check that it can be published, and turn it into a typed ``Dataset``.

A run folder, as ``gvendi synthesize`` writes it::

    RUN_DIR/
      config.json     the resolved synthesis config ("task", "proxy", "generator", "solver", "vote", ...)
      report.json     per-round counts, G-Vendi of the seed pool and of the final set, decontamination report
      dataset.jsonl   the final pool (seeds + accepted rows); written only when the run completed
      requests.jsonl  the request log (never published)

The published schemas (PrismMath for ``task="math"``, PrismNLI for ``task="nli"``) are :data:`MATH_FEATURES` and
:data:`NLI_FEATURES`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

logger = logging.getLogger(__name__)

__all__ = [
    "MATH_FEATURES",
    "NLI_FEATURES",
    "NLI_LABELS",
    "TASK_FEATURES",
    "UNNAMED_ENDPOINT",
    "PublishableRun",
    "build_dataset",
    "public_label",
    "read_run",
]

NLI_LABELS = ("entailment", "neutral", "contradiction")
"""PrismNLI label names, in ``ClassLabel`` order (0, 1, 2), the MNLI convention."""

_PROVENANCE_FEATURES = {
    "source": datasets.Value("string"),
    "round": datasets.Value("int32"),
    "cluster": datasets.Value("int32"),
    "votes": datasets.Value("int32"),
    "generator": datasets.Value("string"),
    "solver": datasets.Value("string"),
}

MATH_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "problem": datasets.Value("string"),
        "solution": datasets.Value("string"),
        "answer": datasets.Value("string"),
        **_PROVENANCE_FEATURES,
    }
)
"""PrismMath rows: ``id, problem, solution, answer, source, round, cluster, votes, generator, solver``."""

NLI_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "premise": datasets.Value("string"),
        "hypothesis": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(NLI_LABELS)),
        **_PROVENANCE_FEATURES,
    }
)
"""PrismNLI rows: ``id, premise, hypothesis, label, source, round, cluster, votes, generator, solver``."""

TASK_FEATURES = {"math": MATH_FEATURES, "nli": NLI_FEATURES}
"""The published features of each task."""

_TEXT_COLUMNS = {"math": ("problem", "solution", "answer"), "nli": ("premise", "hypothesis")}
_REQUIRED_CONFIG_KEYS = ("task", "proxy", "generator", "rounds", "seed")
_MAX_ERRORS_SHOWN = 5
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s,;]+")
UNNAMED_ENDPOINT = "unnamed-endpoint"
"""What replaces a server URL in a row's ``generator``/``solver`` label (URLs are never published)."""


def public_label(label: str | None) -> str | None:
    """A ``generator``/``solver`` label with any server URL replaced by ``unnamed-endpoint``.

    ``gvendi synthesize`` labels rows ``backend:model``, or ``backend:URL`` when no model name was configured; a URL
    can name an internal host, so it is not published.
    """
    return None if label is None else _URL_RE.sub(UNNAMED_ENDPOINT, label)


@dataclass
class PublishableRun:
    """A run folder that passed every check :func:`read_run` makes.

    Attributes:
        run_dir (`Path`): the folder.
        task (`str`): ``"math"`` or ``"nli"``.
        config (`dict`): ``config.json``.
        report (`dict`): ``report.json``.
        rows (`list[dict]`): ``dataset.jsonl``, in file order, with the published columns only.
    """

    run_dir: Path
    task: str
    config: dict[str, Any]
    report: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def num_seed_rows(self) -> int:
        """Rows whose ``source`` is ``"seed"``."""
        return sum(1 for row in self.rows if row["source"] == "seed")

    @property
    def num_generated_rows(self) -> int:
        """Rows whose ``source`` is ``"generated"``."""
        return len(self.rows) - self.num_seed_rows


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path.parent} is not a synthesis run folder: {path.name} ({what}) is missing.")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}); the run folder is damaged."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, found {type(value).__name__}.")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_row(row: Any, line: int, task: str) -> list[str]:
    """Problems with one ``dataset.jsonl`` row (empty when it is fine)."""
    if not isinstance(row, dict):
        return [f"line {line}: expected a JSON object, found {type(row).__name__}"]
    problems = []
    expected = TASK_FEATURES[task]
    missing = [name for name in expected if name not in row]
    if missing:
        problems.append(f"line {line}: missing column(s) {', '.join(missing)}")
        return problems
    for name in ("id", *_TEXT_COLUMNS[task]):
        if not isinstance(row[name], str) or (name != "answer" and not row[name].strip()):
            problems.append(f"line {line}: {name!r} must be a non-empty string (got {row[name]!r:.60})")
    if task == "nli" and row["label"] not in NLI_LABELS:
        problems.append(f"line {line}: label must be one of {', '.join(NLI_LABELS)} (got {row['label']!r})")
    if row["source"] not in ("seed", "generated"):
        problems.append(f"line {line}: source must be 'seed' or 'generated' (got {row['source']!r})")
    for name in ("round", "cluster", "votes"):
        if not _is_int(row[name]):
            problems.append(f"line {line}: {name!r} must be an integer (got {row[name]!r})")
    if _is_int(row["round"]) and row["source"] == "seed" and row["round"] != 0:
        problems.append(f"line {line}: a seed row must have round 0 (got {row['round']})")
    for name in ("generator", "solver"):
        if row[name] is not None and not isinstance(row[name], str):
            problems.append(f"line {line}: {name!r} must be a string or null (got {row[name]!r})")
    return problems


def _check_report(report: dict[str, Any], path: Path) -> None:
    rounds = report.get("rounds")
    if not isinstance(rounds, list):
        raise ValueError(f"{path}: 'rounds' must be a list of per-round reports.")
    for index, entry in enumerate(rounds):
        if not isinstance(entry, dict) or not _is_int(entry.get("accepted")):
            raise ValueError(f"{path}: rounds[{index}] must be an object with an integer 'accepted' count.")
    gvendi = report.get("gvendi")
    if not isinstance(gvendi, dict):
        raise ValueError(f"{path}: 'gvendi' must be an object with 'seed_pool' and 'final' scores.")
    for key in ("seed_pool", "final"):
        value = gvendi.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{path}: gvendi.{key} must be a finite number (got {value!r}).")


def read_run(run_dir: str | Path, *, task: str | None = None) -> PublishableRun:
    """Read a finished synthesis run folder and check everything publishing relies on.

    Checks, each failing with a ``ValueError`` that names the file, the row and the fix: the three files exist and
    parse; the run is complete (``report.json`` has ``"complete": true`` and ``dataset.jsonl`` exists); the task of
    ``config.json``, ``report.json`` and the caller agree; every row has the task's columns with the right types
    (NLI labels among :data:`NLI_LABELS`, ``source`` is ``seed`` or ``generated``); ids are unique; and the number of
    generated rows equals the sum of the report's per-round ``accepted`` counts.

    Args:
        run_dir (`str` or `Path`): the run folder.
        task (`str`, *optional*): the task the caller expects (``"math"`` or ``"nli"``); ``None`` accepts either.

    Returns:
        [`PublishableRun`]: the config, report and rows.

    Raises:
        ValueError: if the folder is not a complete run of the expected task, or a row is malformed.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run folder {str(run_dir)!r} does not exist or is not a folder.")
    if task is not None and task not in TASK_FEATURES:
        raise ValueError(f"task must be one of {', '.join(TASK_FEATURES)} (got {task!r}).")
    config = _read_json(run_dir / "config.json", "the synthesis config")
    report = _read_json(run_dir / "report.json", "the run report")

    missing = [key for key in _REQUIRED_CONFIG_KEYS if key not in config]
    if missing:
        raise ValueError(f"{run_dir / 'config.json'} lacks {', '.join(missing)}; was it written by gvendi synthesize?")
    run_task = config["task"]
    if run_task not in TASK_FEATURES:
        raise ValueError(f"{run_dir / 'config.json'}: task must be 'math' or 'nli' (got {run_task!r}).")
    if report.get("task", run_task) != run_task:
        raise ValueError(
            f"{run_dir}: config.json says task {run_task!r} but report.json says {report.get('task')!r}; "
            "the folder mixes two runs."
        )
    if task is not None and run_task != task:
        raise ValueError(
            f"{run_dir} is a {run_task!r} run, not a {task!r} run; publish it with the {run_task} recipe instead."
        )
    if report.get("complete") is not True:
        raise ValueError(
            f"{run_dir} is not a complete run (report.json has complete={report.get('complete')!r}); "
            "resume it with `gvendi synthesize` until it finishes before publishing."
        )
    dataset_path = run_dir / "dataset.jsonl"
    if not dataset_path.is_file():
        raise ValueError(
            f"{run_dir} has no dataset.jsonl although report.json says it is complete; the run folder is damaged."
        )
    _check_report(report, run_dir / "report.json")

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    hidden_urls = 0
    with dataset_path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"line {line_number}: not valid JSON ({err.msg})")
                continue
            row_problems = _check_row(row, line_number, run_task)
            if row_problems:
                problems.extend(row_problems)
                continue
            public = {name: row[name] for name in TASK_FEATURES[run_task]}
            for name in ("generator", "solver"):
                label = public_label(public[name])
                hidden_urls += label != public[name]
                public[name] = label
            rows.append(public)
    if not problems:
        duplicates = [key for key, count in Counter(row["id"] for row in rows).items() if count > 1]
        if duplicates:
            problems.append(f"duplicate id(s) {', '.join(map(repr, duplicates[:_MAX_ERRORS_SHOWN]))}")
    if problems:
        shown = "\n  ".join(problems[:_MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(problems) - _MAX_ERRORS_SHOWN} more" if len(problems) > _MAX_ERRORS_SHOWN else ""
        raise ValueError(f"{dataset_path} has {len(problems)} problem(s):\n  {shown}{more}")
    if not rows:
        raise ValueError(f"{dataset_path} is empty; there is nothing to publish.")

    if hidden_urls:
        logger.warning(
            "%d generator/solver label(s) in %s name a server URL; they are published as %r. Set the endpoint's "
            "`model` in the synthesis config so the data names the model instead.",
            hidden_urls,
            dataset_path,
            UNNAMED_ENDPOINT,
        )
    run = PublishableRun(run_dir=run_dir, task=run_task, config=config, report=report, rows=rows)
    accepted = sum(entry["accepted"] for entry in report["rounds"])
    if accepted != run.num_generated_rows:
        raise ValueError(
            f"{run_dir}: report.json counts {accepted} accepted row(s) over its rounds but dataset.jsonl holds "
            f"{run.num_generated_rows} generated row(s); the report and the data disagree, so the card would lie."
        )
    logger.debug("read run %s: task=%s, %d rows (%d seeds)", run_dir, run_task, len(rows), run.num_seed_rows)
    return run


def build_dataset(run: str | Path | PublishableRun, *, task: str | None = None) -> datasets.Dataset:
    """The published ``Dataset`` of a finished run: rows in ``dataset.jsonl`` order, typed by the task's features.

    Args:
        run (`str`, `Path` or [`PublishableRun`]): a run folder, or one already read by :func:`read_run`.
        task (`str`, *optional*): the task the caller expects; ``None`` accepts either.

    Returns:
        `datasets.Dataset`: with :data:`MATH_FEATURES` or :data:`NLI_FEATURES` (NLI labels as ``ClassLabel``).

    Raises:
        ValueError: as :func:`read_run`.

    Example:
        >>> ds = build_dataset("runs/math-0")  # doctest: +SKIP
        >>> ds.features["round"]  # doctest: +SKIP
        Value('int32')
    """
    if not isinstance(run, PublishableRun):
        run = read_run(run, task=task)
    elif task is not None and run.task != task:
        raise ValueError(f"{run.run_dir} is a {run.task!r} run, not a {task!r} run.")
    features = TASK_FEATURES[run.task]
    columns: dict[str, list[Any]] = {name: [row[name] for row in run.rows] for name in features}
    if run.task == "nli":
        columns["label"] = [NLI_LABELS.index(label) for label in columns["label"]]
    return datasets.Dataset.from_dict(columns, features=features)
