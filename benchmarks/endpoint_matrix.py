"""The endpoint matrix of issue 15: ``gvendi synthesize`` against broken endpoints, exit codes and wall times.

    python benchmarks/endpoint_matrix.py [--out benchmarks/results/endpoint_matrix.json]

Each row starts the loopback TGI server (``tests/tgi_server.py``) with one broken ``behaviour`` and runs the CLI in a
fresh process (HF_HUB_OFFLINE unset, so huggingface_hub may reach 127.0.0.1); the wall time includes the ~3-5 s of
Python start-up and imports. Mistyped URLs need no server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CASES = [
    # (name, behaviour, url suffix or full url, extra options)
    ("HTML page (tgi)", "html", "", ["--backend", "tgi"]),
    ("HTML page (openai)", "html", "", ["--backend", "openai"]),
    ("404 JSON (tgi)", "404", "", ["--backend", "tgi"]),
    ("random bytes (tgi)", "garbage", "", ["--backend", "tgi"]),
    ("TGI URL ending in /v1", None, "/v1", ["--backend", "tgi"]),
    ("permanent 429 (tgi)", "always429", "", ["--backend", "tgi"]),
    ("permanent 429 (openai)", "always429", "", ["--backend", "openai"]),
    ("hangs after the probe (--timeout 10)", "hang_after_probe", "", ["--timeout", "10"]),
    ("scheme htp://", None, "htp://127.0.0.1:9", []),
    ("scheme http//", None, "http//127.0.0.1:9", []),
    ("no scheme", None, "127.0.0.1:9", []),
    ("nothing listening", None, "http://127.0.0.1:9", []),
    ("working server (scripted)", "ok", "", []),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from tgi_server import LoopbackTGIServer

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(GVENDI_DISABLE_PROGRESS_BAR="1", OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds.jsonl"
        sample = (ROOT / "gvendi" / "data" / "math_sample.jsonl").read_text().splitlines()[::50][:12]
        seeds.write_text("\n".join(sample) + "\n")
        for i, (name, behaviour, url, extra) in enumerate(CASES):
            server = None
            if behaviour is not None or url.startswith("/"):
                server = LoopbackTGIServer(
                    behaviour=None if behaviour in (None, "ok") else behaviour, timeout_delay=600
                ).start()
                url = server.url + url
            command = [
                sys.executable, "-m", "gvendi.synthesis.cli", "synthesize", "--task", "math", "--seeds", str(seeds),
                "--generator", url, "--rounds", "1", "--per-round", "4", "--proxy", "tiny", "--dim", "16",
                "--out", str(Path(tmp) / f"run{i}"), "--no-progress", *extra,
            ]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            seconds = time.perf_counter() - start
            if server is not None:
                server.stop()
            lines = [line for line in done.stderr.splitlines() if line.startswith("gvendi synthesize:")]
            last = lines[-1] if lines else (done.stdout.strip().splitlines() or [""])[-1]
            rows.append({"case": name, "exit": done.returncode, "seconds": round(seconds, 1), "message": last[:400]})
            print(f"{done.returncode:>3}  {seconds:6.1f}s  {name}: {last[:160]}", flush=True)
    if args.out:
        record = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}"}
        Path(args.out).write_text(json.dumps({**record, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
