"""Synthesis tasks: math (problem/solution/answer) and nli (premise/hypothesis/label)."""

from .base import Task, VoteOutcome, load_seed_file
from .math import MathTask, extract_boxed
from .nli import NLI_LABELS, NLITask, parse_label

__all__ = [
    "NLI_LABELS",
    "MathTask",
    "NLITask",
    "Task",
    "VoteOutcome",
    "extract_boxed",
    "get_task",
    "load_seed_file",
    "parse_label",
]


def get_task(name: str) -> Task:
    """The task called ``name`` (``"math"`` or ``"nli"``)."""
    tasks = {"math": MathTask, "nli": NLITask}
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(tasks)}.")
    return tasks[name]()
