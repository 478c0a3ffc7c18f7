"""The curation doors of the command line: `gvendi select`, `compare`, `report` and `score --per-example/--ci`."""

import json

import numpy as np
import pytest

from gvendi.cli import main

RECORDS = [
    {"prompt": f"w{i} w{i + 1}", "completion": f"w{i + 2} w{(3 * i) % 30}", "reward": 0.1 + (i % 5) / 5}
    for i in range(24)
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """24 rows as .jsonl, their synthetic features as .npy (8 distinct directions, the rest duplicates)."""
    folder = tmp_path_factory.mktemp("pool")
    data = folder / "pool.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(8, 16))
    features = np.vstack([distinct, distinct[rng.integers(0, 2, 16)]]).astype(np.float32)
    np.save(folder / "feats.npy", features)
    return {"data": data, "features": folder / "feats.npy", "folder": folder}


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ""])
def test_select_writes_kept_rows_in_the_asked_format_and_a_summary(pool, suffix, capsys):
    import datasets

    from gvendi.io import load_table

    out = pool["folder"] / f"kept{suffix or '_folder'}"
    code, stdout, err = _run(
        ["select", str(pool["data"]), "--k", "8", "--out", str(out), "--features", str(pool["features"]), "--json"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(stdout)
    kept = load_table(str(out)) if suffix else datasets.load_from_disk(str(out))
    assert len(kept) == 8 and set(kept.column_names) == {"prompt", "completion", "reward"}
    assert summary["selected"]["gvendi"] > summary["random_same_k"]["mean"]
    assert summary["select_method"] == "greedy" and summary["select_k"] == 8
    saved = json.loads((pool["folder"] / f"{out.name}.summary.json").read_text())
    assert saved["selected"] == summary["selected"]
    # the greedy keeps the 8 distinct directions (a duplicate may stand in for its original)
    rows = [next(i for i, r in enumerate(RECORDS) if r["prompt"] == p) for p in kept["prompt"]]
    assert len(np.unique(np.load(pool["features"])[rows], axis=0)) == 8


def test_select_quality_gate_and_featurizing_proxy(pool, word_proxy_dir, capsys):
    out = pool["folder"] / "gated.jsonl"
    code, stdout, err = _run(
        [
            "select",
            str(pool["data"]),
            "--k",
            "5",
            "--out",
            str(out),
            "--proxy",
            word_proxy_dir,
            "--dim",
            "16",
            "--quality-column",
            "reward",
            "--min-quality",
            "0.5",
            "--method",
            "cluster-balanced",
            "--n-clusters",
            "3",
        ],
        capsys,
    )
    assert code == 0, err
    assert "kept 5 of 24 rows (cluster-balanced)" in stdout
    rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert len(rewards) == 5 and min(rewards) >= 0.5


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--quality-column", "nope"], "--quality-column 'nope' is not a column"),
        (["--min-quality", "0.5"], "--min-quality needs --quality-column"),
        (["--k", "99"], "k must be an integer between 1"),
        (["--limit", "5"], "has 24 rows but the data has 5"),
    ],
)
def test_select_errors_are_one_line(pool, extra, message, capsys):
    argv = ["select", str(pool["data"]), "--out", str(pool["folder"] / "x.jsonl"), "--features", str(pool["features"])]
    argv += extra if "--k" in extra else ["--k", "4", *extra]
    code, _, err = _run(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err  # user errors exit 2


def test_score_per_example_writes_contribution_columns(pool, word_proxy_dir, capsys):
    out = pool["folder"] / "scored.jsonl"
    code, stdout, err = _run(
        ["score", str(pool["data"]), "--proxy", word_proxy_dir, "--dim", "16", "--json", "--per-example", str(out)],
        capsys,
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 24 and {"prompt", "gvendi_contribution", "gvendi_rarity", "gvendi_cluster"} <= set(rows[0])
    total = json.loads(stdout)["gvendi"]
    assert all(abs(r["gvendi_contribution"] + r["gvendi_leave_one_out"] - total) < 1e-4 for r in rows)


def test_score_ci_prints_and_reports_an_interval(pool, word_proxy_dir, capsys):
    base = ["score", str(pool["data"]), "--proxy", word_proxy_dir, "--dim", "16", "--ci", "--n-boot", "50"]
    code, stdout, err = _run([*base, "--json"], capsys)
    assert code == 0, err
    record = json.loads(stdout)
    assert record["ci_level"] == 0.95 and record["n_boot"] == 50 and record["ci_low"] < record["ci_high"]
    code, stdout, _ = _run([*base[:-2], "0.8", "--n-boot", "50"], capsys)
    assert code == 0 and "80% CI [" in stdout


def test_compare_a_set_with_itself_and_with_data(pool, word_proxy_dir, capsys):
    feats = str(pool["features"])
    code, stdout, err = _run(["compare", feats, feats, "--names", "a,b", "--n-boot", "30", "--json"], capsys)
    assert code == 0, err
    record = json.loads(stdout)
    assert [round(s["adds"], 9) for s in record["sets"]] == [0.0, 0.0]
    assert abs(record["union"]["gvendi"] - record["sets"][0]["gvendi"]) < 1e-9
    code, stdout, err = _run(
        ["compare", str(pool["data"]), str(pool["data"]), "--proxy", word_proxy_dir, "--dim", "16", "--no-ci"], capsys
    )
    assert code == 0, err
    assert "union" in stdout and "+0.00" in stdout and "50%" in stdout
