"""The evaluate module as a Hugging Face Space: ``app.py``, ``gvendi.py``, ``requirements.txt`` and a card.

``evaluate.load("ORG/gvendi")`` downloads ``gvendi.py`` from the Space named ``gvendi``; that file only imports the
module class from the installed package (``from gvendi.measurement import Gvendi``), so the Space and the package
never drift apart. ``app.py`` serves the usual evaluate widget. The card is the module card that
``gvendi.measurement`` carries, under Space YAML (``sdk: gradio``, tags ``evaluate`` and ``measurement``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from huggingface_hub import SpaceCard, SpaceCardData

from ..utils import atomic_write
from .card import check_repo_id
from .publish import PushResult, commit_folder

logger = logging.getLogger(__name__)

__all__ = ["SPACE_FILES", "build_measurement_space", "measurement_card_text", "push_measurement_space"]

SPACE_FILES = ("README.md", "app.py", "gvendi.py", "requirements.txt")
SOURCE_REQUIREMENT = "gvendi @ git+https://github.com/gvendi/gvendi.git"
"""The Space's requirements line by default: gvendi from its source repository (it is not on PyPI)."""
"""The files of the measurement Space."""

# Attributes of gvendi.measurement that may hold the full module card (Markdown, optionally with YAML).
_CARD_ATTRIBUTES = ("MODULE_CARD", "_MODULE_CARD", "MODULE_CARD_TEXT", "CARD", "README")

_FALLBACK_CARD = """# G-Vendi

G-Vendi (Jung et al., 2025) measures the diversity of a set of (prompt, completion) examples as the Vendi Score of
the cosine kernel between the examples' projected loss gradients under a small proxy model. It ranges from 1 (every
example pushes the model the same way) to min(N, k).

## How to use

```python
import evaluate

gvendi = evaluate.load("gvendi")
```

See the gvendi documentation for the inputs, options and limitations.

## Citation

```bibtex
@article{jung2025prismatic,
  title   = {Prismatic Synthesis: Gradient-based Data Diversification Boosts Generalization in LLM Reasoning},
  author  = {Jung, Jaehun and others},
  journal = {arXiv preprint arXiv:2505.20161},
  year    = {2025}
}
```
"""

_MODULE_FILE = '''"""G-Vendi for `evaluate.load`: the class comes from the installed gvendi package."""

import evaluate  # noqa: F401  (evaluate modules import evaluate)
from gvendi.measurement import Gvendi  # noqa: F401
'''

_APP_FILE = '''"""The G-Vendi measurement widget (Hugging Face Space)."""

import os
import sys

# This folder holds gvendi.py (evaluate finds a Hub module by the Space's name). Import the installed gvendi
# package first, with this folder off the path, so that file never shadows the package; then restore the path
# (evaluate's widget reads README.md from sys.path[0]).
_HERE = os.path.dirname(os.path.abspath(__file__))
_SAVED_PATH = list(sys.path)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]
import gvendi.measurement  # noqa: E402

sys.path[:] = _SAVED_PATH

import gradio as gr  # noqa: E402
from evaluate.utils import launch_gradio_widget  # noqa: E402

module = gvendi.measurement.Gvendi()

if hasattr(gr, "inputs"):  # gradio 3: evaluate's own widget
    launch_gradio_widget(module)
else:  # gradio 4+: the same table-in, score-out widget on the current API
    features = module.features[0] if isinstance(module.features, list) else module.features
    names = list(features)

    def compute(table):
        rows = table.values.tolist() if hasattr(table, "values") else table
        rows = [row for row in rows if any(str(c).strip() for c in row)]
        columns = {name: [str(row[i]) for row in rows] for i, name in enumerate(names)}
        return str(module.compute(**columns))

    gr.Interface(
        fn=compute,
        inputs=gr.Dataframe(headers=names, col_count=len(names), row_count=2, datatype=["str"] * len(names)),
        outputs=gr.Textbox(label=module.name),
        title=f"Measurement: {module.name}",
        description=module.info.description,
    ).launch()
'''


def measurement_card_text() -> str:
    """The module card text from ``gvendi.measurement`` (a short fallback when the module or card is missing)."""
    try:
        import gvendi.measurement as measurement
    except ImportError as err:
        logger.warning("gvendi.measurement could not be imported (%s); using a short fallback card", err)
        return _FALLBACK_CARD
    for name in _CARD_ATTRIBUTES:
        value = getattr(measurement, name, None)
        if isinstance(value, str) and value.strip():
            return value
    parts = [getattr(measurement, name, None) for name in ("_DESCRIPTION", "_KWARGS_DESCRIPTION", "_CITATION")]
    if isinstance(parts[0], str) and parts[0].strip():
        text = "# G-Vendi\n\n## Description\n\n" + parts[0].strip() + "\n"
        if isinstance(parts[1], str) and parts[1].strip():
            text += "\n## How to use\n\n```\n" + parts[1].strip() + "\n```\n"
        if isinstance(parts[2], str) and parts[2].strip():
            text += "\n## Citation\n\n```bibtex\n" + parts[2].strip() + "\n```\n"
        return text
    logger.warning(
        "gvendi.measurement has no module card (%s); using a short fallback card", ", ".join(_CARD_ATTRIBUTES)
    )
    return _FALLBACK_CARD


