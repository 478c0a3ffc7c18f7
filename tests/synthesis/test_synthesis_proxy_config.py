"""A run's featurizer settings are GVendiConfig's: ``proxy.fold`` (and every other featurizer field) reaches
``synthesize`` from a config file or a flag, is recorded in ``config.json``, is what the featurizer uses, fails before
any request when bad, and a run folder written before the field existed still resumes."""

from __future__ import annotations

import dataclasses
import json
import os
import socket

import numpy as np
from synthesis_helpers import write_seed_subset

from gvendi import GradientFeaturizer
from gvendi.config import GVendiConfig
from gvendi.synthesis import ProxyConfig, RunStore, load_run
from gvendi.synthesis.cli import _overrides, build_parser, main
from gvendi.synthesis.config import config_differences, proxy_field_names
from gvendi.synthesis.store import content_hash
from gvendi.synthesis.tasks import get_task

TINY = os.environ.get("GVENDI_SYNTHESIS_TEST_PROXY", "tiny")
DIM = 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_proxy_fields_are_gvendi_config_fields():
    """Every GVendiConfig field but the run's own (batch size, device) and the task's (columns) is a proxy field,
    with GVendiConfig's default (the proxy: the bundled one) and help."""
    names = [f.name for f in dataclasses.fields(GVendiConfig)]
    run_or_task = {"batch_size", "device", "prompt_column", "completion_column", "messages_column", "output_column"}
    assert proxy_field_names() == [name for name in names if name not in run_or_task]
    assert [f.name for f in dataclasses.fields(ProxyConfig)] == ["name", *proxy_field_names()[1:]]
    defaults = ProxyConfig()
    assert defaults.name == "tiny" and defaults.fold == 128 and defaults.truncation == "truncate"
    assert dataclasses.fields(ProxyConfig)[3].metadata["help"] == GVendiConfig.help("fold")
    assert ProxyConfig(name=TINY, fold=64, max_length=48).gvendi_config(batch_size=2) == GVendiConfig(
        proxy=TINY, fold=64, max_length=48, batch_size=2
    )


def test_a_bad_fold_fails_before_any_request(tmp_path, capsys):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens: reaching a request would exit 3
    base = ["synthesize", "--task", "nli", "--generator", url, "--no-progress"]
    assert main([*base, "--fold", "0", "--out", str(tmp_path / "flag")]) == 2
    assert "proxy.fold must be an integer ≥ 1 (got 0)" in capsys.readouterr().err
    config = tmp_path / "bad.yaml"
    config.write_text("proxy:\n  fold: 64\n  projection: sketch\n")
    assert main([*base, "--config", str(config), "--out", str(tmp_path / "file")]) == 2
    assert "proxy.fold applies to projection='factored' only (got fold=64" in capsys.readouterr().err
    assert not (tmp_path / "flag").exists() and not (tmp_path / "file").exists()


def test_fold_from_a_config_file_is_recorded_and_used(tmp_path, capsys):
    seeds = write_seed_subset("nli", tmp_path / "seeds.jsonl", 12)
    config = tmp_path / "run.yaml"
    config.write_text(f"proxy:\n  name: {TINY}\n  dim: {DIM}\n  fold: 8\n")
    # a flag overrides the file
    args = build_parser().parse_args(["synthesize", "--config", str(config), "--fold", "4"])
    assert _overrides(args, {"proxy": {"name": TINY, "fold": 8}})["proxy"] == {"name": TINY, "fold": 4}

    out = tmp_path / "run"
    args = ["synthesize", "--task", "nli", "--seeds", str(seeds), "--generator", f"local:{TINY}", "--rounds", "1"]
    args += ["--per-round", "2", "--max-new-tokens", "16", "--solver-max-new-tokens", "8", "--config", str(config)]
    args += ["--out", str(out), "--no-progress", "--allow-empty-rounds"]  # tiny model: may not parse
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["proxy"]["fold"] == 8 and saved["proxy"]["dim"] == DIM

    # the run's feature cache holds the fold-8 features of each seed, under the fold-8 featurizer's fingerprint
    task, rows = get_task("nli"), [json.loads(line) for line in seeds.read_text().splitlines()]
    pairs = [task.prompt_completion(row) for row in rows]
    fold8 = GradientFeaturizer(TINY, dim=DIM, fold=8, show_progress=False)
    fold128 = GradientFeaturizer(TINY, dim=DIM, show_progress=False)
    assert fold8.fingerprint != fold128.fingerprint

    def keys(featurizer):
        return [content_hash([featurizer.fingerprint, p["prompt"], p["completion"]])[:32] for p in pairs]

    store = RunStore(out, create=False)
    cached = store.cached_features(keys(fold8))
    assert len(cached) == len(rows) and not store.cached_features(keys(fold128))
    expected = fold8.featurize(pairs)
    np.testing.assert_allclose(np.stack([cached[key] for key in keys(fold8)]), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected - fold128.featurize(pairs)).max() > 1e-3  # the fold changes the features


def test_a_run_folder_written_before_the_later_proxy_fields_resumes(tmp_path, capsys):
    """A config.json whose ``proxy`` has only name/revision/projection/dim/seed (as gvendi wrote it before) resumes:
    the fields it lacks ran with their defaults."""
    seeds = write_seed_subset("nli", tmp_path / "seeds.jsonl", 12)
    out = tmp_path / "run"
    args = ["synthesize", "--task", "nli", "--seeds", str(seeds), "--generator", f"local:{TINY}", "--rounds", "1"]
    args += ["--per-round", "2", "--max-new-tokens", "16", "--solver-max-new-tokens", "8", "--proxy", TINY]
    args += ["--dim", str(DIM), "--out", str(out), "--no-progress", "--allow-empty-rounds"]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    old = {**saved, "proxy": {key: saved["proxy"][key] for key in ("name", "revision", "projection", "dim", "seed")}}
    assert config_differences(old, saved) == []
    assert config_differences(old, {**saved, "proxy": {**saved["proxy"], "fold": 64}}) == [
        "proxy.fold: run folder has 128, new config has 64"
    ]
    (out / "config.json").write_text(json.dumps(old))
    assert main(["synthesize", "--resume", str(out), "--rounds", "2", "--no-progress", "--allow-empty-rounds"]) == 0
    resumed, report, _ = load_run(out)
    assert resumed["proxy"]["fold"] == 128 and [r["round"] for r in report["rounds"]] == [1, 2]
