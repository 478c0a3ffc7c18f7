"""One switch for every progress bar, environment variables honoured, plain lines off a terminal."""

import io

import numpy as np
import pytest

from gvendi import utils


@pytest.fixture
def bars_follow_the_environment(monkeypatch):
    monkeypatch.setattr(utils, "_PROGRESS_DISABLED", None)
    monkeypatch.delenv("GVENDI_DISABLE_PROGRESS_BAR", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", ["GVENDI_DISABLE_PROGRESS_BAR", "TQDM_DISABLE"])
def test_either_environment_variable_silences_gvendi_bars(bars_follow_the_environment, variable):
    assert not utils.progress_bars_disabled()
    bars_follow_the_environment.setenv(variable, "1")
    assert utils.progress_bars_disabled()
    stream = io.StringIO()
    for _ in utils.progress_bar(range(3), file=stream):
        pass
    assert stream.getvalue() == ""


def test_disable_progress_bars_silences_the_libraries_too(bars_follow_the_environment):
    import datasets
    import huggingface_hub.utils as hub
    import transformers.utils.logging as tf

    try:
        utils.disable_progress_bars()
        assert not tf.is_progress_bar_enabled() and not datasets.is_progress_bar_enabled()
        assert hub.are_progress_bars_disabled()
        utils.enable_progress_bars()
        assert tf.is_progress_bar_enabled() and datasets.is_progress_bar_enabled()
    finally:
        utils.disable_progress_bars()


def test_off_a_terminal_bars_print_whole_lines(bars_follow_the_environment):
    bars_follow_the_environment.setattr(utils, "LINE_INTERVAL_S", 0.0)  # a line at every update
    stream = io.StringIO()  # not a TTY, like a log file
    bar = utils.progress_bar(total=4, desc="work", file=stream)
    for _ in range(4):
        bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[0].startswith("work:") and "4/4" in lines[-1]
    assert sum("4/4" in line for line in lines) == 1  # the final count once, not repeated by close()


def test_kmeans_bar_ends_full_when_it_converges_early(bars_follow_the_environment):
    from gvendi import spherical_kmeans

    bars_follow_the_environment.setattr(utils, "LINE_INTERVAL_S", 0.0)
    captured = io.StringIO()
    real = utils.progress_bar
    bars_follow_the_environment.setattr(
        "gvendi.cluster.progress_bar", lambda *a, **k: real(*a, **{**k, "file": captured})
    )
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(20, 8)) + 6 * np.eye(8)[i] for i in range(2)]).astype(np.float32)
    spherical_kmeans(x, n_clusters=2, n_iter=20, seed=0, show_progress=True)
    last = captured.getvalue().splitlines()[-1]
    assert "20/20" in last and "converged" in last


def test_sparse_clusters_takes_a_kmeans_result():
    from gvendi import KMeansResult, sparse_clusters

    km = KMeansResult(
        centroids=np.eye(3, dtype=np.float32), labels=np.array([0, 0, 0, 1, 2]), sizes=np.array([3, 1, 1])
    )
    assert sparse_clusters(km).tolist() == sparse_clusters(km.sizes).tolist()
    with pytest.raises(ValueError, match="KMeansResult or a non-empty 1-D array"):
        sparse_clusters([])
