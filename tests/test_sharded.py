"""`gvendi featurize`: shards over processes give the 1-process result; a SIGKILLed run resumes to the same result."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from utils import tiny_qwen

from gvendi.cli import main
from gvendi.sharded import ShardPlan, merge_shards

ROWS, SHARD_ROWS = 48, 4


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def proxy_dir(tmp_path_factory):
    """A random tiny Qwen2 with a small BPE tokenizer (the bundled tiny proxy's recipe), saved as a local proxy."""
    from gvendi.data.build_tiny_proxy import save_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("proxy")
    tokenizer = train_tokenizer([f"w{i} " * 3 for i in range(60)] + ["user assistant"], vocab_size=400)
    tiny_qwen(len(tokenizer), hidden=32, layers=2, intermediate=64).save_pretrained(folder)
    save_tokenizer(tokenizer, folder, model_max_length=1024)
    return str(folder)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = lambda k: " ".join(f"w{int(i)}" for i in rng.integers(0, 60, size=k))  # noqa: E731
    rows = [{"prompt": words(rng.integers(3, 20)), "completion": words(rng.integers(2, 30))} for _ in range(ROWS)]
    path = tmp_path_factory.mktemp("data") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _args(data, out, proxy, *extra):
    return [
        "featurize",
        data,
        "--out",
        str(out),
        "--proxy",
        proxy,
        "--dim",
        "256",
        "--batch-size",
        "3",
        "--shard-rows",
        str(SHARD_ROWS),
        "--device",
        "cpu",
        "--quiet",
        "--json",
        *extra,
    ]


def _spawn(args):
    # one thread everywhere (this process too, see `single_thread`): the same arithmetic, hence bitwise-equal
    # features, and no OpenMP stalls on a loaded machine for a model this small
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GVENDI_DISABLE_PROGRESS_BAR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gvendi.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _json_objects(text):
    """Every JSON object printed in ``text`` (the ranks share one pipe, so their lines may interleave)."""
    decoder, objects, position = json.JSONDecoder(), [], text.find("{")
    while position != -1:
        obj, end = decoder.raw_decode(text, position)
        objects.append(obj)
        position = text.find("{", end)
    return objects


def _result(out):
    return np.load(out / "features.npy"), json.loads((out / "gvendi.json").read_text())


@pytest.fixture(scope="module")
def single(tmp_path_factory, data_file, proxy_dir):
    """The reference: one process (this one; subprocesses run with the same thread count)."""
    out = tmp_path_factory.mktemp("single")
    assert main(_args(data_file, out, proxy_dir)) == 0
    features, result = _result(out)
    assert result["gvendi"] > 3, "degenerate features: the proxy or its tokenizer did not load as saved"  # exact: 5.4
    return features, result


def test_two_processes_match_one(tmp_path, data_file, proxy_dir, single):
    out = tmp_path / "two"
    processes = [
        _spawn(_args(data_file, out, proxy_dir, "--rank", str(r), "--world-size", "2", "--wait", "120"))
        for r in (0, 1)
    ]
    outputs = [p.communicate(timeout=150) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    summaries = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert [s["shards_done"] for s in summaries] == [ROWS // SHARD_ROWS // 2] * 2  # each rank did half
    features, result = _result(out)
    np.testing.assert_array_equal(features, single[0])
    assert result["gvendi"] == single[1]["gvendi"] and result["num_samples"] == ROWS
    norms = np.linalg.norm(features, axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_torchrun_processes_match_one(tmp_path, data_file, proxy_dir, single):
    """Two CPU processes under torchrun: ranks come from accelerate's PartialState (gloo), barriers included."""
    out = tmp_path / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GVENDI_DISABLE_PROGRESS_BAR": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "gvendi.cli",
        *_args(data_file, out, proxy_dir),
    ]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert process.returncode == 0, process.stderr[-3000:]
    summaries = _json_objects(process.stdout)
    assert sorted((s["rank"], s["world_size"], s["shards_done"]) for s in summaries) == [(0, 2, 6), (1, 2, 6)]
    features, result = _result(out)
    np.testing.assert_array_equal(features, single[0])
    assert result["gvendi"] == single[1]["gvendi"]


def test_killed_run_resumes_shard_wise_to_the_same_result(tmp_path, data_file, proxy_dir, single):
    out = tmp_path / "killed"
    process = _spawn(_args(data_file, out, proxy_dir))
    deadline = time.monotonic() + 120
    markers = []
    while time.monotonic() < deadline and process.poll() is None:
        markers = list((out / "shards").glob("*.done")) if (out / "shards").is_dir() else []
        if markers:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    finished = len(list((out / "shards").glob("*.done")))
    if finished == ROWS // SHARD_ROWS:
        pytest.skip("the run finished before it could be killed (machine too fast for this check)")
    assert finished >= 1 and not (out / "features.npy").exists()

    with pytest.raises(ValueError, match="shards are not finished"):
        plan = json.loads((out / "run.json").read_text())
        merge_shards(
            out,
            ShardPlan(**{k: plan[k] for k in ("num_rows", "shard_rows", "dim", "fingerprint", "provenance", "data")}),
        )

    resumed = _spawn(_args(data_file, out, proxy_dir))
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["shards_skipped"] == finished and summary["shards_done"] == ROWS // SHARD_ROWS - finished
    features, result = _result(out)
    np.testing.assert_array_equal(features, single[0])
    assert result["gvendi"] == single[1]["gvendi"]


def test_rerun_with_other_settings_is_refused(tmp_path, data_file, proxy_dir):
    out = tmp_path / "run"
    assert main(_args(data_file, out, proxy_dir, "--limit", "8")) == 0
    assert main(_args(data_file, out, proxy_dir, "--limit", "8", "--seed", "1")) == 2  # a different featurization
    assert main(_args(data_file, out, proxy_dir, "--limit", "8", "--seed", "1", "--overwrite")) == 0
