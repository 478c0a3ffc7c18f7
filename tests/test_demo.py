"""`gvendi demo` on the bundled data and tiny proxy, and the README promises that CI relies on."""

import json
import re
import sys
from pathlib import Path

from gvendi.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_rises_with_the_number_of_templates(capsys):
    assert main(["demo", "--json"]) == 0
    captured = capsys.readouterr()
    out = captured.err  # the table; stdout holds the JSON only
    results = json.loads(captured.out)
    assert [r["templates"] for r in results] == [1, 2, 4, 8]
    values = [r["gvendi"] for r in results]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert "templates" in out and "G-Vendi" in out  # the printed table
    # the README and the quickstart show this very table (python docs/assets/regenerate.py demo rewrites both)
    sys.path.insert(0, str(ROOT / "docs" / "assets"))
    from regenerate import DEMO_PAGES, code_blocks_of, marked_block

    for page in DEMO_PAGES:
        shown = code_blocks_of(marked_block(page.read_text(), "demo"))[0]
        assert [line.rstrip() for line in shown.splitlines()] == [
            line.rstrip() for line in out.strip().splitlines()
        ], f"{page.name}'s demo table drifted from `gvendi demo`: run python docs/assets/regenerate.py demo"


def test_readme_holds_setup_demo_and_the_ci_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install torch==2.13.0" in readme and "gvendi demo" in readme
    command = re.search(r"## Tests\s+```bash\n(.+?)\n```", readme, re.S).group(1).strip()
    assert command.split()[:4] == ["python", "-m", "pytest", "tests"]
    assert command in ci or " ".join(command.split()[:4]) in ci
