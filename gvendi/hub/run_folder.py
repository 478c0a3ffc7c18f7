"""Check that a finished synthesis run folder can be published, and turn it into a typed ``Dataset``.

The run folder is read by the synthesis package's one reader (:func:`gvendi.synthesis.load_run`; its layout is in
:mod:`gvendi.synthesis.store`), and each row is checked against its task's schema
(:attr:`gvendi.synthesis.Task.features`). ``requests.jsonl`` (the request log) is never published.

The published schemas (PrismMath for ``task="math"``, PrismNLI for ``task="nli"``) are :data:`MATH_FEATURES` and
:data:`NLI_FEATURES`, read from the tasks.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from ..data import NLI_LABELS
from ..synthesis.store import load_run
from ..synthesis.tasks import TASKS, get_task

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

TASK_FEATURES: dict[str, datasets.Features] = {name: get_task(name).features for name in TASKS}
"""The published features of each task (the tasks' own schemas)."""
MATH_FEATURES = TASK_FEATURES["math"]
"""PrismMath rows: ``id, problem, solution, answer, source, round, cluster, votes, generator, solver``."""
NLI_FEATURES = TASK_FEATURES["nli"]
"""PrismNLI rows: ``id, premise, hypothesis, label, source, round, cluster, votes, generator, solver`` (``label`` a
``ClassLabel`` over :data:`NLI_LABELS`)."""

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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    if task is not None and task not in TASK_FEATURES:
        raise ValueError(f"task must be one of {', '.join(TASK_FEATURES)} (got {task!r}).")
    config, report, raw_rows = load_run(run_dir)

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
    _check_report(report, run_dir / "report.json")
    dataset_path = run_dir / "dataset.jsonl"
    schema = get_task(run_task)

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    hidden_urls = 0
    for row_number, row in enumerate(raw_rows, start=1):
        row_problems = schema.row_problems(row)
        if row_problems:
            problems.extend(f"row {row_number}: {problem}" for problem in row_problems)
            continue
        public = {name: row[name] for name in schema.output_fields}
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
    schema = get_task(run.task)
    return datasets.Dataset.from_dict(schema.encode_columns(run.rows), features=schema.features)
