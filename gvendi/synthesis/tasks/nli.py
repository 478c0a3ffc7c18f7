"""The NLI task: premise/hypothesis generation, labels decided by N judge samples and a vote threshold τ."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ...data import NLI_LABELS
from ._shared import few_shot_messages, split_after
from .base import Messages, Task, VoteOutcome, strip_fences

__all__ = ["NLI_LABELS", "NLITask", "parse_label"]

_HEADER = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?[ \t]*(?:new[ \t]+)?(?:pair|example)[ \t]*#?(\d+)[ \t]*[:.)]?[ \t]*(?:\*\*)?",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD = r"^[ \t]*(?:[-*][ \t]*)?(?:\*\*)?{name}(?:\*\*)?[ \t]*(?:\*\*)?:(?:\*\*)?[ \t]*(.+?)[ \t]*$"
_PREMISE = re.compile(_FIELD.format(name="premise"), re.IGNORECASE | re.MULTILINE)
_HYPOTHESIS = re.compile(_FIELD.format(name="hypothesis"), re.IGNORECASE | re.MULTILINE)
_LABEL_LINE = re.compile(r"label\s*[:=]\s*\**\s*(entailment|neutral|contradiction)", re.IGNORECASE)
_LABEL_WORD = re.compile(r"\b(entailment|neutral|contradiction)\b", re.IGNORECASE)


def parse_label(text: str | None) -> str | None:
    """The judge's label: the last ``Label: X`` line, else the only label word present; ``None`` otherwise."""
    if not text:
        return None
    found = _LABEL_LINE.findall(text)
    if found:
        return found[-1].lower()
    words = {word.lower() for word in _LABEL_WORD.findall(text)}
    return words.pop() if len(words) == 1 else None


def _shot_text(shot: dict[str, Any]) -> str:
    """A labelled example pair as the generation prompt shows it."""
    return f"Premise: {shot['premise'].strip()}\nHypothesis: {shot['hypothesis'].strip()}\nRelation: {shot['label']}"


class NLITask(Task):
    """Natural-language inference: rows ``premise``, ``hypothesis``, ``label`` (entailment/neutral/contradiction).

    Generation prompt: ``shots`` labelled example pairs (shuffled), then a request for ``new_per_prompt`` new pairs,
    each with a target relation drawn at random (so the three labels stay balanced), under ``### Pair i`` headers
    with ``Premise:`` and ``Hypothesis:`` lines. The target is only a hint: each pair is shown to N judges, which end
    with ``Label: <label>``; the pair keeps the majority label when it has at least τ votes and no tie (the default
    N=2, τ=2 needs both judges to agree).
    """

    name = "nli"
    required_fields = ("premise", "hypothesis", "label")
    columns = {"premise": "string", "hypothesis": "string", "label": NLI_LABELS}
    max_chars = 2000

    def validate_seed(self, row: Any, where: str) -> dict[str, Any]:
        row = super().validate_seed(row, where)
        label = row["label"].strip().lower()
        if label not in NLI_LABELS:
            raise ValueError(f"{where}: label {row['label']!r} is not one of {list(NLI_LABELS)}.")
        return {**row, "label": label}

    def generation_messages(self, shots: list[dict[str, Any]], n_new: int, rng) -> Messages:
        targets = [NLI_LABELS[int(rng.integers(len(NLI_LABELS)))] for _ in range(n_new)]
        layout = "\n\n".join(
            f"### Pair {i}\nPremise: <premise>\nHypothesis: <hypothesis whose relation is {target}>"
            for i, target in enumerate(targets, start=1)
        )
        return few_shot_messages(
            shots,
            _shot_text,
            intro=(
                "You are writing natural-language inference examples. A hypothesis is an entailment when the premise "
                "makes it true, a contradiction when the premise makes it false, and neutral otherwise. Examples:"
            ),
            request=(
                f"Write {n_new} new premise-hypothesis pair{'s' if n_new > 1 else ''} that test different reasoning "
                "from the examples (not the same sentences with new names), each with the relation asked for"
            ),
            layout=layout,
        )

    def parse_generation(self, text: str, n_new: int) -> list[dict[str, Any]]:
        """Pairs under ``Pair i`` headers (or, without headers, consecutive Premise/Hypothesis lines)."""
        text = strip_fences(text or "")
        pieces = split_after(text, _HEADER)
        if not pieces:
            starts = [m.start() for m in _PREMISE.finditer(text)]
            pieces = [text[s : (starts[i + 1] if i + 1 < len(starts) else len(text))] for i, s in enumerate(starts)]
        pairs = []
        for piece in pieces[:n_new]:
            premise, hypothesis = _PREMISE.search(piece), _HYPOTHESIS.search(piece)
            if not premise or not hypothesis:
                continue
            p, h = premise.group(1).strip().strip("*").strip(), hypothesis.group(1).strip().strip("*").strip()
            if (
                len(p.split()) >= 2
                and len(h.split()) >= 2
                and len(p) + len(h) <= self.max_chars
                and "<premise>" not in p
                and "<hypothesis" not in h
                and p != h
            ):
                pairs.append({"premise": p, "hypothesis": h})
        return pairs

    def solver_messages(self, candidate: dict[str, Any]) -> Messages:
        content = (
            "Read the premise and the hypothesis. If the premise makes the hypothesis true, the relation is "
            "entailment; if it makes it false, contradiction; otherwise neutral.\n\n"
            f"Premise: {candidate['premise']}\nHypothesis: {candidate['hypothesis']}\n\n"
            "Think briefly, then end with one line: Label: entailment, Label: neutral or Label: contradiction."
        )
        return [{"role": "user", "content": content}]

    def vote(self, candidate: dict[str, Any], responses: list[str | None], tau: int) -> VoteOutcome:
        labels = [label for label in (parse_label(r) for r in responses) if label is not None]
        if not labels:
            return VoteOutcome(False, False, 0, reason="no_answer")
        counts = Counter(labels).most_common()
        best_label, best = counts[0]
        if best < tau:
            return VoteOutcome(True, False, best, reason="below_tau")
        if len(counts) > 1 and counts[1][1] == best:
            return VoteOutcome(True, False, best, reason="tie")
        return VoteOutcome(True, True, best, {"label": best_label})

    def filter_text(self, row: dict[str, Any]) -> str:
        return f"{row['premise']}\n{row['hypothesis']}"

    def prompt_completion(self, row: dict[str, Any]) -> dict[str, str]:
        from gvendi.data import nli_prompt_completion

        return nli_prompt_completion(row["premise"], row["hypothesis"], row["label"])
