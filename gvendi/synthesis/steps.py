"""The steps of a synthesis round, and the one counters contract they share.

A round is a sequence of steps (:data:`STRATEGY_STEPS`): **generate → solve/vote → decontaminate → deduplicate →
keep-sparse** (``prismatic``), or **… → keep-all** (``vanilla``). Every step is called the same way,
``kept, counters = await step(round, rows)``: it takes the round's candidates (the generate step takes none and
makes them) and returns those it keeps and a :class:`Counters` (rows seen, kept, dropped per reason, the request
records it used). The driver (:mod:`gvendi.synthesis.loop`) only sequences the steps and writes the round's
markers; the report reads the counters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cluster import assign_clusters, sparse_clusters, spherical_kmeans
from ..utils import stable_seed
from .backends import Backend
from .config import SynthesisConfig
from .filters import ExactDedupFilter, FilterStep, NearDedupFilter, NGramDecontaminationFilter, closest_benchmark_item
from .store import content_hash
from .tasks import Task

if TYPE_CHECKING:
    from .loop import FeatureCache, Requests

logger = logging.getLogger(__name__)

__all__ = [
    "Clustering",
    "Counters",
    "Decontaminate",
    "Deduplicate",
    "EmptyRoundError",
    "Generate",
    "KeepAll",
    "KeepSparse",
    "Round",
    "RoundStep",
    "STRATEGY_STEPS",
    "SolveAndVote",
    "cluster_count",
    "cluster_pool",
]

SEED_MASK = 0x7FFFFFFF  # 31-bit sampling seeds: every server accepts them


class EmptyRoundError(RuntimeError):
    """A round in which not one candidate could be parsed: the run produced nothing it was asked for.

    ``gvendi synthesize`` exits 1 with this message; ``allow_empty_rounds=True`` (``--allow-empty-rounds``) lets such
    a round pass instead.
    """


# -- clustering -------------------------------------------------------------------------------------------------------
def cluster_count(config: SynthesisConfig, pool_size: int) -> int:
    """The K rule: ``K = max(min_clusters, round(k_ratio·|D|))``, at most ``|D|``."""
    return min(pool_size, max(config.min_clusters, round(config.k_ratio * pool_size)))


@dataclass(frozen=True)
class Clustering:
    """A spherical k-means of the pool and its sparse clusters (frozen for the round).

    Attributes:
        labels: each pool row's cluster, ``(|D|,)``.
        centroids: unit centroids, ``(K, dim)``.
        sizes: rows per cluster, ``(K,)``.
        sparse: the sparse clusters' indices (strictly smaller than the ``sparse_ratio`` quantile; all when none is).
    """

    labels: np.ndarray
    centroids: np.ndarray
    sizes: np.ndarray
    sparse: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(len(self.sizes))


def cluster_pool(config: SynthesisConfig, features: np.ndarray, *seed_parts: Any, show_progress: bool) -> Clustering:
    """Spherical k-means of ``features``, K from :func:`cluster_count`, seeded by ``(config.seed, *seed_parts)``."""
    kmeans = spherical_kmeans(
        features,
        cluster_count(config, len(features)),
        n_iter=config.kmeans_iters,
        seed=stable_seed(config.seed, *seed_parts) & SEED_MASK,
        device=config.device,
        show_progress=show_progress,
    )
    sparse = np.asarray(sparse_clusters(kmeans.sizes, ratio=config.sparse_ratio), dtype=np.int64)
    return Clustering(np.asarray(kmeans.labels), kmeans.centroids, np.asarray(kmeans.sizes), sparse)


# -- the contract -----------------------------------------------------------------------------------------------------
@dataclass
class Counters:
    """What one step did to the round's candidates: the one shape every step reports.

    Attributes:
        step: the step's name.
        seen: candidates it was given (for ``generate``: candidates it asked the generator for).
        kept: candidates it returned.
        dropped: dropped candidates per reason (only reasons that occurred).
        records: the request records (``requests.jsonl`` entries) the step used.
    """

    step: str
    seen: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def absorb(self, step: FilterStep) -> None:
        """Add a filter step's ``dropped_<reason>`` counters."""
        for key, value in step.stats.items():
            if key.startswith("dropped_"):
                self.drop(key[len("dropped_") :], value)


