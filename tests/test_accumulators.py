"""The named accumulator set and the exact cross-rank reduce (gvendi/accumulators.py, gvendi/distributed.py).

The distributed tests start a real gloo process group of 2 CPU processes (torch.multiprocessing.spawn, a file
rendezvous in tmp_path) and compare every reduced state with one process that saw the union of the ranks' rows."""

import os

import numpy as np
import pytest
import torch

import gvendi
from gvendi.accumulators import AccumulatorSet
from gvendi.bootstrap import BootstrapAccumulator
from gvendi.distributed import rank, reduce_accumulators, reduce_bootstrap, world_size
from gvendi.vendi import VendiAccumulator


def _rows(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _score(rows) -> float:
    return gvendi.score(np.asarray(rows)).value


# named set semantics --------------------------------------------------------------------------------------------
def test_window_epoch_cumulative_and_stages():
    x = _rows(30, 8, 0)
    acc = AccumulatorSet(8)
    assert acc.add(x[:10], stages=["a"] * 5 + ["b"] * 5) == 10
    assert acc.value("cumulative") is None  # pending rows are not counted before a sync
    acc.sync()
    assert acc.window_stages == {"a", "b"} and acc.names() == ["window", "cumulative", "epoch", "stage/a", "stage/b"]
    assert (
        acc.value("window")
        == acc.value("cumulative")
        == acc.value("epoch")
        == pytest.approx(_score(x[:10]), rel=1e-12)
    )
    assert acc.value("stage/a") == pytest.approx(_score(x[:5]), rel=1e-12)
    acc.reset("window")
    assert acc.value("window") is None and acc.window_stages == set()
    acc.add(x[10:20])  # no stage: counted everywhere but in the stages
    acc.sync()
    assert acc.window_stages == {""} and "stage/" not in acc.names()
    assert acc.value("window") == pytest.approx(_score(x[10:20]), rel=1e-12)
    assert acc.value("epoch") == pytest.approx(_score(x[:20]), rel=1e-12)
    acc.reset("epoch")
    acc.add(x[20:], stages=["a"] * 10)
    acc.sync()
    assert acc.value("epoch") == pytest.approx(_score(x[20:]), rel=1e-12)
    assert acc.value("window") == pytest.approx(_score(x[10:]), rel=1e-12)  # the window spans two syncs
    assert acc.value("cumulative") == pytest.approx(_score(x), rel=1e-12)
    assert acc.value("stage/a") == pytest.approx(_score(np.concatenate([x[:5], x[20:]])), rel=1e-12)
    assert acc["stage/b"].count == 5 and acc.cumulative.count == 30
    with pytest.raises(KeyError, match="stage/c"):
        acc["stage/c"]
    with pytest.raises(ValueError, match="can be reset"):
        acc.reset("cumulative")


def test_rows_without_direction_are_skipped_and_counted():
    acc = AccumulatorSet(4)
    rows = np.eye(4)
    rows[1] = 0.0
    rows[2, 0] = np.nan
    assert acc.add(rows, stages=list("wxyz")) == 2
    acc.sync()
    assert acc.skipped == 2 and acc.cumulative.count == 2 and set(acc.stages) == {"w", "z"}
    with pytest.raises(ValueError, match="one stage per row"):
        acc.add(np.eye(4), stages=["a"])


def test_identical_states_are_scored_once():
    acc = AccumulatorSet(6)
    acc.add(_rows(5, 6, 1))
    acc.sync()
    calls = []
    original = VendiAccumulator.score

    def counted(self, q=1.0):
        calls.append(self)
        return original(self, q)

    VendiAccumulator.score = counted
    try:
        values = {acc.value(name) for name in ("window", "cumulative", "epoch")}
    finally:
        VendiAccumulator.score = original
    assert len(values) == 1 and len(calls) == 1


def test_constructor_errors():
    with pytest.raises(ValueError, match="dim must be"):
        AccumulatorSet(0)
    with pytest.raises(ValueError, match="confidence level"):
        AccumulatorSet(4, ci=95)
    with pytest.raises(ValueError, match="n_boot"):
        AccumulatorSet(4, ci=0.9, n_boot=2)
    with pytest.raises(ValueError, match="q must be"):
        AccumulatorSet(4, q=0)


# the bootstrap interval ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, dim", [(150, 16), (900, 8)])
def test_interval_is_the_one_score_gives(n, dim):
    """150 rows of dim 16: every row its own bootstrap block (equal bit for bit); 900 rows of dim 8: 200 blocks,
    each row assigned as score() assigns it (equal up to the order of float64 sums)."""
    x = _rows(n, dim, 2)
    expected = gvendi.score(x, ci=0.9, n_boot=60, seed=3)
    acc = AccumulatorSet(dim, ci=0.9, n_boot=60, seed=3)
    for start in range(0, n, 7):
        acc.add(x[start : start + 7])
        if start % 140 == 0:
            acc.sync()
    acc.sync()
    assert acc.bootstrap.exact == (n <= 200)
    assert acc.value("cumulative") == pytest.approx(expected.value, rel=1e-12)
    assert acc.interval() == pytest.approx(expected.ci, rel=1e-12)


def test_interval_brackets_the_estimate_when_the_sample_is_large():
    """With many rows per dimension the resamples' downward shift is small next to their spread, so the basic
    interval holds the estimate (with few rows per dimension it can lie wholly above it: see gvendi.bootstrap)."""
    acc = AccumulatorSet(4, ci=0.95, n_boot=200)
    acc.add(_rows(2000, 4, 4) * [3.0, 2.0, 1.0, 0.5])
    acc.sync()
    low, high = acc.interval()
    assert low < acc.value("cumulative") < high


# checkpoints --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_first", [60, 400])
def test_state_dict_round_trip_continues_bit_for_bit(tmp_path, n_first):
    """Saved after a sync (through torch.save / weights_only load) and restored, the set goes on exactly as the
    original: the same values, the same stages, the bootstrap's generator at the same position."""
    x = _rows(n_first + 300, 8, 5)
    stages = ["a" if i % 3 else "b" for i in range(len(x))]
    original = AccumulatorSet(8, ci=0.9, n_boot=30)
    original.add(x[:n_first], stages[:n_first])
    original.sync()
    original.reset("window")
    torch.save(original.state_dict(), tmp_path / "state.pt")
    restored = AccumulatorSet(8, ci=0.9, n_boot=30)
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    for acc in (original, restored):
        acc.add(x[n_first:], stages[n_first:])
        acc.sync()
    for name in original.names():
        assert restored.value(name) == pytest.approx(original.value(name), rel=1e-13), name
    assert restored.interval() == original.interval()
    assert restored.window_stages == original.window_stages and restored.syncs == original.syncs
    mine, theirs = restored.bootstrap.state_dict(), original.bootstrap.state_dict()
    for key in ("rows", "moments", "counts"):
        assert (mine[key] is None and theirs[key] is None) or torch.equal(mine[key], theirs[key]), key
    assert mine["rng"] == theirs["rng"]
    with pytest.raises(ValueError, match="dim 8"):
        AccumulatorSet(4).load_state_dict(original.state_dict())
    original.add(x[:2])
    with pytest.raises(RuntimeError, match="sync"):
        original.state_dict()


def test_a_state_without_bootstrap_gives_no_interval():
    plain = AccumulatorSet(4)
    plain.add(np.eye(4))
    plain.sync()
    acc = AccumulatorSet(4, ci=0.9)
    acc.load_state_dict(plain.state_dict())
    acc.add(np.eye(4))
    acc.sync()
    assert acc.bootstrap is None and acc.interval() is None and acc.cumulative.count == 8


# the cross-rank reduce -----------------------------------------------------------------------------------------------
def test_without_a_process_group_the_reduce_is_the_identity():
    assert world_size() == 1 and rank() == 0
    local = {"a": VendiAccumulator(4).update(np.eye(4))}
    assert reduce_accumulators(local, 4) == local
    boot = BootstrapAccumulator(4).update(torch.eye(4, dtype=torch.float64))
    assert reduce_bootstrap(boot) is boot


DIM = 6


def _rank_rows(r: int) -> dict[str, np.ndarray]:
    """Rank r's rows per name: 'small' (2 + r rows: travels as rows), 'large' (5 + 4r, with the other rank over
    DIM rows in all: travels as moments), 'only0' (rank 0 only), 'empty' (nobody has rows but rank 1 names it)."""
    rows = {"small": _rows(2 + r, DIM, 10 + r), "large": _rows(5 + 4 * r, DIM, 20 + r)}
    if r == 0:
        rows["only0"] = _rows(2, DIM, 30)
    return rows


def _boot_rows(r: int, n: int) -> torch.Tensor:
    x = torch.from_numpy(_rows(n, DIM, 40 + r))
    return x / x.norm(dim=1, keepdim=True)


def _worker(r: int, store: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    try:
        local = {name: VendiAccumulator(DIM).update(x) for name, x in _rank_rows(r).items()}
        if r == 1:
            local["empty"] = VendiAccumulator(DIM)
        merged = reduce_accumulators(local, DIM)
        result = {
            "names": sorted(merged),
            "rows_kept": {name: acc.unit_rows() is not None for name, acc in merged.items()},
            "states": {name: acc.state_dict() for name, acc in merged.items()},
        }
        for label, n in (("boot_rows", 3), ("boot_blocks", 30)):
            boot = BootstrapAccumulator(DIM, n_blocks=4, exact_rows=10, seed=r)
            boot.update(_boot_rows(r, n + r))
            before = boot.state_dict()
            reduced = reduce_bootstrap(boot)
            result[label] = {"before": before, "after": reduced.state_dict(), "exact": reduced.exact}
        # the set, synced twice across the ranks (ranks with different stages and counts)
        acc = AccumulatorSet(DIM, ci=0.9, n_boot=20)
        for sync, n in enumerate((2 + r, 9 + 3 * r)):
            x = _rows(n, DIM, 100 * sync + r)
            acc.add(x, stages=(["s0"] * n if r == 0 else ["s1"] * n))
            acc.sync()
        result["set"] = {name: acc.value(name) for name in acc.names()}
        result["set_interval"] = acc.interval()
        result["set_state"] = acc.state_dict()
        torch.save(result, out.format(rank=r))
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ranks")
    out = str(folder / "rank{rank}.pt")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.multiprocessing.spawn(_worker, args=(str(folder / "store"), out), nprocs=2, join=True)
    return [torch.load(out.format(rank=r), weights_only=True) for r in (0, 1)]


def test_reduce_equals_one_process_over_the_union(two_ranks):
    zero, one = two_ranks
    assert zero["names"] == one["names"] == ["empty", "large", "only0", "small"]
    assert zero["rows_kept"] == {"small": True, "only0": True, "large": False, "empty": True}
    for name in zero["names"]:
        union = [x for r in (0, 1) for key, x in _rank_rows(r).items() if key == name]
        expected = VendiAccumulator(DIM)
        for x in union:
            expected.update(x)
        for result in two_ranks:  # identical on both ranks
            state = result["states"][name]
            assert state["count"] == expected.count
            torch.testing.assert_close(
                state["second_moment"], expected.state_dict()["second_moment"], rtol=0, atol=1e-13
            )
        if expected.count:
            reduced = VendiAccumulator.from_state_dict(zero["states"][name])
            assert reduced.score().value == pytest.approx(expected.score().value, rel=1e-12)


def test_bootstrap_reduce_is_exact(two_ranks):
    """Rows kept on every rank: the union of the rows in rank order. Pooled: the block sums and counts of the two
    ranks added block by block."""
    zero, one = two_ranks
    rows = zero["boot_rows"]
    assert rows["exact"] and one["boot_rows"]["after"]["rows"].shape == (3 + 4, DIM)
    expected = torch.cat([zero["boot_rows"]["before"]["rows"], one["boot_rows"]["before"]["rows"]])
    for result in two_ranks:
        assert torch.equal(result["boot_rows"]["after"]["rows"], expected)
    blocks = [result["boot_blocks"] for result in two_ranks]
    assert not blocks[0]["exact"]
    summed = blocks[0]["before"]["moments"] + blocks[1]["before"]["moments"]
    counts = blocks[0]["before"]["counts"] + blocks[1]["before"]["counts"]
    for block in blocks:
        torch.testing.assert_close(block["after"]["moments"], summed, rtol=0, atol=1e-13)
        assert torch.equal(block["after"]["counts"], counts) and block["after"]["count"] == 30 + 31


def test_set_synced_across_ranks_equals_one_process(two_ranks):
    """Two syncs, the ranks on different stages: every value equals one process fed the same rows per sync (rank
    0's rows, then rank 1's; the second sync's stages are past DIM rows and travel as moments), and so does the
    interval (the bootstrap rows arrive in the same order)."""
    single = AccumulatorSet(DIM, ci=0.9, n_boot=20)
    for sync in range(2):
        for r in (0, 1):
            n = (2 + r, 9 + 3 * r)[sync]
            single.add(_rows(n, DIM, 100 * sync + r), stages=["s0"] * n if r == 0 else ["s1"] * n)
        single.sync()
    for result in two_ranks:
        assert result["set"].keys() == {name: None for name in single.names()}.keys()
        for name, value in result["set"].items():
            assert value == pytest.approx(single.value(name), rel=1e-12), name
        assert result["set_state"]["bootstrap"]["count"] == single.bootstrap.count
    assert two_ranks[0]["set_interval"] == two_ranks[1]["set_interval"]
    assert two_ranks[0]["set_interval"] == pytest.approx(single.interval(), rel=1e-12)
    first = AccumulatorSet(DIM, ci=0.9, n_boot=20)
    first.load_state_dict(two_ranks[0]["set_state"])
    assert first.interval() == two_ranks[0]["set_interval"]  # the state carries everything the interval needs
