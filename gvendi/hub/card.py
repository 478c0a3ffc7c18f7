"""The dataset card of a published run: YAML metadata the Hub indexes, and a body that says where the data came from.

The YAML carries ``license`` (always the user's choice, never a default), ``language``, ``pretty_name``,
``task_categories`` (and ``task_ids`` for NLI), ``size_categories``, ``tags``, ``configs`` (one ``default`` config,
split ``train`` at ``data/train-*``) and ``dataset_info`` (features and split sizes). The body holds the
provenance (proxy, generator and solver models, seeds, rounds, K ratio, vote threshold τ), G-Vendi of the seed pool
against the final set, per-round counts, the decontamination report, how to load the data, limitations and the
paper's citation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from .run_folder import NLI_LABELS, TASK_FEATURES, PublishableRun, public_label, read_run

__all__ = ["CITATION", "DATA_FILES_PATTERN", "build_dataset_card", "size_category", "validate_dataset_card"]

CITATION = """@article{jung2025prismatic,
  title   = {Prismatic Synthesis: Gradient-based Data Diversification Boosts Generalization in LLM Reasoning},
  author  = {Jung, Jaehun and Han, Seungju and Lu, Ximing and Hallinan, Skyler and Acuna, David and
             Prabhumoye, Shrimai and Patwary, Mostafa and Shoeybi, Mohammad and Catanzaro, Bryan and Choi, Yejin},
  journal = {arXiv preprint arXiv:2505.20161},
  year    = {2025}
}"""
"""BibTeX of Jung et al. (2025), the paper behind G-Vendi and Prismatic Synthesis."""

DATA_FILES_PATTERN = "data/train-*"
"""Where the ``train`` split's parquet shards live in the repository."""

