"""The docs are tests: every docstring example (``>>>``) in gvendi/ and callbacks/ runs as a doctest, every
```python block of docs/*.md runs in a fresh process, and every public name is on the API page.

A block that cannot run offline (it needs the Hub or an inference endpoint, or it is an excerpt of a script another
test runs whole) is preceded in the markdown by ``<!-- no-test: reason -->``; a skipped docstring example carries
``# doctest: +SKIP`` and its reason in :data:`SKIPPED_DOCTESTS`. README.md's Python blocks are run by
tests/test_readme.py (slow: from the README's set-up in a fresh virtual environment).

Substitutions in docs blocks, and only these: the Hub proxy becomes the bundled tiny proxy, the names a block
leaves to the reader (``model``, ``args``, ``train``, ``prompts``, ``features`` …) are defined first by
:data:`PRELUDES`, and ``gvendi.callbacks`` is this checkout's callbacks/ folder (an install maps it there; an
editable install of another checkout would map it elsewhere).
"""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from utils import TRAINER_PRELUDE

ROOT = Path(__file__).resolve().parents[1]
HUB_PROXY = "Qwen/Qwen2.5-0.5B-Instruct"
NO_TEST = re.compile(r"<!-- no-test: (?P<reason>[^>]*?) -->\n$")
PYTHON_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.S | re.M)

# docstring examples that cannot run offline, by doctest name, and why
SKIPPED_DOCTESTS = {
    "gvendi.hub": "needs a finished synthesis run folder; tests/test_hub.py runs push_run with dry_run_dir",
    "gvendi.hub.publish.push_run": "needs a finished synthesis run folder; tests/test_hub.py runs it with dry_run_dir",
    "gvendi.hub.run_folder.build_dataset": "needs a finished synthesis run folder; tests/test_hub.py builds one",
    "gvendi.synthesis.loop.synthesize": "needs a generator endpoint; tests/synthesis run it against a loopback server",
}


# docstring examples --------------------------------------------------------------------------------------------
def _modules_with_examples() -> list[str]:
    """Modules of gvendi/ and callbacks/ whose source holds a ``>>>`` example (read as text, imported in the test)."""
    names = []
    for folder, package in ((ROOT / "gvendi", "gvendi"), (ROOT / "callbacks", "callbacks")):
        for path in sorted(folder.rglob("*.py")):
            if ">>>" not in path.read_text(encoding="utf-8"):
                continue
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()


