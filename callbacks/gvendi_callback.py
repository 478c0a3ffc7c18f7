"""`GVendiCallback`: the G-Vendi of the data a `transformers.Trainer` consumes, logged next to the loss.

How the pieces fit (no Trainer event receives the batch, so the callback watches the model instead):

- A forward pre-hook on the model sees each training micro-batch (``model.training`` and grad enabled; evaluation
  forwards are ignored) and opens a batch on a :class:`gvendi.GradientCollector` with the attention mask as token
  mask. The collector's hooks read the activations and output-gradients of the Trainer's own backward pass
  (``source="model"``); the batch is closed after that backward (``on_substep_end`` / ``on_step_end``).
- Per-example rows go into per-stage :class:`gvendi.VendiAccumulator` s local to the rank. At every logging step,
  epoch end, checkpoint and train end the ranks sum them (exact: the states are sums; small stages travel as rows,
  large ones as second moments), and the window, cumulative, epoch and stage accumulators, identical on every rank,
  absorb the result.
- Columns the model does not take (``stage_column``, the text columns of ``source="proxy"``) would be dropped by the
  Trainer's ``remove_unused_columns``. The callback keeps them in the Trainer's signature columns and wraps the data
  collator: the wrapper pops them from each example, collates the rest with the user's collator and attaches them to
  the batch under one key, which the pre-hook removes before the model sees it. This works with dataloader workers
  and with `datasets` and torch datasets alike; `close()` gives the Trainer its own collator back.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.data.data_collator import default_data_collator

from gvendi import DEFAULT_PROXY, GradientCollector, VendiAccumulator, __version__, make_projector
from gvendi.gradients import discover_targets
from gvendi.projection import DEFAULT_PROJECTION, PROJECTIONS, Projector
from gvendi.vendi import vendi_from_eigenvalues

__all__ = ["CURVE_FILE", "PLOT_FILE", "STATE_FILE", "GVendiCallback"]

logger = logging.getLogger(__name__)

CURVE_FILE = "gvendi_curve.json"
PLOT_FILE = "gvendi_curve.png"
STATE_FILE = "gvendi_callback_state.pt"
ROWS_KEY = "gvendi_rows"  # batch key carrying per-example stage / text fields from the collator to the pre-hook
_NO_STAGE = ""


class _RowFields:
    """Per-example fields riding in a batch. It has no ``.to``, so device moves leave it alone."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[dict[str, Any] | None]):
        self.rows = rows


class _RowFieldsCollator:
    """The user's data collator, minus ``fields``: they are popped from each example and attached to the batch
    under ``ROWS_KEY`` (the callback's pre-hook removes them before the model's forward)."""

    def __init__(self, inner: Any, fields: list[str]):
        self.inner = inner if inner is not None else default_data_collator
        self.fields = tuple(fields)

    def __call__(self, features: list[Any]) -> Any:
        rows: list[dict[str, Any] | None] = []
        stripped = []
        for feature in features:
            if isinstance(feature, Mapping) and any(name in feature for name in self.fields):
                feature = dict(feature)
                rows.append({name: feature.pop(name) for name in self.fields if name in feature})
            else:
                rows.append(None)
            stripped.append(feature)
        batch = self.inner(stripped)
        if any(row is not None for row in rows) and isinstance(batch, MutableMapping):
            batch[ROWS_KEY] = _RowFields(rows)
        return batch


