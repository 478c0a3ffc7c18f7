"""The `evaluate` measurement ``gvendi``: ``evaluate.load("gvendi").compute(prompts=..., completions=...)``."""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import evaluate

from .config import GVendiConfig
from .proxy import DEFAULT_PROXY

__all__ = ["MODULE_CARD", "Gvendi"]

MODULE_CARD = (Path(__file__).parent / "measurement_card.md").read_text(encoding="utf-8")
"""The measurement card (evaluate's template: description, how to use, inputs, outputs, examples, limitations)."""

_CITATION = """\
@inproceedings{jung2025prismatic,
  title     = {Prismatic Synthesis: Gradient-based Data Diversification Boosts Generalization in LLM Reasoning},
  author    = {Jung, Jaehun and others},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2025},
  note      = {arXiv:2505.20161}
}
@article{friedman2023vendi,
  title   = {The Vendi Score: A Diversity Evaluation Metric for Machine Learning},
  author  = {Friedman, Dan and Dieng, Adji Bousso},
  journal = {Transactions on Machine Learning Research},
  year    = {2023}
}
"""

_DESCRIPTION = """\
G-Vendi measures how diverse a data set is in the gradient space of a small proxy model: the effective number of
distinct loss-gradient directions among its examples. Each (prompt, completion) pair is turned into the gradient of
the proxy's mean loss on the completion tokens, projected to `dim` dimensions with a seeded random projection and
unit-normalised; G-Vendi is the exponential of the Shannon entropy of the eigenvalues of the features' k×k second
moment (the Vendi Score of the cosine kernel). It ranges from 1 (all examples push the model the same way) to
min(N, dim). Jung et al. (2025) report a Spearman correlation of about 0.9 between G-Vendi and out-of-distribution
accuracy of models trained on the data, on both math and NLI.
"""

_KWARGS_DESCRIPTION = """
Args:
    prompts (`list` of `str`): the prompts (user turns), one per example.
    completions (`list` of `str`): the completions (assistant turns) whose loss gradient is measured.
    features (`list` of `list` of `float`): precomputed feature rows instead of texts (e.g. a `gvendi_grad` column).
    proxy (`str`, *optional*, defaults to `"Qwen/Qwen2.5-0.5B-Instruct"`): Hub id, local folder, or `"tiny"` (the
        bundled offline demo proxy).
    dim (`int`, *optional*, defaults to 1024): projection dimension k.
    projection (`str`, *optional*, defaults to `"factored"`): `"factored"` (CountSketch through each layer's
        factors: fast at any width), `"sketch"` (CountSketch of each layer's per-example gradient) or `"dense"` (the
        paper's dense Rademacher projection, slow).
    seed (`int`, *optional*, defaults to 0): projection seed.
    q (`float`, *optional*, defaults to 1.0): order of the Vendi Score (1 = the paper's G-Vendi, `inf` = 1/λ_max).
    batch_size (`int`, *optional*, defaults to 8): examples per forward/backward pass.
    max_length (`int`, *optional*): truncate token sequences to this length.
    device (`str`, *optional*): `"cpu"`, `"cuda"`, …; a GPU when available by default.
    revision (`str`, *optional*), fold (`int`, *optional*, defaults to 128), dtype (`str`, *optional*): as in
        `gvendi.config.GVendiConfig`.
    config (`GVendiConfig` or `dict`, *optional*): every featurizer setting in one object; the settings named
        beside it override its fields.
    ci (`float`, *optional*): confidence level (e.g. 0.95) of a bootstrap interval, resampled from k×k block moments.
    n_boot (`int`, *optional*, defaults to 200): bootstrap resamples for `ci`.
Returns:
    gvendi (`float`): G-Vendi, in [1, min(num_samples, dim)]. Higher is more diverse.
    num_samples (`int`): number of examples scored.
    ci_low, ci_high (`float`), ci_level (`float`), n_boot (`int`): the interval, only when `ci` is given.
    dim (`int`), q (`float`), projection (`str`), seed (`int`), proxy (`str`), proxy_revision, gvendi_version:
        what produced the number, so that values stay comparable.
Examples:
    >>> gvendi = evaluate.load("gvendi")
    >>> result = gvendi.compute(features=[[1.0, 0.0], [0.0, 1.0]])
    >>> round(result["gvendi"], 6), result["num_samples"]
    (2.0, 2)
    >>> result = gvendi.compute(features=[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    >>> round(result["gvendi"], 6)
    1.0
"""


