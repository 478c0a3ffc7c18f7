"""The round driver in-process against the scripted loopback server (a hashing stand-in featurizer keeps it fast)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from synthesis_helpers import HashingFeaturizer, write_seed_subset

from gvendi.synthesis import EndpointConfig, EndpointUnreachableError, SynthesisConfig, load_run, resume, synthesize
from gvendi.synthesis.cli import main as cli_main

ROUND_KEYS = {
    "round", "generated", "parsed", "solved", "voted", "decontaminated", "deduplicated", "accepted", "gvendi_before",
    "gvendi_after", "n_clusters", "cluster_sizes", "sparse_clusters",
}  # fmt: skip
ROW_KEYS = {
    "math": ["id", "problem", "solution", "answer", "source", "round", "cluster", "votes", "generator", "solver"],
    "nli": ["id", "premise", "hypothesis", "label", "source", "round", "cluster", "votes", "generator", "solver"],
}


def _config(tmp_path, server, task="math", **kwargs) -> SynthesisConfig:
    seeds = write_seed_subset(task, tmp_path / f"seeds_{task}.jsonl", 48)
    options = dict(
        task=task,
        out=str(tmp_path / f"run_{task}"),
        seeds_path=str(seeds),
        rounds=2,
        per_round=16,
        k_ratio=0.1,
        generator=EndpointConfig(backend="tgi", url=server.url, timeout=5, max_new_tokens=256),
        solver=EndpointConfig(backend="openai", url=server.url, timeout=5, temperature=0.75, max_new_tokens=256),
        show_progress=False,
    )
    options.update(kwargs)
    return SynthesisConfig(**options)


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in open(f"{run_dir}/requests.jsonl", encoding="utf-8")]


@pytest.mark.parametrize("task", ["math", "nli"])
def test_two_rounds_write_the_run_folder_contract(online_hub, loopback_server, tmp_path, task):
    server = loopback_server(mode="scripted", rate_429=0.05)
    result = synthesize(_config(tmp_path, server, task), featurizer=HashingFeaturizer())
    config, report, rows = load_run(result.run_dir)
    assert config["task"] == task and config["vote"] == ({"n": 3, "tau": 2} if task == "math" else {"n": 2, "tau": 2})
    assert report["complete"] is True and [r["round"] for r in report["rounds"]] == [1, 2]
    for r in report["rounds"]:
        assert ROUND_KEYS <= set(r)
        chain = [r[k] for k in ("generated", "parsed", "voted", "decontaminated", "deduplicated", "accepted")]
        assert chain == sorted(chain, reverse=True) and r["generated"] == 16
        assert r["solved"] >= r["voted"] and set(r["sparse_clusters"]) <= set(range(r["n_clusters"]))
    assert set(report["gvendi"]) == {"seed_pool", "final"} and report["gvendi"]["seed_pool"] > 1
    assert report["decontamination"] == {"benchmarks": [], "ngram": 10, "paraphrase_check": False, "removed": 0}
    assert all(list(row) == ROW_KEYS[task] for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    generated = [row for row in rows if row["source"] == "generated"]
    assert len(generated) == sum(r["accepted"] for r in report["rounds"]) > 0
    assert all(
        row["votes"] >= 2 and row["round"] in (1, 2) and row["generator"].startswith("tgi:") for row in generated
    )
    assert all(row["votes"] == 0 and row["round"] == 0 and row["generator"] is None for row in rows[:48])
    for name in ("report.md", "plots/funnel.png", "plots/gvendi.png", "plots/round_001_clusters.png"):
        assert (result.run_dir / name).stat().st_size > 0
    # every request id appears once in the record
    ids = [rec["id"] for rec in _records(result.run_dir)]
    assert len(ids) == len(set(ids))


def test_resume_replays_records_and_repeats_nothing(online_hub, loopback_server, tmp_path):
    server = loopback_server(mode="scripted")
    config = _config(tmp_path, server, rounds=1)
    first = synthesize(config, featurizer=HashingFeaturizer())
    served = server.stats["requests"] - server.stats["probes"]
    # throw away the round's outputs but keep the request record: the round is recomputed from the record
    for path in (first.run_dir / "rounds" / "round_001").iterdir():
        path.unlink()
    (first.run_dir / "dataset.jsonl").unlink()
    again = resume(first.run_dir, featurizer=HashingFeaturizer())
    assert server.stats["requests"] - server.stats["probes"] == served  # every answer came from requests.jsonl
    assert again.rows == first.rows


def test_faults_every_request_ends_succeeded_or_recorded_failed(online_hub, loopback_server, tmp_path):
    server = loopback_server(
        mode="scripted", seed=7, rate_429=0.1, rate_503=0.1, rate_timeout=0.05, retry_after=0, timeout_delay=1.0
    )
    generator = EndpointConfig(backend="tgi", url=server.url, timeout=0.5, max_retries=1, max_new_tokens=256)
    solver = EndpointConfig(backend="openai", url=server.url, timeout=0.5, max_retries=1, max_new_tokens=256)
    config = _config(tmp_path, server, rounds=1, per_round=24, generator=generator, solver=solver)
    result = synthesize(config, featurizer=HashingFeaturizer())
    records = _records(result.run_dir)
    assert all(rec["status"] in ("ok", "failed") for rec in records)
    assert all((rec["status"] == "ok") == (rec["text"] is not None) for rec in records)
    failed = [rec for rec in records if rec["status"] == "failed"]
    assert failed and all(rec["error"] and rec["attempts"] == 2 for rec in failed)
    (r,) = result.report["rounds"]
    assert r["requests"]["total"] == len(records) and r["requests"]["failed"] == len(failed)
    assert server.stats["429"] and server.stats["503"] and server.stats["timeout"]


def test_decontamination_ngram_and_paraphrase_check(online_hub, loopback_server, tmp_path):
    server = loopback_server(mode="scripted")
    first = synthesize(_config(tmp_path, server, rounds=1), featurizer=HashingFeaturizer())
    accepted = [row["problem"] for row in first.accepted]
    assert accepted
    # verbatim benchmark items: caught by the 10-gram filter
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"problem": p}) + "\n" for p in accepted))
    out = str(tmp_path / "ngram")
    second = synthesize(
        _config(tmp_path, server, rounds=1, out=out, decontamination={"benchmarks": [str(bench)]}),
        featurizer=HashingFeaturizer(),
    )
    assert second.report["decontamination"]["removed"] >= len(accepted)
    assert second.report["rounds"][0]["drop_reasons"]["benchmark_ngram_overlap"] >= len(accepted)
    assert not {row["problem"] for row in second.accepted} & set(accepted)

    # reworded items (a word inserted every 6 words breaks every 10-gram): only the paraphrase check catches them
    def reword(text):
        words = text.split()
        return " ".join(w + (" indeed" if i % 6 == 5 else "") for i, w in enumerate(words))

    bench.write_text("".join(json.dumps({"question": reword(p)}) + "\n" for p in accepted))
    config = _config(
        tmp_path,
        server,
        rounds=1,
        out=str(tmp_path / "paraphrase"),
        decontamination={"benchmarks": [str(bench)], "paraphrase_check": True, "ngram": 10},
    )
    third = synthesize(config, featurizer=HashingFeaturizer())
    reasons = third.report["rounds"][0]["drop_reasons"]
    assert reasons.get("paraphrase", 0) >= len(accepted) and "benchmark_ngram_overlap" not in reasons
    assert any(rec["stage"] == "paraphrase" for rec in _records(third.run_dir))
    assert not {row["problem"] for row in third.accepted} & set(accepted)


def test_unparsable_generations_are_counted(online_hub, loopback_server, tmp_path):
    server = loopback_server(mode="scripted", unparsable_rate=0.5)
    result = synthesize(_config(tmp_path, server, rounds=1, per_round=20), featurizer=HashingFeaturizer())
    (r,) = result.report["rounds"]
    assert r["drop_reasons"]["unparsable"] == r["generated"] - r["parsed"] > 0


def _shot_clusters(result, config) -> tuple[list[list[int]], set[int], dict]:
    """Round 1's clustering recomputed from its seed pool (checked against stats.json), the sparse clusters by the
    released code's rule (size strictly below the size at sorted index ⌊K/2⌋), and each generation prompt's shots
    as pool clusters."""
    import re

    import numpy as np

    from gvendi.synthesis.steps import cluster_pool
    from gvendi.synthesis.tasks import get_task

    pool = [json.loads(line) for line in open(result.run_dir / "rounds" / "round_000" / "pool.jsonl")]
    task = get_task(config.task)
    feats = HashingFeaturizer().featurize([task.prompt_completion(row) for row in pool])
    labels = cluster_pool(config, feats, 1, "kmeans", show_progress=False).labels
    stats = result.report["rounds"][0]
    sizes = np.bincount(labels, minlength=stats["n_clusters"])
    assert sizes.tolist() == stats["cluster_sizes"]  # the same k-means as the run's
    threshold = sorted(sizes)[len(sizes) // 2]
    sparse = {c for c, size in enumerate(sizes) if size < threshold} or set(range(len(sizes)))
    assert sparse == set(stats["sparse_clusters"])
    cluster_of = {row["problem"].strip(): int(label) for row, label in zip(pool, labels)}
    prompts = [rec["prompt"][0]["content"] for rec in _records(result.run_dir) if rec["stage"] == "generate"]
    shots = [[cluster_of[m] for m in re.findall(r"Example \d+:\n(.*?)\n\n", text, re.DOTALL)] for text in prompts]
    assert len(prompts) == 8 and all(len(group) == config.shots for group in shots)
    return shots, sparse, stats


def test_sparse_cluster_shot_policy(online_hub, loopback_server, tmp_path):
    """Every prompt's shots come from sparse clusters (the median rule), and from one sparse cluster first: the
    uniform policy on the same pool draws shots from dense clusters too."""
    server = loopback_server(mode="scripted")
    config = _config(tmp_path, server, rounds=1, shot_policy="sparse-cluster", k_ratio=0.15, shots=4)
    shots, sparse, stats = _shot_clusters(synthesize(config, featurizer=HashingFeaturizer()), config)
    sizes = stats["cluster_sizes"]
    assert sum(sizes[c] for c in sparse) >= config.shots  # enough sparse rows that no top-up reaches dense ones
    assert all(set(group) <= sparse for group in shots)
    # a prompt starts from one random sparse cluster: when that cluster holds enough rows, all shots are from it
    assert all(len(set(group)) == 1 for group in shots if max(sizes[c] for c in group) >= config.shots)
    assert len({c for group in shots for c in group}) > 1  # different prompts draw different sparse clusters

    uniform = _config(tmp_path, server, rounds=1, out=str(tmp_path / "uniform"), k_ratio=0.15, shots=4)
    uniform_shots, _, _ = _shot_clusters(synthesize(uniform, featurizer=HashingFeaturizer()), uniform)
    assert any(not set(group) <= sparse for group in uniform_shots)


def test_different_config_refuses_to_resume(online_hub, loopback_server, tmp_path, capsys):
    server = loopback_server(mode="scripted")
    config = _config(tmp_path, server, rounds=1)
    synthesize(config, featurizer=HashingFeaturizer())
    config.seed, config.per_round = 5, 30
    with pytest.raises(ValueError, match=r"different configuration(.|\n)*per_round(.|\n)*seed: run folder has 0"):
        synthesize(config, featurizer=HashingFeaturizer())
    assert cli_main(["synthesize", "--resume", config.out, "--vote-tau", "3"]) == 2
    assert "vote.tau: run folder has 2, new config has 3" in capsys.readouterr().err


def test_unreachable_endpoint_fails_fast(online_hub, tmp_path, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = SynthesisConfig(out=str(tmp_path / "run"), generator=EndpointConfig(backend="tgi", url=url))
    start = time.monotonic()
    with pytest.raises(EndpointUnreachableError, match=rf"{url}/: tried a 1-token request 3 time\(s\) \(connect"):
        synthesize(config, featurizer=HashingFeaturizer())
    assert time.monotonic() - start < 10
    assert cli_main(["synthesize", "--generator", url, "--backend", "openai", "--out", str(tmp_path / "r2")]) == 3
    assert f"{url}/v1/chat/completions" in capsys.readouterr().err


def test_malformed_seeds_file_names_the_line(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"premise": "A b.", "hypothesis": "C d.", "label": "neutral"}\n{"premise": "x", "hypothesis"\n')
    code = cli_main(["synthesize", "--task", "nli", "--seeds", str(seeds), "--out", str(tmp_path / "run")])
    assert code == 2 and "seeds.jsonl, line 2: not valid JSON" in capsys.readouterr().err


def test_a_finished_run_can_be_extended_with_more_rounds(online_hub, loopback_server, tmp_path):
    server = loopback_server(mode="scripted")
    two = synthesize(_config(tmp_path, server, rounds=2, out=str(tmp_path / "two")), featurizer=HashingFeaturizer())
    one = synthesize(_config(tmp_path, server, rounds=1, out=str(tmp_path / "grow")), featurizer=HashingFeaturizer())
    assert one.report["complete"] and len(one.report["rounds"]) == 1
    grown = resume(one.run_dir, rounds=2, featurizer=HashingFeaturizer())
    assert grown.rows == two.rows and grown.report["rounds"] == two.report["rounds"]


def test_vanilla_strategy_uniform_shots_and_no_sparse_filter(online_hub, loopback_server, tmp_path):
    """vanilla: each prompt's shots are the uniform draw of its seeded generator, and every candidate that survives
    the vote, decontamination and deduplication is kept, dense clusters included; prismatic on the same seeds keeps
    only sparse-cluster candidates, so the two runs differ."""
    import re

    import numpy as np

    from gvendi.utils import stable_seed

    server = loopback_server(mode="scripted")
    vanilla = _config(tmp_path, server, rounds=2, strategy="vanilla", k_ratio=0.15, out=str(tmp_path / "vanilla"))
    result = synthesize(vanilla, featurizer=HashingFeaturizer())
    assert json.loads((result.run_dir / "config.json").read_text())["strategy"] == "vanilla"
    pools = {
        r: [json.loads(line) for line in open(result.run_dir / "rounds" / f"round_{r - 1:03d}" / "pool.jsonl")]
        for r in (1, 2)
    }
    prompts = [rec for rec in _records(result.run_dir) if rec["stage"] == "generate"]
    assert len(prompts) == 16
    for rec in prompts:
        pool = pools[rec["round"]]
        shots = re.findall(r"Example \d+:\n(.*?)\n\n", rec["prompt"][0]["content"], re.DOTALL)
        draws = []
        for i in range(8):
            rng = np.random.default_rng(stable_seed(vanilla.seed, rec["round"], "shots", i))
            chosen = rng.permutation(rng.choice(len(pool), 5, replace=False))
            draws.append([pool[j]["problem"].strip() for j in chosen])
        assert [s.strip() for s in shots] in draws  # the uniform draw without replacement, shuffled
    for stats in result.report["rounds"]:
        assert "dense_cluster" not in stats["drop_reasons"]
        assert stats["accepted"] == stats["deduplicated"] - stats["drop_reasons"].get("featurize_failed", 0)
    # the round's pool file keeps each accepted row's nearest round-1 centroid: vanilla kept dense ones too
    assert any(c not in result.report["rounds"][0]["sparse_clusters"] for c in _round_clusters(result.run_dir, 1))

    prismatic = _config(tmp_path, server, rounds=2, k_ratio=0.15, out=str(tmp_path / "prismatic"))
    other = synthesize(prismatic, featurizer=HashingFeaturizer())
    assert json.loads((other.run_dir / "config.json").read_text())["strategy"] == "prismatic"
    assert sum(s["drop_reasons"].get("dense_cluster", 0) for s in other.report["rounds"]) > 0
    for r in (1, 2):
        assert set(_round_clusters(other.run_dir, r)) <= set(other.report["rounds"][r - 1]["sparse_clusters"])
    assert other.report["rounds"][0]["accepted"] < result.report["rounds"][0]["accepted"]
    assert {row["problem"] for row in other.accepted} != {row["problem"] for row in result.accepted}


def _round_clusters(run_dir, r: int) -> list[int]:
    """The clusters (of round ``r``'s k-means) that round ``r``'s accepted rows were assigned to."""
    rows = [json.loads(line) for line in open(run_dir / "rounds" / f"round_{r:03d}" / "pool.jsonl")]
    return [row["cluster"] for row in rows if row["source"] == "generated" and row["round"] == r]


def test_strategy_option_is_checked_and_recorded(tmp_path):
    from gvendi.synthesis.config import config_differences

    with pytest.raises(ValueError, match=r"strategy 'vanilla' draws shots uniformly, but shot_policy is 'sparse"):
        SynthesisConfig(strategy="vanilla", shot_policy="sparse-cluster")
    with pytest.raises(ValueError, match=r"strategy must be one of \('prismatic', 'vanilla'\); got 'greedy'"):
        SynthesisConfig(strategy="greedy")
    assert SynthesisConfig().strategy == "prismatic" and SynthesisConfig().to_dict()["strategy"] == "prismatic"
    old = {k: v for k, v in SynthesisConfig().to_dict().items() if k != "strategy"}  # a folder from before the option
    assert config_differences(old, SynthesisConfig().to_dict()) == []
    assert config_differences(old, SynthesisConfig(strategy="vanilla").to_dict()) == [
        "strategy: run folder has 'prismatic', new config has 'vanilla'"
    ]
    seeds = write_seed_subset("math", tmp_path / "seeds.jsonl", 4)
    code = cli_main(["synthesize", "--strategy", "vanilla", "--shot-policy", "sparse-cluster", "--seeds", str(seeds),
                     "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
