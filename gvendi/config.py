"""`GVendiConfig`: everything that decides what produces a G-Vendi number, in one validated object.

Every door takes it: :class:`gvendi.GradientFeaturizer` (``config=``, or the same names as keyword arguments), the
evaluate measurement, the ``gvendi`` command line (its featurizer flags and their help are generated from the fields
below, and ``--config FILE`` reads them from YAML or JSON) and synthesis (``SynthesisConfig.proxy``). A bad value
fails when the object is built, before any data or model loads, with a :class:`ConfigFieldError` naming the field,
the bad value and the fix; the command line renders the same error with the flag's name instead.

    >>> from gvendi.config import GVendiConfig
    >>> config = GVendiConfig(proxy="tiny", dim=64)
    >>> config.to_dict()["dim"], config.flag("batch_size")
    (64, '--batch-size')
    >>> GVendiConfig(dim=-3)
    Traceback (most recent call last):
        ...
    gvendi.errors.ConfigFieldError: dim must be an integer ≥ 1 (got -3); the paper uses dim=1024.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ConfigFieldError, ConfigFieldTypeError
from .projection import DEFAULT_FOLD, DEFAULT_PROJECTION, PROJECTIONS
from .proxy import DEFAULT_PROXY

__all__ = [
    "ConfigError",
    "ConfigFieldError",
    "GVendiConfig",
    "features_fingerprint",
    "read_config_file",
    "resolve_config",
]

TRUNCATION_POLICIES = ("truncate", "error")
#: padded tokens per forward/backward pass; a batch of long rows is split below batch_size to stay under this
DEFAULT_MAX_BATCH_TOKENS = 16384


def _option(
    default: Any = None,
    *,
    help: str,
    flag: str | None = None,
    default_help: str = "",
    deprecated: tuple[str, ...] = (),
    choices: tuple[str, ...] | None = None,
    identity: bool = True,
) -> Any:
    """A dataclass field with its help text (written once, here: what it is, then ``default_help``, what its default
    is) and how the command line shows it."""
    metadata = {
        "help": f"{help} {default_help}".strip(),
        "summary": help,
        "flag": flag,
        "deprecated": deprecated,
        "choices": choices,
        "identity": identity,
    }
    return field(default=default, metadata=metadata)


@dataclass
class GVendiConfig:
    """What produces a G-Vendi number: the proxy, the projection and how texts become token sequences.

    Each field's help text is its documentation (``GVendiConfig.help("dim")``) and the ``--help`` of its flag. Fields
    marked as not part of the identity (batch size, device, token budget) change how fast the features come, never
    their values.
    """

    proxy: str = _option(
        DEFAULT_PROXY,
        help="Hub id, local folder, or 'tiny' (the bundled offline demo proxy).",
        default_help=f"Default {DEFAULT_PROXY}, the paper's proxy: it needs the network once (then it is cached; "
        "offline, `hf download` it first).",
    )
    revision: str | None = _option(
        None, help="Hub revision (branch, tag or commit) of the proxy.", deprecated=("--proxy-revision",)
    )
    projection: str = _option(
        DEFAULT_PROJECTION,
        choices=PROJECTIONS,
        help="'factored' (default: a CountSketch through each layer's Kronecker factors, fast at any width), 'sketch' "
        "(a CountSketch of each layer's per-example gradient, slow at large vocabularies) or 'dense' (the paper's "
        "dense Rademacher projection, slowest).",
    )
    fold: int = _option(
        DEFAULT_FOLD,
        help=f"'factored' only: the most buckets a matrix side is folded to (default {DEFAULT_FOLD}); larger is "
        "closer to 'sketch' and slower.",
    )
    dim: int = _option(1024, help="feature dimension k (default 1024, as in the paper).")
    seed: int = _option(
        0, flag="--projection-seed", deprecated=("--seed", "--proxy-seed"), help="seed of the random projection."
    )
    max_length: int | None = _option(
        None, help="truncate token sequences to this many tokens (rows left with no completion token are refused)."
    )
    truncation: str = _option(
        "truncate",
        choices=TRUNCATION_POLICIES,
        help="a row longer than the proxy's context window (or max_length): 'truncate' cuts it from the right and "
        "warns; 'error' refuses it, naming the row.",
    )
    prompt_column: str = _option("prompt", help="column of prompts (user turns); default 'prompt'.")
    completion_column: str = _option(
        "completion",
        help="column of completions (assistant turns, whose loss gradient is measured); default 'completion'.",
    )
    messages_column: str | None = _option(None, help="a column of chat conversations instead of text pairs.")
    output_column: str = _option("gvendi_grad", help="the column Dataset.map(featurizer) adds.")
    use_chat_template: bool | None = _option(
        None, help="format pairs with the tokenizer's chat template (default: when it has one)."
    )
    dtype: str | None = _option(
        None, identity=False, help="proxy precision: float32, bfloat16 … (default: bf16 on GPU, fp32 on CPU)."
    )
    device: str | None = _option(
        None, identity=False, help="cpu, cuda, cuda:1 … (default: the first GPU when available, else the CPU)."
    )
    batch_size: int = _option(8, identity=False, help="examples per forward/backward pass (default 8).")
    max_batch_tokens: int = _option(
        DEFAULT_MAX_BATCH_TOKENS,
        identity=False,
        help=f"padded tokens per forward/backward pass (default {DEFAULT_MAX_BATCH_TOKENS}); batches of long rows "
        "are split below the batch size to stay under it.",
    )

    def __post_init__(self) -> None:
        if isinstance(self.proxy, os.PathLike):
            self.proxy = os.fspath(self.proxy)
        if not isinstance(self.proxy, str) or not self.proxy.strip():
            raise ConfigFieldTypeError(
                "proxy",
                self.proxy,
                f"{{proxy}} must be a Hub id, a local folder or 'tiny' (got {self.proxy!r}); pass a model object to "
                "GradientFeaturizer(model, tokenizer=...) instead of a config.",
            )
        _optional_text(self, "revision", "a Hub branch, tag or commit")
        if self.projection not in PROJECTIONS:
            raise ConfigFieldError(
                "projection",
                self.projection,
                f"unknown {{projection}} {self.projection!r}: choose one of {list(PROJECTIONS)} ('factored' is the "
                "default, 'sketch' the per-layer CountSketch, 'dense' the paper's slow reference).",
            )
        _integer(self, "fold", 1, f"{DEFAULT_FOLD} is the default")
        if self.fold != DEFAULT_FOLD and self.projection != "factored":
            raise ConfigFieldError(
                "fold",
                self.fold,
                f"{{fold}} applies to {{projection=factored}} only (got fold={self.fold} with "
                f"projection={self.projection!r}); drop {{fold}} or use {{projection=factored}}.",
            )
        _integer(self, "dim", 1, "the paper uses {dim=1024}")
        if isinstance(self.seed, bool) or not _is_int(self.seed):
            raise ConfigFieldTypeError(
                "seed", self.seed, f"{{seed}} must be an integer (got {self.seed!r}); the projection is seeded by it."
            )
        self.seed = int(self.seed)
        if self.max_length is not None:
            _integer(self, "max_length", 2, "a prompt token and a completion token; or leave it unset")
        if self.truncation not in TRUNCATION_POLICIES:
            raise ConfigFieldError(
                "truncation",
                self.truncation,
                f"{{truncation}} must be one of {TRUNCATION_POLICIES} (got {self.truncation!r}).",
            )
        for name in ("prompt_column", "completion_column", "output_column"):
            _text(self, name)
        if self.messages_column is not None:
            _text(self, "messages_column")
        if self.use_chat_template is not None and not isinstance(self.use_chat_template, bool):
            raise ConfigFieldTypeError(
                "use_chat_template",
                self.use_chat_template,
                f"{{use_chat_template}} must be True, False or None (got {self.use_chat_template!r}).",
            )
        _integer(self, "batch_size", 1, "8 is the default")
        _integer(self, "max_batch_tokens", 1, f"{DEFAULT_MAX_BATCH_TOKENS} is the default")
        self._check_device_and_dtype()

    def _check_device_and_dtype(self) -> None:
        import torch

        from .proxy import resolve_dtype
        from .utils import resolve_device

        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        if self.device is not None and not isinstance(self.device, str):
            raise ConfigFieldTypeError(
                "device", self.device, f"{{device}} must be a string such as 'cpu' or 'cuda:0' (got {self.device!r})."
            )
        try:
            device = resolve_device(self.device)
        except ValueError as err:
            raise ConfigFieldError("device", self.device, f"{{device}}: {err}") from None
        if isinstance(self.dtype, torch.dtype):
            self.dtype = str(self.dtype).removeprefix("torch.")
        try:
            resolve_dtype(self.dtype, device)
        except (ValueError, TypeError) as err:
            raise ConfigFieldError("dtype", self.dtype, f"{{dtype}}: {err}") from None

    # views ---------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field; ``GVendiConfig.from_dict`` (or ``--config FILE``) replays it."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that change the features' values (not batch size, device, precision or token budget)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["identity"]}

    def replace(self, **changes: Any) -> GVendiConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> GVendiConfig:
        """Build a config from a dict (``to_dict`` output, a parsed file); an unknown key is an error naming it.

        Raises:
            ConfigError: an unknown key (with the closest valid one); ConfigFieldError: a bad value.
        """
        check_keys(data, field_names(), what=source or "GVendiConfig")
        return cls(**dict(data))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> GVendiConfig:
        """Read a YAML or JSON file of fields (see :func:`read_config_file`)."""
        return cls.from_dict(read_config_file(path), source=str(path))

    @staticmethod
    def help(name: str) -> str:
        """The help text of field ``name``."""
        return _FIELDS[name].metadata["help"]

    @staticmethod
    def flag(name: str) -> str:
        """The command-line flag of field ``name`` (``batch_size`` → ``--batch-size``)."""
        return _FIELDS[name].metadata["flag"] or "--" + name.replace("_", "-")


def resolve_config(config: GVendiConfig | None, settings: Mapping[str, Any], *, projector: Any = None) -> GVendiConfig:
    """``config`` (or the defaults) with ``settings`` (field: value, given as keyword arguments) applied over it, and
    with a :class:`gvendi.projection.Projector` handed over, its projection, seed, fold and dim: the rule every door
    that takes both a config and keyword arguments follows (the keywords win; a contradicting ``seed``/``fold``
    keyword is refused).

    Raises:
        TypeError: ``config`` is not a `GVendiConfig`.
        ConfigFieldError: a bad value.
        ValueError: a keyword that contradicts ``projector``.
    """
    if config is not None and not isinstance(config, GVendiConfig):
        raise TypeError(
            f"config must be a GVendiConfig (got {type(config).__name__}); or pass its fields as keyword arguments."
        )
    settings = dict(settings)
    if projector is not None:  # the projector's own settings are the ones recorded
        seed = settings.pop("seed", None)
        if seed is not None and seed != projector.seed:
            raise ValueError(
                f"seed={seed!r} contradicts the projector handed over (its seed is {projector.seed}); pass "
                f"seed={projector.seed} or no seed, or build the projector with the seed you want."
            )
        settings.update(projection=projector.name, seed=projector.seed)
        if "fold" in settings and settings["fold"] != getattr(projector, "fold", settings["fold"]):
            raise ValueError(
                f"fold={settings['fold']!r} contradicts the projector handed over (its fold is {projector.fold})."
            )
        if hasattr(projector, "fold"):
            settings["fold"] = projector.fold
        settings.setdefault("dim", projector.dim)
    if config is None:
        return GVendiConfig(**settings)
    return config.replace(**settings) if settings else config


def field_names() -> list[str]:
    """Every field of :class:`GVendiConfig`, in order."""
    return list(_FIELDS)


def check_keys(data: Mapping[str, Any], valid: list[str] | set[str], *, what: str) -> None:
    """Refuse keys of ``data`` outside ``valid`` with one message naming each, the closest valid key and the list."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a mapping of settings (got {type(data).__name__}).")
    unknown = [key for key in data if key not in valid]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"{what}: unknown key(s) {', '.join(hints)}; valid keys are {sorted(valid)}. Fix the spelling or remove them."
    )


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a ``.yaml``/``.yml`` or ``.json`` file (other suffixes: JSON first, then YAML).

    Raises:
        ConfigError: the file is missing, unreadable, or does not hold a mapping.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass a YAML or JSON file of settings.")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(
            f"config file {str(path)!r} is not valid {_kind(file)}: {str(err).splitlines()[0]}"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping of settings (key: value), not a {type(data).__name__}."
        )
    return data


