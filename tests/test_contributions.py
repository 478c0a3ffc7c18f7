"""Per-example scores: the secular-equation leave-one-out equals brute-force re-scoring, in every regime."""

import numpy as np
import pytest

import gvendi
from gvendi.per_example import _secular_shifts, _spectrum


def _brute(x):
    return np.array([gvendi.score(np.delete(x, i, axis=0)).value for i in range(len(x))])


def _cases():
    rng = np.random.default_rng(0)
    return {
        "more rows than dims": rng.normal(size=(60, 16)),
        "fewer rows than dims (rank drops)": rng.normal(size=(10, 32)),
        "orthonormal rows (all eigenvalues tied)": np.eye(5),
        "exact duplicates (tied eigenvalues)": np.vstack([np.eye(6)[:3]] * 3 + [rng.normal(size=(4, 6))]),
        "anisotropic spectrum": rng.normal(size=(80, 12)) * np.geomspace(1, 1e-3, 12),
        "wide": rng.normal(size=(40, 256)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_leave_one_out_matches_brute_force_rescoring(name):
    x = _cases()[name]
    np.testing.assert_allclose(gvendi.leave_one_out(x), _brute(x), rtol=0, atol=1e-9)


def test_secular_roots_are_the_downdated_spectrum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lam, vectors = _spectrum(x)
    z = x[7] @ vectors
    shifts = _secular_shifts(lam, z**2)
    expected = np.linalg.eigvalsh(np.diag(lam) - np.outer(z, z))[::-1]
    np.testing.assert_allclose(lam - shifts, expected, atol=1e-13)


def test_contributions_flag_duplicates_and_rare_rows():
    rng = np.random.default_rng(2)
    common = rng.normal(size=(1, 8))
    x = np.vstack([common + 0.01 * rng.normal(size=(30, 8)), rng.normal(size=(5, 8))])
    result = gvendi.contributions(x, n_clusters=2)
    assert result.contribution[30:].min() > result.contribution[:30].max()  # the scattered rows add the most
    assert result.rarity[30:].mean() > result.rarity[:30].mean() or result.cluster_size.min() < 30
    np.testing.assert_allclose(result.contribution, result.gvendi - _brute(x), atol=1e-9)
    first_order = gvendi.leave_one_out(x, exact=False)
    assert np.corrcoef(first_order, result.leave_one_out)[0, 1] > 0.9
    columns = result.to_columns()
    assert set(columns) >= {"gvendi_contribution", "gvendi_rarity"} and len(columns["gvendi_cluster"]) == 35


def test_leave_one_out_subset_and_errors():
    x = _cases()["more rows than dims"]
    np.testing.assert_allclose(gvendi.leave_one_out(x, indices=[3, 5]), _brute(x)[[3, 5]], atol=1e-9)
    with pytest.raises(ValueError, match="at least 2 rows"):
        gvendi.leave_one_out(x[:1])
    with pytest.raises(ValueError, match="indices must lie in"):
        gvendi.leave_one_out(x, indices=[60])
