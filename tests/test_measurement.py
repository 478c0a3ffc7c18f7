"""`evaluate.load("gvendi")`: found offline in a fresh process, computes from texts or features, card in sync."""

import doctest
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import gvendi
from gvendi import measurement

ROOT = Path(gvendi.__file__).parent

LOAD_AND_COMPUTE = (
    "import sys, evaluate; imported_before = 'gvendi' in sys.modules; m = evaluate.load('gvendi'); "
    "r = m.compute(features=[[1.0, 0.0], [0.0, 1.0]]); "
    "print(imported_before, type(m).__name__, round(r['gvendi'], 6), r['num_samples'])"
)


def _fresh_env(tmp_path):
    home = tmp_path / "hf"
    return {
        **os.environ,
        "HF_HOME": str(home),
        "HF_MODULES_CACHE": str(home / "modules"),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "HF_EVALUATE_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }


def test_load_in_fresh_process_through_the_pth_hook(tmp_path):
    """What a wheel install puts in site-packages: the .pth and the hook module, and nothing imports gvendi first."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "gvendi-evaluate.pth").write_text("import gvendi_evaluate_hook\n")
    shutil.copy(ROOT / "_evaluate_hook.py", site_dir / "gvendi_evaluate_hook.py")
    code = f"import site; site.addsitedir({str(site_dir)!r}); {LOAD_AND_COMPUTE}"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=_fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-4:] == ["False", "Gvendi", "2.0", "2"]  # gvendi was not imported before the load


@pytest.mark.skipif(
    not (Path(sysconfig.get_paths()["purelib"]) / "gvendi-evaluate.pth").exists(),
    reason="this environment's gvendi was installed by a build that predates the .pth in editable wheels",
)
def test_load_after_pip_install(tmp_path):
    """Whichever way this environment installed gvendi (wheel in CI, ``pip install -e`` from the README)."""
    run = subprocess.run(
        [sys.executable, "-c", LOAD_AND_COMPUTE],
        env=_fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-4:] == ["False", "Gvendi", "2.0", "2"]
    assert "Using the latest cached version" not in run.stderr  # answered directly, not through the cache fallback


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["pip-install-e", "wheel"])
def test_load_in_a_fresh_venv(tmp_path, editable):
    """`pip install [-e] .` into a brand-new virtual environment, then `evaluate.load("gvendi")` in a fresh process
    with a fresh HF_HOME, gvendi not imported first. The new venv sees this environment's packages through a path
    file (offline and fast: only gvendi itself is built and installed, with --no-deps)."""
    from utils import copy_of_the_source, offline_pip, venv_borrowing_these_packages

    source = copy_of_the_source(tmp_path)
    python, new_site = venv_borrowing_these_packages(tmp_path)
    install = [*offline_pip(python), "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    run = subprocess.run(
        [*install, *(["-e"] if editable else []), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (Path(new_site) / "gvendi-evaluate.pth").is_file()
    code = LOAD_AND_COMPUTE + "; import gvendi; print(gvendi.__file__)"
    run = subprocess.run(
        [str(python), "-c", code], env=_fresh_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.split()
    assert lines[-5:-1] == ["False", "Gvendi", "2.0", "2"], run.stdout
    assert lines[-1].startswith(str(source if editable else new_site)), lines[-1]  # the new install, not ours
    assert "Using the latest cached version" not in run.stderr


def test_load_after_import_gvendi(tmp_path):
    """Editable installs carry no .pth; importing gvendi first registers the module."""
    code = f"import gvendi; {LOAD_AND_COMPUTE}"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=_fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-4:] == ["True", "Gvendi", "2.0", "2"]


def test_compute_from_texts_and_features(word_proxy_dir):
    import evaluate

    module = evaluate.load("gvendi")
    result = module.compute(
        prompts=["w1 w2", "w3", "w4 w5"], completions=["w6", "w7 w8", "w9"], proxy=word_proxy_dir, dim=64
    )
    assert result["num_samples"] == 3 and 1.0 <= result["gvendi"] <= 3.0
    assert (
        result["dim"] == 64
        and result["projection"] == gvendi.projection.DEFAULT_PROJECTION
        and "gvendi_version" in result
    )
    rows = gvendi.GradientFeaturizer(word_proxy_dir, dim=64, show_progress=False).featurize(
        [{"prompt": p, "completion": c} for p, c in zip(["w1 w2", "w3", "w4 w5"], ["w6", "w7 w8", "w9"])]
    )
    assert module.compute(features=rows.tolist())["gvendi"] == pytest.approx(result["gvendi"], rel=1e-4)


def test_compute_errors_name_the_inputs():
    import evaluate

    module = evaluate.load("gvendi")
    with pytest.raises(ValueError, match=r"missing: \['completions'\]"):
        module.compute(prompts=["a"])
    with pytest.raises(ValueError, match="row 1 is all zeros"):
        module.compute(features=[[1.0, 0.0], [0.0, 0.0]])


def test_module_docstring_examples_run():
    import evaluate

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(measurement._KWARGS_DESCRIPTION, "gvendi.measurement", globs={"evaluate": evaluate})
    examples = sum(len(t.examples) for t in tests)
    assert examples > 1
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_card_follows_the_template_and_matches_the_docstring():
    card = measurement.MODULE_CARD
    for section in (
        "Measurement Description",
        "How to Use",
        "Inputs",
        "Output Values",
        "Examples",
        "Limitations and Bias",
        "Citation",
    ):
        assert f"# {section}" in card or f"## {section}" in card or f"### {section}" in card, section
    doc_lines = [
        line.strip() for line in measurement._KWARGS_DESCRIPTION.splitlines() if line.strip().startswith(">>>")
    ]
    assert doc_lines and all(line in card for line in doc_lines), "card examples drifted from the docstring"
    assert card.count("```") % 2 == 0, "unclosed code fence"
