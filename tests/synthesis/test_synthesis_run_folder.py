"""Issue 15: the run folder under concurrency, early kills, damage, moved servers and file-system errors.

Two runs of one folder are refused (``RUN_DIR/.lock``); ``config.json`` is written before anything slow, so a run
killed in its first seconds resumes; a damaged record, stats or pool file is named (and, where the round can be
redone from the request record, redone); a resume may point at a moved server without repeating ``--solver``; a
read-only folder or a full disk ends in one line and leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from synthesis_helpers import HashingFeaturizer, online_env, write_seed_subset

from gvendi.synthesis import (
    EndpointConfig,
    RunFolderError,
    RunFolderLockedError,
    RunStore,
    SynthesisConfig,
    load_run,
    synthesize,
)
from gvendi.synthesis.cli import main


def _config(tmp_path, url: str, **kwargs) -> SynthesisConfig:
    seeds = write_seed_subset("math", tmp_path / "seeds.jsonl", 24)
    options = dict(
        task="math",
        out=str(tmp_path / "run"),
        seeds_path=str(seeds),
        rounds=2,
        per_round=8,
        k_ratio=0.1,
        generator=EndpointConfig(backend="tgi", url=url, timeout=5, max_new_tokens=256),
        show_progress=False,
    )
    options.update(kwargs)
    return SynthesisConfig(**options)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sent(server) -> int:
    """Requests the server saw, reachability probes left out."""
    return server.stats["requests"] - server.stats["probes"]


def _rows(run_dir) -> list[dict]:
    return load_run(run_dir)[2]


# -- lock ---------------------------------------------------------------------------------------------------------
def test_second_run_of_a_locked_folder_is_refused(online_hub, loopback_server, tmp_path, capsys):
    server = loopback_server(mode="scripted")
    synthesize(_config(tmp_path, server.url, rounds=1), featurizer=HashingFeaturizer())
    holder = RunStore(tmp_path / "run")
    holder.lock()  # another process, as far as flock is concerned: a second open file description
    try:
        requests_before = server.stats["requests"]
        assert main(["synthesize", "--resume", str(tmp_path / "run"), "--rounds", "2", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"in use by another gvendi synthesize (pid {os.getpid()})" in err
        assert server.stats["requests"] == requests_before  # nothing was sent
        with pytest.raises(RunFolderLockedError):
            synthesize(_config(tmp_path, server.url), featurizer=HashingFeaturizer())
    finally:
        holder.unlock()
    result = synthesize(_config(tmp_path, server.url), featurizer=HashingFeaturizer())  # free again
    assert result.report["complete"]


# -- early kill, missing folder -------------------------------------------------------------------------------------
def test_config_is_written_before_the_endpoint_answers(tmp_path, capsys):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    args = ["synthesize", "--task", "math", "--seeds", str(write_seed_subset("math", tmp_path / "s.jsonl", 12))]
    args += ["--generator", url, "--out", str(tmp_path / "run"), "--no-progress", "--proxy", "tiny", "--dim", "16"]
    assert main(args) == 3
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["generator"]["url"] == url and saved["solver"]["url"] == url


def test_resume_of_a_missing_folder_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "run"
    assert main(["synthesize", "--resume", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_a_failed_start_can_be_rerun_with_another_backend(online_hub, loopback_server, tmp_path):
    server = loopback_server(mode="scripted")
    with pytest.raises(Exception, match="answered the 1-token probe"):
        synthesize(_config(tmp_path, server.url + "/nothing-here", rounds=1), featurizer=HashingFeaturizer())
    # nothing was produced, so the folder takes the corrected configuration
    result = synthesize(_config(tmp_path, server.url, rounds=1, per_round=4), featurizer=HashingFeaturizer())
    assert result.report["complete"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.5, 1.0, 2.0, "config"])
def test_sigkill_in_the_first_seconds_then_resume(loopback_server, tmp_path, kill_after):
    """Killed 0.5, 1 or 2 s after start, or the moment config.json appears (before the proxy loads)."""
    server = loopback_server(mode="scripted")
    seeds = write_seed_subset("math", tmp_path / "seeds.jsonl", 12)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "gvendi.synthesis.cli", "synthesize", "--task", "math", "--seeds", str(seeds),
        "--generator", server.url, "--rounds", "1", "--per-round", "4", "--proxy", "tiny", "--dim", "16",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    env = online_env()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_after == "config":
        deadline = time.monotonic() + 120
        while not (out / "config.json").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    resume = [sys.executable, "-m", "gvendi.synthesis.cli", "synthesize", "--resume", str(out), "--no-progress"]
    if (out / "config.json").exists():
        done = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    else:  # killed before the folder was started: --resume says so and leaves nothing behind
        refused = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and "no run to resume" in refused.stderr
        assert not out.exists() or not any(out.iterdir())
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert load_run(out)[1]["complete"]


# -- damaged files --------------------------------------------------------------------------------------------------
@pytest.fixture
def finished_run(online_hub, loopback_server, tmp_path):
    server = loopback_server(mode="scripted")
    config = _config(tmp_path, server.url)
    synthesize(config, featurizer=HashingFeaturizer())
    return server, config, _rows(config.out)


def test_non_utf8_record_line_is_skipped_and_named(finished_run, caplog):
    server, config, rows = finished_run
    path = os.path.join(config.out, "requests.jsonl")
    lines = open(path, "rb").read().splitlines(keepends=True)
    lines.insert(3, b"\x00\x00\x00{\xff\xfe garbage\n")  # parses as UTF-32-BE to json.loads(bytes)
    open(path, "wb").write(b"".join(lines))
    os.remove(os.path.join(config.out, "rounds", "round_002", "stats.json"))  # make the resume read the record
    before = _sent(server)
    result = synthesize(config, featurizer=HashingFeaturizer())
    assert result.rows == rows and _sent(server) == before  # nothing asked again
    assert f"{path} line 4 is unreadable" in caplog.text


@pytest.mark.parametrize("name", ["stats.json", "pool.jsonl"])
def test_truncated_round_file_is_named_and_the_round_redone(finished_run, caplog, name):
    server, config, rows = finished_run
    path = os.path.join(config.out, "rounds", "round_001", name)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2] + b"\x07")
    before = _sent(server)
    result = synthesize(config, featurizer=HashingFeaturizer())
    assert result.rows == rows and _sent(server) == before
    assert path in caplog.text and "damaged" in caplog.text and "redoing round 1" in caplog.text


def test_damaged_report_names_the_file(finished_run):
    _, config, _ = finished_run
    path = os.path.join(config.out, "report.json")
    open(path, "w").write('{"complete": tr')
    with pytest.raises(RunFolderError, match=r"report\.json is damaged"):
        load_run(config.out)


# -- the server moved -------------------------------------------------------------------------------------------------
def test_resume_after_the_server_moved_needs_only_the_new_generator(online_hub, loopback_server, tmp_path):
    from gvendi.synthesis.cli import _overrides, build_parser

    first = loopback_server(mode="scripted")
    synthesize(_config(tmp_path, first.url, rounds=1), featurizer=HashingFeaturizer())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["solver"]["url"] == first.url  # the solver was the generator's server
    first.stop()
    moved = loopback_server(mode="scripted")
    args = build_parser().parse_args(["synthesize", "--resume", str(tmp_path / "run"), "--generator", moved.url,
                                      "--rounds", "2"])  # fmt: skip
    data = {**_overrides(args, saved), "out": str(tmp_path / "run")}
    assert data["generator"]["url"] == moved.url and data["solver"]["url"] == moved.url
    result = synthesize(SynthesisConfig.from_dict(data), featurizer=HashingFeaturizer())
    assert result.report["complete"] and [r["round"] for r in result.report["rounds"]] == [1, 2]
    # a solver on a server of its own stays where it was unless --solver moves it too
    other = {**saved, "solver": {**saved["solver"], "url": "http://127.0.0.1:1"}}
    assert _overrides(args, other)["solver"]["url"] == "http://127.0.0.1:1"


# -- file-system errors ---------------------------------------------------------------------------------------------
def _tmp_files(root) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if ".tmp" in f]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line(finished_run, capsys):
    _, config, _ = finished_run
    for folder, _dirs, _files in os.walk(config.out):
        os.chmod(folder, 0o555)
    try:
        assert main(["synthesize", "--resume", config.out, "--no-progress"]) == 1
        line = capsys.readouterr().err.strip()
        assert line.startswith("gvendi synthesize: error: cannot") and "writable" in line and "\n" not in line
    finally:
        for folder, _dirs, _files in os.walk(config.out):
            os.chmod(folder, 0o755)


def test_read_only_folder_via_patched_open_is_one_line(finished_run, monkeypatch, capsys):
    import builtins

    _, config, _ = finished_run
    real_open = builtins.open

    def refuse(file, mode="r", *args, **kwargs):
        if str(file).startswith(config.out) and any(c in mode for c in "wa+"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)
    assert main(["synthesize", "--resume", config.out, "--no-progress"]) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("gvendi synthesize: error: cannot create the lock file") and "writable" in line


def test_full_disk_leaves_no_temporary_file_and_resumes(online_hub, loopback_server, tmp_path, monkeypatch, capsys):
    import gvendi.synthesis.store as store

    server = loopback_server(mode="scripted")
    config = _config(tmp_path, server.url)
    real_fsync = os.fsync
    calls = {"n": 0}

    def full(fd):
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", full)
    with pytest.raises(RunFolderError, match="No space left on device; free some disk space"):
        synthesize(config, featurizer=HashingFeaturizer())
    assert _tmp_files(config.out) == []
    monkeypatch.setattr(store.os, "fsync", real_fsync)  # space freed
    result = synthesize(config, featurizer=HashingFeaturizer())
    assert result.report["complete"] and _tmp_files(config.out) == []
