"""The pieces of the correlation evidence (issue 18): baseline measures on hand-computed inputs, Spearman ρ and its
bootstrap on known data, the set-family builder, and `gvendi demo --evidence` from the bundled summary."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gvendi.evidence import EVIDENCE_PATH, evidence_table, load_evidence
from gvendi.measures import bootstrap_spearman, distinct_n, self_similarity, spearman
from gvendi.report import text_diversity

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


# baseline measures ---------------------------------------------------------------------------------------------
def test_distinct_n_on_hand_counted_texts():
    texts = ["The cat sat", "the cat ran"]
    assert distinct_n(texts, 1) == 4 / 6  # the, cat, sat, ran of 6 words (case folded)
    assert distinct_n(texts, 2) == 3 / 4  # (the cat) twice, (cat sat), (cat ran)
    assert distinct_n(texts, 3) == 1.0  # two different trigrams
    assert distinct_n(texts, 4) == 0.0  # no text has 4 words
    assert distinct_n(["a a a a"], 1) == 0.25
    assert text_diversity(texts)["distinct_2"] == distinct_n(texts, 2)  # the report reads the same measure


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_distinct_n_rejects_bad_orders(n):
    with pytest.raises(ValueError, match="n must be an integer"):
        distinct_n(["a b"], n)


def test_self_similarity_on_hand_computed_embeddings():
    assert self_similarity(np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0)
    assert self_similarity(np.array([[2.0, 0.0], [5.0, 0.0], [1.0, 0.0]])) == pytest.approx(1.0)  # scale ignored
    # pairs (1,2): 0, (1,3): 1/√2, (2,3): 1/√2 → mean √2/3
    assert self_similarity(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])) == pytest.approx(math.sqrt(2) / 3)
    assert self_similarity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert self_similarity(x) == pytest.approx(cos[~np.eye(7, dtype=bool)].mean())  # the O(N²) definition


def test_self_similarity_rejects_zero_rows_and_single_rows():
    with pytest.raises(ValueError, match="row 2 is all zeros"):
        self_similarity(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="N ≥ 2"):
        self_similarity(np.array([[1.0, 0.0]]))


# Spearman ρ and its bootstrap ----------------------------------------------------------------------------------
def test_spearman_on_known_orders():
    assert spearman([1, 2, 3, 4, 5], [2, 4, 8, 16, 32]) == 1.0  # monotone, not linear
    assert spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == -1.0
    # ties get their mean rank: x ranks 1, 2.5, 2.5, 4; y ranks 1..4; Pearson of the ranks = 4.5 / √(4.5·5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant side has no ranking
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        spearman([1, float("nan")], [1, 2])


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.integers(0, 6, size=15).astype(float)  # many ties
        y = x + rng.normal(size=15)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_bootstrap_spearman_on_known_data():
    monotone = bootstrap_spearman(range(10), [v**3 for v in range(10)], n_boot=200, seed=3)
    assert monotone["rho"] == 1.0 and monotone["low"] == 1.0 and monotone["high"] == 1.0
    assert monotone["used"] <= 200  # resamples of one repeated item have no ρ and are skipped
    reversed_ = bootstrap_spearman(range(10), range(10, 0, -1), n_boot=200, seed=3)
    assert reversed_["low"] == reversed_["high"] == -1.0
    rng = np.random.default_rng(2)
    x = rng.normal(size=30)
    noisy = bootstrap_spearman(x, x + rng.normal(size=30), n_boot=500, seed=0)
    assert noisy["low"] < noisy["rho"] < noisy["high"]
    assert noisy == bootstrap_spearman(x, x + np.random.default_rng(2).normal(size=(2, 30))[1], n_boot=500, seed=0)
    assert noisy != bootstrap_spearman(x, x + np.random.default_rng(2).normal(size=(2, 30))[1], n_boot=500, seed=1)
    with pytest.raises(ValueError, match="level"):
        bootstrap_spearman(x, x, level=95)


# the set family ------------------------------------------------------------------------------------------------
def test_set_family_has_equal_sizes_and_never_touches_held_out_templates():
    from bench_correlation import MIXTURES, SIZE, build_set_family, split_templates

    from gvendi.data import load_math_sample

    by_template: dict[str, list[dict]] = {}
    for row in load_math_sample():
        by_template.setdefault(row["template"], []).append(row)
    train, held_out = split_templates(list(by_template), seed=0)
    assert len(held_out) == 3 and not set(train) & set(held_out) and set(train) | set(held_out) == set(by_template)
    family = build_set_family(by_template, train, seed=0)
    assert len(family) == sum(draws for _, draws in MIXTURES) >= 24
    for entry in family:
        rows = entry["rows"]
        assert len(rows) == SIZE
        assert len({r["id"] for r in rows}) == SIZE  # no row twice
        used = {r["template"] for r in rows}
        assert not used & set(held_out)
        assert len(used) == entry["templates"] == len(entry["mixture"])
        assert {t: sum(r["template"] == t for r in rows) for t in used} == entry["mixture"]
    assert sorted({e["templates"] for e in family}) == [1, 2, 3, 4, 6, 8, 12]
    again = build_set_family(by_template, train, seed=0)
    assert [[r["id"] for r in e["rows"]] for e in again] == [[r["id"] for r in e["rows"]] for e in family]
    with pytest.raises(ValueError, match="same total size"):
        build_set_family(by_template, train, seed=0, mixtures=[((48,), 1), ((20, 20), 1)])


# the bundled summary and the demo ------------------------------------------------------------------------------
def test_bundled_evidence_is_the_committed_benchmark_result():
    from bench_correlation import MEASURES, bundle

    results = json.loads((ROOT / "benchmarks" / "results" / "correlation.json").read_text())
    assert load_evidence() == bundle(results)
    assert [m["key"] for m in load_evidence()["measures"]][: len(MEASURES)] == list(MEASURES)
    # the docs page shows the plot the same run drew
    assert (ROOT / "docs" / "assets" / "correlation.png").read_bytes() == (
        ROOT / "benchmarks" / "results" / "correlation.png"
    ).read_bytes()


def test_demo_evidence_prints_every_measure_with_its_interval():
    run = subprocess.run(
        [sys.executable, "-m", "gvendi", "demo", "--evidence"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == evidence_table()
    for m in load_evidence()["measures"]:
        line = next(line for line in run.stdout.splitlines() if line.startswith(m["label"] + " "))
        assert f"{m['rho']:+.2f}" in line and f"[{m['low']:+.2f}, {m['high']:+.2f}]" in line
    as_json = subprocess.run(
        [sys.executable, "-m", "gvendi", "demo", "--evidence", "--json"], capture_output=True, text=True, timeout=120
    )
    assert json.loads(as_json.stdout) == json.loads(EVIDENCE_PATH.read_text())


def test_evidence_table_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench_correlation.py"):
        evidence_table(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"measures": []}')
    with pytest.raises(ValueError, match="'measures'"):
        evidence_table(broken)
