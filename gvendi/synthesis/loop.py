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

Every random choice derives from ``(seed, round, …)`` and every request's answer is read back from
``requests.jsonl`` when the run is resumed, so a resumed run accepts exactly what an uninterrupted one would.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cluster import assign_clusters, sparse_clusters, spherical_kmeans
from ..utils import progress_bar, stable_seed
from ..vendi import score
from .backends import Backend, GenerationParams, make_backend
from .config import EndpointConfig, SynthesisConfig, config_differences
from .filters import (
    ExactDedupFilter,
    NearDedupFilter,
    NGramDecontaminationFilter,
    build_ngram_index,
    closest_benchmark_item,
    load_benchmark_texts,
)
from .report import STAGES, build_report, render_markdown, write_plots
from .store import RunStore, content_hash, request_id
from .tasks import Task, get_task, load_seed_file

logger = logging.getLogger(__name__)

__all__ = ["EmptyRoundError", "RunResult", "resume", "synthesize"]


class EmptyRoundError(RuntimeError):
    """A round in which not one candidate could be parsed: the run produced nothing it was asked for.

    ``gvendi synthesize`` exits 1 with this message; ``allow_empty_rounds=True`` (``--allow-empty-rounds``) lets such
    a round pass instead.
    """

_SEED_MASK = 0x7FFFFFFF  # 31-bit sampling seeds: every server accepts them


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


def _sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Spec:
    id: str
    round: int
    stage: str
    role: str
    prompt: Any
    params: GenerationParams


@dataclass
class _RoundState:
    """Counters of one round: drops by reason and the request records it used."""

    index: int
    drops: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.drops[reason] = self.drops.get(reason, 0) + count

    def absorb(self, step: Any) -> None:
        """Add a filter step's ``dropped_<reason>`` counters."""
        for key, value in step.stats.items():
            if key.startswith("dropped_"):
                self.drop(key[len("dropped_") :], value)