def _space_card(body_with_yaml: str, sdk_version: str | None) -> SpaceCard:
    parsed = SpaceCard(body_with_yaml) if body_with_yaml.lstrip().startswith("---") else None
    existing: dict[str, Any] = parsed.data.to_dict() if parsed is not None else {}
    body = parsed.text if parsed is not None else body_with_yaml
    tags = list(dict.fromkeys([*(existing.pop("tags", None) or []), "evaluate", "measurement"]))
    fields: dict[str, Any] = {
        "title": "G-Vendi",
        "emoji": "🌈",
        "colorFrom": "indigo",
        "colorTo": "purple",
        "app_file": "app.py",
        "pinned": False,
        "license": "apache-2.0",
        "short_description": "Gradient diversity (G-Vendi) of prompt/completion sets",
        **existing,
        "sdk": "gradio",
        "tags": tags,
    }
    if sdk_version is not None:
        fields["sdk_version"] = sdk_version
    data = SpaceCardData(**fields)
    return SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}")


def build_measurement_space(
    out_dir: str | Path,
    *,
    gvendi_requirement: str = SOURCE_REQUIREMENT,
    sdk_version: str | None = None,
    card_text: str | None = None,
) -> list[str]:
    """Write the Space folder: ``app.py``, ``gvendi.py``, ``requirements.txt`` and ``README.md``.

    Args:
        out_dir (`str` or `Path`): where to write (created; the four files are overwritten).
        gvendi_requirement (`str`, *optional*, defaults to :data:`SOURCE_REQUIREMENT`): the requirements line that
            installs gvendi in the Space. gvendi is not on PyPI, so the default installs it from its source
            repository; pass e.g. ``"gvendi==0.1.0"`` once a release is on an index.
        sdk_version (`str`, *optional*): pin the Space's gradio version (the Hub's default when omitted).
        card_text (`str`, *optional*): the module card; defaults to :func:`measurement_card_text`.

    Returns:
        `list[str]`: the written file names, sorted.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{str(out_dir)!r} exists and is not a folder.")
    if not gvendi_requirement.strip() or "\n" in gvendi_requirement:
        raise ValueError(f"gvendi_requirement must be one requirements line (got {gvendi_requirement!r}).")
    out_dir.mkdir(parents=True, exist_ok=True)
    card = _space_card(card_text if card_text is not None else measurement_card_text(), sdk_version)
    for name, text in (
        ("README.md", str(card)),
        ("app.py", _APP_FILE),
        ("gvendi.py", _MODULE_FILE),
        ("requirements.txt", gvendi_requirement.strip() + "\n"),
    ):
        atomic_write(out_dir / name, text)
    logger.info("wrote the measurement Space to %s", out_dir)
    return sorted(SPACE_FILES)


def push_measurement_space(
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    dry_run_dir: str | Path | None = None,
    gvendi_requirement: str = SOURCE_REQUIREMENT,
    sdk_version: str | None = None,
    max_retries: int = 5,
    base_wait: float = 1.0,
) -> PushResult:
    """Publish the evaluate module as a gradio Space ``repo_id`` in one commit (or write it to ``dry_run_dir``).

    Name the Space ``gvendi`` (``ORG/gvendi``) so that ``evaluate.load("ORG/gvendi")`` finds ``gvendi.py``.

    Raises:
        ValueError: bad repo id or no token (nothing uploaded).
        HubPublishError: the Hub refused or kept failing; the message never contains the token.
    """
    import shutil
    import tempfile

    repo_id = check_repo_id(repo_id)
    if repo_id.split("/")[1] != "gvendi":
        logger.warning(
            "Space %s is not named 'gvendi': evaluate.load(%r) looks for %s.py there, which the Space does not have",
            repo_id,
            repo_id,
            repo_id.split("/")[1],
        )
    build_args = {"gvendi_requirement": gvendi_requirement, "sdk_version": sdk_version}
    if dry_run_dir is not None:
        files = build_measurement_space(dry_run_dir, **build_args)
        return PushResult(repo_id, "space", revision or "main", files, changed=False, folder=Path(dry_run_dir))
    from .publish import check_online, resolve_token

    check_online()
    token = resolve_token(token)
    staging = Path(tempfile.mkdtemp(prefix="gvendi-space-"))
    try:
        build_measurement_space(staging, **build_args)
        return commit_folder(
            staging,
            repo_id,
            repo_type="space",
            token=token,
            private=private,
            revision=revision,
            commit_message="Publish the G-Vendi measurement with gvendi",
            managed_prefixes=(),
            space_sdk="gradio",
            max_retries=max_retries,
            base_wait=base_wait,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
