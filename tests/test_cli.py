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
        (["{data}", "--dim", "0"], "dim must be an integer ≥ 1"),
        (["{data}", "--limit", "0"], "--limit must be ≥ 1"),
        (["data.txt"], "unsupported data file"),
        (["{data}", "--proxy", "nobody/uncached-model"], "--proxy tiny"),
    ],
)
def test_errors_are_one_clear_line(args, message, word_proxy_dir, data_files, capsys):
    args = [a.replace("{data}", str(data_files["jsonl"])) for a in args]
    if "--proxy" not in args:
        args += ["--proxy", word_proxy_dir]
    code, _, err = _score(args, capsys)
    assert code == 1
    assert message in err and "Traceback" not in err


def test_bad_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score", "x.jsonl", "--projection", "kronecker"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "score" in capsys.readouterr().out
