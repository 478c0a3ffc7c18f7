"""Issue 17: one command-line package. ``--config FILE`` works for every command (flags override it; unknown keys and
bad values fail with the key's name before any work, exit 2), flags come from `GVendiConfig`, one exit-code table,
and a command whose module cannot load says so."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import yaml

from gvendi.cli import COMMANDS, build_parser, main

RECORDS = [{"prompt": f"w{i} w{i + 1}", "completion": f"w{i + 2} w{(3 * i) % 30}"} for i in range(6)]


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


@pytest.fixture()
def nothing_loads(monkeypatch):
    """Fail the test if any data set or model is loaded."""
    import gvendi.featurizer
    import gvendi.io
    import gvendi.proxy

    def loaded(*_args, **_kwargs):
        raise AssertionError("work started before the config file was checked")

    for module, name in (
        (gvendi.io, "load_table"),
        (gvendi.proxy, "load_proxy"),
        (gvendi.featurizer, "load_tokenizer"),
    ):
        monkeypatch.setattr(module, name, loaded)


def _write(path, settings):
    path.write_text(yaml.safe_dump(settings) if path.suffix in (".yaml", ".yml") else json.dumps(settings))
    return path


def _commands(data, tmp_path):
    """argv of every command, minus the options a config file may supply."""
    return {
        "score": ["score", str(data)],
        "featurize": ["featurize", str(data), "--out", str(tmp_path / "feats")],
        "select": ["select", str(data), "--k", "2", "--out", str(tmp_path / "kept.jsonl")],
        "compare": ["compare", str(data)],
        "report": ["report", str(data), "--out", str(tmp_path / "r.md")],
        "demo": ["demo"],
        "push": ["push", str(tmp_path), "--repo-id", "me/x", "--license", "mit", "--dry-run", str(tmp_path / "d")],
        "synthesize": ["synthesize", "--out", str(tmp_path / "run")],
    }


def test_every_registered_command_is_covered_here(data, tmp_path):
    assert {name for names in COMMANDS.values() for name in names} == set(_commands(data, tmp_path))


@pytest.mark.parametrize(
    "command", ["score", "featurize", "select", "compare", "report", "demo", "push", "synthesize"]
)
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_an_unknown_key_in_the_file_fails_first_with_its_name(command, suffix, data, tmp_path, nothing_loads, capsys):
    config = _write(tmp_path / f"settings{suffix}", {"dimm": 8})
    code = main([*_commands(data, tmp_path)[command], "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "'dimm'" in err and "Traceback" not in err
    if command not in ("push", "synthesize"):  # they have no `dim` to suggest
        assert "did you mean 'dim'" in err


@pytest.mark.parametrize("command", ["score", "featurize", "select", "compare", "report"])
def test_a_bad_featurizer_value_in_the_file_names_the_key_and_the_fix(command, data, tmp_path, nothing_loads, capsys):
    config = _write(tmp_path / "settings.yaml", {"proxy": "tiny", "dim": -3})
    code = main([*_commands(data, tmp_path)[command], "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"dim (in {config}) must be an integer ≥ 1 (got -3); the paper uses dim: 1024." in err
    # the same value as a flag is named as the flag
    assert main([*_commands(data, tmp_path)[command], "--proxy", "tiny", "--dim", "-3"]) == 2
    assert "--dim must be an integer ≥ 1 (got -3); the paper uses --dim 1024." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "settings", "message"),
    [
        ("score", {"q": "many"}, "q must be float"),
        ("score", {"projection": "kronecker"}, "projection must be one of ['sketch', 'factored', 'dense']"),
        ("select", {"method": "best"}, "method must be one of"),
        ("push", {"task": "physics"}, "task must be one of ['math', 'nli']"),
        ("demo", {"json": "yes"}, "json must be true or false"),
        ("score", {"data": "other.jsonl"}, "['data'] are positional arguments"),
        ("synthesize", {"proxy": {"dim": -3}}, "proxy.dim must be an integer ≥ 1 (got -3)"),
        ("synthesize", {"proxy": {"projection": "kronecker"}}, "unknown proxy.projection 'kronecker'"),
    ],
)
def test_bad_values_in_the_file_fail_before_any_work(
    command, settings, message, data, tmp_path, nothing_loads, capsys
):
    config = _write(tmp_path / "settings.yaml", settings)
    code = main([*_commands(data, tmp_path)[command], "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_a_score_result_config_replays_through_the_file_and_flags_override_it(data, tmp_path, capsys):
    argv = [
        "score",
        str(data),
        "--proxy",
        "tiny",
        "--dim",
        "8",
        "--projection-seed",
        "2",
        "--batch-size",
        "2",
        "--json",
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["config"]["dim"] == 8 and first["config"]["seed"] == 2 and first["config"]["batch_size"] == 2
    config = _write(tmp_path / "replay.yaml", first["config"])
    assert main(["score", str(data), "--config", str(config), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["gvendi"] == first["gvendi"] and replayed["config"] == first["config"]
    assert replayed["proxy_digest"] == first["proxy_digest"]
    assert main(["score", str(data), "--config", str(config), "--dim", "4", "--json"]) == 0
    overridden = json.loads(capsys.readouterr().out)
    assert overridden["dim"] == 4 and overridden["config"]["seed"] == 2


def test_the_file_supplies_required_options_and_command_settings(tmp_path, capsys):
    features = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    np.save(tmp_path / "a.npy", features)
    np.save(tmp_path / "b.npy", features[:3])
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    settings = {"k": 3, "out": str(tmp_path / "kept.jsonl"), "features": str(tmp_path / "a.npy"), "json": True}
    assert main(["select", str(data), "--config", str(_write(tmp_path / "select.json", settings))]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["selected"]["num_samples"] == 3 and (tmp_path / "kept.jsonl").is_file()
    settings = {"names": "full,half", "no_ci": True, "json": True}
    config = _write(tmp_path / "compare.yaml", settings)
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--config", str(config)]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)["sets"]] == ["full", "half"]


def test_push_reads_its_settings_from_the_file(tmp_path, capsys):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_hub import make_run_folder

    run = make_run_folder(tmp_path)
    settings = {"repo_id": "me/PrismMath", "license": "cc-by-4.0", "dry_run": str(tmp_path / "dry")}
    assert main(["push", str(run), "--config", str(_write(tmp_path / "push.yaml", settings))]) == 0
    assert "dry run: wrote" in capsys.readouterr().out and (tmp_path / "dry" / "README.md").is_file()


def test_demo_reads_its_settings_from_the_file(tmp_path, capsys):
    config = _write(tmp_path / "demo.yaml", {"size": 8, "dim": 16, "json": True})
    assert main(["demo", "--config", str(config)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["templates"] for r in results] == [1, 2, 4, 8]


def test_featurizer_flags_are_generated_from_the_config_fields():
    from gvendi.config import GVendiConfig, field_names

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("score", "featurize", "select", "compare", "report"):
        options = commands[name]._option_string_actions
        for field in field_names():
            flag = GVendiConfig.flag(field)
            assert flag in options, (name, flag)
            assert options[flag].help == GVendiConfig.help(field)
    synthesize = commands["synthesize"]._option_string_actions
    assert synthesize["--projection-seed"].help == GVendiConfig.help("seed")
    assert synthesize["--seed"].help.startswith("root seed of every random choice")


def test_the_old_seed_spelling_still_works_with_a_note(data, capsys):
    assert main(["score", str(data), "--proxy", "tiny", "--dim", "8", "--seed", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seed"] == 2
    assert "--seed is deprecated" in captured.err and "use --projection-seed" in captured.err


def test_a_broken_command_reports_itself(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "gvendi.cli.not_a_module", ("broken",))
    assert "broken" in build_parser().format_help()
    assert main(["broken", "x"]) == 1
    err = capsys.readouterr().err
    assert "gvendi broken: error: this command could not be loaded" in err and "not_a_module" in err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValueError("bad"), 2),
        (TypeError("bad"), 2),
        (FileNotFoundError("x"), 2),
        (RuntimeError("x"), 1),
        (OSError("disk"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_one_exit_code_table(error, code, monkeypatch, capsys):
    from gvendi.cli import score

    def raises(args):
        raise error

    monkeypatch.setattr(score, "_run_demo", raises)
    assert main(["demo", "--size", "8"]) == code
    assert capsys.readouterr().err.startswith("gvendi demo: ")


def test_a_bug_keeps_its_traceback(monkeypatch):
    from gvendi.cli import score

    def raises(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(score, "_run_demo", raises)
    with pytest.raises(ZeroDivisionError):
        main(["demo", "--size", "8"])


def test_the_old_entry_points_still_run():
    import subprocess

    for module in ("gvendi", "gvendi.synthesis.cli", "gvendi.hub"):
        args = ["push", "--help"] if module == "gvendi.hub" else ["synthesize", "--help"]
        run = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and "usage: gvendi" in run.stdout, (module, run.stderr[-2000:])
