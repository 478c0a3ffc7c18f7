"""The evaluate measurement as a Space: the folder the recipe writes, its module file, its app and its card."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import evaluate
import pytest
from huggingface_hub import SpaceCard

from gvendi.hub.space import SPACE_FILES, build_measurement_space, measurement_card_text

REPO_ROOT = Path(__file__).resolve().parents[1]


def _recipe():
    spec = importlib.util.spec_from_file_location(
        "push_measurement_space", REPO_ROOT / "hub_scripts" / "push_measurement_space.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("space")
    assert _recipe().main(["--repo-id", "my-org/gvendi", "--dry-run", str(out)]) == 0
    return out


def test_space_folder_and_card(space_dir):
    assert sorted(p.name for p in space_dir.iterdir()) == sorted(SPACE_FILES)
    card = SpaceCard.load(space_dir / "README.md")
    data = card.data.to_dict()
    assert data["sdk"] == "gradio" and data["app_file"] == "app.py"
    assert {"evaluate", "measurement"} <= set(data["tags"])
    assert data["title"] and data["license"] == "apache-2.0"
    import gvendi.measurement as measurement

    body = SpaceCard(measurement.MODULE_CARD).text
    assert "# Measurement Card for G-Vendi" in card.text and body.strip() in card.text  # the module card travels
    requirement = (space_dir / "requirements.txt").read_text()
    assert requirement == "gvendi @ git+https://github.com/gvendi/gvendi.git\n"
    from packaging.requirements import Requirement

    parsed = Requirement(requirement.strip())  # a line pip can install: a name and a URL it can reach
    assert parsed.name == "gvendi" and parsed.url.startswith("git+https://")
    assert "from gvendi.measurement import Gvendi" in (space_dir / "gvendi.py").read_text()


def test_space_module_file_loads_with_evaluate(space_dir):
    module = evaluate.load(str(space_dir / "gvendi.py"))
    from gvendi.measurement import Gvendi

    assert isinstance(module, Gvendi)
    assert round(module.compute(features=[[1.0, 0.0], [0.0, 1.0]])["gvendi"], 6) == 2.0


STUB_GRADIO = """
import json, os
class _Component:
    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs
class Dataframe(_Component): pass
class Textbox(_Component): pass
class Interface:
    def __init__(self, fn, inputs, outputs, **kwargs):
        self.fn, self.inputs, self.kwargs = fn, inputs, kwargs
    def launch(self):
        with open(os.environ["STUB_GRADIO_OUT"], "w") as f:
            json.dump({"headers": self.inputs.kwargs["headers"], "title": self.kwargs["title"]}, f)
"""


@pytest.mark.slow  # a fresh interpreter importing evaluate and torch: ~10-15 s on 2 cores
def test_app_starts_without_the_module_file_shadowing_the_package(space_dir, tmp_path):
    """``python app.py`` in the Space folder (which holds gvendi.py) imports the installed package, then launches."""
    stub = tmp_path / "stub"
    (stub / "gradio").mkdir(parents=True)
    (stub / "gradio" / "__init__.py").write_text(STUB_GRADIO)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(stub), str(REPO_ROOT)]), STUB_GRADIO_OUT=str(tmp_path / "o.json")
    )
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=str(space_dir), env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    launched = json.loads((tmp_path / "o.json").read_text())
    assert launched["headers"] == ["prompts", "completions"]


def test_card_text_comes_from_the_measurement_module():
    text = measurement_card_text()
    assert "G-Vendi" in text and "Citation" in text


def test_custom_requirement_and_sdk_version(tmp_path):
    build_measurement_space(
        tmp_path / "s", gvendi_requirement="gvendi==0.1.0", sdk_version="4.44.1", card_text="# Hi\n"
    )
    assert (tmp_path / "s" / "requirements.txt").read_text() == "gvendi==0.1.0\n"
    data = SpaceCard.load(tmp_path / "s" / "README.md").data.to_dict()
    assert data["sdk_version"] == "4.44.1" and data["sdk"] == "gradio"
    with pytest.raises(ValueError, match="one requirements line"):
        build_measurement_space(tmp_path / "t", gvendi_requirement="a\nb")