@dataclass(frozen=True)
class Round:
    """What every step of round ``index`` reads: the pool before the round and its clustering."""

    index: int
    pool: list[dict[str, Any]]
    clustering: Clustering


@dataclass
class StepContext:
    """The services a run's steps share: its configuration and task, the request runner, the feature cache, the
    endpoints and the benchmark texts. Built once per run; the configuration is not changed by any step."""

    config: SynthesisConfig
    task: Task
    requests: Requests
    features: FeatureCache
    generator: Backend
    solver: Backend
    benchmark_texts: list[str]
    benchmark_index: dict[tuple[str, ...], list[int]]


class RoundStep:
    """One step of a round: ``kept, counters = await step(round, rows)``.

    A subclass sets ``name`` and ``count`` (the report's name for the rows it keeps) and writes :meth:`run`, which
    returns the kept rows and records drops on the counters; the base fills in ``seen`` and ``kept``.
    """

    name = "step"
    count = "kept"

    def __init__(self, context: StepContext):
        self.context = context

    async def __call__(self, round: Round, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Counters]:
        counters = Counters(self.name, seen=len(rows))
        kept = await self.run(round, rows, counters)
        counters.kept = len(kept)
        return kept, counters

    async def run(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict[str, Any]]:
        raise NotImplementedError


# -- the steps --------------------------------------------------------------------------------------------------------
class Generate(RoundStep):
    """Few-shot generation prompts (shots by ``shot_policy``), their answers, and the parsed candidates.

    ``seen`` is the number of candidates asked for; drops: ``generation_failed``, ``unparsable``. Stops the run
    (:class:`EmptyRoundError`) when not one candidate parsed, unless ``allow_empty_rounds``.
    """

    name = "generate"
    count = "parsed"

    async def run(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict[str, Any]]:
        config, task, r = self.context.config, self.context.task, round.index
        specs, asked = [], []
        for i in range(math.ceil(config.per_round / config.new_per_prompt)):
            rng = np.random.default_rng(stable_seed(config.seed, r, "shots", i))
            shots = [round.pool[j] for j in self.choose_shots(rng, round)]
            n_new = min(config.new_per_prompt, config.per_round - i * config.new_per_prompt)
            messages = task.generation_messages(shots, n_new, rng)
            specs.append(self.context.requests.spec(r, "generate", "generator", messages, config.generator, i))
            asked.append(n_new)
        answers = await self.context.requests.run(specs, self.context.generator, f"round {r}: generate")
        counters.seen = int(sum(asked))
        candidates = []
        for i, (spec, n_new) in enumerate(zip(specs, asked)):
            record = answers[spec.id]
            counters.records.append(record)
            if record["status"] != "ok":
                counters.drop("generation_failed", n_new)
                continue
            parsed = task.parse_generation(record["text"], n_new)
            counters.drop("unparsable", n_new - len(parsed))
            candidates += [{**fields, "_cid": f"r{r}-p{i}-{j}"} for j, fields in enumerate(parsed)]
        self._check_parsed(r, counters, len(candidates))
        return candidates

    def choose_shots(self, rng: np.random.Generator, round: Round) -> list[int]:
        """Pool indices of one prompt's shots: ``uniform`` over the pool, or ``sparse-cluster`` (one random sparse
        cluster, topped up from the other sparse clusters, then from the whole pool), shuffled."""
        config, pool_size = self.context.config, len(round.pool)
        labels, sparse = round.clustering.labels, round.clustering.sparse
        k = min(config.shots, pool_size)
        if config.shot_policy == "uniform":
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

    def _check_parsed(self, r: int, counters: Counters, parsed: int) -> None:
        """Say on stderr when most candidates failed to parse; stop the run when none did (unless allowed)."""
        generated = counters.seen
        if not generated or parsed * 2 >= generated:
            return
        records = counters.records
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(counters.dropped.items()))
        errors = [rec.get("error") for rec in records if rec.get("status") != "ok" and rec.get("error")]
        example = f"; e.g. {max(set(errors), key=errors.count)[:200]}" if errors else ""
        unusable = next((rec.get("text") for rec in records if rec.get("status") == "ok"), None)
        sample = f"; one answer began {unusable[:120]!r}" if unusable and parsed == 0 else ""
        if parsed == 0 and not self.context.config.allow_empty_rounds:
            raise EmptyRoundError(
                f"round {r}: none of the {generated} candidates asked for could be parsed ({reasons}"
                f"{example}{sample}). The generator's answers are unusable: check the endpoint and model; the "
                "request record is kept. Pass --allow-empty-rounds to let such a round pass."
            )
        logger.warning(
            "round %d: only %d of %d candidates could be parsed (%s%s)", r, parsed, generated, reasons, example
        )


