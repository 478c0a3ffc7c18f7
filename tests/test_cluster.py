"""Spherical k-means: recovers separated clusters, exact argmax through the bf16 screen, seeded, and the sparse
rule."""

import numpy as np
import pytest
import torch

from gvendi import assign_clusters, sparse_clusters, spherical_kmeans
from gvendi.cluster import _nearest_exact


def _blobs(n_per=40, k=5, dim=32, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = np.concatenate([c + noise * rng.normal(size=(n_per, dim)) for c in centers])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


def _same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("init_sample", [None, 60])
def test_recovers_separated_clusters(init_sample):
    x, truth = _blobs()
    result = spherical_kmeans(x, 5, seed=0, device="cpu", init_sample=init_sample, show_progress=False)
    assert _same_partition(result.labels, truth)
    assert result.sizes.sum() == len(x) and (result.sizes > 0).all()
    np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(assign_clusters(x, result.centroids, device="cpu"), result.labels)


def test_seeded_and_deterministic():
    x = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    a = spherical_kmeans(x, 12, seed=3, device="cpu", show_progress=False)
    b = spherical_kmeans(x, 12, seed=3, device="cpu", show_progress=False)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_bf16_screen_gives_the_fp32_argmax():
    # near-random directions in high dimension: many rows have close runner-ups, exercising every refinement path
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(3000, 256)).astype(np.float32))
    c = torch.from_numpy(rng.normal(size=(300, 256)).astype(np.float32))
    x, c = x / x.norm(dim=1, keepdim=True), c / c.norm(dim=1, keepdim=True)
    exact_value, exact_index = (x @ c.T).max(dim=1)
    for candidates in (1, 2, 8):
        value, index = _nearest_exact(x, c, c.to(torch.bfloat16), candidates=candidates)
        gap = (x @ c.T).gather(1, index[:, None]).squeeze(1) - exact_value
        assert gap.abs().max() < 1e-5  # the chosen centroid is the fp32 best (up to fp32 round-off ties)
        torch.testing.assert_close(value, exact_value, atol=0.005, rtol=0)  # bf16 value where the winner was clear


def test_every_cluster_stays_non_empty_with_duplicates():
    x = np.repeat(np.eye(4, dtype=np.float32), [50, 1, 1, 1], axis=0)
    result = spherical_kmeans(x, 4, seed=0, device="cpu", show_progress=False)
    assert sorted(result.sizes.tolist()) == [1, 1, 1, 50]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 11}, "n_clusters"),
        ({"n_clusters": 4, "init_sample": 2}, "init_sample"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=message):
        spherical_kmeans(x, device="cpu", show_progress=False, **kwargs)


def test_sparse_clusters_median_rule():
    np.testing.assert_array_equal(sparse_clusters([5, 1, 3, 9, 2]), [1, 4])
    np.testing.assert_array_equal(sparse_clusters([4, 4, 4]), [0, 1, 2])  # none smaller than the median: all
