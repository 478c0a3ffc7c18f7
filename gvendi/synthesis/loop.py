"""The Prismatic Synthesis round driver (Jung et al., 2025, arXiv 2505.20161, §2 of gvendi's SPEC).

Each round, from the pool D:

1. featurize D with the G-Vendi featurizer (features cached in the run folder by content hash);
2. spherical k-means with K = max(min_clusters, round(k_ratio·|D|)); sparse clusters are those smaller than the
   ``sparse_ratio`` quantile of cluster sizes (all clusters when none is);
3. generate: few-shot prompts (``shots`` examples drawn ``uniform``-ly from D, or from one random sparse cluster)
   asking for ``new_per_prompt`` new examples each, ``per_round`` in all;
4. parse the answers; solve each candidate N times and keep the majority answer when it has τ votes;
5. decontaminate (word n-gram overlap with the named benchmarks, optional LLM paraphrase check);
6. remove exact and near duplicates of the pool;
7. featurize the survivors, assign each to its nearest centroid (frozen for the round) and keep it only when that
   cluster is sparse; add the kept ones to D.

Each of steps 3–7 is a :class:`gvendi.synthesis.steps.RoundStep` with one counters contract; this module only
sequences them, writes each round's markers and the report. ``strategy="vanilla"`` (plain few-shot generation, for
comparison) draws shots uniformly and replaces step 7's sparse filter by keeping every survivor.

Every random choice derives from ``(seed, round, …)`` and every request's answer is read back from
``requests.jsonl`` when the run is resumed, so a resumed run accepts exactly what an uninterrupted one would.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..utils import progress_bar, sha256_file, stable_seed
from ..vendi import score
from .backends import Backend, GenerationParams, make_backend
from .config import EndpointConfig, SynthesisConfig, config_differences
from .filters import build_ngram_index, load_benchmark_texts
from .report import STAGES, build_report, render_markdown, write_plots
from .steps import (
    SEED_MASK,
    STRATEGY_STEPS,
    Counters,
    EmptyRoundError,
    Round,
    RoundStep,
    StepContext,
    cluster_pool,
)
from .store import RunStore, content_hash, request_id
from .tasks import Task, get_task, load_seed_file

logger = logging.getLogger(__name__)

__all__ = ["EmptyRoundError", "Featurizer", "RunResult", "resume", "synthesize"]


class Featurizer(Protocol):
    """What the loop needs of a featurizer (:class:`gvendi.featurizer.GradientFeaturizer` is one)."""

    @property
    def fingerprint(self) -> str:
        """Changes with anything that changes the features (keys the run folder's feature cache)."""

    @property
    def provenance(self) -> dict[str, Any]:
        """What produced the features; ``proxy_revision`` fills in an unset ``proxy.revision``."""

    def featurize(self, records: list[dict[str, str]]) -> Any:
        """``(N, dim)`` features of ``{"prompt", "completion"}`` records."""


@dataclass
class RunResult:
    """What a finished run produced (the same content as the run folder).

    Attributes:
        run_dir: the run folder.
        config: the resolved configuration.
        report: the ``report.json`` dict.
        rows: the final pool (``dataset.jsonl``): seeds then accepted examples.
    """

    run_dir: Path
    config: SynthesisConfig
    report: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """The generated rows that were accepted."""
        return [row for row in self.rows if row["source"] == "generated"]


def _bundled_seeds(task: str) -> Path:
    from gvendi import data

    return Path(data.MATH_SAMPLE_PATH if task == "math" else data.NLI_SAMPLE_PATH)


# -- the services the steps share -------------------------------------------------------------------------------------
class FeatureCache:
    """Features of rows through the run folder's cache (keyed by the featurizer's fingerprint and the row's
    prompt/completion), building the featurizer from ``config.proxy`` on first use unless one is given."""

    def __init__(self, config: SynthesisConfig, store: RunStore, task: Task, featurizer: Featurizer | None = None):
        self.config, self.store, self.task = config, store, task
        self._featurizer = featurizer
        self._fingerprint: str | None = None

    @property
    def featurizer(self) -> Featurizer:
        if self._featurizer is None:
            from gvendi.featurizer import GradientFeaturizer

            settings = self.config.proxy.gvendi_config(
                batch_size=self.config.featurize_batch_size, device=self.config.device
            )
            self._featurizer = GradientFeaturizer(config=settings, show_progress=self.config.show_progress)
        return self._featurizer

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.featurizer.fingerprint
        return self._fingerprint

    def __call__(self, rows: list[dict[str, Any]], *, tolerant: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Features of ``rows`` (cached by content) and a mask of the rows that could be featurized.

        With ``tolerant``, a batch that fails is retried row by row and failing rows are masked out; otherwise the
        error propagates.
        """
        pairs = [self.task.prompt_completion(row) for row in rows]
        keys = [content_hash([self.fingerprint, p["prompt"], p["completion"]])[:32] for p in pairs]
        cached = self.store.cached_features(keys)
        missing = list(dict.fromkeys(key for key in keys if key not in cached))
        failed: set[str] = set()
        if missing:
            by_key = dict(zip(keys, pairs))
            records = [by_key[key] for key in missing]
            try:
                feats = np.asarray(self.featurizer.featurize(records), dtype=np.float32)
                self.store.save_features(missing, feats)
            except ValueError:
                if not tolerant:
                    raise
                good, good_feats = [], []
                for key, record in zip(missing, records):
                    try:
                        good_feats.append(np.asarray(self.featurizer.featurize([record]), dtype=np.float32)[0])
                        good.append(key)
                    except ValueError as exc:
                        logger.warning("cannot featurize a candidate (%s); dropping it.", exc)
                        failed.add(key)
                if good:
                    self.store.save_features(good, np.stack(good_feats))
            cached = self.store.cached_features(keys)
        mask = np.array([key not in failed for key in keys], dtype=bool)
        dim = next(iter(cached.values())).shape[0] if cached else self.config.proxy.dim
        feats = (
            np.stack([cached[key] if key in cached else np.zeros(dim, np.float32) for key in keys]) if keys else None
        )
        return (feats if feats is not None else np.zeros((0, dim), np.float32)), mask


@dataclass
class _Spec:
    id: str
    round: int
    stage: str
    role: str
    prompt: Any
    params: GenerationParams


class Requests:
    """Builds deterministic request specs and answers them: from ``requests.jsonl`` when recorded (a resumed run
    asks nothing twice), else from the backend, recording each answer as it arrives."""

    def __init__(self, config: SynthesisConfig, store: RunStore):
        self.config, self.store = config, store

    def spec(
        self, round_index: int, stage: str, role: str, prompt: Any, endpoint: EndpointConfig, *parts: Any
    ) -> _Spec:
        params = GenerationParams(
            max_new_tokens=endpoint.max_new_tokens,
            temperature=endpoint.temperature,
            top_p=endpoint.top_p,
            seed=stable_seed(self.config.seed, round_index, stage, *parts) & SEED_MASK,
        )
        rid = request_id(
            task=self.config.task,
            round=round_index,
            stage=stage,
            prompt=prompt,
            params={**params.to_dict(), "backend": endpoint.backend, "model": endpoint.model},
            seed=self.config.seed,
        )
        return _Spec(rid, round_index, stage, role, prompt, params)

    async def run(self, specs: list[_Spec], backend: Backend, desc: str) -> dict[str, dict[str, Any]]:
        """Answers for ``specs`` keyed by request id: from the record when present, else from ``backend``."""
        records = self.store.records
        unique = {spec.id: spec for spec in specs}
        todo = [spec for rid, spec in unique.items() if rid not in records]
        bar = progress_bar(
            total=len(unique),
            initial=len(unique) - len(todo),
            desc=desc,
            unit="req",
            disable=not self.config.show_progress,
        )

        async def one(spec: _Spec) -> None:
            result = await backend.generate(spec.prompt, spec.params)
            self.store.append_record(
                {
                    "id": spec.id,
                    "task": self.config.task,
                    "round": spec.round,
                    "stage": spec.stage,
                    "role": spec.role,
                    "backend": backend.name,
                    "target": backend.target,
                    "prompt": spec.prompt,
                    "params": spec.params.to_dict(),
                    "status": "ok" if result.ok else "failed",
                    "text": result.text,
                    "error": result.error,
                    "errors": result.errors,
                    "attempts": result.attempts,
                    "elapsed": round(result.elapsed, 4),
                    "time": time.time(),
                }
            )
            bar.update(1)

        try:
            await asyncio.gather(*(one(spec) for spec in todo))
        finally:
            bar.close()
        return {rid: records[rid] for rid in unique}


# -- the driver -------------------------------------------------------------------------------------------------------
def _round_stats(
    round: Round, counters: list[Counters], steps: list[RoundStep], pool_feats: np.ndarray, new_feats: np.ndarray
) -> dict[str, Any]:
    """A round's marker (``stats.json``): the counts of every step, pool G-Vendi before and after, the clustering."""
    by_step = {c.step: c for c in counters}
    counts = {"generated": counters[0].seen}
    counts.update({step.count: c.kept for step, c in zip(steps, counters)})
    vote = by_step["solve"]
    counts["solved"] = vote.seen - vote.dropped.get("solver_failed", 0) - vote.dropped.get("no_answer", 0)
    counts = {stage: counts[stage] for stage in STAGES}
    generated = counts["generated"]
    drops: dict[str, int] = {}
    for c in counters:
        for reason, count in c.dropped.items():
            drops[reason] = drops.get(reason, 0) + count
    records = [rec for c in counters for rec in c.records]
    clustering = round.clustering
    return {
        "round": round.index,
        **counts,
        "rates": {stage: (counts[stage] / generated if generated else 0.0) for stage in STAGES},
        "gvendi_before": float(score(pool_feats).value),
        "gvendi_after": float(score(new_feats).value),
        "pool_before": len(round.pool),
        "pool_after": len(round.pool) + counts["accepted"],
        "n_clusters": clustering.n_clusters,
        "cluster_sizes": [int(size) for size in clustering.sizes],
        "sparse_clusters": [int(c) for c in clustering.sparse],
        "drop_reasons": drops,
        "requests": {
            "total": len(records),
            "ok": sum(rec["status"] == "ok" for rec in records),
            "failed": sum(rec["status"] != "ok" for rec in records),
        },
    }


class _Runner:
    """Sequences the round steps over one run folder and writes the round markers; holds no stage logic itself."""

    def __init__(self, context: StepContext, store: RunStore):
        self.context, self.config, self.store = context, context.config, store
        self.steps = [step(context) for step in STRATEGY_STEPS[context.config.strategy]]

    async def run_round(self, r: int, pool: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One round (SPEC §2): cluster the pool, then every step in turn on the surviving candidates."""
        pool_feats = self.context.features(pool)[0]
        round = Round(
            r, pool, cluster_pool(self.config, pool_feats, r, "kmeans", show_progress=self.config.show_progress)
        )
        rows: list[dict[str, Any]] = []
        counters = []
        for step in self.steps:
            rows, step_counters = await step(round, rows)
            counters.append(step_counters)
        new_feats = np.concatenate([pool_feats, self.context.features(rows)[0]]) if rows else pool_feats
        return pool + rows, _round_stats(round, counters, self.steps, pool_feats, new_feats)

    async def run_rounds(self, pool: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rounds 1…R: a finished round (pool and ``stats.json`` on disk) is read back, the others are run."""
        store, round_stats = self.store, []
        for r in range(1, self.config.rounds + 1):
            stats, saved_pool = store.read_round_stats(r), store.read_pool(r)
            if stats is not None and saved_pool is not None:
                pool = saved_pool
                round_stats.append(stats)
                continue
            pool, stats = await self.run_round(r, pool)
            store.flush()
            store.write_pool(r, pool)
            store.write_round_stats(r, stats)  # the round's marker, written last
            round_stats.append(stats)
            _write_report(self.config, store, round_stats, complete=False)
            logger.info(
                "round %d: %s accepted of %s asked; pool G-Vendi %.3f → %.3f",
                r,
                stats["accepted"],
                stats["generated"],
                stats["gvendi_before"],
                stats["gvendi_after"],
            )
        return pool, round_stats


def _write_report(
    config: SynthesisConfig,
    store: RunStore,
    rounds: list[dict[str, Any]],
    *,
    complete: bool,
    final_gvendi: float | None = None,
) -> dict[str, Any]:
    data = config.to_dict()
    report = build_report(data, rounds, complete=complete, final_gvendi=final_gvendi)
    write_plots(report, store.root / "plots")
    store.write_report(report, render_markdown(report, data))
    return report


def _seed_rows(task: Task, seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for index, seed in enumerate(seeds):
        out = {
            **seed,
            "id": f"seed-{seed['id']}" if seed.get("id") is not None else f"seed-{index:06d}",
            "source": "seed",
            "round": 0,
            "cluster": -1,
            "votes": 0,
            "generator": None,
            "solver": None,
        }
        rows.append({key: out.get(key) for key in task.output_fields})
    return rows


def _pin_revision(config: SynthesisConfig, features: FeatureCache, store: RunStore) -> SynthesisConfig:
    """``config`` with ``proxy.revision`` filled from the featurizer's provenance when it was unset (a new object,
    written to ``config.json``, which was written once before without it); ``config`` itself is not changed."""
    if config.proxy.revision is not None:
        return config
    revision = features.featurizer.provenance.get("proxy_revision")
    if not revision:
        return config
    pinned = dataclasses.replace(config, proxy=dataclasses.replace(config.proxy, revision=revision))
    store.write_config(pinned.to_dict())
    return pinned


async def _run(config: SynthesisConfig, store: RunStore, featurizer: Featurizer | None) -> RunResult:
    task = get_task(config.task)
    seeds_path = Path(config.seeds_path) if config.seeds_path else _bundled_seeds(config.task)
    seeds = load_seed_file(seeds_path, task)
    benchmark_texts = load_benchmark_texts(config.decontamination["benchmarks"], config.task)
    finished = all(store.read_round_stats(r) is not None for r in range(1, config.rounds + 1))
    generator = make_backend(config.generator)
    solver = make_backend(config.solver_endpoint)
    features = FeatureCache(config, store, task, featurizer)
    try:
        if not finished:
            await generator.check_reachable()
            if dataclasses.asdict(config.solver_endpoint) != dataclasses.asdict(config.generator):
                await solver.check_reachable()
        config = _pin_revision(config, features, store)
        store.open_records()
        context = StepContext(
            config=config,
            task=task,
            requests=Requests(config, store),
            features=features,
            generator=generator,
            solver=solver,
            benchmark_texts=benchmark_texts,
            benchmark_index=build_ngram_index(benchmark_texts) if benchmark_texts else {},
        )
        pool = store.read_pool(0)
        if pool is None:
            pool = _seed_rows(task, seeds)
            store.write_pool(0, pool)
        pool, round_stats = await _Runner(context, store).run_rounds(pool)
    finally:
        await generator.aclose()
        await solver.aclose()
        store.close()

    # the dataset's cluster column: a k-means of the final pool (the same K rule)
    feats, _ = features(pool)
    final = cluster_pool(config, feats, "final", show_progress=False)
    rows = [{**row, "cluster": int(label)} for row, label in zip(pool, final.labels.tolist())]
    store.write_dataset(rows)
    report = _write_report(config, store, round_stats, complete=True, final_gvendi=float(score(feats).value))
    return RunResult(store.root, config, report, rows)


def _prepare(config: SynthesisConfig, store: RunStore) -> SynthesisConfig:
    from gvendi import __version__

    config = copy.deepcopy(config)
    seeds_path = Path(config.seeds_path) if config.seeds_path else _bundled_seeds(config.task)
    if not seeds_path.exists():
        raise ValueError(f"seeds file {seeds_path} does not exist; pass a JSONL file with one example a line.")
    config.seeds_sha256 = sha256_file(seeds_path)
    saved = store.read_config()
    if saved is not None and not _holds_work(store):
        # a run that stopped before its first request (a wrong URL, a wrong backend): nothing to keep consistent
        saved = None
    if saved is not None:
        diffs = config_differences(saved, config.to_dict())
        if diffs:
            raise ValueError(
                f"the run folder {store.root} was made with a different configuration, so it cannot be resumed "
                "with this one:\n  - " + "\n  - ".join(diffs) + "\nUse a new --out folder, or resume with "
                "`gvendi synthesize --resume RUN_DIR` and no conflicting options."
            )
        config.proxy.revision = config.proxy.revision or saved.get("proxy", {}).get("revision")
        if saved.get("gvendi_version") not in (None, __version__):
            logger.warning(
                "run folder %s was started with gvendi %s; continuing with %s.",
                store.root,
                saved["gvendi_version"],
                __version__,
            )
    config.gvendi_version = __version__
    return config


def _holds_work(store: RunStore) -> bool:
    """Whether the folder holds anything a changed configuration would contradict: a request or a round."""
    requests = store.requests_path
    return (requests.exists() and requests.stat().st_size > 0) or (store.root / "rounds").exists()


def synthesize(config: SynthesisConfig, *, featurizer: Featurizer | None = None) -> RunResult:
    """Run (or continue) Prismatic Synthesis into ``config.out``.

    A folder that already holds a run with the same configuration is continued: completed requests and rounds are
    read back, not repeated. A folder made with a different configuration is refused.

    Args:
        config (`SynthesisConfig`): the run's configuration.
        featurizer (*optional*): a :class:`Featurizer` (``featurize(records) -> (N, dim) array``, a
            ``fingerprint`` and a ``provenance``) used instead of building a
            :class:`gvendi.featurizer.GradientFeaturizer` from ``config.proxy``.

    Returns:
        `RunResult`

    Raises:
        ValueError: for a bad seeds file, a conflicting run folder, or bad benchmark sources.
        EndpointUnreachableError: when the generator or solver cannot be reached.
        EndpointError: when an endpoint answers as no known server, is overloaded, or stalls.
        EmptyRoundError: when no candidate of a round could be parsed (unless ``allow_empty_rounds``).
        RunFolderError: when the run folder cannot be written or read (``RunFolderLockedError``: another process
            is running it).

    Example:
        >>> from gvendi.synthesis import EndpointConfig, SynthesisConfig, synthesize
        >>> config = SynthesisConfig(task="math", out="runs/demo", rounds=2, per_round=16,
        ...                          generator=EndpointConfig(backend="tgi", url="http://127.0.0.1:8080"))
        >>> result = synthesize(config)  # doctest: +SKIP
    """
    if not isinstance(config, SynthesisConfig):
        raise TypeError(f"config must be a SynthesisConfig, got {type(config).__name__}.")
    store = RunStore(config.out)
    store.lock()
    try:
        config = _prepare(config, store)
        # written before the proxy loads and the endpoints answer, so a run killed in its first second resumes
        store.write_config(config.to_dict())
        return asyncio.run(_run(config, store, featurizer))
    finally:
        store.unlock()


def resume(run_dir: str | Path, *, featurizer: Featurizer | None = None, **overrides: Any) -> RunResult:
    """Continue the run in ``run_dir`` from its ``config.json``.

    Args:
        run_dir: the run folder.
        featurizer (*optional*): see :func:`synthesize`.
        **overrides: settings that do not change the result (``show_progress``, endpoint ``timeout`` …); a
            setting that would change the result is refused with the differing keys.
    """
    store = RunStore(run_dir, create=False)
    saved = store.read_config()
    if saved is None:
        raise ValueError(f"{run_dir} has no config.json, so there is no run to resume; start one with --out.")
    data = {**saved, "out": str(run_dir)}
    for key, value in overrides.items():
        if key in ("generator", "solver") and isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    config = SynthesisConfig.from_dict(data)
    return synthesize(config, featurizer=featurizer)
