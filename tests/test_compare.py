"""Comparing sets: a set compared with itself adds nothing; a set in new directions adds them and owns them."""

import numpy as np
import pytest

import gvendi


def _sets(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(120, 16)) * np.r_[np.ones(8), np.zeros(8)]  # directions 0-7
    b = rng.normal(size=(60, 16)) * np.r_[np.zeros(8), np.ones(8)]  # directions 8-15
    return a, b


def test_a_set_compared_with_itself_adds_nothing():
    a, _ = _sets()
    result = gvendi.compare([a, a], ["a", "a again"], n_boot=40)
    own = gvendi.score(a).value
    assert result.union["gvendi"] == pytest.approx(own, abs=1e-9)
    for record in result.sets:
        assert record["adds"] == pytest.approx(0.0, abs=1e-9)
        assert record["adds_ci"] == pytest.approx((0.0, 0.0), abs=1e-9)
        assert record["direction_share"] == pytest.approx(0.5, abs=1e-9)
        assert record["gvendi"] == pytest.approx(own, abs=1e-12)


def test_new_directions_add_and_are_owned():
    a, b = _sets()
    result = gvendi.compare([a, b], ["a", "b"], n_boot=60)
    by_name = {r["name"]: r for r in result.sets}
    union = result.union["gvendi"]
    assert union > by_name["a"]["gvendi"] + 4 and by_name["b"]["adds"] == pytest.approx(union - gvendi.score(a).value)
    assert by_name["b"]["adds_ci"][0] > 0, "B's directions are new to A: the whole interval is above 0"
    assert by_name["a"]["direction_share"] + by_name["b"]["direction_share"] == pytest.approx(1.0)
    assert by_name["b"]["direction_share"] > 0.3
    low, high = result.union["gvendi_ci"]
    assert low < high and result.to_dict()["n_boot"] == 60


def test_compare_errors():
    a, _ = _sets()
    with pytest.raises(ValueError, match="different dims"):
        gvendi.compare([a, a[:, :8]])
    with pytest.raises(ValueError, match="one name per set"):
        gvendi.compare([a, a], ["only one"])
