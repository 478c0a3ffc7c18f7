"""Regenerate every number and picture the docs show from running code, so none can drift.

    python docs/assets/regenerate.py demo        # `gvendi demo` table in README.md and docs/index.md, and demo.png
    python docs/assets/regenerate.py callback    # docs/callback.md's worked-example output and callback_curve.png
    python docs/assets/regenerate.py synthesis   # a real run's report plots (loopback TGI server, tiny proxy)
    python docs/assets/regenerate.py all

Each page holds the generated text between ``<!-- gvendi:NAME -->`` and ``<!-- /gvendi:NAME -->`` markers; the tests
(tests/test_demo.py, tests/test_readme.py, tests/test_docs.py) run the same code and compare it with the pages.
Offline and CPU-only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "docs" / "assets"
DEMO_PAGES = (ROOT / "README.md", ROOT / "docs" / "index.md")


def marked_block(text: str, name: str) -> str:
    """The text between ``<!-- gvendi:NAME -->`` and ``<!-- /gvendi:NAME -->`` (without the markers)."""
    match = re.search(rf"<!-- gvendi:{name} -->\n?(.*?)\n?<!-- /gvendi:{name} -->", text, re.S)
    if match is None:
        raise ValueError(f"no <!-- gvendi:{name} --> block")
    return match.group(1)


def replace_block(path: Path, name: str, content: str) -> None:
    text = path.read_text(encoding="utf-8")
    marked_block(text, name)  # raises when the markers are missing
    pattern = rf"<!-- gvendi:{name} -->(.*?)<!-- /gvendi:{name} -->"
    inline = "\n" not in content
    block = (
        f"<!-- gvendi:{name} -->{content}<!-- /gvendi:{name} -->"
        if inline
        else (f"<!-- gvendi:{name} -->\n{content.strip(chr(10))}\n<!-- /gvendi:{name} -->")
    )
    path.write_text(re.sub(pattern, lambda m: block, text, flags=re.S), encoding="utf-8")


def code_blocks_of(text: str, lang: str = "text") -> list[str]:
    """The contents of the fenced ``lang`` blocks in ``text``."""
    return [block.rstrip("\n") for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S)]


def code_block(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


# demo ----------------------------------------------------------------------------------------------------------
def run_demo() -> tuple[str, list[dict]]:
    """(the table `gvendi demo` prints, its JSON results), from a fresh process."""
    env = {**os.environ, "GVENDI_DISABLE_PROGRESS_BAR": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "gvendi", "demo", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    return run.stderr.strip(), json.loads(run.stdout)


def demo_figure(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [r["templates"] for r in results]
    values = [r["gvendi"] for r in results]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=120)
    ax.plot(counts, values, marker="o", color="#1f77b4")
    for count, value in zip(counts, values):
        ax.annotate(f"{value:.2f}", (count, value), textcoords="offset points", xytext=(0, 8), ha="center")
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("solution templates in the 64-example subset")
    ax.set_ylabel("G-Vendi")
    ax.set_ylim(0, max(values) * 1.2)
    ax.set_title("gvendi demo: diversity rises with the number of templates", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def demo_time_claim() -> str | None:
    """'about N s' from benchmarks/results/threads.json (the demo alone, the CLI's default thread policy)."""
    path = ROOT / "benchmarks" / "results" / "threads.json"
    if not path.is_file():
        return None
    for result in json.loads(path.read_text())["results"]:
        if result["job"] == "gvendi demo" and result["policy"].startswith("PASSIVE"):
            seconds = sorted(result["quiet_s"])[len(result["quiet_s"]) // 2]
            return f"about {round(seconds / 5) * 5:.0f} s"
    return None


def regenerate_demo() -> None:
    table, results = run_demo()
    for page in DEMO_PAGES:
        replace_block(page, "demo", code_block(table))
    claim = demo_time_claim()
    if claim:
        replace_block(ROOT / "README.md", "demo-time", claim)
    demo_figure(results, ASSETS / "demo.png")
    print(table)


# callback ------------------------------------------------------------------------------------------------------
def regenerate_callback() -> None:
    """Run docs/assets/callback_example.py (it copies the figure) and put what it prints into docs/callback.md."""
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "GVENDI_DISABLE_PROGRESS_BAR": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
        run = subprocess.run(
            [sys.executable, str(ASSETS / "callback_example.py")],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=work,
        )
    output = "\n".join(line for line in run.stdout.splitlines() if "G-Vendi" in line or line.startswith("  stage"))
    replace_block(ROOT / "docs" / "callback.md", "callback-example", code_block(output))
    print(output)


# synthesis -----------------------------------------------------------------------------------------------------
def regenerate_synthesis() -> None:
    """Two rounds against the loopback TGI server (tests/tgi_server.py, scripted answers) with the tiny proxy; the
    report's plots become docs/assets/synthesis_*.png and the publishing page's dry-run listing."""
    os.environ["HF_HUB_OFFLINE"] = "0"  # huggingface_hub's client must reach the loopback server (nothing else)
    os.environ["GVENDI_DISABLE_PROGRESS_BAR"] = "1"
    sys.path.insert(0, str(ROOT / "tests"))
    from tgi_server import LoopbackTGIServer

    from gvendi.cli import main
    from gvendi.data import MATH_SAMPLE_PATH

    with tempfile.TemporaryDirectory() as work, LoopbackTGIServer("scripted", seed=0) as server:
        seeds = Path(work) / "seeds.jsonl"
        seeds.write_text("".join(MATH_SAMPLE_PATH.read_text(encoding="utf-8").splitlines(keepends=True)[:120]))
        run_dir = Path(work) / "runs" / "math"
        code = main(
            [
                "synthesize",
                "--task",
                "math",
                "--seeds",
                str(seeds),
                "--generator",
                server.url,
                "--rounds",
                "2",
                "--per-round",
                "48",
                "--proxy",
                "tiny",
                "--dim",
                "256",
                "--min-clusters",
                "6",
                "--out",
                str(run_dir),
                "--quiet",
            ]
        )
        if code != 0:
            raise SystemExit(f"gvendi synthesize failed with exit code {code}")
        plots = run_dir / "plots"
        shutil.copy(plots / "funnel.png", ASSETS / "synthesis_funnel.png")
        shutil.copy(plots / "gvendi.png", ASSETS / "synthesis_gvendi.png")
        shutil.copy(plots / "round_001_clusters.png", ASSETS / "synthesis_clusters.png")
        report = (run_dir / "report.md").read_text(encoding="utf-8").replace(server.url, "http://127.0.0.1:PORT")
        replace_block(ROOT / "docs" / "synthesis.md", "synthesis-report", _demote(report))


def _demote(markdown: str) -> str:
    """A report's headings two levels down (it sits inside a page section)."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.strip().splitlines())


def main(argv: list[str] | None = None) -> int:
    what = (argv if argv is not None else sys.argv[1:]) or ["all"]
    jobs = {"demo": regenerate_demo, "callback": regenerate_callback, "synthesis": regenerate_synthesis}
    for name in jobs if what == ["all"] else what:
        if name not in jobs:
            raise SystemExit(f"unknown part {name!r}: choose from {sorted(jobs)} or all")
        jobs[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
