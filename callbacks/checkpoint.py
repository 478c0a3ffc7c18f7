"""The callback's state in a Trainer checkpoint: ``checkpoint-<step>/gvendi_callback_state.pt``.

Format 2 holds the accumulator set's ``state_dict()`` (bootstrap included) under ``"accumulators"``, the curve, the
epochs, the stage name, the step and the configuration; format 1 (the accumulators at the top level) still loads.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import TrainingArguments

STATE_FILE = "gvendi_callback_state.pt"
FORMAT = 2
_MUST_MATCH = ("source", "projection", "seed", "fold")  # features measured otherwise do not mix


def save_state(folder: str, **state: Any) -> None:
    """Write ``state`` (step, config, accumulators, curve, epochs, current_stage) into ``folder``."""
    torch.save({"format": FORMAT, **state}, os.path.join(folder, STATE_FILE))


def load_state(checkpoint: str, *, dim: int, config: dict[str, Any]) -> dict[str, Any]:
    """The state saved in ``checkpoint``, refused when its dim, source, projection or seed differ from ``config``."""
    path = os.path.join(checkpoint, STATE_FILE)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if "accumulators" not in saved:  # format 1
        saved = {**saved, "accumulators": saved}
    saved_dim = int(saved["accumulators"]["cumulative"]["dim"])
    if saved_dim != dim:
        raise ValueError(
            f"GVendiCallback: the checkpoint's G-Vendi state has dim {saved_dim} but this callback has dim={dim}; "
            "resume with the same dim (and projection, seed) to continue the curve."
        )
    saved_config = saved.get("config") or {}
    for key in _MUST_MATCH:
        if key in saved_config and saved_config[key] != config[key]:
            raise ValueError(
                f"GVendiCallback: the checkpoint's G-Vendi state was measured with {key}={saved_config[key]!r} but "
                f"this callback has {key}={config[key]!r}; features of the two do not mix. Resume with "
                f"GVendiCallback({key}={saved_config[key]!r}), or delete {path} to start a new curve."
            )
    return saved


def find_state(args: TrainingArguments, step: int) -> str | None:
    """The checkpoint folder of a run resuming at ``step``: ``args.resume_from_checkpoint`` or
    ``output_dir/checkpoint-<step>``, whichever holds the state (the Trainer does not tell callbacks which)."""
    for folder in (args.resume_from_checkpoint, os.path.join(args.output_dir, f"checkpoint-{step}")):
        if isinstance(folder, str) and os.path.isfile(os.path.join(folder, STATE_FILE)):
            return folder
    return None
