"""Publishing a synthesis run: run-folder checks, the typed dataset, the card and the dry-run folder (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard

from gvendi.hub import (
    CITATION,
    MATH_FEATURES,
    NLI_FEATURES,
    NLI_LABELS,
    build_dataset,
    build_dataset_card,
    push_run,
    read_run,
    register_cli,
    size_category,
    validate_dataset_card,
    write_publish_folder,
)
from gvendi.hub.card import public_config
from gvendi.hub.run_folder import UNNAMED_ENDPOINT, public_label

GENERATOR = "Qwen/Qwen2.5-72B-Instruct"
SOLVER = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
PRIVATE_URL = "http://gen-host.internal:8080"


def _sample_rows(task: str, n: int) -> list[dict]:
    """Rows of the bundled samples when gvendi.data exists, else a few written here."""
    try:
        from gvendi.data import load_math_sample, load_nli_sample

        rows = load_math_sample() if task == "math" else load_nli_sample()
        return rows[:: max(1, len(rows) // n)][:n]
    except ImportError:  # pragma: no cover - before the bundled samples existed
        if task == "math":
            return [
                {
                    "problem": f"What is {i} + {i + 1}?",
                    "solution": f"{i} + {i + 1} = {2 * i + 1}.\n\\boxed{{{2 * i + 1}}}",
                    "answer": str(2 * i + 1),
                }
                for i in range(n)
            ]
        return [
            {"premise": f"Ana has {i} red pens.", "hypothesis": f"Ana has {i} pens.", "label": NLI_LABELS[i % 3]}
            for i in range(n)
        ]


def make_run_folder(root: Path, task: str = "math", *, n_seeds: int = 12, accepted: tuple[int, ...] = (5, 3)) -> Path:
    """A small but complete run folder following the synthesis contract (config, report, dataset, request log)."""
    run_dir = root / f"run-{task}"
    run_dir.mkdir(parents=True)
    total = n_seeds + sum(accepted)
    samples = _sample_rows(task, total)
    assert len(samples) == total
    text_columns = ("problem", "solution", "answer") if task == "math" else ("premise", "hypothesis", "label")
    rows = []
    for i, sample in enumerate(samples[:n_seeds]):
        rows.append(
            {
                "id": f"seed-{i:04d}",
                **{c: sample[c] for c in text_columns},
                "source": "seed",
                "round": 0,
                "cluster": -1,
                "votes": 0,
                "generator": None,
                "solver": None,
            }
        )
    position = n_seeds
    for round_index, count in enumerate(accepted, start=1):
        for j in range(count):
            sample = samples[position]
            position += 1
            rows.append(
                {
                    "id": f"r{round_index}-{j:04d}",
                    **{c: sample[c] for c in text_columns},
                    "source": "generated",
                    "round": round_index,
                    "cluster": j % 3,
                    "votes": 2 + j % 2,
                    "generator": GENERATOR,
                    "solver": SOLVER,
                }
            )
    config = {
        "task": task,
        "gvendi_version": "0.1.0",
        "seed": 7,
        "rounds": len(accepted),
        "per_round": 16,
        "generator": {"backend": "openai", "url": PRIVATE_URL, "model": GENERATOR, "temperature": 1.0},
        "solver": {"backend": "tgi", "url": PRIVATE_URL, "model": SOLVER},
        "vote": {"n": 3, "tau": 2},
        "k_ratio": 0.1,
        "sparse_ratio": 0.5,
        "proxy": {
            "name": "Qwen/Qwen2.5-0.5B-Instruct",
            "revision": "abc123",
            "projection": "sketch",
            "dim": 1024,
            "seed": 0,
        },
        "decontamination": {"benchmarks": ["gsm8k", "math500"], "ngram": 10, "paraphrase_check": False},
        "seeds_path": "/home/alice/private/seeds.jsonl",
        "out": str(run_dir),
    }
    rounds = []
    gvendi = 3.2109
    for round_index, count in enumerate(accepted, start=1):
        rounds.append(
            {
                "round": round_index,
                "generated": 32,
                "parsed": 30,
                "solved": 28,
                "voted": 20,
                "decontaminated": 19,
                "deduplicated": 18,
                "accepted": count,
                "gvendi_before": round(gvendi, 4),
                "gvendi_after": round(gvendi + 0.8, 4),
                "n_clusters": 3,
                "cluster_sizes": [4, 5, 6],
                "sparse_clusters": [0],
            }
        )
        gvendi += 0.8
    report = {
        "task": task,
        "complete": True,
        "rounds": rounds,
        "gvendi": {"seed_pool": 3.2109, "final": round(gvendi, 4)},
        "decontamination": {"benchmarks": ["gsm8k", "math500"], "ngram": 10, "removed": 4},
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    (run_dir / "dataset.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (run_dir / "requests.jsonl").write_text(json.dumps({"role": "generator", "prompt": "..."}) + "\n")
    return run_dir


@pytest.fixture
def math_run(tmp_path):
    return make_run_folder(tmp_path, "math")


@pytest.fixture
def nli_run(tmp_path):
    return make_run_folder(tmp_path, "nli")


# ------------------------------------------------------------------------------------------------ the run folder
def test_read_run_reads_a_complete_run(math_run):
    run = read_run(math_run, task="math")
    assert run.task == "math"
    assert len(run.rows) == 20 and run.num_seed_rows == 12 and run.num_generated_rows == 8
    assert set(run.rows[0]) == set(MATH_FEATURES)


def _edit_json(path: Path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: _edit_json(d / "report.json", complete=False), "not a complete run"),
        (lambda d: (d / "dataset.jsonl").unlink(), "no dataset.jsonl"),
        (lambda d: (d / "config.json").unlink(), "config.json"),
        (lambda d: (d / "report.json").write_text("{not json"), "not valid JSON"),
        (lambda d: _edit_json(d / "report.json", task="nli"), "mixes two runs"),
        (lambda d: _edit_json(d / "config.json", task="code"), "task must be 'math' or 'nli'"),
        (lambda d: _edit_json(d / "report.json", gvendi={"seed_pool": None, "final": 2.0}), "gvendi.seed_pool"),
        (
            lambda d: (d / "dataset.jsonl").write_text(
                (d / "dataset.jsonl").read_text() + json.dumps({"id": "x", "problem": "p"}) + "\n"
            ),
            "missing column",
        ),
        (
            lambda d: (d / "dataset.jsonl").write_text(
                (d / "dataset.jsonl").read_text().replace('"source": "seed"', '"source": "human"', 1)
            ),
            "source must be",
        ),
        (
            lambda d: (d / "dataset.jsonl").write_text(
                (d / "dataset.jsonl").read_text().replace('"id": "seed-0001"', '"id": "seed-0000"')
            ),
            "duplicate id",
        ),
        (lambda d: _edit_json(d / "report.json", rounds=[{"round": 1, "accepted": 1}]), "disagree"),
    ],
)
def test_read_run_refuses_damaged_folders(math_run, damage, message):
    damage(math_run)
    with pytest.raises(ValueError, match=message):
        read_run(math_run)


def test_read_run_refuses_another_task(nli_run, tmp_path):
    with pytest.raises(ValueError, match="is a 'nli' run, not a 'math' run"):
        read_run(nli_run, task="math")
    with pytest.raises(ValueError, match="does not exist"):
        read_run(tmp_path / "nowhere")


def test_nli_labels_are_checked(nli_run):
    path = nli_run / "dataset.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[0])
    row["label"] = "maybe"
    path.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="label must be one of entailment, neutral, contradiction"):
        read_run(nli_run)


def test_server_urls_in_row_labels_are_not_published(math_run, caplog):
    path = math_run / "dataset.jsonl"
    path.write_text(path.read_text().replace(f'"{GENERATOR}"', f'"tgi:{PRIVATE_URL}"'))
    config = json.loads((math_run / "config.json").read_text())
    config["generator"]["model"] = None
    (math_run / "config.json").write_text(json.dumps(config))
    with caplog.at_level("WARNING"):
        dataset = build_dataset(math_run)
    assert set(dataset["generator"]) == {None, f"tgi:{UNNAMED_ENDPOINT}"}
    assert "name a server URL" in caplog.text
    card = build_dataset_card(math_run, repo_id="my-org/PrismMath", license="cc-by-4.0")
    assert PRIVATE_URL not in str(card) and f"`tgi:{UNNAMED_ENDPOINT}` (model name not recorded)" in card.text


# ------------------------------------------------------------------------------------------------ dataset and card
def test_build_dataset_types_the_columns(math_run, nli_run):
    math = build_dataset(math_run)
    assert math.features == MATH_FEATURES and len(math) == 20
    assert math[0]["generator"] is None and math[-1]["generator"] == GENERATOR
    nli = build_dataset(nli_run)
    assert nli.features == NLI_FEATURES
    assert isinstance(nli.features["label"], datasets.ClassLabel)
    raw = [json.loads(line) for line in (nli_run / "dataset.jsonl").read_text().splitlines()]
    assert [NLI_LABELS[i] for i in nli["label"]] == [row["label"] for row in raw]


def test_card_yaml_and_provenance(math_run):
    card = build_dataset_card(math_run, repo_id="my-org/PrismMath", license="CC-BY-4.0")
    data = validate_dataset_card(str(card), task="math")
    assert data["license"] == "cc-by-4.0"
    assert data["pretty_name"] == "PrismMath"
    assert data["size_categories"] == ["n<1K"]
    assert "text-generation" in data["task_categories"] and "prismatic-synthesis" in data["tags"]
    assert data["dataset_info"]["splits"][0]["num_examples"] == 20
    text = card.text
    for needle in (
        "Qwen/Qwen2.5-0.5B-Instruct",
        GENERATOR,
        SOLVER,
        "| 3.21 |",
        "| 4.81 |",
        "τ = 2",
        "`gsm8k`",
        "Rows removed: **4**",
        "0.1000",
        'load_dataset("my-org/PrismMath", split="train")',
        "2505.20161",
        "(projection sketch, dim 1024, seed 0)",
        "| Strategy | prismatic |",  # a run folder from before --strategy was prismatic
    ):
        assert needle in text, needle
    assert CITATION in text
    # nothing private leaks into the public card
    assert PRIVATE_URL not in str(card) and "/home/alice" not in str(card) and "seeds.jsonl" in text


def test_card_names_the_fold_of_a_factored_proxy():
    from gvendi.hub.card import _proxy

    proxy = {"name": "tiny", "projection": "factored", "fold": 64, "dim": 256, "seed": 3}
    assert _proxy({"proxy": proxy}) == "`tiny` (projection factored, fold 64, dim 256, seed 3)"
    assert "fold" not in _proxy({"proxy": {**proxy, "projection": "sketch", "fold": None}})


def test_card_run_record_matches_the_report(nli_run):
    card = build_dataset_card(nli_run, repo_id="my-org/PrismNLI", license="cc-by-4.0")
    block = card.text.split("```json\n", 1)[1].split("\n```", 1)[0]
    record = json.loads(block)
    report = json.loads((nli_run / "report.json").read_text())
    assert record["report"]["gvendi"] == report["gvendi"]
    assert [r["accepted"] for r in record["report"]["rounds"]] == [r["accepted"] for r in report["rounds"]]
    assert record["config"] == public_config(json.loads((nli_run / "config.json").read_text()))
    data = validate_dataset_card(card, task="nli")
    assert data["task_categories"] == ["text-classification"] and data["task_ids"] == ["natural-language-inference"]
    assert data["pretty_name"] == "PrismNLI"


@pytest.mark.parametrize("license", [None, "", "   "])
def test_license_is_required(math_run, license):
    with pytest.raises(ValueError, match="license is required"):
        build_dataset_card(math_run, repo_id="my-org/PrismMath", license=license)


@pytest.mark.parametrize("repo_id", ["PrismMath", "a/b/c", "/name", "org/", "org/na me", "org/a--b", None])
def test_repo_id_must_be_org_slash_name(math_run, repo_id, tmp_path):
    with pytest.raises(ValueError, match="ORG/NAME"):
        push_run(math_run, repo_id, license="cc-by-4.0", dry_run_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("license", "hint"), [("cc-by-99.0", "cc-by-"), ("apache2", "apache-2.0"), ("gpl-7", "gpl")])
def test_license_must_be_a_hub_license_id(license, hint):
    from gvendi.hub.card import check_license

    with pytest.raises(ValueError, match=rf"license {license!r} is not one of the Hub's license ids.*{hint}"):
        check_license(license)
    assert check_license("CC-BY-SA-4.0") == "cc-by-sa-4.0" and check_license("other") == "other"


@pytest.mark.parametrize("repo_id", ["org/name.git", "org/Notebook.ipynb"])
def test_repo_id_with_a_refused_suffix(repo_id):
    from gvendi.hub.card import check_repo_id

    with pytest.raises(ValueError, match="which the Hub refuses"):
        check_repo_id(repo_id)


def test_offline_mode_is_a_clear_error(math_run):
    # the test session runs with HF_HUB_OFFLINE=1, where huggingface_hub would refuse every request
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE is set"):
        push_run(math_run, "my-org/PrismMath", license="cc-by-4.0", token="hf_unused")


def test_size_categories():
    assert size_category(0) == "n<1K"
    assert size_category(999) == "n<1K"
    assert size_category(1000) == "1K<n<10K"
    assert size_category(515_000) == "100K<n<1M"
    assert size_category(1_000_000) == "1M<n<10M"


# ------------------------------------------------------------------------------------------------ the dry-run folder
@pytest.mark.parametrize("task", ["math", "nli"])
def test_dry_run_folder_loads_with_load_dataset(tmp_path, task):
    run_dir = make_run_folder(tmp_path, task)
    out = tmp_path / "out"
    result = push_run(run_dir, f"my-org/Prism{task.upper()}", license="cc-by-4.0", dry_run_dir=out, task=task)
    assert result.dry_run and result.files == ["README.md", "data/train-00000-of-00001.parquet"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == result.files
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    expected = build_dataset(run_dir)
    assert loaded.features == expected.features
    assert loaded.to_list() == expected.to_list()
    card = DatasetCard.load(out / "README.md")
    validate_dataset_card(card, task=task)


def test_dry_run_is_byte_identical_and_refuses_foreign_files(math_run, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_publish_folder(math_run, first, repo_id="my-org/PrismMath", license="cc-by-4.0")
    write_publish_folder(math_run, second, repo_id="my-org/PrismMath", license="cc-by-4.0")
    for name in ("README.md", "data/train-00000-of-00001.parquet"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    write_publish_folder(math_run, first, repo_id="my-org/PrismMath", license="cc-by-4.0")  # rerun: fine
    (first / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already holds other files"):
        write_publish_folder(math_run, first, repo_id="my-org/PrismMath", license="cc-by-4.0")


def test_small_shards(math_run, tmp_path):
    files = write_publish_folder(math_run, tmp_path / "out", repo_id="o/n", license="mit", max_shard_size=2_000)
    shards = [f for f in files if f.startswith("data/")]
    assert len(shards) > 1 and shards[-1].endswith(f"-of-{len(shards):05d}.parquet")
    loaded = datasets.load_dataset(str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded["id"] == build_dataset(math_run)["id"]


def test_register_cli_adds_push(math_run, tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="gvendi")
    register_cli(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_info:  # no license: a usage error, shown as required in the usage line
        parser.parse_args(["push", str(math_run), "--repo-id", "my-org/PrismMath", "--dry-run", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --license" in capsys.readouterr().err
    args = parser.parse_args(
        [
            "push",
            str(math_run),
            "--repo-id",
            "my-org/PrismMath",
            "--license",
            "cc-by-4.0",
            "--dry-run",
            str(tmp_path / "o"),
        ]
    )
    assert args.handler(args) == 0
    assert "nothing uploaded" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ a real synthesis run
class _HashingFeaturizer:
    """Unit-norm hashed word bigrams: a fast, deterministic stand-in for gradient features (plumbing only)."""

    fingerprint = "test-hub-hashing-v1"
    provenance = {"proxy": "test-hub-hashing", "proxy_revision": None}

    def featurize(self, records):
        import hashlib
        import re

        import numpy as np

        out = np.zeros((len(records), 32), dtype=np.float32)
        for i, record in enumerate(records):
            words = re.findall(r"\w+", (record["prompt"] + " " + record["completion"]).lower())
            for a, b in zip(words, words[1:] + ["</s>"]):
                h = int.from_bytes(hashlib.blake2b(f"{a} {b}".encode(), digest_size=4).digest(), "little")
                out[i, h % 32] += 1.0 if (h >> 16) & 1 else -1.0
            out[i] = out[i] / np.linalg.norm(out[i]) if out[i].any() else np.eye(32, dtype=np.float32)[0]
        return out


def _tiny_proxy_available() -> bool:
    try:
        from gvendi.data import TINY_PROXY_PATH
    except ImportError:
        return False
    return (TINY_PROXY_PATH / "config.json").is_file()


@pytest.mark.parametrize(
    ("task", "real_features"),
    [
        ("math", False),
        ("nli", False),
        pytest.param(
            "math",
            True,
            marks=pytest.mark.skipif(not _tiny_proxy_available(), reason="the bundled tiny proxy is not built"),
        ),
    ],
)
def test_dry_run_of_a_synthesized_run(monkeypatch, tmp_path, task, real_features):
    """``synthesize`` against the scripted loopback TGI server, then a dry run: loads, card matches the report.

    The stand-in featurizer keeps the plumbing runs fast; the ``real_features`` run uses the gradient featurizer
    with the bundled tiny proxy.
    """
    synthesis = pytest.importorskip("gvendi.synthesis")
    tgi_server = pytest.importorskip("tgi_server")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the loopback TGI server only
    rows = _sample_rows(task, 24)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{i}", **row}) + "\n" for i, row in enumerate(rows)))
    with tgi_server.LoopbackTGIServer(mode="scripted") as server:
        config = synthesis.SynthesisConfig(
            task=task,
            out=str(tmp_path / "run"),
            seeds_path=str(seeds),
            rounds=1,
            per_round=12,
            k_ratio=0.1,
            generator=synthesis.EndpointConfig(backend="tgi", url=server.url, timeout=5, max_new_tokens=256),
            solver=synthesis.EndpointConfig(backend="openai", url=server.url, timeout=5, max_new_tokens=256),
            show_progress=False,
        )
        result = synthesis.synthesize(config, featurizer=None if real_features else _HashingFeaturizer())
    run_dir = Path(result.run_dir)
    _, report, their_rows = synthesis.load_run(run_dir)
    ours = read_run(run_dir, task=task)
    expected_rows = [
        {k: public_label(row[k]) if k in ("generator", "solver") else row[k] for k in ours.rows[0]}
        for row in their_rows
    ]
    assert ours.rows == expected_rows
    assert not any(server.url in str(row) for row in ours.rows)  # the runs label rows with the server URL

    out = tmp_path / "out"
    push_run(run_dir, "my-org/PrismSmoke", license="cc-by-4.0", dry_run_dir=out, task=task)
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.to_list() == build_dataset(run_dir).to_list()
    assert len(loaded) == len(their_rows) and sum(r == "generated" for r in loaded["source"]) == sum(
        r["accepted"] for r in report["rounds"]
    )
    card = DatasetCard.load(out / "README.md")
    validate_dataset_card(card, task=task)
    record = json.loads(card.text.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert record["report"]["gvendi"] == report["gvendi"]
    assert (
        f"| {report['gvendi']['seed_pool']:.2f} |" in card.text and f"| {report['gvendi']['final']:.2f} |" in card.text
    )
    assert server.url not in str(card)  # endpoint URLs stay private


def test_push_dry_run_of_a_run_that_generated_nothing_warns(tmp_path, capsys):
    from gvendi.cli import main

    for name, accepted, warned in (("empty", (0, 0), True), ("full", (5, 3), False)):
        run_dir = make_run_folder(tmp_path / name, "math", accepted=accepted)
        args = [
            "push",
            str(run_dir),
            "--repo-id",
            "my-org/PrismMath",
            "--license",
            "cc-by-4.0",
            "--dry-run",
            str(tmp_path / name / "out"),
        ]
        assert main(args) == 0
        err = capsys.readouterr().err
        assert ("warning: the run generated nothing that was kept (0 generated rows)" in err) is warned, err