class SolveAndVote(RoundStep):
    """N solver/judge samples per candidate and the τ-vote.

    Drops: ``solver_failed`` (every sample's request failed), ``no_answer`` (no sample gave a usable answer), and
    the task's vote reasons (``below_tau``, ``tie``). Candidates with a usable answer ("solved") are therefore
    ``seen − solver_failed − no_answer``. Stops the run (:class:`EmptyRoundError`) when every solver request failed
    for every candidate, unless ``allow_empty_rounds``.
    """

    name = "solve"
    count = "voted"

    async def run(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict[str, Any]]:
        config, task, r = self.context.config, self.context.task, round.index
        endpoint = config.solver_endpoint
        n_votes, tau = int(config.vote["n"]), int(config.vote["tau"])
        spec = self.context.requests.spec
        specs = {
            c["_cid"]: [
                spec(r, "solve", "solver", task.solver_messages(c), endpoint, c["_cid"], k) for k in range(n_votes)
            ]
            for c in rows
        }
        flat = [s for group in specs.values() for s in group]
        answers = await self.context.requests.run(flat, self.context.solver, f"round {r}: solve") if flat else {}
        counters.records += list(answers.values())
        voted = []
        for c in rows:
            records = [answers[s.id] for s in specs[c["_cid"]]]
            responses = [rec["text"] if rec["status"] == "ok" else None for rec in records]
            if all(text is None for text in responses):
                counters.drop("solver_failed")
                continue
            outcome = task.vote(c, responses, tau)
            if outcome.accepted:
                voted.append({**c, **outcome.fields, "votes": outcome.votes})
            else:
                counters.drop("no_answer" if not outcome.solved else (outcome.reason or "vote_failed"))
        if rows and counters.dropped.get("solver_failed", 0) == len(rows) and not config.allow_empty_rounds:
            errors = [rec.get("error") for rec in counters.records if rec.get("error")]
            example = f" (e.g. {max(set(errors), key=errors.count)[:200]})" if errors else ""
            raise EmptyRoundError(
                f"round {r}: every solver request failed for all {len(rows)} candidates{example}: check the "
                f"solver endpoint {self.context.solver.target}; the request record is kept. Pass "
                "--allow-empty-rounds to let such a round pass."
            )
        return voted


