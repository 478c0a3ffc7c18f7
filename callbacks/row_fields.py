"""Carrying per-example columns the model does not take (a stage, the texts) past the Trainer to the callback.

The Trainer's ``remove_unused_columns`` drops every column the model's ``forward`` does not name, and no Trainer
event receives the batch. So :func:`keep_columns` adds the columns to the Trainer's signature columns and wraps its
data collator: :class:`RowFieldsCollator` pops them from each example, collates the rest with the user's collator and
attaches them to the batch under ``ROWS_KEY``, where the callback's forward pre-hook takes them out before the model
sees them. This works with dataloader workers and with `datasets` and torch datasets alike.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from transformers import Trainer
from transformers.data.data_collator import default_data_collator

ROWS_KEY = "gvendi_rows"  # batch key carrying per-example fields from the collator to the pre-hook


class RowFields:
    """Per-example fields riding in a batch. It has no ``.to``, so device moves leave it alone."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[dict[str, Any] | None]):
        self.rows = rows


class RowFieldsCollator:
    """The user's data collator, minus ``fields``: they are popped from each example and attached to the batch
    under ``ROWS_KEY``."""

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
            batch[ROWS_KEY] = RowFields(rows)
        return batch


def keep_columns(trainer: Trainer, fields: list[str]) -> tuple[Any, list[str]]:
    """Wrap ``trainer``'s collator and keep ``fields`` in its signature columns. Returns what :func:`release_columns`
    needs to undo it: the replaced collator and the columns added."""
    replaced = None
    if not isinstance(trainer.data_collator, RowFieldsCollator):
        replaced = trainer.data_collator
        trainer.data_collator = RowFieldsCollator(trainer.data_collator, fields)
    added: list[str] = []
    if trainer.args.remove_unused_columns:
        trainer._set_signature_columns_if_needed()
        added = [name for name in fields if name not in trainer._signature_columns]
        trainer._signature_columns = list(trainer._signature_columns) + added
    return replaced, added


def release_columns(trainer: Trainer, replaced: Any, added: list[str]) -> None:
    """Give ``trainer`` back its own collator and signature columns."""
    if isinstance(trainer.data_collator, RowFieldsCollator):
        trainer.data_collator = trainer.data_collator.inner if replaced is None else replaced
    if added and getattr(trainer, "_signature_columns", None) is not None:
        trainer._signature_columns = [c for c in trainer._signature_columns if c not in added]


def check_columns(
    trainer: Trainer, fields: list[str], train_dataloader: Any, *, stage_column: str | None, proxy: bool
) -> None:
    """The errors, before any step, of ``fields`` that cannot reach the batches: a ``stage_column`` or (``proxy``)
    text columns the training data lacks, or a dataloader built before the collator was wrapped."""
    columns = dataset_columns(trainer.train_dataset) if trainer.train_dataset is not None else None
    if columns is not None and stage_column and stage_column not in columns:
        raise ValueError(
            f"GVendiCallback: stage_column={stage_column!r} is not a column of the training data, which has "
            f"{sorted(columns)}. Add the column, pass the right name, or use callback.set_stage(name) instead."
        )
    missing = [name for name in fields if name != stage_column and columns is not None and name not in columns]
    if proxy and missing:
        raise ValueError(
            f"GVendiCallback(source='proxy'): the training data has no text column(s) {missing} (it has "
            f"{sorted(columns)}); the proxy featurizes texts, not the trained model's token ids. Keep the text "
            "columns in train_dataset and name them with prompt_column=/completion_column= or messages_column=, "
            "or use source='model'."
        )
    collate = getattr(train_dataloader, "collate_fn", None)
    while collate is not None and not isinstance(collate, RowFieldsCollator):
        collate = getattr(collate, "data_collator", None)  # transformers' RemoveColumnsCollator wraps it
    if train_dataloader is not None and collate is None:
        raise RuntimeError(
            "GVendiCallback: the training dataloader was built before the callback was attached, so the "
            f"column(s) {fields} cannot reach it. Call callback.attach(trainer) before trainer.train()."
        )


def dataset_columns(dataset: Any) -> set[str] | None:
    """Column names of a `datasets` or torch dataset of dict rows; ``None`` when they cannot be known up front."""
    names = getattr(dataset, "column_names", None)
    if isinstance(names, (list, tuple)):
        return set(names)
    try:
        first = dataset[0]
    except Exception:  # an iterable dataset, or one that cannot be indexed
        return None
    return set(first) if isinstance(first, Mapping) else None
