"""Configuration of a Prismatic Synthesis run: one dataclass that round-trips through ``config.json``."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from gvendi.config import ConfigFieldError, GVendiConfig

from .tasks import TASKS

__all__ = ["EndpointConfig", "ProxyConfig", "SynthesisConfig", "config_differences", "proxy_field_names", "proxy_key"]

BACKENDS = ("tgi", "openai", "local")
SHOT_POLICIES = ("uniform", "sparse-cluster")
STRATEGIES = ("prismatic", "vanilla")
# Keys added after run folders were first written, with the value an older folder's run used.
_DEFAULTS_OF_LATER_KEYS = {"strategy": "prismatic"}

# Keys whose change does not change what a run produces; a resumed run may differ in these.
_NON_IDENTITY_KEYS = {
    "rounds",  # round r depends only on (seed, r, the pool before it): a run can be extended with more rounds
    "generator.url",  # answers are keyed by prompt, parameters and model, not by where the server runs
    "solver.url",
    "gvendi_version",
    "show_progress",
    "allow_empty_rounds",
    "generator.max_concurrency",
    "generator.requests_per_minute",
    "generator.timeout",
    "generator.max_retries",
    "solver.max_concurrency",
    "solver.requests_per_minute",
    "solver.timeout",
    "solver.max_retries",
    "generator.api_key_env",
    "solver.api_key_env",
    "featurize_batch_size",
    "device",
}


def check_url(url: Any, backend: str) -> str:
    """``url`` if it is an ``http(s)://host[:port][/path]`` URL the backend can use; a ``ValueError`` naming the fix
    otherwise (a mistyped scheme would otherwise reach the server as a model id, or never leave the client)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a string like 'http://127.0.0.1:8080'; got {type(url).__name__}.")
    text = url.strip()
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/\s?#]+)(/[^\s]*)?$", text)
    if match is None or match.group(1).lower() not in ("http", "https"):
        if "://" in text:
            rest = text.split("://", 1)[1]
        else:  # 'http//host', 'http:/host' or a bare 'host:port'
            rest = re.sub(r"^[A-Za-z]+(?://|:/)", "", text).lstrip("/")
        raise ValueError(
            f"url {url!r} is not an http:// or https:// URL: the {backend} backend needs 'http://HOST:PORT'. "
            f"Did you mean 'http://{rest}'?"
        )
    path = (match.group(3) or "").rstrip("/")
    if backend == "tgi" and path.endswith("/v1"):
        raise ValueError(
            f"url {url!r} ends in /v1, but the tgi backend posts to the server root: pass "
            f"'{text[: text.rstrip('/').rfind('/v1')]}' with --backend tgi, or keep /v1 with --backend openai."
        )
    return text


@dataclass
class EndpointConfig:
    """Where and how to send one role's requests (the generator, or the solver/judge)."""

    backend: Literal["tgi", "openai", "local"] = "local"
    """``tgi`` (TGI's native generate route), ``openai`` (``/v1/chat/completions``) or ``local`` (transformers)."""
    url: str | None = None
    """Base URL of the server (``http://host:port``); unused by ``local``."""
    model: str | None = None
    """Model name sent with ``openai`` requests; for ``local``, a model path or ``"tiny"`` (the bundled proxy)."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling threshold."""
    max_new_tokens: int = 1024
    """Upper bound on generated tokens per request."""
    max_concurrency: int = 32
    """Requests in flight at once."""
    timeout: float = 120.0
    """Seconds allowed for one attempt of one request."""
    requests_per_minute: float | None = None
    """Optional cap on request starts per minute."""
    max_retries: int = 6
    """Retries after the first attempt on 429/503/424/5xx, timeouts, connection errors and malformed bodies."""
    api_key_env: str | None = None
    """Name of an environment variable holding the endpoint's API key (the key itself is never written to disk);
    ``None`` lets ``huggingface_hub`` use its usual token, if any."""
    chat_template: str = "chatml"
    """How the ``tgi`` and ``local`` backends turn chat messages into one prompt: ``chatml``, ``plain``, or
    ``tokenizer`` (``local`` only: the model's own chat template)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}.")
        if self.backend in ("tgi", "openai") and not self.url:
            raise ValueError(f"backend {self.backend!r} needs a url (e.g. http://127.0.0.1:8080).")
        if self.backend in ("tgi", "openai"):
            self.url = check_url(self.url, self.backend)
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be ≥ 1; got {self.max_concurrency}.")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds; got {self.timeout}.")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be ≥ 0; got {self.max_retries}.")
        if self.requests_per_minute is not None and self.requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be > 0 or None; got {self.requests_per_minute}.")
        if self.api_key_env is not None and not self.api_key_env.strip():
            raise ValueError("api_key_env must name an environment variable (e.g. 'OPENAI_API_KEY') or be None.")
        if self.chat_template not in ("chatml", "plain", "tokenizer"):
            raise ValueError(f"chat_template must be 'chatml', 'plain' or 'tokenizer'; got {self.chat_template!r}.")

    @property
    def label(self) -> str:
        """A short human-readable name for the dataset's ``generator``/``solver`` column."""
        if self.backend == "local":
            return f"local:{self.model or 'tiny'}"
        return f"{self.backend}:{self.model or self.url}"