class Decontaminate(RoundStep):
    """Word n-gram overlap with the benchmarks (``benchmark_ngram_overlap``), then, when asked, the LLM paraphrase
    check (``paraphrase``)."""

    name = "decontaminate"
    count = "decontaminated"

    async def run(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict[str, Any]]:
        context = self.context
        if not context.benchmark_texts or not rows:
            return rows
        decontamination = context.config.decontamination
        ngram = NGramDecontaminationFilter(
            context.benchmark_texts, context.task.filter_text, n=decontamination["ngram"]
        )
        rows = ngram(rows)
        counters.absorb(ngram)
        if decontamination["paraphrase_check"] and rows:
            rows = await self._paraphrase_check(round, rows, counters)
        return rows

    async def _paraphrase_check(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict]:
        """Ask the generator whether each row restates its closest benchmark item; drop on ``yes``."""
        context, task = self.context, self.context.task
        endpoint = dataclasses.replace(context.config.generator, temperature=0.0, max_new_tokens=8)
        specs = []
        for row in rows:
            item, shared = closest_benchmark_item(task.filter_text(row), context.benchmark_index)
            if item < 0 or shared < 0.2:
                specs.append(None)
                continue
            messages = task.paraphrase_messages(task.filter_text(row), context.benchmark_texts[item])
            specs.append(
                context.requests.spec(round.index, "paraphrase", "generator", messages, endpoint, row["_cid"])
            )
        asked = [spec for spec in specs if spec is not None]
        desc = f"round {round.index}: paraphrase check"
        answers = await context.requests.run(asked, context.generator, desc) if asked else {}
        counters.records += list(answers.values())
        kept = []
        for row, spec in zip(rows, specs):
            text = (answers[spec.id]["text"] or "") if spec is not None else ""
            if text.strip().lower().startswith("yes"):
                counters.drop("paraphrase")
            else:
                kept.append(row)
        return kept


class Deduplicate(RoundStep):
    """Exact (``exact_duplicate``) and near-duplicate (``near_duplicate``) removal against the pool and within the
    round."""

    name = "deduplicate"
    count = "deduplicated"

    async def run(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict[str, Any]]:
        if not rows:
            return rows
        config, text = self.context.config, self.context.task.filter_text
        pool_texts = [text(row) for row in round.pool]
        for step in (
            ExactDedupFilter(pool_texts, text),
            NearDedupFilter(pool_texts, text, threshold=config.near_dup_threshold, seed=config.seed),
        ):
            rows = step(rows)
            counters.absorb(step)
        return rows


class KeepSparse(RoundStep):
    """Featurize the survivors (``featurize_failed`` when one cannot be), assign each to its nearest frozen centroid
    and keep it only when that cluster is sparse (``dense_cluster``). Returns the published rows (provenance added,
    ``cluster`` = the assigned cluster)."""

    name = "keep_sparse"
    count = "accepted"
    sparse_only = True

    async def run(self, round: Round, rows: list[dict[str, Any]], counters: Counters) -> list[dict[str, Any]]:
        if not rows:
            return []
        feats, ok = self.context.features(rows, tolerant=True)
        counters.drop("featurize_failed", int((~ok).sum()))
        kept = np.flatnonzero(ok)
        if not kept.size:
            return []
        nearest = assign_clusters(feats[kept], round.clustering.centroids, device=self.context.config.device)
        sparse = set(round.clustering.sparse.tolist())
        accepted = []
        for index, cluster in zip(kept.tolist(), nearest.tolist()):
            if cluster in sparse or not self.sparse_only:
                accepted.append(self._output_row(rows[index], round.index, int(cluster)))
            else:
                counters.drop("dense_cluster")
        return accepted

    def _output_row(self, row: dict[str, Any], r: int, cluster: int) -> dict[str, Any]:
        config, task = self.context.config, self.context.task
        fields = {key: value for key, value in row.items() if not key.startswith("_")}
        out = {
            **fields,
            "id": f"gen-r{r}-{content_hash(task.filter_text(row))[:12]}",
            "source": "generated",
            "round": r,
            "cluster": cluster,
            "generator": config.generator.label,
            "solver": config.solver_endpoint.label,
        }
        return {key: out.get(key) for key in task.output_fields}


class KeepAll(KeepSparse):
    """The ``vanilla`` strategy's last step: featurize the survivors (``featurize_failed`` when one cannot be) and
    keep every one, whatever its cluster (``cluster`` = its nearest centroid, for the dataset column)."""

    name = "keep_all"
    sparse_only = False


STRATEGY_STEPS: dict[str, tuple[type[RoundStep], ...]] = {
    "prismatic": (Generate, SolveAndVote, Decontaminate, Deduplicate, KeepSparse),
    "vanilla": (Generate, SolveAndVote, Decontaminate, Deduplicate, KeepAll),
}
"""The steps of a round of each ``strategy``, in order: they differ only in the last one."""
