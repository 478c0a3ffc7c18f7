"""Split over-long string literals into adjacent literals, for the E501 lines ``ruff format`` cannot wrap.

A line that is one string literal inside brackets (``"…"`` or ``f"…"``, optionally led by ``+`` and followed by
``,``/``)``) and longer than the line length is split at its last space that fits (outside ``{…}`` fields). The
parser joins adjacent literals, so a file is kept only if its syntax tree is unchanged; otherwise it is left as it
was and named. Docstrings and comments are left to a person.

    python tools/split_long_strings.py gvendi/report.py benchmarks/*.py
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

LIMIT = 119
LITERAL = re.compile(r'^(\s*)(\+ )?(f?)"((?:[^"\\]|\\.)*)"(\s*[,)]*\s*)$')


def _split_point(prefix: str, body: str) -> int | None:
    depth, best = 0, None
    for i, char in enumerate(body):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == " " and depth == 0 and len(prefix) + i + 2 <= LIMIT:
            best = i
    return best


def _unescape_braces(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


def split_line(line: str) -> list[str]:
    """The line as one or two lines (two when it is an over-long literal with a space to split at)."""
    match = LITERAL.match(line)
    if len(line) <= LIMIT or match is None:
        return [line]
    indent, plus, f, body, tail = match.groups()
    point = _split_point(indent + (plus or "") + f + '"', body)
    if point is None:
        return [line]
    first, second = body[: point + 1], body[point + 1 :]
    # a part without fields drops the f prefix (ruff would flag an f-string without placeholders)
    f1, f2 = (f if "{" in first else ""), (f if "{" in second else "")
    if f and not f1:
        first = _unescape_braces(first)
    if f and not f2:
        second = _unescape_braces(second)
    return [f'{indent}{plus or ""}{f1}"{first}"', f'{indent}{"  " if plus else ""}{f2}"{second}"{tail}']


def split_file(path: Path) -> bool:
    """Split the long literals of one file; True when it changed (and its syntax tree did not)."""
    source = path.read_text()
    lines = [part for line in source.split("\n") for part in split_line(line)]
    result = "\n".join(lines)
    if result == source:
        return False
    if ast.dump(ast.parse(result)) != ast.dump(ast.parse(source)):
        print(f"{path}: splitting would change the code, left as it was", file=sys.stderr)
        return False
    path.write_text(result)
    return True


def main(argv: list[str]) -> int:
    for name in argv:
        if split_file(Path(name)):
            print(f"split long strings in {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
