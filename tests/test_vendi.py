"""The Vendi Score core: sanity values, the reference dual form, streaming, merging, order q, bad input."""

import gc
import math
import weakref

import numpy as np
import pytest
import torch

from gvendi import VendiAccumulator, score
from gvendi.vendi import entropy_q


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_one_row_scores_one():
    assert score(np.random.default_rng(0).normal(size=(1, 16))).value == pytest.approx(1.0, abs=1e-6)


def test_identical_rows_score_one():
    row = np.random.default_rng(1).normal(size=(1, 32))
    assert score(np.repeat(row, 50, axis=0)).value == pytest.approx(1.0, abs=1e-6)


def test_orthonormal_rows_score_k():
    k = 64
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(k, k)))
    assert score(q).value == pytest.approx(k, abs=1e-6)


def test_matches_reference_dual_form():
    vendi = pytest.importorskip("vendi_score.vendi")
    x = _unit(np.random.default_rng(3).normal(size=(200, 24)))
    assert score(x).value == pytest.approx(vendi.score_dual(x), rel=1e-9)


def test_matches_kernel_form_for_every_order():
    """The k×k dual and the N×N kernel share eigenvalues; compare against an explicit kernel computation."""
    x = _unit(np.random.default_rng(4).normal(size=(40, 8)) + 0.5)
    eig = np.clip(np.linalg.eigvalsh(x @ x.T / len(x)), 0, None)
    for q in (0.5, 1.0, 2.0, float("inf")):
        expected = math.exp(entropy_q(eig / eig.sum(), q))
        assert score(x, q=q).value == pytest.approx(expected, rel=1e-8)
    assert score(x, q=float("inf")).value == pytest.approx(1 / eig.max(), rel=1e-8)


def test_rows_are_normalised_inside():
    x = np.random.default_rng(5).normal(size=(30, 6))
    scaled = x * np.random.default_rng(6).uniform(0.1, 10, size=(30, 1))
    assert score(scaled).value == pytest.approx(score(x).value, rel=1e-10)


def test_input_types_agree():
    import datasets

    x = np.random.default_rng(7).normal(size=(100, 12)).astype(np.float32)
    expected = score(x).value
    assert score(torch.from_numpy(x)).value == pytest.approx(expected, rel=1e-9)
    assert score(x.tolist()).value == pytest.approx(expected, rel=1e-9)
    assert score(iter([x[:33], x[33:70], x[70:]])).value == pytest.approx(expected, rel=1e-9)
    table = datasets.Dataset.from_dict({"f": x.tolist()})
    assert score(table["f"]).value == pytest.approx(expected, rel=1e-6)
    assert score(table.data.column("f")).value == pytest.approx(expected, rel=1e-6)


def test_streaming_generator_is_not_materialised():
    """Each batch is released before the next is pulled: when the stream yields a batch, at most the first (kept to
    size the accumulator) and the one just scored may still be alive, so a score that collected the stream first
    (``list(...)``, ``np.concatenate``) fails here; the value is that of the whole array."""
    rng = np.random.default_rng(8)
    data = [rng.normal(size=(500, 16)) for _ in range(20)]
    alive_when_pulled = []

    def batches():
        yielded = []
        for batch in data:
            gc.collect()
            alive_when_pulled.append(sum(ref() is not None for ref in yielded))
            copy = batch.copy()  # the stream's own array: only the consumer can keep it alive
            yielded.append(weakref.ref(copy))
            yield copy
            del copy

    result = score(batches())
    assert result.num_samples == 10_000
    assert result.value == pytest.approx(score(np.concatenate(data)).value, rel=1e-12)
    assert max(alive_when_pulled) <= 2, f"batches still alive when the next was pulled: {alive_when_pulled}"


def test_merge_is_exact_and_order_free():
    x = np.random.default_rng(9).normal(size=(300, 20))
    whole = VendiAccumulator(20).update(x)
    parts = [VendiAccumulator(20).update(x[i::3]) for i in range(3)]
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert merged.count == 300
    assert merged.score().value == pytest.approx(whole.score().value, rel=1e-12)
    restored = VendiAccumulator.from_state_dict(merged.state_dict())
    assert restored.score().value == pytest.approx(whole.score().value, rel=1e-12)