def features_fingerprint(
    config: GVendiConfig,
    *,
    proxy: str,
    proxy_digest: str,
    revision: str | None,
    use_chat_template: bool,
    projection: Any,
    version: str,
) -> str:
    """The one fingerprint of features: changes with anything that changes their values (the proxy's content and
    revision, projection, fold, seed, dim, columns, max length, truncation, formatting, the gvendi version), never with
    batch size, device or precision settings.

    ``proxy`` is the proxy as named, ``revision`` the resolved one and ``projection`` the projection's name or, when
    it is not the one ``config`` names (an instance, or a non-default fold), its settings. The values equal those of
    gvendi 0.1.0 featurizers, so caches written before stay valid.
    """
    relevant = {
        "proxy": proxy,
        "proxy_digest": proxy_digest,
        "revision": revision,
        "dim": config.dim,
        "projection": projection,
        "seed": config.seed,
        "prompt_column": config.prompt_column,
        "completion_column": config.completion_column,
        "messages_column": config.messages_column,
        "output_column": config.output_column,
        "max_length": config.max_length,
        "truncation": config.truncation,
        "use_chat_template": use_chat_template,
        "gvendi_version": version,
    }
    return hashlib.blake2b(json.dumps(relevant, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _kind(file: Path) -> str:
    return "JSON" if file.suffix.lower() == ".json" else "YAML"


def _is_int(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, np.integer))


def _integer(config: GVendiConfig, name: str, minimum: int, fix: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not _is_int(value):
        raise ConfigFieldTypeError(name, value, f"{{{name}}} must be an integer ≥ {minimum} (got {value!r}); {fix}.")
    if value < minimum:
        raise ConfigFieldError(name, value, f"{{{name}}} must be an integer ≥ {minimum} (got {value!r}); {fix}.")
    setattr(config, name, int(value))


def _text(config: GVendiConfig, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, str):
        raise ConfigFieldTypeError(name, value, f"{{{name}}} must be a column name (got {value!r}).")
    if not value.strip():
        raise ConfigFieldError(name, value, f"{{{name}}} is empty; name a column of the data.")


def _optional_text(config: GVendiConfig, name: str, what: str) -> None:
    value = getattr(config, name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigFieldError(name, value, f"{{{name}}} must be {what} or None (got {value!r}).")


_FIELDS = {f.name: f for f in dataclasses.fields(GVendiConfig)}
