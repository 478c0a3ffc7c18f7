"""Synthesis tasks: math (problem/solution/answer) and nli (premise/hypothesis/label)."""

from .base import Task, VoteOutcome, load_seed_file
from .math import MathTask, extract_boxed
from .nli import NLI_LABELS, NLITask, parse_label

__all__ = [
    "NLI_LABELS",
    "TASKS",
    "MathTask",
    "NLITask",
    "Task",
    "VoteOutcome",
    "extract_boxed",
    "get_task",
    "load_seed_file",
    "parse_label",
]


_TASK_CLASSES: dict[str, type[Task]] = {"math": MathTask, "nli": NLITask}
TASKS = tuple(_TASK_CLASSES)
"""The task names: ``("math", "nli")``."""


def get_task(name: str) -> Task:
    """The task called ``name`` (``"math"`` or ``"nli"``)."""
    if name not in _TASK_CLASSES:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(_TASK_CLASSES)}.")
    return _TASK_CLASSES[name]()