def test_rows_kept_until_dim_then_second_moment():
    """Below ``dim`` rows the accumulator keeps the rows and scores their N×N Gram matrix; the values, merges and
    checkpoints are those of the k×k state, and crossing ``dim`` rows switches to it."""
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(90, 64))
    small = VendiAccumulator(64).update(rows[:20]).update(rows[20:40])
    dense = VendiAccumulator(64)
    _ = dense.second_moment  # forces the k×k state from the start
    dense.update(rows[:40])
    assert small._moment is None and dense._moment is not None
    assert small.score().value == pytest.approx(dense.score().value, rel=1e-10)
    assert small.score(q=2.0).value == pytest.approx(dense.score(q=2.0).value, rel=1e-10)
    assert torch.allclose(small.state_dict()["second_moment"], dense.state_dict()["second_moment"], atol=1e-12)
    assert small._moment is None  # a checkpoint does not change the state's form
    other = VendiAccumulator(64).update(rows[40:60])
    small.merge(other)  # 60 rows: still kept
    assert small._moment is None and small.count == 60 and other.count == 20
    small.merge(VendiAccumulator(64).update(rows[60:]))  # 90 > 64 rows: the k×k state from here on
    assert small._moment is not None and small.count == 90
    assert small.score().value == pytest.approx(score(rows).value, rel=1e-10)
    raw = torch.ones(2, 64, dtype=torch.float64)
    kept = VendiAccumulator(64, normalize=False).update(raw)
    raw.zero_()
    assert kept.score().value == pytest.approx(1.0)  # the kept rows do not alias the caller's tensor


def test_unit_rows_while_kept():
    """``unit_rows`` hands out the kept rows, unit-normalised, in arrival order, and ``None`` once the k×k state took
    over (the Trainer callback ships small windows between ranks this way)."""
    rows = np.random.default_rng(5).normal(size=(10, 8))
    acc = VendiAccumulator(8)
    assert acc.unit_rows().shape == (0, 8)
    acc.update(rows[:3]).update(rows[3:6])
    expected = rows[:6] / np.linalg.norm(rows[:6], axis=1, keepdims=True)
    assert np.allclose(acc.unit_rows().numpy(), expected, atol=1e-15)
    acc.update(rows[6:])  # 10 > 8 rows
    assert acc.unit_rows() is None


def test_result_carries_provenance():
    result = score(np.eye(3), provenance={"proxy": "tiny", "seed": 0})
    assert float(result) == pytest.approx(3.0)
    assert result.to_dict()["proxy"] == "tiny" and result.to_dict()["num_samples"] == 3


@pytest.mark.parametrize(
    "features, message",
    [
        (np.zeros((0, 4)), "0 rows"),
        ([], "0 rows"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), "row 0 contains NaN"),
        (np.array([[1.0, 0.0], [0.0, np.inf]]), "row 1 contains NaN or inf"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "row 1 is all zeros"),
        ([[1.0, 0.0], [1.0, 0.0, 0.0]], "mixed dims"),
    ],
)
def test_bad_features_are_named(features, message):
    with pytest.raises(ValueError, match=message):
        score(features)


def test_mixed_dims_across_batches_name_rows():
    with pytest.raises(ValueError, match=r"rows 2\.\.3 have dim 3"):
        score(iter([np.ones((2, 2)), np.ones((2, 3))]))


@pytest.mark.parametrize("dim", [0, -1, 1.5, True])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match="dim must be an integer"):
        VendiAccumulator(dim)


@pytest.mark.parametrize("q", [0, -1.0, "one"])
def test_bad_order(q):
    with pytest.raises(ValueError, match="q must be"):
        score(np.eye(2), q=q)


def _mpmath_vendi(x: np.ndarray, q: float) -> float:
    """The order-q Vendi Score from float64 eigenvalues, with the entropy taken in 50-digit arithmetic."""
    import mpmath

    mpmath.mp.dps = 50
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(x.T @ x / len(x)), 0, None)
    p = [mpmath.mpf(float(v)) for v in lam if v > 1e-12 * lam.max()]
    total = sum(p)
    p = [v / total for v in p]
    if q == 1:
        return float(mpmath.exp(-sum(v * mpmath.log(v) for v in p)))
    qq = mpmath.mpf(q)
    return float(mpmath.exp(mpmath.log(sum(v**qq for v in p)) / (1 - qq)))


def _skewed(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((64, 64)) * np.linspace(1, 8, 64)


@pytest.mark.parametrize("q", [1000.0, 200.0, 1 + 1e-13, 1 + 1e-7, 1 - 1e-9, 0.3, 3.0])
def test_order_q_in_log_space_matches_mpmath(q):
    # issue 15: q=1000 underflowed Σλ^q to 0 and returned the maximum; q just above 1 lost digits to cancellation
    x = _skewed()
    assert score(x, q=q).value == pytest.approx(_mpmath_vendi(x, q), rel=1e-7)


def test_large_order_approaches_one_over_lambda_max():
    x = _skewed()
    assert score(x, q=1e6).value == pytest.approx(score(x, q=float("inf")).value, rel=1e-4)
    assert score(x, q=1000).value < score(x, q=2).value < score(x, q=1).value


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300])
def test_huge_and_tiny_rows_normalise_safely(scale):
    x = _skewed()
    assert score(x * scale).value == pytest.approx(score(x).value, rel=1e-9)


@pytest.mark.parametrize("q", [True, "2", None, float("nan"), -1.0, 0])
def test_order_is_checked_before_anything(q):
    with pytest.raises(ValueError, match="q must be"):
        score(np.eye(3), q=q)