class _Runner:
    """Runs one configuration against one run folder."""

    def __init__(self, config: SynthesisConfig, store: RunStore, featurizer: Any = None):
        self.config = config
        self.store = store
        self.task: Task = get_task(config.task)
        self._featurizer = featurizer
        self._fingerprint: str | None = None
        self.show_progress = config.show_progress

    # -- featurization --------------------------------------------------------------------------------------------
    @property
    def featurizer(self) -> Any:
        if self._featurizer is None:
            from gvendi.featurizer import GradientFeaturizer

            proxy = self.config.proxy
            self._featurizer = GradientFeaturizer(
                proxy.name,
                revision=proxy.revision,
                dim=proxy.dim,
                projection=proxy.projection,
                seed=proxy.seed,
                batch_size=self.config.featurize_batch_size,
                device=self.config.device,
                show_progress=self.show_progress,
            )
        return self._featurizer

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            fp = getattr(self.featurizer, "fingerprint", None)
            self._fingerprint = fp if isinstance(fp, str) else content_hash(dataclasses.asdict(self.config.proxy))
        return self._fingerprint

    def featurize(self, rows: list[dict[str, Any]], *, tolerant: bool = False) -> tuple[np.ndarray, np.ndarray]:
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

    # -- requests -------------------------------------------------------------------------------------------------
    def _spec(
        self, round_index: int, stage: str, role: str, prompt: Any, endpoint: EndpointConfig, *parts: Any
    ) -> _Spec:
        params = GenerationParams(
            max_new_tokens=endpoint.max_new_tokens,
            temperature=endpoint.temperature,
            top_p=endpoint.top_p,
            seed=stable_seed(self.config.seed, round_index, stage, *parts) & _SEED_MASK,
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

    async def _run_requests(self, specs: list[_Spec], backend: Backend, desc: str) -> dict[str, dict[str, Any]]:
        """Answers for ``specs`` keyed by request id: from the record when present, else from ``backend``."""
        records = self.store.records
        unique = {spec.id: spec for spec in specs}
        todo = [spec for rid, spec in unique.items() if rid not in records]
        bar = progress_bar(
            total=len(unique), initial=len(unique) - len(todo), desc=desc, unit="req", disable=not self.show_progress
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

    # -- one round ------------------------------------------------------------------------------------------------
    def _choose_shots(
        self, rng: np.random.Generator, pool_size: int, labels: np.ndarray, sparse: np.ndarray
    ) -> list[int]:
        k = min(self.config.shots, pool_size)
        if self.config.shot_policy == "uniform":
            chosen = rng.choice(pool_size, size=k, replace=False).tolist()
        else:
            cluster = int(rng.choice(sparse))
            members = np.flatnonzero(labels == cluster)
            chosen = rng.choice(members, size=min(k, members.size), replace=False).tolist()
            if len(chosen) < k:  # top up from the other sparse clusters, then from the whole pool
                for source in (np.flatnonzero(np.isin(labels, sparse)), np.arange(pool_size)):
                    rest = np.setdiff1d(source, chosen)
                    if rest.size and len(chosen) < k:
                        chosen += rng.choice(rest, size=min(k - len(chosen), rest.size), replace=False).tolist()
        return [int(i) for i in rng.permutation(chosen)]

    async def run_round(
        self, r: int, pool: list[dict[str, Any]], generator: Backend, solver: Backend
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One round (SPEC §2): cluster, generate, parse, solve/vote, decontaminate, deduplicate, keep sparse."""
        state = _RoundState(r)
        pool_feats = self.featurize(pool)[0]
        kmeans, sparse = self._cluster(r, pool_feats, len(pool))
        candidates, generated = await self._generate(state, pool, kmeans.labels, sparse, generator)
        self._check_parsed(state, len(candidates), generated)
        voted, n_solved = await self._solve_and_vote(state, candidates, solver)
        if candidates and state.drops.get("solver_failed", 0) == len(candidates) and not self.config.allow_empty_rounds:
            errors = [rec.get("error") for rec in state.records if rec.get("stage") == "solve" and rec.get("error")]
            example = f" (e.g. {max(set(errors), key=errors.count)[:200]})" if errors else ""
            raise EmptyRoundError(
                f"round {r}: every solver request failed for all {len(candidates)} candidates{example}: check the "
                f"solver endpoint {solver.target}; the request record is kept. Pass --allow-empty-rounds to let such "
                "a round pass."
            )
        decontaminated = await self._decontaminate(state, voted, generator)
        deduplicated = self._deduplicate(state, decontaminated, pool)
        accepted, accepted_feats = self._keep_sparse(state, deduplicated, kmeans.centroids, sparse)

        new_pool = pool + accepted
        all_feats = np.concatenate([pool_feats, np.stack(accepted_feats)]) if accepted else pool_feats
        counts = {
            "generated": generated,
            "parsed": len(candidates),
            "solved": n_solved,
            "voted": len(voted),
            "decontaminated": len(decontaminated),
            "deduplicated": len(deduplicated),
            "accepted": len(accepted),
        }
        stats = {
            "round": r,
            **counts,
            "rates": {stage: (counts[stage] / generated if generated else 0.0) for stage in STAGES},
            "gvendi_before": float(score(pool_feats).value),
            "gvendi_after": float(score(all_feats).value),
            "pool_before": len(pool),
            "pool_after": len(new_pool),
            "n_clusters": int(kmeans.n_clusters),
            "cluster_sizes": [int(size) for size in kmeans.sizes],
            "sparse_clusters": [int(c) for c in sparse],
            "drop_reasons": state.drops,
            "requests": {
                "total": len(state.records),
                "ok": sum(rec["status"] == "ok" for rec in state.records),
                "failed": sum(rec["status"] != "ok" for rec in state.records),
            },
        }
        return new_pool, stats

    def _check_parsed(self, state: _RoundState, parsed: int, generated: int) -> None:
        """Say on stderr when most candidates failed to parse; stop the run when none did (unless allowed)."""
        if not generated or parsed * 2 >= generated:
            return
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(state.drops.items()))
        errors = [rec.get("error") for rec in state.records if rec.get("status") != "ok" and rec.get("error")]
        example = f"; e.g. {max(set(errors), key=errors.count)[:200]}" if errors else ""
        unusable = next((rec.get("text") for rec in state.records if rec.get("status") == "ok"), None)
        sample = f"; one answer began {unusable[:120]!r}" if unusable and parsed == 0 else ""
        if parsed == 0 and not self.config.allow_empty_rounds:
            raise EmptyRoundError(
                f"round {state.index}: none of the {generated} candidates asked for could be parsed ({reasons}"
                f"{example}{sample}). The generator's answers are unusable: check the endpoint and model; the "
                "request record is kept. Pass --allow-empty-rounds to let such a round pass."
            )
        logger.warning(
            "round %d: only %d of %d candidates could be parsed (%s%s)", state.index, parsed, generated, reasons, example
        )

    def _cluster(self, r: int, pool_feats: np.ndarray, pool_size: int):
        """Spherical k-means of the pool with K = max(min_clusters, round(k_ratio·|D|)), and its sparse clusters."""
        config = self.config
        n_clusters = min(pool_size, max(config.min_clusters, round(config.k_ratio * pool_size)))
        kmeans = spherical_kmeans(
            pool_feats,
            n_clusters,
            n_iter=config.kmeans_iters,
            seed=stable_seed(config.seed, r, "kmeans") & _SEED_MASK,
            device=config.device,
            show_progress=self.show_progress,
        )
        sparse = np.asarray(sparse_clusters(kmeans.sizes, ratio=config.sparse_ratio), dtype=np.int64)
        return kmeans, sparse

    async def _generate(
        self, state: _RoundState, pool: list[dict[str, Any]], labels: np.ndarray, sparse: np.ndarray, backend: Backend
    ) -> tuple[list[dict[str, Any]], int]:
        """Few-shot generation prompts, their answers, and the parsed candidates; returns (candidates, asked for)."""
        config, task, r = self.config, self.task, state.index
        specs, asked = [], []
        for i in range(math.ceil(config.per_round / config.new_per_prompt)):
            rng = np.random.default_rng(stable_seed(config.seed, r, "shots", i))
            shots = [pool[j] for j in self._choose_shots(rng, len(pool), labels, sparse)]
            n_new = min(config.new_per_prompt, config.per_round - i * config.new_per_prompt)
            messages = task.generation_messages(shots, n_new, rng)
            specs.append(self._spec(r, "generate", "generator", messages, config.generator, i))
            asked.append(n_new)
        answers = await self._run_requests(specs, backend, f"round {r}: generate")
        candidates = []
        for i, (spec, n_new) in enumerate(zip(specs, asked)):
            record = answers[spec.id]
            state.records.append(record)
            if record["status"] != "ok":
                state.drop("generation_failed", n_new)
                continue
            parsed = task.parse_generation(record["text"], n_new)
            state.drop("unparsable", n_new - len(parsed))
            candidates += [{**fields, "_cid": f"r{r}-p{i}-{j}"} for j, fields in enumerate(parsed)]
        return candidates, int(sum(asked))

    async def _solve_and_vote(
        self, state: _RoundState, candidates: list[dict[str, Any]], backend: Backend
    ) -> tuple[list[dict[str, Any]], int]:
        """N solver/judge samples per candidate and the τ-vote; returns (voted candidates, number solved)."""
        config, task, r = self.config, self.task, state.index
        endpoint = config.solver_endpoint
        n_votes, tau = int(config.vote["n"]), int(config.vote["tau"])
        specs = {
            c["_cid"]: [
                self._spec(r, "solve", "solver", task.solver_messages(c), endpoint, c["_cid"], k)
                for k in range(n_votes)
            ]
            for c in candidates
        }
        flat = [spec for group in specs.values() for spec in group]
        answers = await self._run_requests(flat, backend, f"round {r}: solve") if flat else {}
        state.records += list(answers.values())
        n_solved, voted = 0, []
        for c in candidates:
            records = [answers[spec.id] for spec in specs[c["_cid"]]]
            responses = [rec["text"] if rec["status"] == "ok" else None for rec in records]
            if all(text is None for text in responses):
                state.drop("solver_failed")
                continue
            outcome = task.vote(c, responses, tau)
            n_solved += outcome.solved
            if outcome.accepted:
                voted.append({**c, **outcome.fields, "votes": outcome.votes})
            else:
                state.drop(outcome.reason or "vote_failed")
        return voted, n_solved

    async def _decontaminate(self, state: _RoundState, rows: list[dict[str, Any]], backend: Backend) -> list[dict]:
        """Word n-gram overlap with the benchmarks, then (optionally) the LLM paraphrase check."""
        if not self.benchmark_texts or not rows:
            return rows
        decontamination = self.config.decontamination
        step = NGramDecontaminationFilter(self.benchmark_texts, self.task.filter_text, n=decontamination["ngram"])
        rows = step(rows)
        state.absorb(step)
        if decontamination["paraphrase_check"] and rows:
            rows = await self._paraphrase_check(state, rows, backend)
        return rows

    def _deduplicate(self, state: _RoundState, rows: list[dict[str, Any]], pool: list[dict[str, Any]]) -> list[dict]:
        """Exact and near-duplicate removal against the pool and within the round."""
        if not rows:
            return rows
        text = self.task.filter_text
        pool_texts = [text(row) for row in pool]
        for step in (
            ExactDedupFilter(pool_texts, text),
            NearDedupFilter(pool_texts, text, threshold=self.config.near_dup_threshold, seed=self.config.seed),
        ):
            rows = step(rows)
            state.absorb(step)
        return rows

    def _keep_sparse(
        self, state: _RoundState, rows: list[dict[str, Any]], centroids: np.ndarray, sparse: np.ndarray
    ) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
        """Featurize the survivors and keep those whose nearest (frozen) centroid is a sparse cluster."""
        accepted, accepted_feats = [], []
        if not rows:
            return accepted, accepted_feats
        feats, ok = self.featurize(rows, tolerant=True)
        state.drop("featurize_failed", int((~ok).sum()))
        kept = np.flatnonzero(ok)
        if not kept.size:
            return accepted, accepted_feats
        nearest = assign_clusters(feats[kept], centroids, device=self.config.device)
        sparse_set = set(sparse.tolist())
        for index, cluster in zip(kept.tolist(), nearest.tolist()):
            if cluster in sparse_set:
                accepted.append(self._output_row(rows[index], state.index, int(cluster)))
                accepted_feats.append(feats[index])
            else:
                state.drop("dense_cluster")
        return accepted, accepted_feats

    async def _paraphrase_check(self, state: _RoundState, rows: list[dict[str, Any]], backend: Backend) -> list[dict]:
        """Ask the generator whether each row restates its closest benchmark item; drop on ``yes``."""
        endpoint = dataclasses.replace(self.config.generator, temperature=0.0, max_new_tokens=8)
        specs: list[_Spec | None] = []
        for row in rows:
            item, shared = closest_benchmark_item(self.task.filter_text(row), self._benchmark_index)
            if item < 0 or shared < 0.2:
                specs.append(None)
                continue
            messages = self.task.paraphrase_messages(self.task.filter_text(row), self.benchmark_texts[item])
            specs.append(self._spec(state.index, "paraphrase", "generator", messages, endpoint, row["_cid"]))
        asked = [spec for spec in specs if spec is not None]
        answers = await self._run_requests(asked, backend, f"round {state.index}: paraphrase check") if asked else {}
        state.records += list(answers.values())
        kept = []
        for row, spec in zip(rows, specs):
            text = (answers[spec.id]["text"] or "") if spec is not None else ""
            if text.strip().lower().startswith("yes"):
                state.drop("paraphrase")
            else:
                kept.append(row)
        return kept

    def _output_row(self, row: dict[str, Any], r: int, cluster: int) -> dict[str, Any]:
        fields = {key: value for key, value in row.items() if not key.startswith("_")}
        out = {
            **fields,
            "id": f"gen-r{r}-{content_hash(self.task.filter_text(row))[:12]}",
            "source": "generated",
            "round": r,
            "cluster": cluster,
            "generator": self.config.generator.label,
            "solver": self.config.solver_endpoint.label,
        }
        return {key: out.get(key) for key in self.task.output_fields}

    def seed_rows(self, seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
            rows.append({key: out.get(key) for key in self.task.output_fields})
        return rows

    # -- the whole run --------------------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        config, store = self.config, self.store
        seeds_path = Path(config.seeds_path) if config.seeds_path else _bundled_seeds(config.task)
        seeds = load_seed_file(seeds_path, self.task)
        self.benchmark_texts = load_benchmark_texts(config.decontamination["benchmarks"], config.task)
        self._benchmark_index = build_ngram_index(self.benchmark_texts) if self.benchmark_texts else {}

        finished = all(store.read_round_stats(r) is not None for r in range(1, config.rounds + 1))
        generator = make_backend(config.generator)
        solver = make_backend(config.solver_endpoint)
        try:
            if not finished:
                await generator.check_reachable()
                if dataclasses.asdict(config.solver_endpoint) != dataclasses.asdict(config.generator):
                    await solver.check_reachable()
            if config.proxy.revision is None:
                revision = getattr(self.featurizer, "provenance", {}).get("proxy_revision")
                if revision:
                    config.proxy.revision = revision
                    store.write_config(config.to_dict())  # written once before, without the revision
            store.open_records()

            pool = store.read_pool(0)
            if pool is None:
                pool = self.seed_rows(seeds)
                store.write_pool(0, pool)
            round_stats = []
            for r in range(1, config.rounds + 1):
                stats, saved_pool = store.read_round_stats(r), store.read_pool(r)
                if stats is not None and saved_pool is not None:
                    pool = saved_pool
                    round_stats.append(stats)
                    continue
                pool, stats = await self.run_round(r, pool, generator, solver)
                store.flush()
                store.write_pool(r, pool)
                store.write_round_stats(r, stats)
                round_stats.append(stats)
                self._write_report(round_stats, complete=False)
                logger.info(
                    "round %d: %s accepted of %s asked; pool G-Vendi %.3f → %.3f",
                    r,
                    stats["accepted"],
                    stats["generated"],
                    stats["gvendi_before"],
                    stats["gvendi_after"],
                )
        finally:
            await generator.aclose()
            await solver.aclose()
            store.close()

        # the dataset's cluster column: a k-means of the final pool (same K rule)
        feats, _ = self.featurize(pool)
        k = min(len(pool), max(config.min_clusters, round(config.k_ratio * len(pool))))
        final = spherical_kmeans(
            feats,
            k,
            n_iter=config.kmeans_iters,
            seed=stable_seed(config.seed, "final") & _SEED_MASK,
            device=config.device,
            show_progress=False,
        )
        rows = [{**row, "cluster": int(label)} for row, label in zip(pool, final.labels.tolist())]
        store.write_dataset(rows)
        report = self._write_report(round_stats, complete=True, final_gvendi=float(score(feats).value))
        return RunResult(store.root, config, report, rows)

    def _write_report(self, rounds: list[dict[str, Any]], *, complete: bool, final_gvendi: float | None = None):
        config = self.config.to_dict()
        report = build_report(config, rounds, complete=complete, final_gvendi=final_gvendi)
        write_plots(report, self.store.root / "plots")
        self.store.write_report(report, render_markdown(report, config))
        return report


def _prepare(config: SynthesisConfig, store: RunStore) -> SynthesisConfig:
    from gvendi import __version__

    config = copy.deepcopy(config)
    seeds_path = Path(config.seeds_path) if config.seeds_path else _bundled_seeds(config.task)
    if not seeds_path.exists():
        raise ValueError(f"seeds file {seeds_path} does not exist; pass a JSONL file with one example a line.")
    config.seeds_sha256 = _sha256_file(seeds_path)
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


def synthesize(config: SynthesisConfig, *, featurizer: Any = None) -> RunResult:
    """Run (or continue) Prismatic Synthesis into ``config.out``.

    A folder that already holds a run with the same configuration is continued: completed requests and rounds are
    read back, not repeated. A folder made with a different configuration is refused.

    Args:
        config (`SynthesisConfig`): the run's configuration.
        featurizer (*optional*): an object with ``featurize(records) -> (N, dim) array`` (and ideally a
            ``fingerprint``) used instead of building a :class:`gvendi.featurizer.GradientFeaturizer` from
            ``config.proxy``.

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
        return asyncio.run(_Runner(config, store, featurizer).run())
    finally:
        store.unlock()


def resume(run_dir: str | Path, *, featurizer: Any = None, **overrides: Any) -> RunResult:
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
