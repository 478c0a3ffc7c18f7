"""Bootstrap intervals from k×k states: they cover the population G-Vendi at the stated rate."""

import numpy as np
import pytest

import gvendi
from gvendi.bootstrap import BootstrapAccumulator, default_blocks


def _population(seed: int = 0):
    """Six fixed unit directions in 4 dimensions with unequal probabilities: Σ = Σ_m p_m v_m v_mᵀ is exact."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(6, 4))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    probabilities = np.array([0.35, 0.25, 0.15, 0.1, 0.1, 0.05])
    sigma = (directions.T * probabilities) @ directions
    eigenvalues = np.clip(np.linalg.eigvalsh(sigma), 1e-300, None)
    true_value = float(np.exp(-(eigenvalues * np.log(eigenvalues)).sum()))
    return directions, probabilities, true_value


@pytest.mark.parametrize("rows, isotropic", [(150, False), (600, False), (400, True)])
def test_interval_covers_the_population_value_at_the_stated_rate(rows, isotropic):
    """150 rows: every row its own block; 400 or 600: 200 random blocks. The isotropic population (its value is the
    maximum, 4) is where the sample value is most biased low."""
    directions, probabilities, true_value = _population()
    if isotropic:
        directions, probabilities, true_value = np.eye(4), np.full(4, 0.25), 4.0
    rng = np.random.default_rng(rows)
    trials, level, covered = 150, 0.9, 0
    for trial in range(trials):
        x = directions[rng.choice(len(probabilities), size=rows, p=probabilities)]
        result = gvendi.score(x, ci=level, n_boot=150, seed=trial)
        low, high = result.ci
        covered += low <= true_value <= high
    rate = covered / trials
    assert 0.82 <= rate <= 0.97, rate  # binomial sd at 150 trials ≈ 0.025


def test_interval_fields_and_reproducibility():
    x = np.random.default_rng(0).normal(size=(300, 8))
    a, b = gvendi.score(x, ci=0.95, n_boot=50, seed=1), gvendi.score(x, ci=0.95, n_boot=50, seed=1)
    assert a.ci == b.ci and a.value == gvendi.score(x).value
    record = a.to_dict()
    assert record["ci_low"] < record["ci_high"] and record["ci_level"] == 0.95 and record["n_boot"] == 50
    assert "ci_low" not in gvendi.score(x).to_dict()
    wider = gvendi.score(x[:60], ci=0.95, n_boot=50, seed=1)
    assert wider.ci[1] - wider.ci[0] > a.ci[1] - a.ci[0]


def test_blocks_hold_the_whole_moment():
    x = np.random.default_rng(3).normal(size=(500, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    import torch

    acc = BootstrapAccumulator(6, n_blocks=20, seed=0)
    for start in range(0, 500, 70):
        acc.update(torch.from_numpy(x[start : start + 70]))
    assert not acc.exact and acc._counts.sum() == 500
    np.testing.assert_allclose(acc._moments.sum(0).numpy(), x.T @ x, atol=1e-10)
    assert default_blocks(1024) == 32 and default_blocks(8) == 200


@pytest.mark.parametrize(
    "kwargs, message", [({"ci": 1.5}, "confidence level in"), ({"ci": 0.9, "n_boot": 3}, "n_boot")]
)
def test_bad_interval_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gvendi.score(np.eye(3), **kwargs)


def test_the_evaluate_measurement_reports_the_interval():
    from gvendi.measurement import Gvendi

    rows = np.random.default_rng(0).normal(size=(40, 6)).tolist()
    result = Gvendi()._compute(features=rows, ci=0.9, n_boot=30)
    assert result["ci_level"] == 0.9 and result["ci_low"] < result["ci_high"] and result["n_boot"] == 30
