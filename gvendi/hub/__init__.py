"""Publishing to the Hugging Face Hub: PrismMath / PrismNLI data sets from a synthesis run, and the evaluate Space.

Example:
    >>> from gvendi.hub import push_run
    >>> push_run("runs/math-0", "my-org/PrismMath", license="cc-by-4.0", dry_run_dir="out/prismmath")  # doctest: +SKIP

Everything but :func:`register_cli` is imported on first use, so building the ``gvendi`` CLI stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .cli import register_cli

_LAZY = {
    "CITATION": "card",
    "build_dataset_card": "card",
    "check_license": "card",
    "check_repo_id": "card",
    "size_category": "card",
    "validate_dataset_card": "card",
    "HubPublishError": "publish",
    "PushResult": "publish",
    "commit_folder": "publish",
    "push_run": "publish",
    "resolve_token": "publish",
    "write_publish_folder": "publish",
    "MATH_FEATURES": "run_folder",
    "NLI_FEATURES": "run_folder",
    "NLI_LABELS": "run_folder",
    "TASK_FEATURES": "run_folder",
    "PublishableRun": "run_folder",
    "build_dataset": "run_folder",
    "read_run": "run_folder",
    "build_measurement_space": "space",
    "push_measurement_space": "space",
}

__all__ = [
    "CITATION",
    "MATH_FEATURES",
    "NLI_FEATURES",
    "NLI_LABELS",
    "TASK_FEATURES",
    "HubPublishError",
    "PublishableRun",
    "PushResult",
    "build_dataset",
    "build_dataset_card",
    "build_measurement_space",
    "check_license",
    "check_repo_id",
    "commit_folder",
    "push_measurement_space",
    "push_run",
    "read_run",
    "register_cli",
    "resolve_token",
    "size_category",
    "validate_dataset_card",
    "write_publish_folder",
]

if TYPE_CHECKING:  # pragma: no cover
    from .card import CITATION, build_dataset_card, check_license, check_repo_id, size_category, validate_dataset_card
    from .publish import HubPublishError, PushResult, commit_folder, push_run, resolve_token, write_publish_folder
    from .run_folder import (
        MATH_FEATURES,
        NLI_FEATURES,
        NLI_LABELS,
        TASK_FEATURES,
        PublishableRun,
        build_dataset,
        read_run,
    )
    from .space import build_measurement_space, push_measurement_space


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
