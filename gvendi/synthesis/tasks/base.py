"""What a synthesis task defines: seed validation, prompts, parsing, the vote, and the output row."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

__all__ = ["PROVENANCE_COLUMNS", "Task", "VoteOutcome", "load_seed_file"]

Messages = list[dict[str, str]]

PROVENANCE_COLUMNS = {
    "source": "string",
    "round": "int32",
    "cluster": "int32",
    "votes": "int32",
    "generator": "string",
    "solver": "string",
}
"""The columns every task's rows end with (after its own): where the row came from and how its vote went."""


@dataclass
class VoteOutcome:
    """The result of N solver/judge samples for one candidate.

    Attributes:
        solved: at least one sample gave a usable answer.
        accepted: the majority answer reached τ votes (and is not tied).
        votes: size of the largest agreeing group.
        fields: the row fields the vote decides (math: ``solution``, ``answer``; nli: ``label``).
        reason: why the candidate was dropped, when it was.
    """

    solved: bool
    accepted: bool
    votes: int
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


class Task:
    """Base class of a synthesis task.

    A task turns few-shot examples into a generation prompt, parses the generator's answer into candidates, asks
    N solver/judge samples per candidate, and decides the candidate's fields by majority vote with threshold τ.

    It also owns its row schema: ``columns`` (its own columns: ``"string"``, or a tuple of class names for a
    ``ClassLabel``) between ``id`` and the provenance columns. :attr:`features` (``datasets.Features``),
    :attr:`output_fields`, :meth:`row_problems` and :meth:`encode_columns` are built from it, and the run folder,
    the Hub publisher and the dataset card read the schema from here.
    """

    name = ""
    required_fields: tuple[str, ...] = ()
    columns: dict[str, str | tuple[str, ...]] = {}
    """The task's own columns and their types (``"string"`` or ``ClassLabel`` names)."""
    optional_text: tuple[str, ...] = ()
    """String columns that may be empty (math's ``answer``)."""

    @property
    def output_fields(self) -> tuple[str, ...]:
        """The published columns, in order: ``id``, the task's columns, then the provenance columns."""
        return ("id", *self.columns, *PROVENANCE_COLUMNS)

    @property
    def features(self) -> datasets.Features:
        """The published row schema as ``datasets.Features`` (class-name columns as ``ClassLabel``)."""
        import datasets

        def feature(kind: str | tuple[str, ...]):
            return datasets.ClassLabel(names=list(kind)) if isinstance(kind, tuple) else datasets.Value(kind)

        return datasets.Features(
            {name: feature(kind) for name, kind in {"id": "string", **self.columns, **PROVENANCE_COLUMNS}.items()}
        )

    def row_problems(self, row: Any) -> list[str]:
        """What is wrong with one published row (``dataset.jsonl``) against the schema; empty when nothing is."""
        if not isinstance(row, dict):
            return [f"expected a JSON object, found {type(row).__name__}"]
        missing = [name for name in self.output_fields if name not in row]
        if missing:
            return [f"missing column(s) {', '.join(missing)}"]
        problems = []
        for name, kind in {"id": "string", **self.columns}.items():
            if isinstance(kind, tuple):
                if row[name] not in kind:
                    problems.append(f"{name} must be one of {', '.join(kind)} (got {row[name]!r})")
            elif not isinstance(row[name], str) or (name not in self.optional_text and not row[name].strip()):
                problems.append(f"{name!r} must be a non-empty string (got {row[name]!r:.60})")
        if row["source"] not in ("seed", "generated"):
            problems.append(f"source must be 'seed' or 'generated' (got {row['source']!r})")
        for name, kind in PROVENANCE_COLUMNS.items():
            value = row[name]
            if kind == "int32" and (not isinstance(value, int) or isinstance(value, bool)):
                problems.append(f"{name!r} must be an integer (got {value!r})")
            elif kind == "string" and name not in ("source",) and value is not None and not isinstance(value, str):
                problems.append(f"{name!r} must be a string or null (got {value!r})")
        if isinstance(row["round"], int) and row["source"] == "seed" and row["round"] != 0:
            problems.append(f"a seed row must have round 0 (got {row['round']})")
        return problems

    def encode_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Rows as columns in :attr:`features` order, class names turned into ``ClassLabel`` indices."""
        columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in self.output_fields}
        for name, kind in self.columns.items():
            if isinstance(kind, tuple):
                columns[name] = [kind.index(value) for value in columns[name]]
        return columns

    def validate_seed(self, row: Any, where: str) -> dict[str, Any]:
        """Check one seed row; ``where`` (file and line) goes into the error message."""
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}.")
        missing = [
            name for name in self.required_fields if not isinstance(row.get(name), str) or not row[name].strip()
        ]
        if missing:
            raise ValueError(
                f"{where}: missing or empty field(s) {missing}; every {self.name} seed row needs "
                f"{list(self.required_fields)} as non-empty strings."
            )
        return row

    def generation_messages(self, shots: list[dict[str, Any]], n_new: int, rng) -> Messages:
        raise NotImplementedError

    def parse_generation(self, text: str, n_new: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def solver_messages(self, candidate: dict[str, Any]) -> Messages:
        raise NotImplementedError

    def vote(self, candidate: dict[str, Any], responses: list[str | None], tau: int) -> VoteOutcome:
        raise NotImplementedError

    def filter_text(self, row: dict[str, Any]) -> str:
        """The text that deduplication and decontamination look at."""
        raise NotImplementedError

    def prompt_completion(self, row: dict[str, Any]) -> dict[str, str]:
        """The (prompt, completion) pair the G-Vendi featurizer reads."""
        raise NotImplementedError

    def paraphrase_messages(self, candidate_text: str, benchmark_text: str) -> Messages:
        """Ask whether a candidate restates a benchmark item (answer ``yes``/``no``)."""
        return [
            {
                "role": "user",
                "content": (
                    "Decide whether two texts are paraphrases of the same item: same question or claim, possibly "
                    "reworded, with the same numbers and the same answer.\n\n"
                    f"Text A:\n{candidate_text}\n\nText B:\n{benchmark_text}\n\n"
                    "Reply with a single word: yes or no."
                ),
            }
        ]


_FENCE = re.compile(r"^```[a-zA-Z]*\s*$", re.MULTILINE)


def strip_fences(text: str) -> str:
    """Remove Markdown code fences a model may wrap its answer in."""
    return _FENCE.sub("", text)


def load_seed_file(path: str | Path, task: Task) -> list[dict[str, Any]]:
    """Read a JSONL seed file, validating each row for ``task``.

    Raises:
        ValueError: naming the file and line of the first malformed row, or when the file has no rows.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"seeds file {path} does not exist; pass a JSONL file with one {task.name} example a line.")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON object "
                    f"with {list(task.required_fields)}."
                ) from None
            rows.append(task.validate_seed(row, where))
    if not rows:
        raise ValueError(f"seeds file {path} has no rows; it needs at least one {task.name} example.")
    return rows
