"""The README, run as written: its set-up command in a fresh virtual environment on a copy of the source, its main
job (`gvendi demo`), then every snippet, all read from README.md itself.

Substitutions, and only these: the README's Hub proxy (`Qwen/Qwen2.5-0.5B-Instruct`) becomes the bundled tiny proxy,
`gvendi score` without `--proxy` gets `--proxy tiny` (its default is the Hub proxy), `pip install` runs offline
(`--no-index --no-build-isolation`) in an environment that sees this one's packages, the TGI endpoint is a loopback
server (tests/tgi_server.py), and names a snippet leaves to the reader (`model`, `args`, `train_ds`, `my.jsonl`,
`seeds.jsonl`) are defined first. A Hub dataset id cannot be reached offline: that line must fail with one clear
line instead.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from utils import TRAINER_PRELUDE

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HUB_PROXY = "Qwen/Qwen2.5-0.5B-Instruct"


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def code_blocks(text: str, lang: str) -> list[str]:
    return [block.strip() for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S)]


def commands(block: str) -> list[str]:
    """The command lines of a bash block, comments dropped."""
    block = re.sub(r"\\\n\s*", " ", block)  # a command continued over lines with a trailing backslash
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


# what the README leaves to the reader ----------------------------------------------------------------------------
RECORDS = [
    {"prompt": f"What is {a}+{b}?", "completion": f"{a}+{b}={a + b}. \\boxed{{{a + b}}}"}
    for a, b in [(2, 3), (7, 6), (12, 30), (5, 5), (9, 1), (4, 8)]
]


def _env(tmp_path, venv_bin: Path | None = None, *, offline: bool = True) -> dict:
    home = tmp_path / "hf"
    env = {
        **os.environ,
        "HF_HOME": str(home),
        "HF_MODULES_CACHE": str(home / "modules"),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "GVENDI_DISABLE_PROGRESS_BAR": "1",
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    if not offline:
        env.pop("TRANSFORMERS_OFFLINE", None)
    if venv_bin is not None:
        env["PATH"] = f"{venv_bin}{os.pathsep}{env['PATH']}"
        env.pop("PYTHONPATH", None)
    return env


def _demo_table(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def test_readme_sections_are_where_the_test_reads_them():
    assert commands(code_blocks(section("Set-up"), "bash")[0])
    assert commands(code_blocks(section("Main job: the offline demo"), "bash")[0]) == ["gvendi demo"]
    assert len(code_blocks(section("Usage"), "python")) >= 3
    assert "<!-- gvendi:demo -->" in README and "<!-- gvendi:demo-time -->" in README


def test_readme_demo_time_matches_the_thread_benchmark():
    """The README's "about N s" is the thread benchmark's figure for the demo alone (not a timing in this test)."""
    sys.path.insert(0, str(ROOT / "docs" / "assets"))
    from regenerate import demo_time_claim, marked_block

    assert marked_block(README, "demo-time") == demo_time_claim()


@pytest.mark.slow
def test_readme_from_set_up_to_every_snippet(tmp_path):
    from tgi_server import LoopbackTGIServer
    from utils import copy_of_the_source, offline_pip, venv_borrowing_these_packages

    source = copy_of_the_source(tmp_path)
    python, _ = venv_borrowing_these_packages(tmp_path)
    venv_bin = python.parent
    pip = " ".join(f"'{part}'" for part in offline_pip(python))

    # set-up: the README's command, pip pointed at the new environment, offline
    setup = " && ".join(commands(code_blocks(section("Set-up"), "bash")[0]))
    script = f'pip() {{ {pip} "$@" --no-index --no-build-isolation --quiet; }}; set -e; {setup}'
    run = subprocess.run(
        ["bash", "-c", script], cwd=source, env=_env(tmp_path, venv_bin), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert (venv_bin / "gvendi").exists(), "the set-up did not install the gvendi command"

    # main job: `gvendi demo` prints the README's table
    main_job = commands(code_blocks(section("Main job: the offline demo"), "bash")[0])
    run = subprocess.run(
        ["bash", "-c", " && ".join(main_job)],
        cwd=source,
        env=_env(tmp_path, venv_bin),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sys.path.insert(0, str(ROOT / "docs" / "assets"))
    from regenerate import marked_block

    readme_table = code_blocks(marked_block(README, "demo"), "text")[0]
    assert _demo_table(run.stdout) == _demo_table(readme_table), "README's demo table drifted: regenerate it"

    # the files the snippets name
    work = tmp_path / "work"
    work.mkdir()
    (work / "my.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    from gvendi.data import MATH_SAMPLE_PATH

    seeds = MATH_SAMPLE_PATH.read_text(encoding="utf-8").splitlines(keepends=True)[:40]
    (work / "seeds.jsonl").write_text("".join(seeds))

    # every Python snippet, with the venv's interpreter, in a fresh process
    for i, snippet in enumerate(code_blocks(section("Usage"), "python")):
        code = snippet.replace(HUB_PROXY, "tiny")
        if "Trainer(" in code:
            code = TRAINER_PRELUDE + code
        run = subprocess.run(
            [str(python), "-c", code],
            cwd=work,
            env=_env(tmp_path, venv_bin),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, f"README python snippet {i + 1} failed:\n{code}\n{run.stderr[-3000:]}"
        assert "Traceback" not in run.stderr

    # every command line of the Usage section
    with LoopbackTGIServer("scripted", seed=0) as server:
        for block in code_blocks(section("Usage"), "bash"):
            for line in commands(block):
                line = line.replace("http://127.0.0.1:8080", server.url)
                line = line.replace("gvendi/data/math_sample.jsonl", str(MATH_SAMPLE_PATH))  # run from a clone's root
                if line.startswith("gvendi score") and "--proxy" not in line:
                    line += " --proxy tiny"
                hub_dataset = line.startswith("gvendi score org/")
                run = subprocess.run(
                    ["bash", "-c", line],
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=900,
                    env=_env(tmp_path, venv_bin, offline=not line.startswith("gvendi synthesize")),
                )
                if hub_dataset:  # offline: one clear line, no traceback
                    assert run.returncode == 2 and "could not load the Hub dataset 'org/dataset'" in run.stderr
                    assert "Traceback" not in run.stderr
                    continue
                assert run.returncode == 0, f"{line}\n{run.stdout[-1500:]}\n{run.stderr[-3000:]}"
    assert (work / "out" / "prismmath" / "README.md").is_file()
