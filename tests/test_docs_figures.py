"""Every benchmark figure in the docs comes from the committed results: the pages equal what make_docs.py builds."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_figures_match_the_committed_results():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_docs.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr + run.stdout