_PRETTY_NAMES = {"math": "PrismMath", "nli": "PrismNLI"}
_TASK_CATEGORIES = {"math": ["text-generation", "question-answering"], "nli": ["text-classification"]}
_TASK_IDS = {"math": None, "nli": ["natural-language-inference"]}
_TAGS = {"math": ["math", "reasoning"], "nli": ["nli", "natural-language-inference", "reasoning"]}
_COMMON_TAGS = ["synthetic", "prismatic-synthesis", "g-vendi", "gvendi"]
_SIZE_BUCKETS = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]
_LICENSE_RE = re.compile(r"^[a-z0-9][a-z0-9.+\-]*$")
# The license ids the Hub's metadata accepts (huggingface.co/docs/hub/repositories-licenses), kept here so the check
# works offline; "other" (with license_name/license_link in the card) covers everything else.
HUB_LICENSES = frozenset(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
    cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl
    gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr
    mpl-2.0 odc-by odbl openmdw-1.0 openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma
    unknown other
    """.split()
)
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*$")
# Config keys that may hold secrets, hosts or local paths: never copied to a public card.
_PRIVATE_CONFIG_KEYS = re.compile(
    r"(^(url|out|output|base_url|endpoint)$|(_url|_path|_dir)$|token|secret|password|api_?key|auth|header|cookie)",
    re.IGNORECASE,
)


def size_category(num_rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a row count, e.g. ``1K<n<10K``."""
    for bound, name in _SIZE_BUCKETS:
        if num_rows < bound:
            return name
    return "n>1T" if num_rows >= 1_000_000_000_000 else "1B<n<10B"


def check_license(license: str | None) -> str:
    """A Hub license id from the user, lower-cased; raises when missing (there is no default on purpose).

    Raises:
        ValueError: if ``license`` is empty or not a license id (``cc-by-4.0``, ``apache-2.0``, ``other``...).
    """
    if license is None or not str(license).strip():
        raise ValueError(
            "a license is required to publish a data set, and gvendi does not pick one for you: pass --license ID "
            "(e.g. cc-by-4.0, apache-2.0, odc-by, other) chosen to respect the terms of the generator and solver "
            "models and of the seed data."
        )
    value = str(license).strip().lower()
    if not _LICENSE_RE.match(value) or value not in HUB_LICENSES:
        import difflib

        close = difflib.get_close_matches(value, sorted(HUB_LICENSES), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"license {license!r} is not one of the Hub's license ids (cc-by-4.0, apache-2.0, odc-by, ... or 'other' "
            f"with the terms in the card).{hint}"
        )
    return value


def check_repo_id(repo_id: str | None) -> str:
    """``repo_id`` if it is ``ORG/NAME``; raises otherwise.

    Raises:
        ValueError: if ``repo_id`` has no namespace, more than one ``/`` or characters the Hub refuses.
    """
    if not isinstance(repo_id, str) or not _REPO_ID_RE.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ValueError(
            f"repo id must be ORG/NAME, e.g. 'my-org/PrismMath' (got {repo_id!r}): letters, digits, '-', '_' and '.' "
            "only, exactly one '/', no '--' or '..'."
        )
    if repo_id.lower().endswith((".git", ".ipynb")):
        raise ValueError(
            f"repo id {repo_id!r} ends in {repo_id[repo_id.rfind('.') :]!r}, which the Hub refuses; "
            f"use {repo_id[: repo_id.rfind('.')]!r}."
        )
    if len(repo_id.split("/")[1]) > 96:
        raise ValueError(f"repo name {repo_id.split('/')[1]!r} is longer than the Hub's 96 characters.")
    return repo_id


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """The run config without server URLs, credentials or local paths (``seeds_path`` keeps its file name)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not _PRIVATE_CONFIG_KEYS.search(str(k))}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    cleaned = clean(config)
    if config.get("seeds_path"):
        cleaned["seeds_file"] = Path(str(config["seeds_path"])).name
    return cleaned


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _endpoint(run: PublishableRun, role: str) -> str:
    endpoint = run.config.get(role)
    labels = sorted({row[role] for row in run.rows if row["source"] == "generated" and row[role]})
    if not isinstance(endpoint, dict):
        if labels:
            return ", ".join(f"`{label}`" for label in labels)
        return "not recorded" if role == "generator" else "the generator (no separate solver configured)"
    model = endpoint.get("model")
    backend = endpoint.get("backend")
    if model:
        name = f"`{public_label(str(model))}`"
    elif labels:
        name = ", ".join(f"`{label}`" for label in labels) + " (model name not recorded)"
    else:
        name = "model not recorded"
    return f"{name} (backend: {backend})" if backend else name


def _proxy(config: dict[str, Any]) -> str:
    proxy = config.get("proxy") or {}
    name = proxy.get("name", "not recorded")
    revision = f" @ `{proxy['revision']}`" if proxy.get("revision") else ""
    keys = (
        ("projection", "fold", "dim", "seed")
        if proxy.get("projection") == "factored"
        else ("projection", "dim", "seed")
    )
    details = ", ".join(f"{key} {proxy[key]}" for key in keys if proxy.get(key) is not None)
    return f"`{name}`{revision}" + (f" ({details})" if details else "")


def _round_table(report: dict[str, Any]) -> str:
    header = (
        "| Round | Generated | Parsed | Solved | Voted | Decontaminated | Deduplicated | Accepted "
        "| G-Vendi before | G-Vendi after | Clusters | Sparse clusters |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for entry in report.get("rounds", []):
        sparse = entry.get("sparse_clusters")
        lines.append(
            "| "
            + " | ".join(
                [
                    _fmt(entry.get("round")),
                    *(
                        _fmt(entry.get(key))
                        for key in ("generated", "parsed", "solved", "voted", "decontaminated", "deduplicated")
                    ),
                    _fmt(entry.get("accepted")),
                    _fmt(entry.get("gvendi_before")),
                    _fmt(entry.get("gvendi_after")),
                    _fmt(entry.get("n_clusters")),
                    _fmt(len(sparse) if isinstance(sparse, list) else None),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the per-cluster lists (which grow with K), for the card's machine-readable block."""
    summary = json.loads(json.dumps(report))
    for entry in summary.get("rounds", []):
        sizes = entry.pop("cluster_sizes", None)
        sparse = entry.pop("sparse_clusters", None)
        if isinstance(sparse, list):
            entry["n_sparse_clusters"] = len(sparse)
        if isinstance(sizes, list) and sizes:
            entry["cluster_size_min"], entry["cluster_size_max"] = min(sizes), max(sizes)
    return summary


def _schema_section(task: str) -> str:
    if task == "math":
        task_rows = (
            "| `problem` | string | the problem statement |\n"
            "| `solution` | string | a step-by-step solution ending in `\\boxed{answer}` |\n"
            "| `answer` | string | the final answer (the solvers' majority answer for generated rows) |\n"
        )
    else:
        task_rows = (
            "| `premise` | string | the premise |\n"
            "| `hypothesis` | string | the hypothesis |\n"
            f"| `label` | ClassLabel | {', '.join(f'{i} = {name}' for i, name in enumerate(NLI_LABELS))} |\n"
        )
    return (
        "| Column | Type | Meaning |\n|---|---|---|\n"
        "| `id` | string | unique row id |\n"
        + task_rows
        + "| `source` | string | `seed` (from the seed pool) or `generated` (accepted by Prismatic Synthesis) |\n"
        "| `round` | int32 | the round that accepted the row (0 for seeds) |\n"
        "| `cluster` | int32 | the gradient cluster the row was assigned to when accepted (-1: none) |\n"
        "| `votes` | int32 | solver samples agreeing with the kept answer/label |\n"
        "| `generator` | string | the model that wrote the row (null for seeds) |\n"
        "| `solver` | string | the model that voted on it (null for seeds) |\n"
    )


def _usage(task: str, repo_id: str) -> str:
    lines = [
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{repo_id}", split="train")',
        'generated = ds.filter(lambda row: row["source"] == "generated")',
    ]
    if task == "nli":
        lines.append('print(ds.features["label"].int2str(ds[0]["label"]))  # entailment / neutral / contradiction')
    else:
        lines.append('print(ds[0]["problem"], ds[0]["answer"])')
    lines.append("```")
    return "\n".join(lines)


def build_dataset_card(
    run: str | Path | PublishableRun,
    *,
    repo_id: str,
    license: str,
    pretty_name: str | None = None,
    language: str | list[str] = "en",
    dataset: datasets.Dataset | None = None,
    download_size: int | None = None,
    extra_tags: list[str] | None = None,
) -> DatasetCard:
    """The dataset card of a finished run, as a ``huggingface_hub.DatasetCard``.

    Args:
        run (`str`, `Path` or [`PublishableRun`]): the run folder, or one already read by
            :func:`~gvendi.hub.read_run`.
        repo_id (`str`): ``ORG/NAME`` the card will live at (used in the loading example).
        license (`str`): a Hub license id chosen by the user (``cc-by-4.0``, ``apache-2.0``, ``other``...). There is
            no default: the right license depends on the generator's and seeds' terms.
        pretty_name (`str`, *optional*): display name; defaults to ``PrismMath`` / ``PrismNLI``.
        language (`str` or `list[str]`, *optional*, defaults to ``"en"``): ISO 639-1 code(s) of the text.
        dataset (`datasets.Dataset`, *optional*): the built dataset, for the split sizes in ``dataset_info``;
            built from the run when omitted.
        download_size (`int`, *optional*): total bytes of the parquet shards, when known.
        extra_tags (`list[str]`, *optional*): tags added after gvendi's own.

    Returns:
        `huggingface_hub.DatasetCard`: YAML metadata plus the body; ``str(card)`` is the README.md text.

    Raises:
        ValueError: on a missing license, a repo id that is not ``ORG/NAME``, or a run folder :func:`read_run`
            refuses.
    """
    license = check_license(license)
    repo_id = check_repo_id(repo_id)
    if not isinstance(run, PublishableRun):
        run = read_run(run)
    if dataset is None:
        from .run_folder import build_dataset

        dataset = build_dataset(run)
    task, config, report = run.task, run.config, run.report
    pretty_name = pretty_name or _PRETTY_NAMES[task]
    languages = [language] if isinstance(language, str) else list(language)

    card_data = DatasetCardData(
        license=license,
        language=languages,
        pretty_name=pretty_name,
        size_categories=[size_category(len(run.rows))],
        task_categories=list(_TASK_CATEGORIES[task]),
        task_ids=_TASK_IDS[task],
        tags=[*_COMMON_TAGS, *_TAGS[task], *(extra_tags or [])],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES_PATTERN}]}],
    )
    info = datasets.DatasetInfo(features=TASK_FEATURES[task])
    info.splits = datasets.SplitDict()
    info.splits.add(datasets.SplitInfo(name="train", num_bytes=dataset.data.nbytes, num_examples=len(dataset)))
    info.dataset_size = dataset.data.nbytes
    if download_size is not None:
        info.download_size = download_size
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)

    vote = config.get("vote") or {}
    decontamination = report.get("decontamination") or {}
    config_decontamination = config.get("decontamination") or {}
    benchmarks = decontamination.get("benchmarks", config_decontamination.get("benchmarks")) or []
    seed_gvendi, final_gvendi = report["gvendi"]["seed_pool"], report["gvendi"]["final"]
    change = (final_gvendi / seed_gvendi - 1.0) * 100 if seed_gvendi else float("nan")
    seeds_file = Path(str(config["seeds_path"])).name if config.get("seeds_path") else None
    task_phrase = "math problem–solution pairs" if task == "math" else "premise–hypothesis–label triples"
    version = config.get("gvendi_version") or "(version not recorded)"
    seeds_from = f" from `{seeds_file}`" if seeds_file else ""
    benchmark_list = ", ".join(f"`{b}`" for b in benchmarks) if benchmarks else "no benchmark (none configured)"
    ngram = _fmt(decontamination.get("ngram", config_decontamination.get("ngram")))
    record = json.dumps({"config": public_config(config), "report": _report_summary(report)}, indent=2, sort_keys=True)
    judged = "labels" if task == "nli" else "answers"

    body = f"""
# {pretty_name}

{pretty_name} holds {len(run.rows):,} {task_phrase}: {run.num_seed_rows:,} seed rows and \
{run.num_generated_rows:,} rows generated with **Prismatic Synthesis** (Jung et al., 2025), which asks a generator \
model for new examples, keeps those a solver model answers consistently, removes benchmark contamination and \
accepts only examples that land in sparse clusters of the proxy model's gradient space, so that each round adds \
diversity measured by **G-Vendi**. It was produced with `gvendi` {version}.

## Diversity

| Set | Rows | G-Vendi |
|---|---:|---:|
| Seed pool | {run.num_seed_rows:,} | {seed_gvendi:.2f} |
| Final set (this data set) | {len(run.rows):,} | {final_gvendi:.2f} |

G-Vendi changed by {change:+.1f}% over {len(report.get("rounds", []))} round(s). G-Vendi is the exponential of the \
entropy of the eigenvalues of the covariance of unit-normalised, randomly projected per-example loss gradients of \
the proxy model; it ranges from 1 (all examples push the model the same way) to min(N, k). Scores are comparable \
only between sets measured with the same proxy, projection, fold, dimension and seed (listed below).

## Provenance

| | |
|---|---|
| Task | {task} |
| Proxy model (features, clusters, G-Vendi) | {_proxy(config)} |
| Generator | {_endpoint(run, "generator")} |
| Solver | {_endpoint(run, "solver")} |
| Seeds | {run.num_seed_rows:,} rows{seeds_from} |
| Strategy | {_fmt(config.get("strategy", "prismatic"))} |
| Rounds | {_fmt(config.get("rounds"))} (new examples requested per round: {_fmt(config.get("per_round"))}) |
| K ratio (clusters / pool size) | {_fmt(config.get("k_ratio"), 4)} |
| Sparse-cluster ratio | {_fmt(config.get("sparse_ratio"), 4)} |
| Majority vote | {_fmt(vote.get("n"))} solver samples, τ = {_fmt(vote.get("tau"))} agreeing votes required |
| Random seed | {_fmt(config.get("seed"))} |

### Per-round counts

{_round_table(report)}

## Decontamination

Rows overlapping an evaluation benchmark were removed before selection: {ngram}-gram overlap against \
{benchmark_list}; \
LLM paraphrase check: {_fmt(config_decontamination.get("paraphrase_check"))}. \
Rows removed: **{_fmt(decontamination.get("removed"))}**.

## Data fields

One split, `train`, stored as parquet under `data/`.

{_schema_section(task)}
## How to load

{_usage(task, repo_id)}

## Limitations

- Generated rows are synthetic. Their {judged} come from a majority vote of \
a solver model, not from human annotation, and can be wrong.
- Decontamination is an n-gram check (plus an optional LLM paraphrase check); it lowers, but cannot rule out, \
overlap with evaluation sets not listed above.
- The terms of the generator, solver and seed data apply to this data set in addition to its license.

## Run record

<details>
<summary>Resolved synthesis config (server URLs, credentials and local paths removed) and run report</summary>

```json
{record}
```

</details>

## Citation

```bibtex
{CITATION}
```
"""
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def validate_dataset_card(card: DatasetCard | str, *, task: str | None = None) -> dict[str, Any]:
    """Check a card's YAML offline against what gvendi publishes; return the YAML as a dict.

    Checks: ``license`` is set; ``language``, ``task_categories``, ``size_categories`` and ``tags`` are non-empty
    lists; ``configs`` has a ``default`` config whose ``train`` split points at ``data/train-*``; ``dataset_info``
    features match the task's schema (when ``task`` is given, or inferred from the tags).

    Raises:
        ValueError: naming the first field that is missing or wrong.
    """
    if isinstance(card, str):
        card = DatasetCard(card)
    data = card.data.to_dict()
    if not data.get("license"):
        raise ValueError("card YAML has no license.")
    for key in ("language", "task_categories", "size_categories", "tags"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"card YAML field {key!r} must be a non-empty list (got {data.get(key)!r}).")
    configs = data.get("configs") or []
    default = next((c for c in configs if c.get("config_name") == "default"), None)
    if default is None:
        raise ValueError("card YAML has no 'default' entry under configs.")
    splits = {entry.get("split"): entry.get("path") for entry in default.get("data_files", [])}
    if splits.get("train") != DATA_FILES_PATTERN:
        raise ValueError(f"card YAML configs: split 'train' must point at {DATA_FILES_PATTERN!r} (got {splits!r}).")
    if task is None:
        task = "nli" if "nli" in data["tags"] else "math"
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    if "default" not in infos or infos["default"].features != TASK_FEATURES[task]:
        raise ValueError(f"card YAML dataset_info features do not match the {task} schema.")
    return data
