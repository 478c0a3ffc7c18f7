"""Diversity-aware selection: greedy beats random on planted duplicates, the lazy greedy is the plain greedy, quality
weights and gates, the cluster-balanced rule keeps small clusters."""

import numpy as np
import pytest

import gvendi
from gvendi.selection import SELECTION_METHODS


def planted_mixture(seed: int = 0, dim: int = 32):
    """40 distinct noisy directions plus 360 exact duplicates of 5 of them."""
    rng = np.random.default_rng(seed)
    distinct = rng.normal(size=(40, dim))
    distinct /= np.linalg.norm(distinct, axis=1, keepdims=True)
    duplicates = distinct[rng.integers(0, 5, 360)]
    x = np.vstack([distinct, duplicates])
    return x[rng.permutation(len(x))]


def test_greedy_beats_random_at_equal_k_on_planted_duplicates():
    x = planted_mixture()
    greedy = gvendi.select(x, 30, method="greedy")
    assert len(np.unique(x[greedy.indices], axis=0)) == 30, "greedy kept a duplicate while distinct rows were left"
    value = gvendi.score(x[greedy.indices]).value
    randoms = [gvendi.score(x[gvendi.select(x, 30, method="random", seed=s).indices]).value for s in range(10)]
    assert value > max(randoms) + 2, (value, randoms)
    for method in ("cluster-balanced", "k-center"):
        chosen = (
            gvendi.select(x, 30, method=method, n_clusters=10)
            if method != "k-center"
            else gvendi.select(x, 30, method=method)
        )
        assert gvendi.score(x[chosen.indices]).value > np.mean(randoms), method


def _surrogate_gains(x, chosen, alpha):
    """Each step's best available gain and the gain of the row actually chosen, by explicit inverses."""
    dim = x.shape[1]
    moment = np.zeros((dim, dim))
    best, taken = [], []
    for t, row in enumerate(chosen):
        inverse = np.linalg.inv(np.eye(dim) + alpha * moment)
        quad = alpha * np.einsum("ij,jk,ik->i", x, inverse, x)
        quad[list(chosen[:t])] = -np.inf
        best.append(quad.max())
        taken.append(quad[row])
        moment += np.outer(x[row], x[row])
    return np.array(best), np.array(taken)


@pytest.mark.parametrize("n, dim, k, block", [(120, 16, 40, 7), (90, 24, 30, 64), (60, 8, 60, 5)])
def test_lazy_blocked_greedy_is_the_plain_greedy(n, dim, k, block):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32).astype(np.float64)
    result = gvendi.select(x, k, block_size=block)
    assert len(set(result.indices.tolist())) == k
    best, taken = _surrogate_gains(x, result.indices.tolist(), dim / k)
    np.testing.assert_allclose(taken, best, atol=1e-6)  # every pick was a best one (float32 features)
    np.testing.assert_allclose(result.gains, np.log1p(taken), atol=1e-6)


def test_quality_gates_and_weights():
    x = planted_mixture(seed=1)
    quality = np.linspace(0.1, 1.0, len(x))
    for method in SELECTION_METHODS:
        kept = gvendi.select(
            x,
            20,
            method=method,
            quality=quality,
            min_quality=0.5,
            n_clusters=5 if method == "cluster-balanced" else None,
        ).indices
        assert (quality[kept] >= 0.5).all(), method
    # with identical rows, the weight alone decides: the greedy takes the best-quality copy first
    same = np.tile(np.eye(4)[:1], (10, 1))
    assert gvendi.select(same, 1, quality=np.arange(1, 11)).indices[0] == 9
    heavy = gvendi.select(x, 200, method="random", quality=quality, seed=0).indices
    assert quality[heavy].mean() > quality.mean() + 0.05


def test_cluster_balanced_keeps_every_small_cluster_whole():
    rng = np.random.default_rng(0)
    centres = np.eye(16)[:4]
    sizes = [200, 100, 6, 4]
    x = np.vstack([centres[c] + 0.05 * rng.normal(size=(s, 16)) for c, s in enumerate(sizes)])
    result = gvendi.select(x, 40, method="cluster-balanced", n_clusters=4)
    labels = np.repeat(np.arange(4), sizes)[result.indices]
    counts = np.bincount(labels, minlength=4)
    assert counts[2] == 6 and counts[3] == 4 and counts[0] == 15 and counts[1] == 15, counts
    assert set(labels[:10].tolist()) == {2, 3}, "the sparse clusters are drawn first"


def test_selection_is_seeded_and_orders_picks():
    x = planted_mixture(seed=2)
    for method in SELECTION_METHODS:
        a = gvendi.select(x, 25, method=method, seed=3, n_clusters=5 if method == "cluster-balanced" else None)
        b = gvendi.select(x, 25, method=method, seed=3, n_clusters=5 if method == "cluster-balanced" else None)
        assert a.indices.tolist() == b.indices.tolist() and len(set(a.indices.tolist())) == 25, method
        assert a.config["k"] == 25 and a.method == method


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must be an integer between 1"),
        ({"k": 1000}, "k must be an integer between 1"),
        ({"k": 5, "method": "best"}, "unknown method"),
        ({"k": 5, "min_quality": 0.2}, "min_quality needs a quality"),
        ({"k": 5, "quality": [1.0, 2.0]}, "quality has 2 values"),
        ({"k": 5, "quality": np.zeros(400)}, "weights must be > 0"),
        ({"k": 399, "quality": np.r_[np.ones(200), 0.1 * np.ones(200)], "min_quality": 0.5}, "below min_quality"),
    ],
)
def test_errors_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gvendi.select(planted_mixture(), **kwargs)
