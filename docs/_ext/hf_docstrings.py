"""A griffe extension for the API pages: Hugging Face-style argument lines read well in the rendered tables.

gvendi's docstrings follow the Hugging Face convention ``dim (`int`, *optional*, defaults to 1024): text``. Griffe's
Google parser takes everything in the parentheses as the type, so the type column would show the raw
"`int`, *optional*, defaults to 1024". This extension rewrites such a line, before parsing, to
``dim (int): text (*optional*, defaults to 1024)``: the type column shows the type, the description carries the rest
as rendered Markdown. Docstrings in the code are unchanged (``help()`` shows them as written).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ARG = re.compile(r"^(?P<indent>\s+)(?P<name>\*{0,2}\w+) \((?P<inside>[^()\n]*`[^()\n]*)\):(?P<rest>.*)$")


def _plain_type(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"\1", text).strip()


def rewrite(docstring: str) -> str:
    """The docstring with every Hugging Face-style argument line made Google-style (see the module docstring)."""
    lines = docstring.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        match = _ARG.match(line)
        if not match:
            out.append(line)
            continue
        parts = [p.strip() for p in match["inside"].split(",")]
        type_text = _plain_type(parts[0]) if parts and "optional" not in parts[0] else ""
        extra = ", ".join(p for p in parts[1:] if p) if type_text else ", ".join(parts)
        head = (
            f"{match['indent']}{match['name']} ({type_text}):" if type_text else f"{match['indent']}{match['name']}:"
        )
        rest = match["rest"]
        if extra:
            # the note goes after the argument's whole description, which may continue on indented lines
            j = i + 1
            while j < len(lines) and lines[j].startswith(match["indent"] + " ") and lines[j].strip():
                j += 1
            out.append(head + rest + ("" if j > i + 1 else f" ({extra})"))
            if j > i + 1:
                lines[j - 1] = lines[j - 1] + f" ({extra})"
            continue
        out.append(head + rest)
    return "\n".join(out)


class HFDocstrings(griffe.Extension):
    """Rewrite Hugging Face-style argument lines of every docstring before griffe parses them."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