_CACHE_SIZE = 2
_featurizers: collections.OrderedDict[str, Any] = collections.OrderedDict()


def _cached_featurizer(config: GVendiConfig):
    """The featurizer of ``config``, kept for the last two configurations so repeated ``compute`` calls do not
    reload the model (batch size is not part of the key: it is passed per call, never set on a shared featurizer)."""
    from .featurizer import GradientFeaturizer

    key = json.dumps({**config.to_dict(), "batch_size": None}, sort_keys=True, default=str)
    featurizer = _featurizers.pop(key, None)
    if featurizer is None:
        featurizer = GradientFeaturizer(config=config, show_progress=True)
    _featurizers[key] = featurizer
    while len(_featurizers) > _CACHE_SIZE:
        _featurizers.popitem(last=False)
    return featurizer


_SETTINGS = ("proxy", "revision", "dim", "projection", "fold", "seed", "batch_size", "max_length", "device", "dtype")


def _config_of(kwargs: dict[str, Any]) -> GVendiConfig:
    """The `GVendiConfig` of a ``compute`` call: ``config=`` (an object or a dict) with the settings named beside
    it."""
    base = kwargs.get("config")
    if isinstance(base, Mapping):
        base = GVendiConfig.from_dict(base, source="config=")
    elif base is not None and not isinstance(base, GVendiConfig):
        raise TypeError(f"config must be a GVendiConfig or a dict of its fields (got {type(base).__name__}).")
    settings = {name: kwargs[name] for name in _SETTINGS if name in kwargs}
    if base is None:
        return GVendiConfig(**settings)
    return base.replace(**settings) if settings else base


def _check_settings(kwargs: dict[str, Any]) -> GVendiConfig:
    """Check the settings before anything is loaded or featurized (each error names its argument)."""
    from .vendi import _check_q

    if "q" in kwargs:
        _check_q(kwargs["q"])
    return _config_of(kwargs)


