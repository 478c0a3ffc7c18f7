"""`GradientFeaturizer`: texts in, unit G-Vendi gradient features out; a ``Dataset.map`` callable."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from . import __version__
from .config import GVendiConfig, features_fingerprint, field_names, resolve_config
from .gradients import GradientCollector, per_example_loss
from .projection import DEFAULT_FOLD, Projector, make_projector
from .proxy import (
    IGNORE_INDEX,
    EncodedExample,
    LoadedProxy,
    context_length,
    encode_chat,
    encode_pair,
    load_proxy,
    load_tokenizer,
    proxy_identity,
    resolve_dtype,
    truncate,
)
from .utils import progress_bar, resolve_device

__all__ = ["GradientFeaturizer"]

logger = logging.getLogger(__name__)


# Live featurizers by fingerprint, so a pickled featurizer (Dataset.map workers, fingerprint hashing) stays small
# and a forked worker (or an unpickle in the same process) reuses the model of a featurizer still in use instead of
# reloading it. Weak references: the registry never keeps a featurizer, or its model, alive.
_LIVE: weakref.WeakValueDictionary[str, GradientFeaturizer] = weakref.WeakValueDictionary()


def _rebuild(config: dict[str, Any], proxy_object: bool, fingerprint: str) -> GradientFeaturizer:
    live = _LIVE.get(fingerprint)
    if live is not None:
        return live
    if proxy_object:
        raise RuntimeError(
            "this GradientFeaturizer wraps a model object that does not exist in this process (spawned worker?); "
            "build it from a Hub id or a local path, or use num_proc=None."
        )
    return GradientFeaturizer(config=GVendiConfig(**config))


class Throughput(NamedTuple):
    """What the last :meth:`GradientFeaturizer.featurize_encoded` call did: examples, tokens and seconds so far."""

    examples: int
    tokens: int
    seconds: float

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else float("nan")

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    def describe(self) -> str:
        return (
            f"{self.examples:,} examples ({self.tokens:,} tokens) in {self.seconds:.1f} s: "
            f"{self.examples_per_s:.2f} examples/s, {self.tokens_per_s:,.0f} tokens/s"
        )


class GradientFeaturizer:
    """Per-example projected loss gradients of a proxy model (the G-Vendi features), ready for ``Dataset.map``.

    Each example's feature is ``P g / ‖P g‖`` where ``g`` is the gradient, over all proxy parameters, of the mean
    cross-entropy on its completion tokens, and ``P`` a seeded random projection to ``dim``.

    Constructing one checks every argument (through :class:`gvendi.config.GVendiConfig`) and loads the proxy's
    tokenizer; the model itself loads on first use, so a ``Dataset.map`` that finds its cached result (same
    ``fingerprint``) never loads it. ``fingerprint`` changes with anything that changes the features (proxy content,
    revision, projection, fold, seed, dim, columns, max length, formatting, the gvendi version), never with batch size
    or device.

    The settings are the fields of a `GVendiConfig`: pass one as ``config=``, or its fields as keyword arguments (they
    override ``config``'s). ``featurizer.config`` is the resolved configuration, recorded in ``provenance``.

    Args:
        proxy: Hub id, local folder, ``"tiny"`` (bundled demo proxy) or a loaded model (then pass ``tokenizer``).
            Defaults to ``Qwen/Qwen2.5-0.5B-Instruct``, the paper's proxy.
        config (`GVendiConfig`, *optional*): every setting in one object (the keyword arguments override it).
        tokenizer: the proxy's tokenizer (only needed with a model object).
        projection (`str`, *optional*, defaults to ``"factored"``): ``"factored"`` sketches each weight through its
            Kronecker factors inside the backward hooks, never forming a layer's per-example gradient (within 1% of
            a dense projection at the paper's proxy widths, ~0.9× a plain forward+backward); ``"sketch"``
            CountSketches each layer's per-example gradient (as accurate, but it forms vocabulary × hidden elements
            per example at the LM head: ~25× slower at the real vocabulary); ``"dense"`` is the paper's dense
            Rademacher projection (the slow reference). A `Projector` instance is used as given (its seed and fold
            are the ones recorded; a contradicting ``seed=`` is refused).
        **settings: any other :class:`gvendi.config.GVendiConfig` field by name, documented there once: ``revision``,
            ``dim`` (1024), ``fold`` (128), ``seed`` (0), ``prompt_column``/``completion_column``/``messages_column``,
            ``output_column`` (the column ``__call__`` adds), ``max_length`` (a value past the proxy's context window
            warns), ``truncation``, ``max_batch_tokens`` (a single row that still does not fit in memory raises a
            ``ValueError`` naming it), ``batch_size``, ``device``, ``dtype``, ``use_chat_template``.
        show_progress (`bool`, *optional*, defaults to `True`): a tqdm bar in :meth:`featurize`.

    Example:
        >>> featurizer = GradientFeaturizer("tiny", dim=64)
        >>> rows = [{"prompt": "2+2?", "completion": "4"}, {"prompt": "3+5?", "completion": "8"}]
        >>> feats = featurizer.featurize(rows)
        >>> feats.shape
        (2, 64)
    """

    def __init__(
        self,
        proxy: Any = None,
        *,
        config: GVendiConfig | None = None,
        tokenizer: Any = None,
        projection: str | Projector | None = None,
        show_progress: bool = True,
        **settings: Any,
    ):
        instance = projection if isinstance(projection, Projector) else None
        model = proxy if isinstance(proxy, torch.nn.Module) else None
        if model is None and proxy is not None:
            settings["proxy"] = proxy
        if projection is not None and instance is None:
            settings["projection"] = projection
        if model is not None:
            settings.pop("proxy", None)
        unknown = set(settings) - set(field_names())
        if unknown:
            raise TypeError(
                f"GradientFeaturizer got unexpected argument(s) {sorted(unknown)}; it takes proxy, config, tokenizer, "
                f"show_progress and the GVendiConfig fields {field_names()}."
            )
        config = resolve_config(config, settings, projector=instance)
        self.config = config
        self._device_setting = resolve_device(config.device)
        self._dtype = resolve_dtype(config.dtype, self._device_setting)
        self._revision = config.revision
        if model is not None:  # already in memory: nothing to defer
            self._loaded: LoadedProxy | None = load_proxy(
                model, tokenizer=tokenizer, revision=config.revision, device=self._device_setting, dtype=self._dtype
            )
            self._proxy_source, self.tokenizer = None, self._loaded.tokenizer
            name, resolved_revision, digest = self._loaded.name, self._loaded.revision, self._loaded.digest
        else:  # the model loads on first use, so a Dataset.map that hits its cache never loads it
            self._loaded = None
            self._proxy_source = config.proxy
            self.tokenizer = (
                tokenizer if tokenizer is not None else load_tokenizer(config.proxy, revision=config.revision)
            )
            name, resolved_revision, digest = proxy_identity(config.proxy, revision=config.revision)
        self._identity = {"proxy": name, "proxy_revision": resolved_revision, "proxy_digest": digest}
        self.show_progress = show_progress
        self.throughput: Throughput | None = None  # of the last featurize call
        self._context: int | None | bool = False  # the proxy's context window, read when the model first loads
        use_chat_template = config.use_chat_template
        if use_chat_template is None:
            use_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = use_chat_template
        self.projector = (
            instance
            if instance is not None
            else make_projector(config.projection, config.dim, config.seed, fold=config.fold)
        )
        self._proxy_object = model is not None
        self._proxy_name = name if model is not None else config.proxy
        self._instance = instance is not None
        self._rank_device: torch.device | None = None
        self._collector: GradientCollector | None = None  # built on the first batch, its hooks entered per batch
        self.fingerprint = features_fingerprint(
            config,
            proxy=self._proxy_name,
            proxy_digest=digest,
            revision=resolved_revision,
            use_chat_template=use_chat_template,
            # the name, as gvendi 0.1.0 recorded it, unless the projector is not the one the name builds by default
            projection=self.projector.config() if self._instance or config.fold != DEFAULT_FOLD else config.projection,
            version=__version__,
        )
        _LIVE[self.fingerprint] = self

    # the settings, read from the config (the config is the one place they live)
    dim = property(lambda self: self.config.dim)
    seed = property(lambda self: self.config.seed)
    projection = property(lambda self: self.config.projection)
    prompt_column = property(lambda self: self.config.prompt_column)
    completion_column = property(lambda self: self.config.completion_column)
    messages_column = property(lambda self: self.config.messages_column)
    output_column = property(lambda self: self.config.output_column)
    max_length = property(lambda self: self.config.max_length)
    truncation = property(lambda self: self.config.truncation)
    max_batch_tokens = property(lambda self: self.config.max_batch_tokens)

    @property
    def batch_size(self) -> int:
        """Examples per forward/backward pass (``config.batch_size``); setting it does not change the features."""
        return self.config.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.config = self.config.replace(batch_size=value)

    # identity ------------------------------------------------------------------------------------------------
    @property
    def provenance(self) -> dict[str, Any]:
        """What produced the features: proxy id, revision and digest, projection, dim, seed, gvendi version."""
        return {
            **self._identity,
            **self.projector.config(),
            "gvendi_version": __version__,
            "config": self.config.to_dict(),
        }

    @property
    def loaded(self) -> LoadedProxy:
        """The proxy model and tokenizer, loaded on first use."""
        if self._loaded is None:
            self._loaded = load_proxy(
                self._proxy_source,
                tokenizer=self.tokenizer,
                revision=self._revision,
                device=self._device_setting,
                dtype=self._dtype,
            )
        return self._loaded

    @property
    def model(self) -> Any:
        """The proxy model (loaded on first use)."""
        return self.loaded.model

    def __reduce__(self):
        return (_rebuild, (self.config.to_dict(), self._proxy_object, self.fingerprint))

    def features(self, base: Any = None) -> Any:
        """`datasets.Features` of ``base`` plus the fixed-length float32 output column (for ``Dataset.map``)."""
        import datasets

        features = datasets.Features(dict(base) if base is not None else {})
        features[self.output_column] = datasets.List(datasets.Value("float32"), length=self.dim)
        return features

    # encoding ------------------------------------------------------------------------------------------------
    @property
    def context(self) -> int | None:
        """The proxy's context window in tokens (``max_position_embeddings``; reading it loads the model)."""
        if self._context is False:
            self._context = context_length(self.model)
            if self.max_length is not None and self._context is not None and self.max_length > self._context:
                logger.warning(
                    "max_length=%d is past the proxy's context window of %d positions; rows are cut to %d instead.",
                    self.max_length,
                    self._context,
                    self._context,
                )
        return self._context

    @property
    def length_limit(self) -> int | None:
        """Tokens a row may have: ``max_length``, capped at the proxy's context window."""
        limits = [n for n in (self.max_length, self.context) if n is not None]
        return min(limits) if limits else None

    def encode(self, batch: Mapping[str, Any], *, row_offset: int = 0) -> list[EncodedExample]:
        """Token ids and labels for a batch given as a dict of columns (``{"prompt": [...], "completion": [...]}``).

        ``row_offset`` is the index of the batch's first row in the whole data set; messages count rows from 1. Rows
        past the length limit are cut or refused by ``truncation``.
        """
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"encode() takes a dict of columns, got a {type(batch).__name__}; use featurize() for a list of rows."
            )
        single = [k for k, v in batch.items() if isinstance(v, str)]
        if single:
            raise TypeError(
                f"encode() takes a batch, a dict of columns (lists), but {single[0]!r} is one string: this looks like "
                f"a single row. Wrap each value in a list ({{{single[0]!r}: [...]}}), or call featurize([row])."
            )
        examples = self._encode(batch, row_offset=row_offset)
        limit = self.length_limit
        if limit is None:
            return examples
        long_rows = [i for i, e in enumerate(examples) if len(e.input_ids) > limit]
        if not long_rows:
            return examples
        first = long_rows[0]
        where = "the proxy's context window" if limit == self.context else "max_length"
        if self.truncation == "error":
            raise ValueError(
                f"row {row_offset + first + 1}: {len(examples[first].input_ids)} tokens, past {where} of {limit} "
                f"({len(long_rows)} row(s) in all); shorten those rows, or pass truncation='truncate' to cut them."
            )
        logger.warning(
            "%d row(s) longer than %s of %d tokens were cut to it (row %d had %d tokens); pass truncation='error' "
            "to refuse them instead.",
            len(long_rows),
            where,
            limit,
            row_offset + first + 1,
            len(examples[first].input_ids),
        )
        cut = set(long_rows)
        return [truncate(e, limit, row=row_offset + i + 1) if i in cut else e for i, e in enumerate(examples)]

    def _encode(self, batch: Mapping[str, Any], *, row_offset: int = 0) -> list[EncodedExample]:
        if "input_ids" in batch and "labels" in batch and self.completion_column not in batch:
            self._same_lengths(batch, ["input_ids", "labels"])
            vocab = self.model.get_input_embeddings().num_embeddings
            examples = []
            for i, (ids, labels) in enumerate(zip(batch["input_ids"], batch["labels"])):
                ids, labels = (
                    _int_list(ids, "input_ids", row_offset + i + 1),
                    _int_list(labels, "labels", row_offset + i + 1),
                )
                if len(ids) != len(labels):
                    raise ValueError(f"row {row_offset + i + 1}: input_ids and labels have different lengths.")
                bad = next((t for t in ids if not 0 <= t < vocab), None)
                if bad is not None:
                    raise ValueError(
                        f"row {row_offset + i + 1}: input_ids holds token id {bad}, outside the proxy's vocabulary "
                        f"(0..{vocab - 1}); tokenize with the proxy's own tokenizer."
                    )
                bad = next((t for t in labels if t != IGNORE_INDEX and not 0 <= t < vocab), None)
                if bad is not None:
                    raise ValueError(
                        f"row {row_offset + i + 1}: labels holds {bad}, neither {IGNORE_INDEX} (masked) nor a "
                        "token id "
                        f"of the proxy's vocabulary (0..{vocab - 1})."
                    )
                examples.append(truncate(EncodedExample(ids, labels), self.max_length, row=row_offset + i + 1))
            return examples
        if self.messages_column is not None:
            self._require_columns(batch, [self.messages_column])
            if isinstance(batch[self.messages_column], (str, bytes)) or not hasattr(
                batch[self.messages_column], "__len__"
            ):
                raise TypeError(f"column {self.messages_column!r} must be a list of conversations, one per row.")
            return [
                truncate(
                    encode_chat(self.tokenizer, conv, row=row_offset + i + 1), self.max_length, row=row_offset + i + 1
                )
                for i, conv in enumerate(batch[self.messages_column])
            ]
        self._require_columns(batch, [self.prompt_column, self.completion_column])
        fields = (self.prompt_column, self.completion_column)
        self._same_lengths(batch, list(fields))
        return [
            truncate(
                encode_pair(
                    self.tokenizer,
                    p,
                    c,
                    row=row_offset + i + 1,
                    use_chat_template=self.use_chat_template,
                    fields=fields,
                ),
                self.max_length,
                row=row_offset + i + 1,
            )
            for i, (p, c) in enumerate(zip(batch[self.prompt_column], batch[self.completion_column]))
        ]

    @staticmethod
    def _same_lengths(batch: Mapping[str, Any], names: list[str]) -> None:
        for name in names:
            column = batch[name]
            if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
                raise TypeError(
                    f"column {name!r} must be a list with one value per row (got {type(column).__name__})."
                )
        lengths = {name: len(batch[name]) for name in names}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "columns have different lengths ("
                + ", ".join(f"{name!r}: {n}" for name, n in lengths.items())
                + "); every row needs one value in each."
            )

    def _require_columns(self, batch: Mapping[str, Any], needed: list[str]) -> None:
        missing = [c for c in needed if c not in batch]
        if missing:
            raise ValueError(
                f"missing column(s) {missing}; the data has {sorted(batch)}. Point the featurizer at your text "
                "columns "
                "(prompt_column=, completion_column= or messages_column=), or pass pre-tokenized input_ids + labels."
            )

    # featurizing ---------------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        if self._rank_device is not None:
            return self._rank_device
        return next(self.model.parameters()).device if self._loaded is not None else self._device_setting

    @torch.no_grad()
    def _run_batch(self, examples: list[EncodedExample]) -> torch.Tensor:
        device = self._device()
        longest = max(len(e.input_ids) for e in examples)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
        labels = torch.full((len(examples), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(examples), longest), dtype=torch.long)
        for i, example in enumerate(examples):  # right padding: real tokens never attend to padding
            n = len(example.input_ids)
            ids[i, :n] = torch.tensor(example.input_ids)
            labels[i, :n] = torch.tensor(example.labels)
            mask[i, :n] = 1
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        if self._collector is None or self._collector.model is not self.model:
            self._collector = GradientCollector(self.model, self.projector, freeze=True)  # targets found once
        with self._collector as collector, torch.enable_grad():
            collector.begin_batch(len(examples), mask)
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            per_example_loss(logits, labels).sum().backward()
            features = collector.end_batch()
        return features

    def featurize_encoded(
        self,
        examples: list[EncodedExample],
        *,
        progress: Any = None,
        row_offset: int = 0,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Features of already-encoded examples, (N, dim) float32 unit rows, in input order (``row_offset``: index of
        the first example in the whole data set, for messages; ``batch_size``: this call's, default the config's)."""
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))  # less padding per batch
        out = np.zeros((len(examples), self.dim), dtype=np.float32)
        began, done, tokens = time.perf_counter(), 0, 0
        for chunk in self._batches(order, examples, batch_size or self.batch_size):
            feats = self._run_bounded(chunk, examples)
            norms = feats.norm(dim=1, keepdim=True)
            bad = (norms.squeeze(1) == 0) | ~torch.isfinite(feats).all(dim=1)
            if bool(bad.any()):
                row = chunk[int(bad.nonzero()[0, 0])]
                raise ValueError(
                    f"row {row_offset + row + 1}: its gradient is zero or not finite; check that example's completion."
                )
            out[chunk] = (feats / norms).cpu().numpy()
            done, tokens = done + len(chunk), tokens + sum(len(examples[i].input_ids) for i in chunk)
            self.throughput = Throughput(done, tokens, time.perf_counter() - began)
            if progress is not None:  # tqdm shows examples/s and the ETA; tokens/s rides along
                progress.set_postfix_str(f"{self.throughput.tokens_per_s:,.0f} tok/s", refresh=False)
                progress.update(len(chunk))
        return out

    def _batches(self, order: list[int], examples: list[EncodedExample], batch_size: int) -> list[list[int]]:
        """Rows (sorted by length) in batches of at most ``batch_size`` rows and ``max_batch_tokens`` padded tokens."""
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = len(examples[i].input_ids)  # sorted: the newest row is the longest
            if current and (len(current) >= batch_size or (len(current) + 1) * longest > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _run_bounded(self, chunk: list[int], examples: list[EncodedExample]) -> torch.Tensor:
        """Features of one batch; a batch that runs out of memory is halved, a single row names itself."""
        try:
            return self._run_batch([examples[i] for i in chunk]).float()
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            text = str(exc).lower()
            if not isinstance(exc, torch.OutOfMemoryError) and "memory" not in text and "alloc" not in text:
                raise
            if len(chunk) > 1:
                half = len(chunk) // 2
                return torch.cat(
                    [self._run_bounded(chunk[:half], examples), self._run_bounded(chunk[half:], examples)]
                )
            tokens = len(examples[chunk[0]].input_ids)
            raise ValueError(
                f"row {chunk[0]}: {tokens} tokens need more memory than this device has for one forward/backward "
                f"pass; pass max_length (e.g. max_length={max(2, tokens // 4)}) to cut long rows."
            ) from None

    def featurize(self, data: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Features for a list of records, a dict of columns or a `datasets.Dataset`: (N, dim) float32 unit rows.

        Rows are encoded (and checked) first, so bad input fails before any compute. ``batch_size`` applies to this
        call only (the features do not depend on it).
        """
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be an integer ≥ 1 (got {batch_size!r}).")
        columns = _as_columns(data)
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            raise ValueError("no rows to featurize (0 rows): pass at least one example.")
        examples = self.encode(columns)
        bar = progress_bar(total=n, desc="gvendi gradients", unit="ex", disable=not self.show_progress)
        try:
            return self.featurize_encoded(examples, progress=bar, batch_size=batch_size)
        finally:
            bar.close()

    def __call__(self, batch: dict[str, list], *args: Any) -> dict[str, list]:
        """`Dataset.map(featurizer, batched=True[, with_indices=True][, with_rank=True])`: the batch plus
        ``output_column``.

        With ``with_indices=True`` an error names the dataset's own row index (``ds[i]``); without it, the row's
        place in its batch.
        """
        indices = args[0] if args and isinstance(args[0], (list, tuple, range)) else None
        rank = args[-1] if args and isinstance(args[-1], int) and not isinstance(args[-1], bool) else None
        try:
            return self._map_batch(batch, rank, row_offset=int(indices[0]) if indices else 0)
        except (ValueError, TypeError) as exc:
            if indices:
                raise
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(
                f"{exc} (row counted within this Dataset.map batch; map with with_indices=True for dataset row "
                "indices)"
            ) from None

    def _map_batch(self, batch: dict[str, list], rank: int | None, *, row_offset: int) -> dict[str, list]:
        if rank is not None and torch.cuda.is_available():
            device = torch.device("cuda", rank % torch.cuda.device_count())
            if self._device() != device:
                self.model.to(device)
            self._rank_device = device
        examples = self.encode(batch, row_offset=row_offset)
        if not examples:
            return {**batch, self.output_column: []}
        features = self.featurize_encoded(examples)
        return {**batch, self.output_column: features}

    def __repr__(self) -> str:
        return (
            f"GradientFeaturizer(proxy={self._identity['proxy']!r}, dim={self.dim}, projection={self.projection!r}, "
            f"seed={self.seed}, device={str(self._device())!r})"
        )


def _int_list(values: Any, name: str, row: int) -> list[int]:
    try:
        out = [int(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"row {row}: {name} must be a list of integer token ids.") from None
    if any(isinstance(v, float) and not float(v).is_integer() for v in values):
        raise TypeError(f"row {row}: {name} must hold integers, not fractions.")
    return out


def _as_columns(data: Any) -> dict[str, list]:
    """A dict of columns from records, a dict of columns or a `datasets.Dataset`."""
    if isinstance(data, Mapping):
        single = [k for k, v in data.items() if isinstance(v, str)]
        if single:
            raise TypeError(
                f"got one row ({{{single[0]!r}: ...}} holds a string, not a column): pass a list of rows, [row], or a "
                "dict of columns whose values are lists."
            )
        return {k: list(v) for k, v in data.items()}
    if hasattr(data, "column_names") and hasattr(data, "to_dict"):  # datasets.Dataset
        return data.to_dict()
    records = list(data) if isinstance(data, Iterable) else None
    if records is None:
        raise TypeError(f"cannot featurize a {type(data).__name__}; pass records, a dict of columns or a Dataset.")
    if not records:
        return {}
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"row {i + 1} is a {type(record).__name__}, not a dict of fields.")
    keys = list(dict.fromkeys(k for record in records for k in record))
    return {k: [record.get(k) for record in records] for k in keys}
