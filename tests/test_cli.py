"""The command line: `gvendi score` over every input kind, JSON output, and errors a person can act on."""

import json

import pytest

from gvendi.cli import main

RECORDS = [{"prompt": f"w{i} w{i + 1}", "completion": f"w{i + 2} w{(3 * i) % 30}"} for i in range(12)]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    import datasets

    folder = tmp_path_factory.mktemp("data")
    ds = datasets.Dataset.from_list(RECORDS)
    paths = {
        "jsonl": folder / "d.jsonl",
        "json": folder / "d.json",
        "parquet": folder / "d.parquet",
        "csv": folder / "d.csv",
        "saved": folder / "saved",
    }
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    paths["json"].write_text(json.dumps(RECORDS))
    ds.to_parquet(str(paths["parquet"]))
    ds.to_csv(str(paths["csv"]), index=False)
    ds.save_to_disk(str(paths["saved"]))
    return paths


def _score(args, capsys):
    code = main(["score", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_input_kind_gives_the_same_json(word_proxy_dir, data_files, capsys):
    values = {}
    for kind, path in data_files.items():
        code, out, err = _score([str(path), "--proxy", word_proxy_dir, "--dim", "32", "--json"], capsys)
        assert code == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["num_samples"] == len(RECORDS) and result["dim"] == 32
        values[kind] = result["gvendi"]
    assert max(values.values()) - min(values.values()) < 1e-4, values
    assert values["jsonl"] > 1.5, "features are degenerate (all examples alike)"


def test_limit_and_text_output(word_proxy_dir, data_files, capsys):
    code, out, _ = _score([str(data_files["jsonl"]), "--proxy", word_proxy_dir, "--dim", "16", "--limit", "5"], capsys)
    assert code == 0 and "G-Vendi:" in out and "N=5" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.jsonl"], "does not exist"),
        (["{data}", "--prompt-column", "question"], "missing column(s) ['question']"),
        (["data.txt"], "unsupported data file"),
        (["{data}", "--proxy", "nobody/uncached-model"], "--proxy tiny"),
        (["{data}", "--proxy", "/nonexistent/model"], "the proxy folder '/nonexistent/model' does not exist"),
        (["{data}", "--split", "test"], "a single file has no splits"),
        (["{empty}"], "is empty (0 rows)"),
        (["{malformed}"], "line 3: Expecting"),
    ],
)
def test_errors_are_one_clear_line(args, message, word_proxy_dir, data_files, capsys):
    empty, malformed = data_files["jsonl"].with_name("empty.jsonl"), data_files["jsonl"].with_name("bad.jsonl")
    empty.write_text("\n")
    malformed.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[1]) + "\n" + '{"prompt": "w1",\n')
    replace = {"{data}": data_files["jsonl"], "{empty}": empty, "{malformed}": malformed}
    args = [str(replace.get(a, a)) for a in args]
    if "--proxy" not in args:
        args += ["--proxy", word_proxy_dir]
    code, _, err = _score(args, capsys)
    assert code == 2  # a user error (bad data, path or proxy), as in every command
    assert message in err and "Traceback" not in err


