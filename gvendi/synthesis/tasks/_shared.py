"""What the math and nli tasks share: the few-shot generation prompt and header splitting."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .base import Messages


def few_shot_messages(
    shots: list[dict[str, Any]],
    render_shot: Callable[[dict[str, Any]], str],
    *,
    intro: str,
    request: str,
    layout: str,
) -> Messages:
    """One user message: ``intro``, the shots as ``Example i:`` blocks, then ``request`` asking for ``layout``."""
    examples = "\n\n".join(f"Example {i}:\n{render_shot(shot)}" for i, shot in enumerate(shots, start=1))
    content = f"{intro}\n\n{examples}\n\n{request}, in exactly this layout:\n\n{layout}"
    return [{"role": "user", "content": content}]


def split_after(text: str, pattern: re.Pattern) -> list[str]:
    """The pieces of ``text`` that follow each match of ``pattern``, each up to the next match (none without one)."""
    matches = list(pattern.finditer(text))
    return [
        text[match.end() : (matches[i + 1].start() if i + 1 < len(matches) else len(text))]
        for i, match in enumerate(matches)
    ]