def _trainer_frames(callback: TrainerCallback):
    """Yield ``(trainer, frame locals)`` for the Trainer frames on the call stack that hold ``callback``."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            handler = getattr(candidate, "callback_handler", None) if isinstance(candidate, Trainer) else None
            if handler is not None and any(cb is callback for cb in handler.callbacks):
                yield candidate, frame.f_locals
            frame = frame.f_back
    finally:
        del frame


def _dataset_columns(dataset: Any) -> set[str] | None:
    """Column names of a `datasets` or torch dataset of dict rows; ``None`` when they cannot be known up front."""
    names = getattr(dataset, "column_names", None)
    if isinstance(names, (list, tuple)):
        return set(names)
    try:
        first = dataset[0]
    except Exception:  # an iterable dataset, or one that cannot be indexed
        return None
    return set(first) if isinstance(first, Mapping) else None


class GVendiCallback(TrainerCallback):
    """Logs the G-Vendi (gradient diversity) of the examples a `transformers.Trainer` trains on.

    Each consumed example ``i`` contributes its unit projected gradient ``x_i = P g_i / ‖P g_i‖`` (``P``: seeded
    projection to ``dim``; Jung et al., 2025, arXiv 2505.20161). Over a set of ``N`` examples,
    ``Σ = (1/N) Σ_i x_i x_iᵀ`` and ``G-Vendi = exp(−Σ_λ λ log λ)`` over the eigenvalues of ``Σ`` (the Vendi Score
    of order ``q``; ``q = 1`` in the paper), a value in ``[1, min(N, dim)]``: 1 when every example pulls the model in
    the same direction, ``dim`` when they are spread over ``dim`` orthogonal directions.

    Logged through ``trainer.log`` (so into ``state.log_history`` and every reporter: TensorBoard, W&B, MLflow …):

    - ``gvendi/window``, ``gvendi/window_examples``: the examples since the previous logging step;
    - ``gvendi/cumulative``, ``gvendi/examples``: everything since the start of training (a resumed run continues);
    - ``gvendi/epoch``: the current epoch so far (at logging steps) and the whole epoch (at its end, with
      ``gvendi/epoch_examples``);
    - ``gvendi/stage/<name>``: each curriculum stage seen in the window, over all of that stage so far. A stage comes
      from ``stage_column`` (per example) or from :meth:`set_stage`.

    At train end, ``gvendi_curve.json`` and ``gvendi_curve.png`` are written to ``output_dir`` (main process only).

    Args:
        source (`str`, *optional*, defaults to ``"model"``): ``"model"`` reads the per-example gradients of the model
            being trained from its own backward pass (hooks, no extra forward or backward; the direction of each
            example's gradient is exact whatever the loss scaling, since rows are unit-normalised); ``"proxy"``
            featurizes the consumed examples' texts with a fixed proxy (paper-faithful and comparable across runs,
            one extra forward + backward of the proxy per example).
        dim (`int`, *optional*, defaults to 1024): projection dimension k (the paper's 1024).
        projection (`str`, *optional*): ``"factored"`` (the default, as ``gvendi score`` uses: a CountSketch taken
            through each layer's factors, so a layer's per-example gradient is never formed inside the training
            step), ``"sketch"`` (a CountSketch of each layer's per-example gradient: about twice the overhead with
            ``source="model"``, and slow at large vocabularies) or ``"dense"`` (the paper's
            dense Rademacher projection, slow); or a `Projector`, e.g. ``FactoredSketchProjector(1024, fold=64)``.
        seed (`int`, *optional*, defaults to 0): projection seed.
        q (`float`, *optional*, defaults to 1.0): order of the Vendi Score (1 is the paper's G-Vendi).
        stage_column (`str`, *optional*): a training-data column naming each example's curriculum stage.
        proxy (*optional*, defaults to ``"Qwen/Qwen2.5-0.5B-Instruct"``): with ``source="proxy"``, the proxy: a Hub id,
            local folder, ``"tiny"`` or a model object (pass its tokenizer in ``proxy_kwargs``).
        proxy_kwargs (`dict`, *optional*): more arguments for :class:`gvendi.GradientFeaturizer` (``tokenizer``,
            ``revision``, ``max_length``, ``batch_size``, ``device``, ``dtype`` …).
        prompt_column, completion_column (`str`, *optional*, default ``"prompt"``, ``"completion"``), messages_column
            (`str`, *optional*): the text columns ``source="proxy"`` reads from the training data.
        trainable_only (`bool`, *optional*, defaults to `True`): with ``source="model"``, the gradient over the
            trainable parameters only (what the optimizer sees; all of them in full fine-tuning, the adapters with
            LoRA).
        every_n_steps (`int`, *optional*, defaults to 1): featurize the examples of every n-th optimizer step only
            (a systematic sample; the other steps run untouched). 1 measures every example; larger values cut the
            overhead about n-fold, and the logged values then describe the sampled examples.
        save_plot (`bool`, *optional*, defaults to `True`): also write ``gvendi_curve.png`` (needs matplotlib).

    Example:
        >>> from gvendi.callbacks import GVendiCallback
        >>> callback = GVendiCallback(dim=256, stage_column="stage")
        >>> # trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
        >>> # trainer.train()  →  logs gvendi/window, gvendi/cumulative, gvendi/stage/<name> … next to the loss
    """

    def __init__(
        self,
        *,
        source: Literal["model", "proxy"] = "model",
        dim: int = 1024,
        projection: str | Projector | None = None,
        seed: int = 0,
        q: float = 1.0,
        stage_column: str | None = None,
        proxy: Any = DEFAULT_PROXY,
        proxy_kwargs: dict[str, Any] | None = None,
        prompt_column: str = "prompt",
        completion_column: str = "completion",
        messages_column: str | None = None,
        trainable_only: bool = True,
        every_n_steps: int = 1,
        save_plot: bool = True,
    ):
        if source not in ("model", "proxy"):
            raise ValueError(f"GVendiCallback: source must be 'model' or 'proxy' (got {source!r}).")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"GVendiCallback: dim must be an integer ≥ 1 (got {dim!r}); the paper uses 1024.")
        if projection is None:
            projection = DEFAULT_PROJECTION
        if not isinstance(projection, Projector) and projection not in PROJECTIONS:
            raise ValueError(
                f"GVendiCallback: projection must be one of {list(PROJECTIONS)} or a gvendi Projector (got "
                f"{projection!r})."
            )
        if not (isinstance(q, (int, float)) and q > 0):
            raise ValueError(f"GVendiCallback: q must be a number > 0 (got {q!r}); q=1.0 is the paper's G-Vendi.")
        if not isinstance(every_n_steps, int) or isinstance(every_n_steps, bool) or every_n_steps < 1:
            raise ValueError(f"GVendiCallback: every_n_steps must be an integer ≥ 1 (got {every_n_steps!r}).")
        if stage_column is not None and not isinstance(stage_column, str):
            raise TypeError(
                f"GVendiCallback: stage_column must be a column name (str), got {type(stage_column).__name__}."
            )
        # hyperparameters
        self.source = source
        self.dim = dim
        self.projection = projection
        self.seed = int(seed)
        self.q = float(q)
        self.stage_column = stage_column
        self.proxy = proxy
        self.proxy_kwargs = dict(proxy_kwargs or {})
        self.prompt_column = prompt_column
        self.completion_column = completion_column
        self.messages_column = messages_column
        self.trainable_only = trainable_only
        self.every_n_steps = every_n_steps
        self.save_plot = save_plot
        # wiring, built in attach() / on_train_begin()
        self._trainer: Trainer | None = None
        self._collector: GradientCollector | None = None
        self._featurizer: Any = None
        self._pre_hook: torch.utils.hooks.RemovableHandle | None = None
        self._hooked_model: torch.nn.Module | None = None
        self._active = False  # between on_train_begin and on_train_end
        self._replaced_collator: Any = None
        self._added_signature_columns: list[str] = []
        self._open_stages: list[str] | None = None  # stages of the micro-batch whose backward is running
        self._busy = False
        self._sampling = True  # whether the current optimizer step's examples are featurized (every_n_steps)
        self._warned: set[str] = set()
        self._current_stage: str | None = None
        self.reset()

    # public API ------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything accumulated (the callback otherwise keeps accumulating across ``trainer.train()`` calls,
        so a curriculum trained as successive calls stays one curve)."""
        self._pending: dict[str, VendiAccumulator] = {}  # this rank, since the last sync, by stage
        self._pending_records: list[tuple[str, dict[str, Any]]] = []  # source="proxy": texts waiting to featurize
        self._window = VendiAccumulator(self.dim)
        self._window_stages: set[str] = set()
        self._cumulative = VendiAccumulator(self.dim)
        self._epoch = VendiAccumulator(self.dim)
        self._stages: dict[str, VendiAccumulator] = {}
        self.curve: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self._skipped = 0
        self._runs = 0
        self._scores: list[tuple[VendiAccumulator, float]] = []  # (accumulator, value) since the last sync

    def set_stage(self, name: str | None) -> None:
        """Name the curriculum stage of the examples trained on from now on (``None``: no stage). A ``stage_column``
        value, when the example has one, wins."""
        self._current_stage = None if name is None else str(name)

    def attach(self, trainer: Trainer) -> GVendiCallback:
        """Bind the callback to ``trainer``. Only needed when the callback was added with ``trainer.add_callback``
        after construction *and* uses ``stage_column`` or ``source="proxy"``; call it before ``trainer.train()``.
        A callback passed as ``Trainer(..., callbacks=[callback])`` attaches itself."""
        if self._trainer is trainer:
            return self
        self._trainer = trainer
        if not any(cb is self for cb in trainer.callback_handler.callbacks):
            trainer.add_callback(self)
        fields = self._row_fields()
        if fields:
            if not isinstance(trainer.data_collator, _RowFieldsCollator):
                self._replaced_collator = trainer.data_collator
                trainer.data_collator = _RowFieldsCollator(trainer.data_collator, fields)
            if trainer.args.remove_unused_columns:
                trainer._set_signature_columns_if_needed()
                missing = [name for name in fields if name not in trainer._signature_columns]
                trainer._signature_columns = list(trainer._signature_columns) + missing
                self._added_signature_columns = missing
            self._install_pre_hook(trainer.model)  # from now on every batch may carry the fields: strip them
        return self

    def close(self) -> None:
        """Remove every hook and give the Trainer back its own collator (also safe to call twice).

        At train end the callback only drops its gradient hooks; with ``stage_column`` or ``source="proxy"`` it keeps
        the collator wrapper (and a pre-hook that strips the extra fields, so ``trainer.evaluate()`` works) for the
        next ``trainer.train()`` call. ``close()`` removes those too; call it if training raised."""
        self._release()
        if self._pre_hook is not None:
            self._pre_hook.remove()
            self._pre_hook = None
            self._hooked_model = None
        trainer = self._trainer
        if trainer is not None and isinstance(trainer.data_collator, _RowFieldsCollator):
            trainer.data_collator = (
                trainer.data_collator.inner if self._replaced_collator is None else self._replaced_collator
            )
            if self._added_signature_columns and getattr(trainer, "_signature_columns", None) is not None:
                trainer._signature_columns = [
                    c for c in trainer._signature_columns if c not in self._added_signature_columns
                ]
            self._added_signature_columns = []
            self._replaced_collator = None
            self._trainer = None

    def _install_pre_hook(self, model: torch.nn.Module) -> None:
        if self._pre_hook is not None and self._hooked_model is model:
            return
        if self._pre_hook is not None:
            self._pre_hook.remove()
        self._pre_hook = model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        self._hooked_model = model

    def _release(self) -> None:
        """Stop measuring: remove the gradient hooks (and the pre-hook when no batch carries extra fields)."""
        self._active = False
        if self._collector is not None:
            self._collector.close()
            self._collector = None
        self._open_stages = None
        if self._pre_hook is not None and not self._row_fields():
            self._pre_hook.remove()
            self._pre_hook = None
            self._hooked_model = None

    def summary(self) -> dict[str, Any]:
        """Everything the callback measured: what ``gvendi_curve.json`` holds (synced values only)."""
        return {
            "config": self._config(),
            "final": {
                "cumulative": self._value(self._cumulative),
                "examples": self._cumulative.count,
                "stages": {
                    name: {"gvendi": self._value(acc), "examples": acc.count} for name, acc in self._stages.items()
                },
                "skipped_examples": self._skipped,
            },
            "points": self.curve,
            "epochs": self.epochs,
        }

    # Trainer events --------------------------------------------------------------------------------------------
    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        for trainer, _ in _trainer_frames(self):
            self.attach(trainer)
            break

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        checkpoint = None
        for trainer, local_vars in _trainer_frames(self):
            if self._trainer is None:
                self.attach(trainer)
            if isinstance(local_vars.get("resume_from_checkpoint"), str):
                checkpoint = local_vars["resume_from_checkpoint"]
        if self._trainer is None:
            raise RuntimeError(
                "GVendiCallback could not find its Trainer on the call stack; call callback.attach(trainer) before "
                "trainer.train()."
            )
        model = kwargs.get("model")
        if model is None:
            model = self._trainer.model
        try:
            self._check_data(kwargs.get("train_dataloader"))
            if self.source == "model":
                self._setup_model_source(model)
            else:
                self._setup_proxy_source()
            self._install_pre_hook(model)
            if state.global_step > 0:
                self._restore(args, state, checkpoint)
        except Exception:
            self.close()  # leave the Trainer as it was: no hooks, its own collator
            raise
        self._runs += 1
        self._active = True

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._sampling = state.global_step % self.every_n_steps == 0

    def on_substep_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._close_batch()

    @torch.no_grad()
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._close_batch()
        if not control.should_log:
            return control
        self._sync()
        logs: dict[str, float] = {}
        if self._window.count:
            logs["gvendi/window"] = self._value(self._window)
            logs["gvendi/window_examples"] = self._window.count
        if self._cumulative.count:
            logs["gvendi/cumulative"] = self._value(self._cumulative)
            logs["gvendi/examples"] = self._cumulative.count
        if self._epoch.count:
            logs["gvendi/epoch"] = self._value(self._epoch)
        stages = {name: self._value(self._stages[name]) for name in sorted(self._window_stages) if name != _NO_STAGE}
        for name, value in stages.items():
            logs[f"gvendi/stage/{name}"] = value
        if logs:
            self.curve.append(
                {
                    "step": state.global_step,
                    "epoch": state.epoch,
                    "run": self._runs,
                    "window": logs.get("gvendi/window"),
                    "window_examples": self._window.count,
                    "cumulative": logs.get("gvendi/cumulative"),
                    "examples": self._cumulative.count,
                    "epoch_value": logs.get("gvendi/epoch"),
                    "stages": stages,
                }
            )
            self._log(control, logs)
        self._window = VendiAccumulator(self.dim)
        self._window_stages = set()
        return control

    @torch.no_grad()
    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._close_batch()
        self._sync()
        if self._epoch.count:
            value = self._value(self._epoch)
            epoch = int(round(state.epoch)) if state.epoch is not None else len(self.epochs) + 1
            self.epochs.append(
                {"epoch": epoch, "step": state.global_step, "gvendi": value, "examples": self._epoch.count}
            )
            self._log(control, {"gvendi/epoch": value, "gvendi/epoch_examples": self._epoch.count})
        self._epoch = VendiAccumulator(self.dim)
        return control

    @torch.no_grad()
    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._sync()
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            torch.save(self._state_dict(), os.path.join(folder, STATE_FILE))

    @torch.no_grad()
    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        try:
            self._close_batch()
            self._sync()
            if state.is_world_process_zero and args.output_dir:
                os.makedirs(args.output_dir, exist_ok=True)
                with open(os.path.join(args.output_dir, CURVE_FILE), "w") as handle:
                    json.dump(self.summary(), handle, indent=2)
                if self.save_plot:
                    self._plot(os.path.join(args.output_dir, PLOT_FILE))
        finally:
            self._release()

    # setup and checks ------------------------------------------------------------------------------------------
    def _row_fields(self) -> list[str]:
        fields = [self.stage_column] if self.stage_column else []
        if self.source == "proxy":
            fields += [self.messages_column] if self.messages_column else [self.prompt_column, self.completion_column]
        return fields

    def _check_data(self, train_dataloader: Any) -> None:
        fields = self._row_fields()
        if not fields:
            return
        trainer = self._trainer
        dataset = trainer.train_dataset
        columns = _dataset_columns(dataset) if dataset is not None else None
        if columns is not None:
            if self.stage_column and self.stage_column not in columns:
                raise ValueError(
                    f"GVendiCallback: stage_column={self.stage_column!r} is not a column of the training data, which has "
                    f"{sorted(columns)}. Add the column, pass the right name, or use callback.set_stage(name) instead."
                )
            if self.source == "proxy":
                text = [name for name in fields if name != self.stage_column]
                missing = [name for name in text if name not in columns]
                if missing:
                    raise ValueError(
                        f"GVendiCallback(source='proxy'): the training data has no text column(s) {missing} (it has "
                        f"{sorted(columns)}); the proxy featurizes texts, not the trained model's token ids. Keep the "
                        "text columns in train_dataset and name them with prompt_column=/completion_column= or "
                        "messages_column=, or use source='model'."
                    )
        collate = getattr(train_dataloader, "collate_fn", None)
        while collate is not None and not isinstance(collate, _RowFieldsCollator):
            collate = getattr(collate, "data_collator", None)  # transformers' RemoveColumnsCollator wraps it
        if train_dataloader is not None and collate is None:
            raise RuntimeError(
                "GVendiCallback: the training dataloader was built before the callback was attached, so the "
                f"column(s) {fields} cannot reach it. Pass the callback in Trainer(callbacks=[...]) or call "
                "callback.attach(trainer) before trainer.train()."
            )

    def _setup_model_source(self, model: torch.nn.Module) -> None:
        name = type(model).__name__
        try:
            targets = discover_targets(model, trainable_only=self.trainable_only)
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
        if self._collector is None:
            projector = make_projector(self.projection, self.dim, self.seed)
            self._collector = GradientCollector(model, projector, freeze=False, trainable_only=self.trainable_only)
            self._collector.__enter__()

    def _setup_proxy_source(self) -> None:
        if self._featurizer is None:
            from gvendi import GradientFeaturizer

            self._featurizer = GradientFeaturizer(
                self.proxy,
                dim=self.dim,
                projection=self.projection,
                seed=self.seed,
                prompt_column=self.prompt_column,
                completion_column=self.completion_column,
                messages_column=self.messages_column,
                show_progress=False,
                **self.proxy_kwargs,
            )

    # capture ---------------------------------------------------------------------------------------------------
    def _pre_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple | None:
        fields = kwargs.pop(ROWS_KEY, None)
        changed = None if fields is None else (args, kwargs)
        if not self._active or self._busy or not self._sampling or not module.training or not torch.is_grad_enabled():
            return changed  # evaluation, generation, or the proxy's own passes
        self._close_batch()
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        if not isinstance(ids, torch.Tensor) or ids.ndim < 2:
            self._warn_once("noids", "GVendiCallback: a training forward without input_ids/inputs_embeds was skipped.")
            return changed
        n = ids.shape[0]
        rows = fields.rows if fields is not None and len(fields.rows) == n else [None] * n
        stages = [self._stage_of(row) for row in rows]
        if self.source == "model":
            mask = kwargs.get("attention_mask")
            if not (isinstance(mask, torch.Tensor) and mask.ndim == 2 and mask.shape[0] == n):
                mask = None
            self._collector.begin_batch(n, mask)
            self._open_stages = stages
        else:
            text = [name for name in self._row_fields() if name != self.stage_column]
            for stage, row in zip(stages, rows):
                if row is None or any(name not in row for name in text):
                    self._skipped += 1
                    self._warn_once(
                        "notext", "GVendiCallback(source='proxy'): examples without text columns were skipped."
                    )
                    continue
                self._pending_records.append((stage, {name: row[name] for name in text}))
        return changed

    def _stage_of(self, row: dict[str, Any] | None) -> str:
        if self.stage_column and row is not None and row.get(self.stage_column) is not None:
            return str(row[self.stage_column])
        return self._current_stage if self._current_stage is not None else _NO_STAGE

    def _close_batch(self) -> None:
        """Collect the open micro-batch (its backward has run) into this rank's pending accumulators."""
        if self._open_stages is None or self._collector is None:
            return
        stages, self._open_stages = self._open_stages, None
        self._add_rows(self._collector.end_batch().detach().to("cpu", torch.float64), stages)

    def _add_rows(self, rows: torch.Tensor, stages: list[str]) -> None:
        valid = torch.isfinite(rows).all(dim=1) & (rows.norm(dim=1) > 0)  # no gradient (fully masked, skipped step)
        self._skipped += int((~valid).sum())
        for stage in dict.fromkeys(stages):
            index = [i for i, s in enumerate(stages) if s == stage and bool(valid[i])]
            if index:
                self._pending.setdefault(stage, VendiAccumulator(self.dim)).update(rows[index])

    def _featurize_records(self) -> None:
        if not self._pending_records:
            return
        records, self._pending_records = self._pending_records, []
        self._busy = True
        try:
            features = self._featurizer.featurize([record for _, record in records])
        finally:
            self._busy = False
        self._sampling = True  # whether the current optimizer step's examples are featurized (every_n_steps)
        self._add_rows(torch.from_numpy(features).double(), [stage for stage, _ in records])

    # cross-rank merge ------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Sum every rank's pending rows (exactly) into the window, cumulative, epoch and stage accumulators.

        Runs on every rank at the same events (logging steps, epoch ends, saves, train end); the collective shapes
        depend only on the union of stage names, so ranks that saw different numbers of examples (or none) agree.
        """
        if self.source == "proxy":
            self._featurize_records()
        local, self._pending = self._pending, {}
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed and torch.distributed.get_world_size() > 1:
            deltas = self._merge_ranks(local)
        else:
            deltas = local
        for name, delta in deltas.items():
            if delta.count == 0:
                continue
            self._scores = []  # the states change
            self._window.merge(delta)
            self._cumulative.merge(delta)
            self._epoch.merge(delta)
            self._stages.setdefault(name, VendiAccumulator(self.dim)).merge(delta)
            self._window_stages.add(name)

    def _merge_ranks(self, local: dict[str, VendiAccumulator]) -> dict[str, VendiAccumulator]:
        """Every rank's pending accumulators, summed by stage over ranks (collectives on every rank).

        A stage with at most ``dim`` rows over all ranks travels as its rows (one all-gather), so the merged windows
        stay in row form and are scored from their small Gram matrix, exactly as in one process; larger stages
        travel as ``k×k`` second moments (one all-reduce)."""
        held = {name: (acc.count, acc.unit_rows() is not None) for name, acc in local.items()}
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, held)
        names = sorted(set().union(*map(set, gathered)))
        device = torch.device("cpu")
        if torch.distributed.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        held_by_rank = {name: [rank.get(name, (0, True)) for rank in gathered] for name in names}  # (count, as rows)
        counts = {name: [count for count, _ in held_by_rank[name]] for name in names}
        as_rows = [
            name for name in names if sum(counts[name]) <= self.dim and all(rows for _, rows in held_by_rank[name])
        ]
        as_moments = [name for name in names if name not in as_rows]
        deltas: dict[str, VendiAccumulator] = {}
        if as_rows:  # [S, most rows on a rank, k], zero-padded; each rank's own rows taken back by its count
            longest = max(max(counts[name]) for name in as_rows)
            packed = torch.zeros(len(as_rows), longest, self.dim, dtype=torch.float64, device=device)
            for i, name in enumerate(as_rows):
                if name in local:
                    rows = local[name].unit_rows()
                    packed[i, : rows.shape[0]] = rows.to(device)
            everyone = [torch.empty_like(packed) for _ in gathered]
            torch.distributed.all_gather(everyone, packed)
            everyone = [tensor.cpu() for tensor in everyone]
            for i, name in enumerate(as_rows):
                delta = VendiAccumulator(self.dim, normalize=False)
                for rank, tensor in enumerate(everyone):
                    delta.update(tensor[i, : counts[name][rank]])
                deltas[name] = delta
        if as_moments:  # [S, k·k + 1]: each stage's second moment and count, summed over ranks in one call
            packed = torch.zeros(len(as_moments), self.dim * self.dim + 1, dtype=torch.float64, device=device)
            for i, name in enumerate(as_moments):
                if name in local:
                    packed[i, :-1] = local[name].second_moment.reshape(-1).to(device)
                    packed[i, -1] = local[name].count
            torch.distributed.all_reduce(packed)
            packed = packed.cpu()
            for i, name in enumerate(as_moments):
                moment, count = packed[i, :-1].view(self.dim, self.dim), round(float(packed[i, -1]))
                deltas[name] = VendiAccumulator.from_state_dict({"dim": self.dim, "count": count, "second_moment": moment})
        return deltas

    # logging, files --------------------------------------------------------------------------------------------
    def _value(self, accumulator: VendiAccumulator) -> float | None:
        """The accumulator's G-Vendi. Accumulators with identical states (the window, epoch, cumulative and stage
        ones often are, e.g. in the first window) are scored once per sync. The eigensolver is torch's, inside the
        training process's own thread pool (numpy's BLAS pool beside it can stall a loaded CPU)."""
        if not accumulator.count:
            return None
        for scored, value in self._scores:
            if scored.same_state(accumulator):
                return value
        value = vendi_from_eigenvalues(accumulator.eigenvalues(), self.q)
        value = min(max(value, 1.0), float(min(accumulator.count, self.dim)))
        self._scores.append((accumulator, value))
        return value

    def _log(self, control: TrainerControl, logs: dict[str, float]) -> None:
        """``trainer.log`` without eating the Trainer's own pending log: its ``on_log`` clears ``should_log``."""
        trainer = self._trainer
        should_log = control.should_log
        try:
            trainer.log(dict(logs))
        finally:
            control.should_log = should_log
            trainer.control.should_log = should_log

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def _config(self) -> dict[str, Any]:
        config = {
            "source": self.source,
            "dim": self.dim,
            "projection": self.projection if isinstance(self.projection, str) else self.projection.config(),
            "seed": self.seed,
            "q": self.q,
            "stage_column": self.stage_column,
            "trainable_only": self.trainable_only,
            "every_n_steps": self.every_n_steps,
            "gvendi_version": __version__,
        }
        if self.source == "proxy" and self._featurizer is not None:
            config["proxy"] = self._featurizer.provenance
        return config

    def _state_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "config": self._config(),
            "window": self._window.state_dict(),
            "window_stages": sorted(self._window_stages),
            "cumulative": self._cumulative.state_dict(),
            "epoch": self._epoch.state_dict(),
            "stages": {name: acc.state_dict() for name, acc in self._stages.items()},
            "curve": self.curve,
            "epochs": self.epochs,
            "skipped": self._skipped,
            "current_stage": self._current_stage,
        }

    def _restore(self, args: TrainingArguments, state: TrainerState, checkpoint: str | None) -> None:
        candidates = [checkpoint, os.path.join(args.output_dir, f"checkpoint-{state.global_step}")]
        path = next(
            (os.path.join(c, STATE_FILE) for c in candidates if c and os.path.isfile(os.path.join(c, STATE_FILE))),
            None,
        )
        if path is None:
            logger.warning(
                "GVendiCallback: training resumes at step %d but no %s was found in the checkpoint; the cumulative "
                "G-Vendi restarts from the resumed step.",
                state.global_step,
                STATE_FILE,
            )
            return
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if int(saved["cumulative"]["dim"]) != self.dim:
            raise ValueError(
                f"GVendiCallback: the checkpoint's G-Vendi state has dim {saved['cumulative']['dim']} but this callback "
                f"has dim={self.dim}; resume with the same dim (and projection, seed) to continue the curve."
            )
        saved_config, config = saved.get("config") or {}, self._config()
        for key in ("source", "projection", "seed"):
            if key in saved_config and saved_config[key] != config[key]:
                raise ValueError(
                    f"GVendiCallback: the checkpoint's G-Vendi state was measured with {key}={saved_config[key]!r} but "
                    f"this callback has {key}={config[key]!r}; features of the two do not mix. Resume with "
                    f"GVendiCallback({key}={saved_config[key]!r}), or delete {path} to start a new curve."
                )
        self._window = VendiAccumulator.from_state_dict(saved["window"])
        self._window_stages = set(saved["window_stages"])
        self._cumulative = VendiAccumulator.from_state_dict(saved["cumulative"])
        self._epoch = VendiAccumulator.from_state_dict(saved["epoch"])
        self._stages = {name: VendiAccumulator.from_state_dict(sd) for name, sd in saved["stages"].items()}
        self.curve = list(saved["curve"])
        self.epochs = list(saved["epochs"])
        self._skipped = int(saved["skipped"])
        if saved.get("current_stage") is not None and self._current_stage is None:
            self._current_stage = saved["current_stage"]
        self._pending, self._pending_records = {}, []
        self._scores = []

    def _plot(self, path: str) -> None:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            self._warn_once(
                "plot", "GVendiCallback: matplotlib is not installed (pip install matplotlib); no plot."
            )
            return
        points = [p for p in self.curve if p["cumulative"] is not None]
        figure = Figure(figsize=(7.0, 4.0), dpi=120)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        if points:
            x = [p["examples"] for p in points]
            axes.plot(x, [p["cumulative"] for p in points], color="black", linewidth=2, label="cumulative")
            window = [(p["examples"], p["window"]) for p in points if p["window"] is not None]
            axes.plot(*zip(*window), color="gray", linewidth=1, marker=".", alpha=0.7, label="window")
            names = sorted({name for p in points for name in p["stages"]})
            for i, name in enumerate(names):
                staged = [(p["examples"], p["stages"][name]) for p in points if name in p["stages"]]
                axes.plot(
                    *zip(*staged), linestyle="--", marker="o", markersize=3, color=f"C{i}", label=f"stage {name}"
                )
        axes.set_xlabel("examples seen")
        axes.set_ylabel(f"G-Vendi (q={self.q:g}, k={self.dim})")
        axes.set_title(f"Gradient diversity during training (source={self.source})")
        axes.grid(alpha=0.3)
        if points:
            axes.legend(loc="best", fontsize="small")
        figure.tight_layout()
        figure.savefig(path)
