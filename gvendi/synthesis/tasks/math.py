"""The math task: few-shot problem generation, N solver samples, ``\\boxed{}`` answers, majority vote with τ."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from ._shared import few_shot_messages, split_after
from .base import Messages, Task, VoteOutcome, strip_fences

__all__ = ["MathTask", "extract_boxed"]

_BOLD = r"(?:\*\*|__)?"
# "### Problem 1", "**Problem 2:**", "Problem 3.", "Example 6:" (the few-shot labels), "Question 1)", "New problem #2"
_HEADER = re.compile(
    rf"^[ \t]*(?:#{{1,6}}[ \t]*)?{_BOLD}[ \t]*(?:new[ \t]+)?(problem|example|question|exercise)[ \t]*#?(\d+)[ \t]*"
    rf"{_BOLD}[ \t]*[:.)]?[ \t]*{_BOLD}[ \t]*:?",
    re.IGNORECASE | re.MULTILINE,
)
# "1. …", "2) …", "**1.** …", "## 1. …", "1: …"
_NUMBERED = re.compile(
    rf"^[ \t]*(?:#{{1,6}}[ \t]*)?{_BOLD}[ \t]*(\d+)[ \t]*[.):][ \t]*{_BOLD}(?:[ \t]+|[ \t]*$)", re.MULTILINE
)
_JSON_KEYS = ("problem", "question", "statement", "text", "content")
_TAIL = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?[ \t]*(?:solution|answer|final answer)\b", re.IGNORECASE | re.MULTILINE
)


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces matched; else ``None``."""
    last = None
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    last = text[start:i].strip()
                    break
    return last or None


def _normalise(answer: str) -> str:
    answer = re.sub(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}", r"\1", answer)
    answer = answer.replace("\\!", "").replace("\\,", "").replace("$", "").replace("dfrac", "frac")
    return re.sub(r"\s+", "", answer).rstrip(".").lower()


def _pieces(text: str, matches: list[re.Match]) -> list[str]:
    """The text after each match, up to the next one."""
    return [
        text[match.end() : (matches[i + 1].start() if i + 1 < len(matches) else len(text))]
        for i, match in enumerate(matches)
    ]


