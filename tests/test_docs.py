"""The docs hold numbers from running code only: generated blocks match what the code prints, the API page
renders Hugging Face-style argument lines, and nothing needs a CDN."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "assets"))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from regenerate import code_blocks_of, marked_block  # noqa: E402


def test_hf_argument_lines_become_google_style_for_the_api_tables():
    pytest.importorskip("griffe")
    from hf_docstrings import rewrite

    doc = (
        "Args:\n"
        "    dim (`int`, *optional*, defaults to 1024): feature dimension.\n"
        '    projection (`str`, *optional*, defaults to ``"factored"``): how to project,\n'
        "        continued.\n"
        "    sizes (`KMeansResult` or array of `int`): a result.\n"
        "    tokenizer: the tokenizer.\n"
    )
    lines = rewrite(doc).splitlines()
    assert lines[1] == "    dim (int): feature dimension. (*optional*, defaults to 1024)"
    assert lines[2] == "    projection (str): how to project,"
    assert lines[3] == '        continued. (*optional*, defaults to ``"factored"``)'
    assert lines[4] == "    sizes (KMeansResult or array of int): a result."
    assert lines[5] == "    tokenizer: the tokenizer."


def test_the_site_loads_nothing_from_a_cdn():
    config = (ROOT / "mkdocs.yml").read_text()
    assert "extra_javascript" not in config and not any(host in config for host in ("unpkg", "jsdelivr", "cdnjs"))


def test_every_picture_a_page_shows_exists():
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} shows {target}, which does not exist"


def test_quickstart_synthesis_and_publishing_pages_show_pictures():
    for name in ("index.md", "synthesis.md", "publishing.md"):
        assert "![" in (ROOT / "docs" / name).read_text(), f"docs/{name} shows no figure"


@pytest.mark.slow
def test_callback_example_prints_what_the_page_shows(tmp_path):
    """docs/assets/callback_example.py, run as the page says; its output is the page's block."""
    env = {**os.environ, "GVENDI_DISABLE_PROGRESS_BAR": "1", "TQDM_DISABLE": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "assets" / "callback_example.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    printed = [line.rstrip() for line in run.stdout.splitlines() if "G-Vendi" in line or line.startswith("  stage")]
    page = code_blocks_of(marked_block((ROOT / "docs" / "callback.md").read_text(), "callback-example"))[
        0
    ].splitlines()
    # same lines, same numbers; the values may move in the last digit with the BLAS's summation order across runs
    number = re.compile(r"\d+\.\d+")
    assert [number.sub("#", line) for line in printed] == [number.sub("#", line) for line in page]
    for ran, shown in zip(printed, page):
        for a, b in zip(number.findall(ran), number.findall(shown)):
            assert float(a) == pytest.approx(float(b), rel=5e-3), (
                ran,
                shown,
                "python docs/assets/regenerate.py callback",
            )