#: GVendiConfig fields a run does not hold under ``proxy``: the run's own (``featurize_batch_size``, ``device``) and
#: the task's (it hands the featurizer ``prompt``/``completion`` records)
_NOT_PROXY_FIELDS = {
    "batch_size",
    "device",
    "prompt_column",
    "completion_column",
    "messages_column",
    "output_column",
}
#: the run folder's spelling of a GVendiConfig field where it differs (``proxy.name`` is the featurizer's ``proxy``)
_PROXY_KEYS = {"proxy": "name"}
#: a run's defaults where they differ from GVendiConfig's: the bundled proxy, so a run starts offline
_PROXY_DEFAULTS = {"proxy": "tiny"}


def _gvendi_fields(cls: type) -> type:
    """Declare on ``cls`` every :class:`gvendi.config.GVendiConfig` field a run sets (all but
    :data:`_NOT_PROXY_FIELDS`), with its type, default and help, so a new featurizer field reaches synthesis without a
    second declaration."""
    annotations = cls.__dict__.get("__annotations__", {})
    for spec in dataclasses.fields(GVendiConfig):
        if spec.name in _NOT_PROXY_FIELDS:
            continue
        key = _PROXY_KEYS.get(spec.name, spec.name)
        annotations[key] = spec.type
        setattr(cls, key, field(default=_PROXY_DEFAULTS.get(spec.name, spec.default), metadata=spec.metadata))
    cls.__annotations__ = annotations
    return cls


def proxy_field_names() -> list[str]:
    """The :class:`gvendi.config.GVendiConfig` fields a run holds under ``proxy``, by their GVendiConfig names."""
    return [spec.name for spec in dataclasses.fields(GVendiConfig) if spec.name not in _NOT_PROXY_FIELDS]


def proxy_key(name: str) -> str:
    """The ``proxy.*`` key of GVendiConfig field ``name`` in a run's config (``proxy`` → ``name``)."""
    return _PROXY_KEYS.get(name, name)


@dataclass
@_gvendi_fields
class ProxyConfig:
    """The G-Vendi featurizer of a run: the fields of :class:`gvendi.config.GVendiConfig` that a run sets (``proxy``,
    spelt ``name`` here and in ``config.json``; ``revision``, ``projection``, ``fold``, ``dim``, ``seed``,
    ``max_length``, ``truncation``, ``use_chat_template``, ``dtype``, ``max_batch_tokens``), declared from it, with
    their defaults (but ``name``: ``"tiny"``, the bundled proxy) and help texts (``GVendiConfig.help(name)``). The
    batch size and device are the run's (``featurize_batch_size``, ``device``); the columns are the task's. Validated
    by `GVendiConfig` when built, a bad field named ``proxy.<field>``; :meth:`gvendi_config` is the featurizer's
    configuration."""

    def __post_init__(self) -> None:
        self.gvendi_config()  # a bad field fails here, named, before a run starts

    def gvendi_config(self, **runtime: Any) -> GVendiConfig:
        """The `GVendiConfig` these settings name, with ``runtime`` fields (``batch_size``, ``device`` …) added."""
        settings = {name: getattr(self, proxy_key(name)) for name in proxy_field_names()}
        try:
            return GVendiConfig(**settings, **runtime)
        except ConfigFieldError as err:  # name the field as this config spells it
            named = err.render(lambda name: f"proxy.{proxy_key(name)}")
            raise type(err)(err.field, err.value, named) from None


