"""`GVendiCallback`: the G-Vendi of the data a `transformers.Trainer` consumes, logged next to the loss.

Trainer wiring only. The measuring is the core's: a forward pre-hook on the model sees each training micro-batch and
opens a batch on a :class:`gvendi.GradientCollector`, whose hooks read the activations and output-gradients of the
Trainer's own backward (``source="model"``), or the batch's texts go to a :class:`gvendi.GradientFeaturizer`
(``source="proxy"``) (:mod:`.capture`). The rows go into a :class:`gvendi.accumulators.AccumulatorSet` (window,
cumulative, epoch and stage accumulators, summed across ranks at every logging step, epoch end, checkpoint and train
end). Columns the model does not take reach the pre-hook through :mod:`.row_fields`; the state travels in the
Trainer's checkpoints through :mod:`.checkpoint`; the figure is :mod:`.plot`'s.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Literal

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from gvendi import __version__
from gvendi.accumulators import AccumulatorSet
from gvendi.config import GVendiConfig, field_names, resolve_config
from gvendi.projection import Projector, make_projector

from .capture import BatchCapture
from .checkpoint import STATE_FILE, find_state, load_state, save_state
from .plot import plot_curve
from .row_fields import check_columns, keep_columns, release_columns

__all__ = ["CURVE_FILE", "PLOT_FILE", "STATE_FILE", "GVendiCallback"]

logger = logging.getLogger(__name__)

CURVE_FILE = "gvendi_curve.json"
PLOT_FILE = "gvendi_curve.png"


class GVendiCallback(TrainerCallback):
    """Logs the G-Vendi (gradient diversity) of the examples a `transformers.Trainer` trains on.

    Each consumed example ``i`` contributes its unit projected gradient ``x_i = P g_i / ‖P g_i‖`` (``P``: seeded
    projection to ``dim``; Jung et al., 2025, arXiv 2505.20161). Over ``N`` examples, ``Σ = (1/N) Σ_i x_i x_iᵀ`` and
    ``G-Vendi = exp(−Σ_λ λ log λ)`` over the eigenvalues of ``Σ`` (order ``q``), a value in ``[1, min(N, dim)]``.

    Logged through ``trainer.log`` (so into ``state.log_history`` and every reporter): ``gvendi/window`` and
    ``gvendi/window_examples`` (since the previous logging step), ``gvendi/cumulative`` and ``gvendi/examples``
    (since the start; a resumed run continues), with ``ci`` also ``gvendi/cumulative_ci_low`` and
    ``gvendi/cumulative_ci_high``; ``gvendi/epoch`` (the epoch so far, and at its end the whole epoch with
    ``gvendi/epoch_examples``); ``gvendi/stage/<name>`` for each curriculum stage seen in the window. At train end
    ``gvendi_curve.json`` (:meth:`summary`) and ``gvendi_curve.png`` go to ``output_dir`` (main process only).

    The callback needs its Trainer (to log, and to see the data): pass ``trainer=`` or call :meth:`attach`.

    The projection and proxy settings are the fields of a :class:`gvendi.config.GVendiConfig`: pass one as
    ``config=``, or its fields as keyword arguments (``dim``, ``projection``, ``seed``, ``proxy``, the columns, and
    any field in ``proxy_kwargs``), which override ``config``'s, as :class:`gvendi.GradientFeaturizer` does. A bad
    field fails here, naming it, before any training. ``callback.config`` is the resolved configuration, recorded
    in :meth:`summary` and the checkpoint state.

    Args:
        config (`GVendiConfig`, *optional*): the projection (and, with ``source="proxy"``, proxy) settings in one
            object; the keyword arguments below override its fields.
        source (`str`, *optional*, defaults to ``"model"``): ``"model"`` reads the per-example gradients of the model
            being trained from its own backward pass (no extra forward or backward); ``"proxy"`` featurizes the
            consumed examples' texts with a fixed proxy (comparable across runs; one proxy forward + backward each).
        dim (`int`, *optional*, defaults to 1024): projection dimension k (the paper's 1024).
        projection (`str` or `Projector`, *optional*): ``"factored"`` (default), ``"sketch"``, ``"dense"``, or a
            `Projector` such as ``FactoredSketchProjector(1024, seed=5, fold=64)`` (its dim, seed and fold are the
            ones used and recorded; a contradicting ``seed=`` is refused).
        seed (`int`, *optional*, defaults to 0): projection seed (also seeds the bootstrap).
        q (`float`, *optional*, defaults to 1.0): order of the Vendi Score (1 is the paper's G-Vendi).
        stage_column (`str`, *optional*): a training-data column naming each example's curriculum stage.
        proxy (*optional*, defaults to ``"Qwen/Qwen2.5-0.5B-Instruct"``): with ``source="proxy"``: a Hub id, local
            folder, ``"tiny"`` or a model object (pass its tokenizer in ``proxy_kwargs``).
        proxy_kwargs (`dict`, *optional*): more :class:`gvendi.GradientFeaturizer` arguments: ``tokenizer``, and
            `GVendiConfig` fields (``revision``, ``max_length``, ``batch_size``, ``device``, ``dtype`` …), which
            override ``config``'s.
        prompt_column (`str`, *optional*, defaults to ``"prompt"``): with ``source="proxy"``, the prompt column.
        completion_column (`str`, *optional*, defaults to ``"completion"``): the completion column.
        messages_column (`str`, *optional*): a chat-messages column instead of the two.
        trainable_only (`bool`, *optional*, defaults to `True`): with ``source="model"``, the gradient over the
            trainable parameters only (the adapters with LoRA).
        every_n_steps (`int`, *optional*, defaults to 1): featurize the examples of every n-th optimizer step only.
        save_plot (`bool`, *optional*, defaults to `True`): also write ``gvendi_curve.png`` (needs matplotlib).
        ci (`float`, *optional*): a confidence level (e.g. 0.95) for a bootstrap interval of the cumulative value,
            logged and in the summary; ``None`` (default) keeps no bootstrap state. Costs ``n_boot`` ``k×k``
            eigensolves per logging step (minutes at ``dim=1024`` on a CPU: raise ``logging_steps``).
        n_boot (`int`, *optional*, defaults to 200): bootstrap resamples per interval.
        trainer (`Trainer`, *optional*): the Trainer to attach to (see :meth:`attach`).

    Example:
        >>> from gvendi.callbacks import GVendiCallback
        >>> callback = GVendiCallback(dim=256, stage_column="stage")
        >>> # trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
        >>> # callback.attach(trainer); trainer.train()  →  logs gvendi/window, gvendi/cumulative … beside the loss
    """

    def __init__(
        self,
        *,
        config: GVendiConfig | None = None,
        source: Literal["model", "proxy"] = "model",
        dim: int | None = None,
        projection: str | Projector | None = None,
        seed: int | None = None,
        q: float = 1.0,
        stage_column: str | None = None,
        proxy: Any = None,
        proxy_kwargs: dict[str, Any] | None = None,
        prompt_column: str | None = None,
        completion_column: str | None = None,
        messages_column: str | None = None,
        trainable_only: bool = True,
        every_n_steps: int = 1,
        save_plot: bool = True,
        ci: float | None = None,
        n_boot: int = 200,
        trainer: Trainer | None = None,
    ):
        if source not in ("model", "proxy"):
            raise ValueError(f"GVendiCallback: source must be 'model' or 'proxy' (got {source!r}).")
        instance = projection if isinstance(projection, Projector) else None
        model_proxy = proxy if isinstance(proxy, torch.nn.Module) else None
        proxy_kwargs = dict(proxy_kwargs or {})
        settings = {name: proxy_kwargs.pop(name) for name in field_names() if name in proxy_kwargs}
        given = {
            "dim": dim,
            "seed": seed,
            "projection": None if instance is not None else projection,
            "proxy": None if model_proxy is not None else proxy,
            "prompt_column": prompt_column,
            "completion_column": completion_column,
            "messages_column": messages_column,
        }
        settings.update({name: value for name, value in given.items() if value is not None})
        # every projection/proxy setting checked here, named, before any training (GVendiConfig validates them)
        self.config = config = resolve_config(config, settings, projector=instance)
        if instance is not None:
            make_projector(instance, config.dim, config.seed, fold=config.fold)  # refuses a contradicting dim
        if not isinstance(every_n_steps, int) or isinstance(every_n_steps, bool) or every_n_steps < 1:
            raise ValueError(f"GVendiCallback: every_n_steps must be an integer ≥ 1 (got {every_n_steps!r}).")
        if stage_column is not None and not isinstance(stage_column, str):
            raise TypeError(
                f"GVendiCallback: stage_column must be a column name (str), got {type(stage_column).__name__}."
            )
        try:  # checks dim, q, ci and n_boot
            self.accumulators = AccumulatorSet(config.dim, q=q, ci=ci, n_boot=n_boot, seed=config.seed)
        except ValueError as err:
            raise ValueError(f"GVendiCallback: {err}") from None
        self.source, self.q = source, float(q)
        self.dim, self.seed = config.dim, config.seed
        self.projection = instance if instance is not None else config.projection
        self.ci, self.n_boot, self.stage_column = ci, n_boot, stage_column
        self.proxy = model_proxy if model_proxy is not None else config.proxy
        self.proxy_kwargs = proxy_kwargs  # what is not a GVendiConfig field (the tokenizer of a model object)
        self.prompt_column, self.completion_column, self.messages_column = (
            config.prompt_column,
            config.completion_column,
            config.messages_column,
        )
        self.trainable_only, self.every_n_steps, self.save_plot = trainable_only, every_n_steps, save_plot
        # wiring, built in attach() / on_train_begin()
        self._trainer: Trainer | None = None
        self._undo_columns: tuple[Any, list[str]] | None = None
        self._current_stage: str | None = None
        self._restored_step: int | None = None
        text = [name for name in self._row_fields() if name != stage_column]
        self._capture = BatchCapture(
            self.accumulators, stage_column=stage_column, text_columns=text, default_stage=lambda: self._current_stage
        )
        self.reset()
        if trainer is not None:
            self.attach(trainer)

    # public API ------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything measured (otherwise the callback keeps accumulating across ``trainer.train()`` calls,
        so a curriculum trained as successive calls stays one curve)."""
        self.accumulators.clear()
        self._capture.clear()
        self.curve: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self._runs = 0

    def set_stage(self, name: str | None) -> None:
        """Name the curriculum stage of the examples trained on from now on (``None``: no stage); a ``stage_column``
        value, when the example has one, wins."""
        self._current_stage = None if name is None else str(name)

    def attach(self, trainer: Trainer) -> GVendiCallback:
        """Bind the callback to ``trainer`` (and add it to the trainer's callbacks if it is not there yet); call it
        before ``trainer.train()``. ``GVendiCallback(..., trainer=trainer)`` does the same."""
        if self._trainer is trainer:
            return self
        if self._trainer is not None:
            self.close()
        self._trainer = trainer
        if not any(cb is self for cb in trainer.callback_handler.callbacks):
            trainer.add_callback(self)
        if self._row_fields():
            self._undo_columns = keep_columns(trainer, self._row_fields())
            self._capture.hook(trainer.model)  # from now on every batch may carry the fields: strip them
        return self

    def restore(self, checkpoint: str) -> None:
        """Load the state saved in ``checkpoint`` (a ``checkpoint-<step>`` folder). Resuming restores it by itself
        from ``output_dir/checkpoint-<step>`` or ``args.resume_from_checkpoint``; call this for a checkpoint elsewhere,
        before ``trainer.train(resume_from_checkpoint=checkpoint)``."""
        saved = load_state(checkpoint, dim=self.dim, config=self._config())
        self.accumulators.load_state_dict(saved["accumulators"])
        if self.ci is not None and self.accumulators.bootstrap is None:
            logger.warning("GVendiCallback: %s has no bootstrap state; no interval for this run.", checkpoint)
        self.curve, self.epochs = list(saved["curve"]), list(saved["epochs"])
        if saved.get("current_stage") is not None and self._current_stage is None:
            self._current_stage = saved["current_stage"]
        self._capture.clear()
        self._restored_step = saved.get("step")

    def close(self) -> None:
        """Remove every hook and give the Trainer back its own collator (safe to call twice; call it if training
        raised). At train end only the gradient hooks go; the collator wrapper stays for the next ``train()``."""
        self._capture.stop()
        self._capture.unhook()
        if self._trainer is not None and self._undo_columns is not None:
            release_columns(self._trainer, *self._undo_columns)
            self._undo_columns = None
            self._trainer = None

    def summary(self) -> dict[str, Any]:
        """Everything the callback measured: what ``gvendi_curve.json`` holds (synced values only)."""
        accumulators = self.accumulators
        final = {
            "cumulative": accumulators.value("cumulative"),
            "examples": accumulators.cumulative.count,
            "stages": {
                name: {"gvendi": accumulators.value(acc), "examples": acc.count}
                for name, acc in accumulators.stages.items()
            },
            "skipped_examples": accumulators.skipped,
        }
        if self.ci is not None:
            interval = accumulators.interval()
            final.update(
                cumulative_ci=None if interval is None else list(interval), ci_level=self.ci, n_boot=self.n_boot
            )
        return {"config": self._config(), "final": final, "points": self.curve, "epochs": self.epochs}

    # Trainer events --------------------------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self._trainer is None:
            raise RuntimeError(
                "GVendiCallback has no Trainer to log to: call callback.attach(trainer) after building the Trainer "
                "(or build it as GVendiCallback(..., trainer=trainer)) before trainer.train()."
            )
        model = kwargs.get("model")
        model = self._trainer.model if model is None else model
        try:
            if self._row_fields():
                check_columns(
                    self._trainer,
                    self._row_fields(),
                    kwargs.get("train_dataloader"),
                    stage_column=self.stage_column,
                    proxy=self.source == "proxy",
                )
            if self.source == "proxy" and self._capture.featurizer is None:
                from gvendi import GradientFeaturizer

                self._capture.featurizer = GradientFeaturizer(
                    self.proxy if isinstance(self.proxy, torch.nn.Module) else None,
                    config=self.config,
                    projection=self.projection if isinstance(self.projection, Projector) else None,
                    show_progress=False,
                    **self.proxy_kwargs,
                )
            if state.global_step > 0 and self._restored_step != state.global_step:
                folder = find_state(args, state.global_step)
                if folder is None:
                    logger.warning(
                        "GVendiCallback: training resumes at step %d but no %s was found; the cumulative G-Vendi "
                        "restarts here (for a checkpoint outside output_dir call callback.restore(checkpoint) first).",
                        state.global_step,
                        STATE_FILE,
                    )
                else:
                    self.restore(folder)
            self._capture.start(
                model,
                projection=self.projection,
                dim=self.dim,
                seed=self.seed,
                fold=self.config.fold,
                trainable_only=self.trainable_only,
            )
        except Exception:
            self.close()  # leave the Trainer as it was: no hooks, its own collator
            raise
        self._runs += 1

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._capture.sampling = state.global_step % self.every_n_steps == 0

    def on_substep_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._capture.close_batch()

    @torch.no_grad()
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._capture.close_batch()
        if not control.should_log:
            return control
        self._sync()
        accumulators, logs = self.accumulators, {}
        for key, name, count_key in (
            ("window", "window", "window_examples"),
            ("cumulative", "cumulative", "examples"),
        ):
            if accumulators[name].count:
                logs[f"gvendi/{key}"], logs[f"gvendi/{count_key}"] = accumulators.value(name), accumulators[name].count
        interval = accumulators.interval() if accumulators.cumulative.count else None
        if interval is not None:
            logs["gvendi/cumulative_ci_low"], logs["gvendi/cumulative_ci_high"] = interval
        if accumulators.epoch.count:
            logs["gvendi/epoch"] = accumulators.value("epoch")
        stages = {name: accumulators.value(f"stage/{name}") for name in sorted(accumulators.window_stages) if name}
        logs.update({f"gvendi/stage/{name}": value for name, value in stages.items()})
        if logs:
            point = {
                "step": state.global_step,
                "epoch": state.epoch,
                "run": self._runs,
                "window": logs.get("gvendi/window"),
                "window_examples": accumulators.window.count,
                "cumulative": logs.get("gvendi/cumulative"),
                "examples": accumulators.cumulative.count,
                "epoch_value": logs.get("gvendi/epoch"),
                "stages": stages,
            }
            if self.ci is not None:
                point["cumulative_ci"] = None if interval is None else list(interval)
            self.curve.append(point)
            self._log(control, logs)
        accumulators.reset("window")
        return control

    @torch.no_grad()
    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._capture.close_batch()
        self._sync()
        epoch_count = self.accumulators.epoch.count
        if epoch_count:
            value = self.accumulators.value("epoch")
            epoch = int(round(state.epoch)) if state.epoch is not None else len(self.epochs) + 1
            self.epochs.append({"epoch": epoch, "step": state.global_step, "gvendi": value, "examples": epoch_count})
            self._log(control, {"gvendi/epoch": value, "gvendi/epoch_examples": epoch_count})
        self.accumulators.reset("epoch")
        return control

    @torch.no_grad()
    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._sync()
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            save_state(
                folder,
                step=state.global_step,
                config=self._config(),
                accumulators=self.accumulators.state_dict(),
                curve=self.curve,
                epochs=self.epochs,
                current_stage=self._current_stage,
            )

    @torch.no_grad()
    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        try:
            self._capture.close_batch()
            self._sync()
            if state.is_world_process_zero and args.output_dir:
                os.makedirs(args.output_dir, exist_ok=True)
                summary = self.summary()
                with open(os.path.join(args.output_dir, CURVE_FILE), "w") as handle:
                    json.dump(summary, handle, indent=2)
                if self.save_plot and not plot_curve(summary, os.path.join(args.output_dir, PLOT_FILE)):
                    logger.warning("GVendiCallback: matplotlib is not installed (pip install matplotlib); no plot.")
        finally:
            self._capture.stop()

    # setup and checks ------------------------------------------------------------------------------------------
    def _row_fields(self) -> list[str]:
        fields = [self.stage_column] if self.stage_column else []
        if self.source == "proxy":
            fields += [self.messages_column] if self.messages_column else [self.prompt_column, self.completion_column]
        return fields

    def _sync(self) -> None:
        """Featurize waiting texts (``source="proxy"``), then sum every rank's rows into the accumulators."""
        self._capture.flush()
        self.accumulators.sync()

    # logging ---------------------------------------------------------------------------------------------------
    def _log(self, control: TrainerControl, logs: dict[str, float]) -> None:
        """``trainer.log`` without eating the Trainer's own pending log: its ``on_log`` clears ``should_log``."""
        should_log = control.should_log
        try:
            self._trainer.log(dict(logs))
        finally:
            control.should_log = self._trainer.control.should_log = should_log

    def _config(self) -> dict[str, Any]:
        projection = self.projection if isinstance(self.projection, str) else self.projection.config()
        config = {
            "source": self.source,
            "dim": self.dim,
            "projection": projection,
            "seed": self.seed,
            "fold": self.config.fold,
            "q": self.q,
            "stage_column": self.stage_column,
            "trainable_only": self.trainable_only,
            "every_n_steps": self.every_n_steps,
            "gvendi_version": __version__,
            "config": self.config.to_dict(),
        }
        if self.ci is not None:
            config.update(ci=self.ci, n_boot=self.n_boot)
        if self.source == "proxy" and self._capture.featurizer is not None:
            config["proxy"] = self._capture.featurizer.provenance
        return config
