"""The rows of the training micro-batches: the trained model's own per-example gradients, or their texts featurized
by a proxy, with each example's curriculum stage, added to a :class:`gvendi.accumulators.AccumulatorSet`.

A forward pre-hook on the trained model sees every forward. It strips the fields :mod:`.row_fields` attached to the
batch and, on a training forward (``model.training``, grad enabled, the step sampled), opens a batch: with
``source="model"`` on a :class:`gvendi.GradientCollector` whose hooks read the Trainer's own backward (the attention
mask as token mask), with ``source="proxy"`` by keeping the texts for a :class:`gvendi.GradientFeaturizer`.
:meth:`BatchCapture.close_batch` runs after the backward and adds the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from gvendi import GradientCollector, make_projector
from gvendi.accumulators import NO_STAGE, AccumulatorSet
from gvendi.gradients import discover_targets

from .row_fields import ROWS_KEY

logger = logging.getLogger(__name__)


def check_trainable(model: torch.nn.Module, *, trainable_only: bool) -> None:
    """The errors of ``source="model"`` on a model whose own backward cannot give G-Vendi's gradient."""
    name = type(model).__name__
    try:
        targets = discover_targets(model, trainable_only=trainable_only)
    except ValueError as err:
        raise ValueError(f"GVendiCallback(source='model') cannot hook {name}: {err}") from None
    if not any(target.kind in ("linear", "conv1d") for target in targets):
        raise ValueError(
            f"GVendiCallback(source='model'): {name} has no linear layers with trainable weights (nn.Linear or "
            "Conv1D), so its gradient is not what G-Vendi measures. Train a model with linear layers, or measure "
            "the data with a fixed proxy: GVendiCallback(source='proxy')."
        )
    checkpointing = getattr(type(model), "is_activation_checkpointing", None) is not None
    if getattr(model, "is_activation_checkpointing" if checkpointing else "is_gradient_checkpointing", False):
        raise ValueError(
            "GVendiCallback(source='model') does not support gradient checkpointing (the recomputed forward would "
            "be hooked twice); turn it off or use source='proxy'."
        )


class BatchCapture:
    """Per-example rows of the training micro-batches, into ``accumulators``.

    Args:
        accumulators (`AccumulatorSet`): where the rows go (this rank's pending state).
        stage_column (`str`, *optional*): the batch field naming each example's stage.
        text_columns (`list[str]`): with a proxy, the batch fields it featurizes.
        default_stage (`Callable`): the stage of examples without a ``stage_column`` value (``None``: no stage).
    """

    def __init__(
        self,
        accumulators: AccumulatorSet,
        *,
        stage_column: str | None,
        text_columns: list[str],
        default_stage: Callable[[], str | None],
    ):
        self.accumulators, self.stage_column, self.text_columns = accumulators, stage_column, text_columns
        self.default_stage = default_stage
        self.active = False  # between start and stop
        self.sampling = True  # whether this optimizer step's examples are featurized (every_n_steps)
        self.featurizer: Any = None  # source="proxy"
        self._collector: GradientCollector | None = None  # source="model"
        self._pre_hook: torch.utils.hooks.RemovableHandle | None = None
        self._hooked_model: torch.nn.Module | None = None
        self._open_stages: list[str] | None = None  # stages of the micro-batch whose backward is running
        self._records: list[tuple[str, dict[str, Any]]] = []  # source="proxy": texts waiting to be featurized
        self._busy = False  # the proxy's own passes are running
        self._warned: set[str] = set()

    def hook(self, model: torch.nn.Module) -> None:
        """Watch ``model``'s forwards (also strips the batch fields; idempotent)."""
        if self._pre_hook is not None and self._hooked_model is model:
            return
        self.unhook()
        self._pre_hook = model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        self._hooked_model = model

    def unhook(self) -> None:
        if self._pre_hook is not None:
            self._pre_hook.remove()
            self._pre_hook = self._hooked_model = None

    def start(
        self, model: torch.nn.Module, *, projection: Any, dim: int, seed: int, fold: int, trainable_only: bool
    ) -> None:
        """Begin measuring: gradient hooks on ``model`` (``source="model"``, no featurizer) or its texts.

        ``projection`` is a name or a `Projector`; ``dim``, ``seed`` and ``fold`` are the resolved configuration's
        (a projector's own, when one was handed over)."""
        if self.featurizer is None and self._collector is None:
            check_trainable(model, trainable_only=trainable_only)
            projector = make_projector(projection, dim, seed, fold=fold)
            self._collector = GradientCollector(model, projector, freeze=False, trainable_only=trainable_only)
            self._collector.__enter__()
        self.hook(model)
        self.active = True

    def stop(self) -> None:
        """Stop measuring and remove the gradient hooks (the pre-hook stays while batches carry fields)."""
        self.active = False
        if self._collector is not None:
            self._collector.close()
            self._collector = None
        self._open_stages = None
        if not self.stage_column and not self.text_columns:
            self.unhook()

    def clear(self) -> None:
        self._records = []

    def close_batch(self) -> None:
        """Add the open micro-batch's rows (its backward has run)."""
        if self._open_stages is None or self._collector is None:
            return
        stages, self._open_stages = self._open_stages, None
        self.accumulators.add(self._collector.end_batch(), stages)

    def flush(self) -> None:
        """Featurize the texts kept so far (``source="proxy"``) and add their rows."""
        if not self._records:
            return
        records, self._records = self._records, []
        self._busy = True
        try:
            features = self.featurizer.featurize([record for _, record in records])
        finally:
            self._busy = False
        self.accumulators.add(torch.from_numpy(features), [stage for stage, _ in records])

    def _pre_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple | None:
        fields = kwargs.pop(ROWS_KEY, None)
        changed = None if fields is None else (args, kwargs)
        if not self.active or self._busy or not self.sampling or not module.training or not torch.is_grad_enabled():
            return changed  # evaluation, generation, or the proxy's own passes
        self.close_batch()
        ids = kwargs.get("input_ids", args[0] if args else None)
        ids = kwargs.get("inputs_embeds") if ids is None else ids
        if not isinstance(ids, torch.Tensor) or ids.ndim < 2:
            self._warn_once("noids", "GVendiCallback: a training forward without input_ids/inputs_embeds was skipped.")
            return changed
        n = ids.shape[0]
        rows = fields.rows if fields is not None and len(fields.rows) == n else [None] * n
        stages = [self._stage_of(row) for row in rows]
        if self._collector is not None:
            mask = kwargs.get("attention_mask")
            if not (isinstance(mask, torch.Tensor) and mask.ndim == 2 and mask.shape[0] == n):
                mask = None
            self._collector.begin_batch(n, mask)
            self._open_stages = stages
            return changed
        for stage, row in zip(stages, rows):
            if row is None or any(name not in row for name in self.text_columns):
                self.accumulators.skipped += 1
                self._warn_once(
                    "notext", "GVendiCallback(source='proxy'): examples without text columns were skipped."
                )
            else:
                self._records.append((stage, {name: row[name] for name in self.text_columns}))
        return changed

    def _stage_of(self, row: dict[str, Any] | None) -> str:
        if self.stage_column and row is not None and row.get(self.stage_column) is not None:
            return str(row[self.stage_column])
        stage = self.default_stage()
        return NO_STAGE if stage is None else stage

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)