def _doctests(module_name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    return [test for test in tests if test.examples]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    tests = _doctests(module_name)
    assert tests, f"{module_name} has '>>>' in its source but no docstring example doctest can find"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in tests:
        skipped = [example for example in test.examples if example.options.get(doctest.SKIP)]
        if skipped:
            assert test.name in SKIPPED_DOCTESTS, f"{test.name} skips examples without a reason in SKIPPED_DOCTESTS"
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_every_skipped_docstring_example_is_still_there():
    found = {
        test.name
        for name in MODULES
        for test in _doctests(name)
        if any(example.options.get(doctest.SKIP) for example in test.examples)
    }
    assert found == set(SKIPPED_DOCTESTS), (
        f"stale or missing SKIPPED_DOCTESTS entries: {found ^ set(SKIPPED_DOCTESTS)}"
    )


def test_the_examples_cover_the_main_doors():
    covered = set(MODULES)
    for door in (
        "gvendi.vendi",
        "gvendi.featurizer",
        "gvendi.gradients",
        "gvendi.measurement",
        "gvendi.selection",
        "gvendi.per_example",
        "gvendi.comparison",
        "callbacks.gvendi_callback",
    ):
        assert door in covered, f"{door} lost its docstring example"


# docs/*.md python blocks ---------------------------------------------------------------------------------------
TRAINER = "from transformers import Trainer\n" + TRAINER_PRELUDE
TEXTS = """
from datasets import Dataset
from gvendi.data import load_math_sample

sample = load_math_sample()[:12]
prompts = [row["prompt"] for row in sample]
completions = [row["completion"] for row in sample]
texts = [p + " " + c for p, c in zip(prompts, completions)]
ds = Dataset.from_dict({"prompt": prompts, "completion": completions})
"""
FEATURES = """
import numpy as np

rng = np.random.default_rng(0)
features = rng.normal(size=(12, 64)) + 2 * np.eye(64)[rng.integers(0, 4, size=12)]
batches = [rng.normal(size=(64, 1024)) for _ in range(3)]
"""
CALLBACKS_FROM_THIS_CHECKOUT = f"""
import importlib.util, sys
import gvendi
_folder = {str(ROOT / "callbacks")!r}
_spec = importlib.util.spec_from_file_location(
    "gvendi.callbacks", _folder + "/__init__.py", submodule_search_locations=[_folder]
)
gvendi.callbacks = sys.modules["gvendi.callbacks"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gvendi.callbacks)
"""
# the names a block may use without defining them, and the code that defines them
PRELUDES = {
    "gvendi": "import gvendi\n",
    "GVendiCallback": "from gvendi.callbacks import GVendiCallback\n",
    "model": TRAINER,
    "args": TRAINER,
    "train": TRAINER,
    "prompts": TEXTS,
    "completions": TEXTS,
    "texts": TEXTS,
    "ds": TEXTS,
    "features": FEATURES,
    "batches": FEATURES,
}


def _docs_blocks() -> list[tuple[str, str, str | None]]:
    """``(where, code, reason not to run it or None)`` for every python block of docs/*.md."""
    blocks = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in PYTHON_BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            marker = NO_TEST.search(text[: match.start()][-400:])
            blocks.append((f"docs/{page.name}:{line}", match["code"], marker["reason"] if marker else None))
    return blocks


BLOCKS = _docs_blocks()


def _prepared(code: str) -> str:
    code = code.replace(HUB_PROXY, "tiny")
    preludes: list[str] = []
    for name, prelude in PRELUDES.items():
        defined = re.search(rf"^(?:{name}\s*=|from \S+ import .*\b{name}\b|import {name}\b)", code, re.M)
        if re.search(rf"\b{name}\b", code) and not defined and prelude not in preludes:
            preludes.append(prelude)
    program = "".join(preludes) + code
    return (CALLBACKS_FROM_THIS_CHECKOUT if "gvendi.callbacks" in program else "") + program


def test_every_untested_docs_block_says_why():
    untested = [(where, reason) for where, _, reason in BLOCKS if reason is not None]
    for where, reason in untested:
        assert len(reason.split()) >= 3, f"{where}: the no-test marker needs a reason"
    assert len(untested) < len(BLOCKS) / 2, f"most docs blocks are not run: {untested}"


def _runnable_blocks() -> list:
    """The blocks to run; one that trains (the Trainer prelude) is marked slow."""
    return [
        pytest.param(where, code, id=where, marks=[pytest.mark.slow] if TRAINER in _prepared(code) else [])
        for where, code, reason in BLOCKS
        if reason is None
    ]


@pytest.mark.parametrize("where,code", _runnable_blocks())
def test_docs_python_block_runs(where, code, tmp_path):
    program = _prepared(code)
    env = {**os.environ, "GVENDI_DISABLE_PROGRESS_BAR": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"{where} failed:\n{program}\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


def test_readme_python_blocks_are_the_ones_test_readme_runs():
    """tests/test_readme.py runs every python block of the README's Usage section; none may live elsewhere."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    usage = re.search(r"^## Usage\n(.*?)(?=^## |\Z)", readme, re.S | re.M)[1]
    assert len(PYTHON_BLOCK.findall(readme)) == len(PYTHON_BLOCK.findall(usage)) >= 1


# the API page --------------------------------------------------------------------------------------------------
NOT_ON_THE_API_PAGE = {
    "__version__": "the package version",
    "register_cli": "the hub sub-commands' hook into the gvendi command, not a Python API",
}


def _public_names() -> dict[str, list[str]]:
    import callbacks
    import gvendi

    names = {"gvendi": sorted({*gvendi.__all__, *gvendi._EXPORTS}), "gvendi.callbacks": list(callbacks.__all__)}
    for package in ("synthesis", "hub", "config", "accumulators", "distributed", "testing"):
        names[f"gvendi.{package}"] = list(importlib.import_module(f"gvendi.{package}").__all__)
    return {package: [n for n in found if n not in NOT_ON_THE_API_PAGE] for package, found in names.items()}


def test_every_public_name_is_on_the_api_page():
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        f"{package}.{name}"
        for package, found in _public_names().items()
        for name in found
        if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", page)
    ]
    assert not missing, f"docs/api.md does not show {missing}: add a '::: …' entry for each"


def test_the_api_page_documents_every_door():
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    entries = set(re.findall(r"^::: (\S+)", page, re.M))
    for door in (
        "gvendi.GradientFeaturizer",
        "gvendi.score",
        "gvendi.VendiAccumulator",
        "gvendi.measurement.Gvendi",
        "callbacks.GVendiCallback",
        "gvendi.synthesis.synthesize",
        "gvendi.synthesis.resume",
        "gvendi.synthesis.SynthesisConfig",
        "gvendi.synthesis.make_backend",
        "gvendi.synthesis.Task",
        "gvendi.hub.push_run",
        "gvendi.select",
        "gvendi.contributions",
        "gvendi.compare",
        "gvendi.build_report",
    ):
        assert door in entries, f"docs/api.md has no '::: {door}' entry"


# stale references ----------------------------------------------------------------------------------------------
# files the docs name that a script writes (never committed)
WRITTEN_BY_SCRIPTS = {
    "benchmarks/results/gpu.json": "benchmarks/bench_gpu.py, on a machine with a GPU",
    "benchmarks/results/report_sample.html": "benchmarks/bench_report.py --keep",
}
REPO_PATH = re.compile(
    r"\b(?:gvendi|callbacks|tests|benchmarks|docs|hub_scripts|tools|\.ci)/[\w./-]*\w\.(?:py|md|json"
    r"|jsonl|png|yml|yaml|txt|html|sh|cfg|toml)\b"
)


def test_every_file_the_tree_names_exists():
    """Paths named in the docs, the README, the packaging files and any module's text point at files that exist."""
    sources = [
        ROOT / "README.md",
        ROOT / "setup.py",
        ROOT / "setup.cfg",
        ROOT / "mkdocs.yml",
        ROOT / "pyproject.toml",
        *(ROOT / "docs").glob("*.md"),
    ]
    for folder in ("gvendi", "callbacks", "tests", "benchmarks", "docs", "hub_scripts", "tools", ".ci"):
        sources += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ""} and p.is_file()]
    missing = {}
    for source in sources:
        for path in REPO_PATH.findall(source.read_text(encoding="utf-8", errors="replace")):
            if not (ROOT / path).exists() and path not in WRITTEN_BY_SCRIPTS:
                missing.setdefault(path, source.relative_to(ROOT).as_posix())
    assert not missing, f"named but missing (path: where): {missing}"