def test_bad_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score", "x.jsonl", "--projection", "kronecker"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "score" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dim", "0"], "--dim must be an integer ≥ 1"),
        (["--limit", "0"], "--limit must be ≥ 1"),
        (["--q", "0"], "--q must be a number > 0"),
        (["--q", "nan"], "--q must be a number > 0"),
        (["--batch-size", "0"], "--batch-size must be an integer ≥ 1"),
        (["--max-length", "1"], "--max-length must be an integer ≥ 2"),
        (["--dtype", "float77"], "--dtype: unknown dtype 'float77'"),
        (["--device", "tpu9"], "--device: unknown device"),
        (["--prompt-column", " "], "--prompt-column is empty"),
    ],
)
@pytest.mark.parametrize("command", ["score", "featurize"])
def test_every_flag_is_checked_before_anything_loads(
    command, args, message, data_files, monkeypatch, capsys, tmp_path
):
    """A bad flag is a usage error (exit 2) reported before the data or any model loads."""
    import gvendi.io
    import gvendi.proxy

    def loaded(*_args, **_kwargs):
        raise AssertionError("something loaded before the flags were checked")

    for module, name in ((gvendi.io, "load_table"), (gvendi.proxy, "load_proxy"), (gvendi.proxy, "load_tokenizer")):
        monkeypatch.setattr(module, name, loaded)
    extra = ["--out", str(tmp_path / "out")] if command == "featurize" else []
    code = main([command, str(data_files["jsonl"]), "--proxy", "tiny", *extra, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_cuda_on_a_cpu_only_torch_is_one_clear_line(data_files, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["score", str(data_files["jsonl"]), "--proxy", "tiny", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "--device: device 'cuda'" in err and "use 'cpu'" in err and "Traceback" not in err


def test_row_numbers_count_from_one(word_proxy_dir, tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*RECORDS[:2], {"prompt": "w1", "completion": " "}]))
    code = main(["score", str(path), "--proxy", word_proxy_dir])
    assert code == 2 and "row 3: field 'completion' is empty" in capsys.readouterr().err


def _all_commands():
    from gvendi.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices


def test_every_command_has_quiet_and_every_flag_has_help():
    _, commands = _all_commands()
    assert {"score", "demo", "featurize", "synthesize", "push"} <= set(commands)
    for name, command in commands.items():
        options = command._option_string_actions
        assert "--quiet" in options and "--no-progress" in options, name
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"gvendi {name} {action.option_strings[0]} has no help"


def test_quiet_silences_gvendi_and_library_bars(monkeypatch, data_files, word_proxy_dir, capsys):
    import transformers.utils.logging as tf_logging

    from gvendi import utils

    monkeypatch.setattr(utils, "_PROGRESS_DISABLED", None)
    monkeypatch.delenv("GVENDI_DISABLE_PROGRESS_BAR", raising=False)
    try:
        code = main(["score", str(data_files["jsonl"]), "--proxy", word_proxy_dir, "--dim", "8", "--quiet"])
        assert code == 0
        assert utils.progress_bars_disabled() and not tf_logging.is_progress_bar_enabled()
        assert "%|" not in capsys.readouterr().err
    finally:
        utils.enable_progress_bars()
        utils.disable_progress_bars()  # as conftest set it (through the environment)
        monkeypatch.setattr(utils, "_PROGRESS_DISABLED", None)


def test_push_usage_shows_the_license_as_required(capsys):
    parser, commands = _all_commands()
    usage = commands["push"].format_usage()
    assert "--license ID" in usage and "[--license ID]" not in usage


def test_version_and_python_m_gvendi_without_torch():
    import subprocess
    import sys

    code = "import sys, runpy; sys.argv = ['gvendi', '--version']\n"
    code += "try:\n    runpy.run_module('gvendi', run_name='__main__')\n"
    code += "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["gvendi", "0.1.0", "0", "False"]
    help_run = subprocess.run([sys.executable, "-m", "gvendi", "--help"], capture_output=True, text=True, timeout=300)
    assert help_run.returncode == 0 and "score" in help_run.stdout


def test_cli_prefers_passive_openmp_waiting():
    """OMP_WAIT_POLICY=PASSIVE unless the user set it (benchmarks/results/threads.md shows why)."""
    import subprocess
    import sys

    code = (
        "import os; os.environ.pop('OMP_WAIT_POLICY', None); import gvendi.cli; print(os.environ['OMP_WAIT_POLICY'])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "PASSIVE", run.stderr
    import os

    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    code = "import os, gvendi.cli; print(os.environ['OMP_WAIT_POLICY'])"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.stdout.strip() == "ACTIVE", run.stderr


def test_a_closed_stdout_ends_quietly():
    """`gvendi demo --evidence | head -1`: the reader closes the pipe first; no traceback, exit 141 (128 + SIGPIPE)."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        run = subprocess.run(
            [sys.executable, "-m", "gvendi", "demo", "--evidence"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert run.returncode == 141, run.stderr
    assert run.stderr == ""
