"""Unit tests: run-folder store, request ids, config round-trip, task parsing and voting, filters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gvendi.synthesis import (
    ExactDedupFilter,
    MathTask,
    NearDedupFilter,
    NGramDecontaminationFilter,
    NLITask,
    RunStore,
    SynthesisConfig,
    load_benchmark_texts,
    load_run,
    load_seed_file,
    request_id,
)
from gvendi.synthesis.config import config_differences
from gvendi.synthesis.tasks import extract_boxed, parse_label


# -- store --------------------------------------------------------------------------------------------------------
def test_request_id_is_deterministic_and_sensitive():
    base = dict(
        task="math", round=1, stage="solve", prompt=[{"role": "user", "content": "x"}], params={"t": 1}, seed=0
    )
    assert request_id(**base) == request_id(**base)
    for key, value in [("round", 2), ("stage", "generate"), ("params", {"t": 0.5}), ("seed", 1), ("prompt", "y")]:
        assert request_id(**{**base, key: value}) != request_id(**base)


def test_torn_last_line_is_cut_and_appends_continue(tmp_path):
    store = RunStore(tmp_path)
    store.open_records()
    store.append_record({"id": "a", "status": "ok", "text": "1"})
    store.append_record({"id": "b", "status": "failed", "error": "http 503"})
    store.close()
    with open(tmp_path / "requests.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "c", "status": "o')  # a crash mid-write
    store = RunStore(tmp_path)
    records = store.open_records()
    assert set(records) == {"a", "b"} and records["b"]["status"] == "failed"
    store.append_record({"id": "c", "status": "ok", "text": "3"})
    store.close()
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]


def test_records_leave_memory_once_on_disk(tmp_path):
    store = RunStore(tmp_path)
    records = store.open_records()
    for i in range(50):
        store.append_record({"id": f"r{i}", "status": "ok", "text": "é" * i})
    store.flush()
    assert not records._fresh and len(records) == 50
    assert records["r7"]["text"] == "é" * 7 and "r49" in records and "r50" not in records
    store.close()
    again = RunStore(tmp_path).open_records()
    assert sorted(again) == sorted(f"r{i}" for i in range(50)) and again["r49"]["text"] == "é" * 49


def test_feature_cache_roundtrip(tmp_path):
    store = RunStore(tmp_path)
    feats = np.eye(3, 4, dtype=np.float32)
    store.save_features(["k1", "k2", "k3"], feats)
    fresh = RunStore(tmp_path)
    cached = fresh.cached_features(["k2", "k9"])
    assert list(cached) == ["k2"] and np.array_equal(cached["k2"], feats[1])


def test_load_run_rejects_missing_and_incomplete(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="missing config.json, report.json"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "report.json").write_text(json.dumps({"complete": False}))
    with pytest.raises(ValueError, match="incomplete.*--resume"):
        load_run(tmp_path)


# -- config -------------------------------------------------------------------------------------------------------
def test_config_json_roundtrip_and_defaults():
    config = SynthesisConfig(task="nli", out="x", generator={"backend": "tgi", "url": "http://h:1"})
    again = SynthesisConfig.from_json(config.to_json())
    assert again.to_dict() == config.to_dict()
    assert config.vote == {"n": 2, "tau": 2} and SynthesisConfig().vote == {"n": 3, "tau": 2}
    data = config.to_dict()
    for key in ("task", "gvendi_version", "seed", "rounds", "per_round", "k_ratio", "sparse_ratio", "seeds_path"):
        assert key in data
    assert {"backend", "url", "model"} <= set(data["generator"]) and {"backend", "url", "model"} <= set(data["solver"])
    assert {"name", "revision", "projection", "dim", "seed"} <= set(data["proxy"])
    assert data["decontamination"] == {"benchmarks": [], "ngram": 10, "paraphrase_check": False}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "code"}, "task must be one of"),
        ({"vote": {"n": 2, "tau": 3}}, "tau ≤ n"),
        ({"k_ratio": 0}, "k_ratio"),
        ({"generator": {"backend": "tgi"}}, "needs a url"),
        ({"shot_policy": "hardest"}, "shot_policy"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynthesisConfig(**kwargs)


def test_config_differences_names_keys_and_ignores_operational_ones():
    a = SynthesisConfig(out="a").to_dict()
    b = SynthesisConfig(out="b", per_round=7, generator={"timeout": 3.0}).to_dict()
    diffs = config_differences(a, b)
    assert len(diffs) == 1 and diffs[0].startswith("per_round")


# -- tasks --------------------------------------------------------------------------------------------------------
def test_math_parse_generation_variants():
    task = MathTask()
    text = (
        "```\n### Problem 1\nA shop sells 4 pens for $3 each. What do 4 pens cost?\n**Solution:** 12\n\n"
        "**Problem 2:** Tom has 7 apples and eats 2 of them. How many are left?\n\n### Problem 3\nshort\n```"
    )
    problems = [p["problem"] for p in task.parse_generation(text, 3)]
    assert problems == [
        "A shop sells 4 pens for $3 each. What do 4 pens cost?",
        "Tom has 7 apples and eats 2 of them. How many are left?",
    ]
    assert task.parse_generation("1. First question here is long enough?\n2. Second question here is long too?", 2)
    assert task.parse_generation("I cannot help with that.", 2) == []
    assert len(task.parse_generation(text, 1)) == 1


def test_math_vote_uses_math_verify_and_tau():
    task = MathTask()
    responses = ["so \\boxed{1/2}", "hence \\boxed{0.5}", "\\boxed{\\frac{1}{2}}"]
    outcome = task.vote({"problem": "p"}, responses, tau=3)
    assert outcome.accepted and outcome.votes == 3 and outcome.fields["solution"] == "so \\boxed{1/2}"
    assert not task.vote({}, ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"], tau=2).accepted
    assert task.vote({}, ["\\boxed{1}", "\\boxed{2}", None], tau=1).reason == "tie"
    none = task.vote({}, ["no answer", None, "still none"], tau=2)
    assert not none.solved and none.reason == "no_answer"
    assert extract_boxed("a \\boxed{\\frac{3}{4}} b \\boxed{x^{2}}") == "x^{2}"


def test_nli_parse_and_vote():
    task = NLITask()
    text = "### Pair 1\nPremise: A man rides a horse.\nHypothesis: A person is riding.\n\n### Pair 2\nPremise: only"
    assert task.parse_generation(text, 2) == [{"premise": "A man rides a horse.", "hypothesis": "A person is riding."}]
    assert parse_label("thinking... Label: Contradiction") == "contradiction"
    assert parse_label("It is neutral.") == "neutral" and parse_label("entailment or neutral?") is None
    assert task.vote({}, ["Label: neutral", "Label: neutral"], tau=2).fields == {"label": "neutral"}
    assert task.vote({}, ["Label: neutral", "Label: entailment"], tau=2).reason == "below_tau"


def test_seed_file_errors_name_the_line(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text('{"problem": "What is 2+2?", "solution": "\\\\boxed{4}"}\n\n{"problem": "x", "solution": \n')
    with pytest.raises(ValueError, match=r"seeds\.jsonl, line 3: not valid JSON"):
        load_seed_file(path, MathTask())
    path.write_text('{"premise": "a b", "hypothesis": "c d", "label": "maybe"}\n')
    with pytest.raises(ValueError, match=r"line 1: label 'maybe'"):
        load_seed_file(path, NLITask())
    path.write_text('{"problem": "What is 2+2?", "solution": "four"}\n')
    with pytest.raises(ValueError, match=r"line 1: no 'answer' field"):
        load_seed_file(path, MathTask())


# -- filters ------------------------------------------------------------------------------------------------------
def _rows(*texts):
    return [{"problem": t} for t in texts]


def test_exact_and_near_dedup_count_reasons():
    pool = ["Ann has 3 red apples and 4 green apples in her basket today. How many apples?"]
    exact = ExactDedupFilter(pool, lambda r: r["problem"])
    kept = exact(_rows("ann has 3 red apples and 4 green apples in her basket today how many apples", "New one here."))
    assert [r["problem"] for r in kept] == ["New one here."] and exact.stats["dropped_exact_duplicate"] == 1
    near = NearDedupFilter(pool, lambda r: r["problem"], threshold=0.6)
    kept = near(
        _rows(
            "Ann has 3 red apples and 4 green apples in her basket today. How many apples are there?",
            "Bob drives 60 km at 30 km/h. How long does the trip take?",
            "Bob drives 60 km at 30 km/h. How long does the trip take in hours?",
        )
    )
    assert [r["problem"] for r in kept] == ["Bob drives 60 km at 30 km/h. How long does the trip take?"]
    assert near.stats["dropped_near_duplicate"] == 2 and all("_shingles" not in r for r in kept)


def test_ngram_decontamination_from_local_files(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": "one two three four five six seven eight nine ten eleven"}) + "\n")
    csv_bench = tmp_path / "b.csv"
    csv_bench.write_text("problem,answer\nshort one,1\n")
    texts = load_benchmark_texts([str(bench), str(csv_bench)], "math")
    step = NGramDecontaminationFilter(texts, lambda r: r["problem"], n=10)
    kept = step(_rows("zero one two three four five six seven eight nine ten!", "Short one", "entirely new text"))
    assert [r["problem"] for r in kept] == ["entirely new text"]
    assert step.stats["dropped_benchmark_ngram_overlap"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"foo": "bar"}) + "\n")
    with pytest.raises(ValueError, match="none of the text columns"):
        load_benchmark_texts([str(bad)], "math")


def test_api_key_env_must_exist(monkeypatch):
    from gvendi.synthesis import EndpointConfig, make_backend

    monkeypatch.delenv("GVENDI_TEST_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match="GVENDI_TEST_MISSING_KEY.*not set"):
        make_backend(EndpointConfig(backend="openai", url="http://127.0.0.1:1", api_key_env="GVENDI_TEST_MISSING_KEY"))
    monkeypatch.setenv("GVENDI_TEST_MISSING_KEY", "secret")
    backend = make_backend(
        EndpointConfig(backend="tgi", url="http://127.0.0.1:1", api_key_env="GVENDI_TEST_MISSING_KEY")
    )
    assert "secret" not in json.dumps(SynthesisConfig(generator=backend.endpoint).to_dict())


_P1 = "A shop sells 4 pens for $3 each. What do 4 pens cost?"
_P2 = "Tom has 7 apples and eats 2 of them. How many are left?"


@pytest.mark.parametrize(
    "text",
    [
        f"### Problem 1\n{_P1}\n\n### Problem 2\n{_P2}",  # the requested layout
        f"Example 6:\n{_P1}\n\nExample 7:\n{_P2}",  # the few-shot examples' own labels (issue 15: 0 of 16 parsed)
        f"Problem 1: {_P1}\nProblem 2: {_P2}",
        f"**Problem 1:**\n{_P1}\n\n**Problem 2:**\n{_P2}",
        f"## Problem 1\n{_P1}\n## Problem 2\n{_P2}",
        f"Question 1: {_P1}\nQuestion 2: {_P2}",
        f"1. {_P1}\n2. {_P2}",
        f"1) {_P1}\n2) {_P2}",
        f"**1.** {_P1}\n\n**2.** {_P2}",
        f"## 1.\n{_P1}\n\n## 2.\n{_P2}",
        f'["{_P1}", "{_P2}"]',
        f'```json\n[{{"problem": "{_P1}"}}, {{"problem": "{_P2}"}}]\n```',
        f'{{"problems": [{{"question": "{_P1}"}}, "{_P2}"]}}',
        f"Example 1:\nan echoed example problem\n\n### Problem 1\n{_P1}\n\n### Problem 2\n{_P2}",  # echo ignored
    ],
)
def test_math_parser_reads_every_common_layout(text):
    assert [p["problem"] for p in MathTask().parse_generation(text, 2)] == [_P1, _P2]


# -- the template-walk generator of the strategies benchmark ----------------------------------------------------------
def test_template_walk_responder_writes_variants_near_its_shots():
    """Each new problem is an instance of a shot's template or of a ring neighbour of it; the solver answers it with
    that template's worked solution."""
    import re
    from collections import Counter

    from synthesis_helpers import TESTS_DIR  # noqa: F401 - tests/ on sys.path
    from tgi_server import TemplateWalkResponder

    from gvendi.data import load_math_sample

    responder = TemplateWalkResponder(drift=0.25, unsure=0.0)
    shots = [row for row in load_math_sample() if row["template"] == "rectangle_area"][:5]
    ring = responder.ring
    at = ring.index("rectangle_area")
    allowed = {ring[at], ring[at - 1], ring[(at + 1) % len(ring)]}
    task = MathTask()
    seen: Counter[str] = Counter()
    for seed in range(40):
        prompt = task.generation_messages(shots, 2, np.random.default_rng(seed))[0]["content"]
        for candidate in task.parse_generation(responder(prompt, seed, 0.0), 2):
            template, solution = responder.known[candidate["problem"].strip()]
            seen[template] += 1
            answer = responder(task.solver_messages(candidate)[0]["content"], seed, 0.0)
            assert answer == solution and re.search(r"\\boxed\{", answer)
    assert set(seen) == allowed and seen["rectangle_area"] > 40  # mostly the shots' own template