@dataclass
class SynthesisConfig:
    """Everything that decides what a Prismatic Synthesis run produces.

    Randomness (few-shot draws, k-means initialisations, per-request sampling seeds) derives from ``seed`` and the
    round, so a run resumed from its folder produces the same accepted set as an uninterrupted one.
    """

    task: Literal["math", "nli"] = "math"
    """``math`` (problem/solution/answer) or ``nli`` (premise/hypothesis/label)."""
    out: str = "runs/synthesis"
    """The run folder (source of truth: config, request record, pools, report)."""
    seeds_path: str | None = None
    """JSONL seed pool; ``None`` uses the bundled sample of the task."""
    rounds: int = 1
    """Number of rounds."""
    per_round: int = 100
    """New candidate examples requested from the generator per round."""
    seed: int = 0
    """Root seed of every random choice."""
    generator: EndpointConfig = field(default_factory=EndpointConfig)
    """The generator endpoint (new problems / premise-hypothesis pairs)."""
    solver: EndpointConfig | None = None
    """The solver (math) or judge (nli) endpoint; ``None`` reuses the generator's endpoint with
    ``solver_temperature``."""
    solver_temperature: float = 0.75
    """Sampling temperature of solver/judge samples when ``solver`` is ``None``."""
    vote: dict = field(default_factory=dict)
    """``{"n": N samples, "tau": votes needed}``; defaults: math N=3, τ=2; nli N=2, τ=2."""
    shots: int = 5
    """Few-shot examples per generation prompt."""
    new_per_prompt: int = 2
    """New examples asked for in one generation prompt."""
    strategy: Literal["prismatic", "vanilla"] = "prismatic"
    """``prismatic`` keeps only candidates whose nearest centroid is a sparse cluster (Prismatic Synthesis);
    ``vanilla`` is plain few-shot generation for comparison: uniform shots and no sparse-cluster filter (the same
    vote, decontamination and deduplication)."""
    shot_policy: Literal["uniform", "sparse-cluster"] = "uniform"
    """Where shots come from: the whole pool, or one random sparse cluster (topped up from other sparse ones);
    ``vanilla`` needs ``uniform``."""
    k_ratio: float = 0.01
    """Clusters per pool example (K = max(min_clusters, round(k_ratio·|D|)))."""
    min_clusters: int = 2
    """Lower bound on K."""
    kmeans_iters: int = 20
    """Lloyd iterations."""
    sparse_ratio: float = 0.5
    """A cluster is sparse when smaller than this quantile of cluster sizes (0.5: the median rule)."""
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    """The featurizer's settings: the :class:`gvendi.config.GVendiConfig` fields but batch size, device, columns."""
    featurize_batch_size: int = 8
    """Featurizer batch size."""
    device: str | None = None
    """Featurizer / k-means device; first GPU when present."""
    decontamination: dict = field(default_factory=dict)
    """``{"benchmarks": [paths or Hub ids], "ngram": 10, "paraphrase_check": False}``."""
    near_dup_threshold: float = 0.8
    """Word 5-gram Jaccard at or above which a candidate is a near-duplicate of a pool example."""
    gvendi_version: str | None = None
    """Filled in when the run starts."""
    seeds_sha256: str | None = None
    """Content hash of the seed file, filled in when the run starts (a changed seed file refuses to resume)."""
    show_progress: bool = True
    """Show tqdm bars."""
    allow_empty_rounds: bool = False
    """Let a round in which no candidate could be parsed (every answer failed or was unusable) pass; by default such
    a round stops the run with an error (``EmptyRoundError``, exit 1), since it produced nothing it was asked for."""

    def __post_init__(self) -> None:
        if isinstance(self.generator, dict):
            self.generator = EndpointConfig(**self.generator)
        if isinstance(self.solver, dict):
            self.solver = EndpointConfig(**self.solver)
        if isinstance(self.proxy, dict):
            self.proxy = ProxyConfig(**self.proxy)
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}.")
        if self.shot_policy not in SHOT_POLICIES:
            raise ValueError(f"shot_policy must be one of {SHOT_POLICIES}; got {self.shot_policy!r}.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}; got {self.strategy!r}.")
        if self.strategy == "vanilla" and self.shot_policy != "uniform":
            raise ValueError(
                f"strategy 'vanilla' draws shots uniformly, but shot_policy is {self.shot_policy!r}: use "
                "shot_policy='uniform' (--shot-policy uniform) with it, or strategy 'prismatic'."
            )
        for name in ("rounds", "per_round", "shots", "new_per_prompt", "min_clusters"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}.")
        if not 0 < self.k_ratio <= 1:
            raise ValueError(f"k_ratio must be in (0, 1]; got {self.k_ratio} (the paper uses 0.01).")
        if not 0 < self.sparse_ratio <= 1:
            raise ValueError(f"sparse_ratio must be in (0, 1]; got {self.sparse_ratio} (0.5 = below the median).")
        default_vote = {"n": 3, "tau": 2} if self.task == "math" else {"n": 2, "tau": 2}
        unknown = set(self.vote) - {"n", "tau"}
        if unknown:
            raise ValueError(f"vote has unknown keys {sorted(unknown)}; expected 'n' and 'tau'.")
        self.vote = {**default_vote, **self.vote}
        if not 1 <= int(self.vote["tau"]) <= int(self.vote["n"]):
            raise ValueError(f"vote needs 1 ≤ tau ≤ n; got n={self.vote['n']}, tau={self.vote['tau']}.")
        unknown = set(self.decontamination) - {"benchmarks", "ngram", "paraphrase_check"}
        if unknown:
            raise ValueError(
                f"decontamination has unknown keys {sorted(unknown)}; expected benchmarks, ngram, paraphrase_check."
            )
        self.decontamination = {
            "benchmarks": list(self.decontamination.get("benchmarks", [])),
            "ngram": int(self.decontamination.get("ngram", 10)),
            "paraphrase_check": bool(self.decontamination.get("paraphrase_check", False)),
        }
        if self.decontamination["ngram"] < 1:
            raise ValueError(f"decontamination.ngram must be ≥ 1; got {self.decontamination['ngram']}.")
        if not 0 < self.near_dup_threshold <= 1:
            raise ValueError(f"near_dup_threshold must be in (0, 1]; got {self.near_dup_threshold}.")

    @property
    def solver_endpoint(self) -> EndpointConfig:
        """The solver's endpoint: ``solver`` or, when unset, the generator's at ``solver_temperature``."""
        if self.solver is not None:
            return self.solver
        return dataclasses.replace(self.generator, temperature=self.solver_temperature)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``solver`` is always filled in so readers see the endpoint actually used."""
        data = dataclasses.asdict(self)
        data["solver"] = dataclasses.asdict(self.solver_endpoint)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise a ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown SynthesisConfig keys {unknown}; valid keys are {sorted(names)}.")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SynthesisConfig:
        return cls.from_dict(json.loads(text))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


# A run folder written before a featurizer field reached ``proxy`` ran with its default; the fields that change how
# fast features come, never their values (GVendiConfig's non-identity fields), may differ on resume.
_DEFAULTS_OF_LATER_KEYS.update({f"proxy.{spec.name}": spec.default for spec in dataclasses.fields(ProxyConfig)})
_NON_IDENTITY_KEYS.update(
    f"proxy.{proxy_key(spec.name)}"
    for spec in dataclasses.fields(GVendiConfig)
    if spec.name in proxy_field_names() and not spec.metadata["identity"]
)


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys (dotted) whose values differ between two config dicts and that change what a run produces."""
    a, b = {**_DEFAULTS_OF_LATER_KEYS, **_flatten(saved)}, {**_DEFAULTS_OF_LATER_KEYS, **_flatten(new)}
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in _NON_IDENTITY_KEYS or key == "out":
            continue
        if key == "proxy.revision" and (a.get(key) is None or b.get(key) is None):
            continue
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: run folder has {a.get(key)!r}, new config has {b.get(key)!r}")
    return diffs