def _json_problems(text: str) -> list[str] | None:
    """Problem statements from a JSON answer, or ``None`` when the answer is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        closing = "]" if stripped[0] == "[" else "}"
        try:
            data = json.loads(stripped[: stripped.rfind(closing) + 1])
        except json.JSONDecodeError:
            return None
    if isinstance(data, dict):
        lists = (data[key] for key in ("problems", "questions", "items") if isinstance(data.get(key), list))
        listed = next(lists, None)
        data = listed if listed is not None else [data]
    if not isinstance(data, list):
        return None
    out = []
    for item in data:
        if isinstance(item, dict):
            item = next((item[key] for key in _JSON_KEYS if isinstance(item.get(key), str)), None)
        if isinstance(item, str):
            out.append(item)
    return out


class _Equivalence:
    """Answer equivalence with ``math_verify`` (symbolic), falling back to normalised strings."""

    def __init__(self):
        try:
            import math_verify
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "the math task needs `math-verify` to compare answers: pip install math-verify (or, in a clone of "
                "gvendi, pip install -e '.[synthesis]')"
            ) from exc
        self._mv = math_verify

    def _timeout(self) -> int | None:
        # math_verify's timeouts use SIGALRM, which only works in the main thread.
        return 5 if threading.current_thread() is threading.main_thread() else None

    def parse(self, answer: str) -> Any:
        try:
            return self._mv.parse(f"\\boxed{{{answer}}}", parsing_timeout=self._timeout())
        except Exception:  # noqa: BLE001 - an unparsable answer falls back to string comparison
            return []

    def same(self, a: str, parsed_a: Any, b: str, parsed_b: Any) -> bool:
        if _normalise(a) == _normalise(b):
            return True
        if not parsed_a or not parsed_b:
            return False
        try:
            return bool(self._mv.verify(parsed_a, parsed_b, timeout_seconds=self._timeout()))
        except Exception:  # noqa: BLE001
            return False


class MathTask(Task):
    """Math word problems: rows ``problem``, ``solution`` (ending in ``\\boxed{answer}``), ``answer``.

    Generation prompt: ``shots`` example problems (problems only, shuffled), then a request for ``new_per_prompt``
    new, self-contained problems with one exact answer, each under a ``### Problem i`` header. The solver is asked
    to reason step by step and put the final answer in ``\\boxed{}``; answers are grouped by ``math_verify``
    equivalence and the candidate is kept when the largest group has at least τ members and no tie. Its solution is
    the first sample of that group.
    """

    name = "math"
    required_fields = ("problem", "solution")
    columns = {"problem": "string", "solution": "string", "answer": "string"}
    optional_text = ("answer",)
    min_chars = 20
    max_chars = 4000

    def __init__(self):
        self._equivalence: _Equivalence | None = None

    def validate_seed(self, row: Any, where: str) -> dict[str, Any]:
        row = super().validate_seed(row, where)
        answer = row.get("answer")
        if answer is None:
            answer = extract_boxed(row["solution"])
            if answer is None:
                raise ValueError(
                    f"{where}: no 'answer' field and no \\boxed{{}} in 'solution'; add one of them to the row."
                )
        return {**row, "answer": str(answer)}

    def generation_messages(self, shots: list[dict[str, Any]], n_new: int, rng) -> Messages:
        layout = "\n\n".join(f"### Problem {i}\n<the problem statement>" for i in range(1, n_new + 1))
        return few_shot_messages(
            shots,
            lambda shot: shot["problem"].strip(),
            intro="You are writing new math problems for a training set. Here are some example problems:",
            request=(
                f"Write {n_new} new problem{'s' if n_new > 1 else ''}. Each must be self-contained, solvable, and "
                "have one exact final answer. Vary the reasoning it needs: do not copy an example with new numbers. "
                "Write only the problem statements, no solutions or answers"
            ),
            layout=layout,
        )

    def parse_generation(self, text: str, n_new: int) -> list[dict[str, Any]]:
        """Problems in any common layout; solutions the model added are cut off.

        Layouts, tried in this order: JSON (a list of strings or of ``{"problem": ...}`` objects, or an object with
        a ``problems`` list), ``Problem i`` headers (the requested ``### Problem i``, bold ``**Problem i:**``, and the
        few-shot examples' own ``Example i:`` labels; ``Problem`` headers win when both appear), then a numbered list
        (``1.``, ``2)``, ``**1.**``, ``## 1.``).
        """
        text = strip_fences(text or "")
        pieces = _json_problems(text)
        if pieces is None:
            headers = list(_HEADER.finditer(text))
            if any(match.group(1).lower() == "problem" for match in headers):
                # the model echoed example labels beside the requested headers: the problems are the new ones
                headers = [match for match in headers if match.group(1).lower() == "problem"]
            pieces = _pieces(text, headers) or split_after(text, _NUMBERED)
        problems = []
        for piece in pieces[:n_new]:
            tail = _TAIL.search(piece)
            if tail:
                piece = piece[: tail.start()]
            piece = piece.strip().strip("*").strip()
            if (
                self.min_chars <= len(piece) <= self.max_chars
                and len(piece.split()) >= 4
                and "<the problem" not in piece
            ):
                problems.append({"problem": piece})
        return problems

    def solver_messages(self, candidate: dict[str, Any]) -> Messages:
        content = (
            "Solve the following math problem. Reason step by step, then give the final answer as \\boxed{...}.\n\n"
            f"Problem: {candidate['problem']}"
        )
        return [{"role": "user", "content": content}]

    def vote(self, candidate: dict[str, Any], responses: list[str | None], tau: int) -> VoteOutcome:
        if self._equivalence is None:
            self._equivalence = _Equivalence()
        eq = self._equivalence
        answers = []
        for index, response in enumerate(responses):
            boxed = extract_boxed(response) if response else None
            if boxed is not None:
                answers.append((index, boxed, eq.parse(boxed)))
        if not answers:
            return VoteOutcome(False, False, 0, reason="no_answer")
        groups: list[list[tuple[int, str, Any]]] = []
        for item in answers:
            for group in groups:
                if eq.same(group[0][1], group[0][2], item[1], item[2]):
                    group.append(item)
                    break
            else:
                groups.append([item])
        groups.sort(key=len, reverse=True)
        best = len(groups[0])
        if best < tau:
            return VoteOutcome(True, False, best, reason="below_tau")
        if len(groups) > 1 and len(groups[1]) == best:
            return VoteOutcome(True, False, best, reason="tie")
        first = groups[0][0]
        solution = responses[first[0]].strip()
        return VoteOutcome(True, True, best, {"solution": solution, "answer": first[1]})

    def filter_text(self, row: dict[str, Any]) -> str:
        return row["problem"]

    def prompt_completion(self, row: dict[str, Any]) -> dict[str, str]:
        from gvendi.data import math_prompt_completion

        return math_prompt_completion(row["problem"], row["solution"])