def _check_texts(kwargs: dict[str, Any]) -> None:
    """Prompts and completions are lists of strings of one length (evaluate would cast or reject them otherwise)."""
    for name in ("prompts", "completions"):
        column = kwargs.get(name)
        if column is None:
            continue
        if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
            raise TypeError(f"{name} must be a list of strings, one per example (got {type(column).__name__}).")
        for i, value in enumerate(column):
            if not isinstance(value, str):
                raise TypeError(
                    f"{name}[{i}] is a {type(value).__name__} ({str(value)[:40]!r}), not a string; convert it to "
                    "text first (the CLI refuses it the same way)."
                )
    if kwargs.get("prompts") is not None and kwargs.get("completions") is not None:
        if len(kwargs["prompts"]) != len(kwargs["completions"]):
            raise ValueError(
                f"prompts has {len(kwargs['prompts'])} items and completions {len(kwargs['completions'])}: pass "
                "one completion per prompt."
            )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Gvendi(evaluate.Measurement):
    """G-Vendi gradient diversity as an `evaluate` measurement."""

    def _info(self) -> evaluate.MeasurementInfo:
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"prompts": datasets.Value("string"), "completions": datasets.Value("string")}),
                datasets.Features({"features": datasets.List(datasets.Value("float32"))}),
            ],
            reference_urls=["https://arxiv.org/abs/2505.20161", "https://arxiv.org/abs/2210.02410"],
        )

    def compute(self, **kwargs: Any) -> dict[str, Any] | None:
        """Score texts (``prompts=``, ``completions=``) or precomputed rows (``features=``); see the module card."""
        _check_settings(kwargs)
        self._given_settings = {name for name in _SETTINGS if name in kwargs}
        has_texts = kwargs.get("prompts") is not None or kwargs.get("completions") is not None
        if kwargs.get("features") is not None and has_texts:
            raise ValueError(
                "gvendi takes either features= (precomputed rows) or prompts= + completions= (texts), not both: "
                "drop one of them."
            )
        if kwargs.get("features") is not None:
            features = kwargs["features"]
            if hasattr(features, "__len__") and len(features) == 0:
                raise ValueError("features= is empty: G-Vendi needs at least one feature row.")
            self._active_inputs = ["features"]
        elif kwargs.get("prompts") is not None or kwargs.get("completions") is not None:
            missing = [name for name in ("prompts", "completions") if kwargs.get(name) is None]
            if missing:
                raise ValueError(f"gvendi inputs are missing: {missing}; pass both prompts= and completions=.")
            _check_texts(kwargs)
            self._active_inputs = ["prompts", "completions"]
        try:
            return super().compute(**kwargs)
        finally:
            self._active_inputs = None
            self._given_settings = None

    def add_batch(self, **kwargs: Any) -> None:
        """Add rows for a later ``compute()``: ``features=`` or ``prompts=`` + ``completions=``."""
        if kwargs.get("prompts") is not None or kwargs.get("completions") is not None:
            _check_texts(kwargs)
        self._active_inputs = [name for name in ("prompts", "completions", "features") if name in kwargs]
        try:
            super().add_batch(**kwargs)
        except Exception:
            self._active_inputs = None  # a refused batch must not pin the next call's input schema
            raise

    def add(self, **kwargs: Any) -> None:
        """Add one row for a later ``compute()``."""
        self._active_inputs = [name for name in ("prompts", "completions", "features") if name in kwargs]
        try:
            super().add(**kwargs)
        except Exception:
            self._active_inputs = None
            raise

    def _feature_names(self) -> list[str]:
        # evaluate picks the first input schema here; use the one this call was given instead
        return getattr(self, "_active_inputs", None) or super()._feature_names()

    def _infer_feature_from_example(self, example: dict[str, Any]) -> datasets.Features:
        # evaluate expects every input schema to share its keys; ours do not, so match on the keys given
        for schema in self.features:
            if set(schema) == set(example):
                return schema
        expected = " or ".join(str(sorted(schema)) for schema in self.features)
        raise ValueError(f"gvendi inputs {sorted(example)} match no input schema; pass {expected}.")

    def _compute(
        self,
        prompts: list[str] | None = None,
        completions: list[str] | None = None,
        features: list[list[float]] | None = None,
        proxy: str = DEFAULT_PROXY,
        dim: int = 1024,
        projection: str = "factored",
        seed: int = 0,
        q: float = 1.0,
        batch_size: int = 8,
        max_length: int | None = None,
        device: str | None = None,
        ci: float | None = None,
        n_boot: int = 200,
        revision: str | None = None,
        fold: int = 128,
        dtype: str | None = None,
        config: GVendiConfig | dict | None = None,
    ) -> dict[str, Any]:
        from .vendi import score

        if features is not None:
            result = score(features, q=q, ci=ci, n_boot=n_boot)
            return result.to_dict()
        if not prompts:
            raise ValueError("gvendi needs at least one example: pass prompts= and completions=, or features=.")
        settings = dict(
            proxy=proxy,
            dim=dim,
            projection=projection,
            seed=seed,
            batch_size=batch_size,
            max_length=max_length,
            device=device,
            revision=revision,
            fold=fold,
            dtype=dtype,
        )
        given = getattr(self, "_given_settings", None)
        if given is not None:  # only the settings this call named override config=
            settings = {name: value for name, value in settings.items() if name in given}
        settings["config"] = config
        resolved = _config_of(settings)
        featurizer = _cached_featurizer(resolved)
        rows = featurizer.featurize(
            {"prompt": list(prompts), "completion": list(completions)}, batch_size=resolved.batch_size
        )
        provenance = {**featurizer.provenance, "config": resolved.to_dict()}
        return score(rows, q=q, provenance=provenance, ci=ci, n_boot=n_boot).to_dict()
