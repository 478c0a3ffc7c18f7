"""Sustained request rate of gvendi's synthesis client against a loopback TGI server that answers in 100 ms.

    python benchmarks/bench_synthesis_client.py                 # 32 in flight, 100 ms answers, 10 s per route
    python benchmarks/bench_synthesis_client.py --seconds 20 --concurrency 64

At concurrency C and server latency L the ideal rate is C / L (320 requests/s for 32 and 100 ms); the target is at
least 80% of it. The server runs in its own process (tests/tgi_server.py, scripted mode, no faults) so the client's
event loop is measured, not the server's. Three variants: the TGI generate route, the OpenAI chat route, and the
generate route with every answer appended to a run folder's ``requests.jsonl`` (flush + fsync per record), as the
synthesis loop does. Results go to benchmarks/results/synthesis_client.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "tgi_server.py"), "--mode", "scripted", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stdout.readline().strip()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the loopback server did not start (said {line!r})")
    return process, f"http://127.0.0.1:{line.split()[1]}"


async def measure(route: str, url: str, concurrency: int, seconds: float, record_dir: str | None) -> dict:
    from gvendi.synthesis import EndpointConfig, GenerationParams, RunStore, make_backend

    backend = make_backend(EndpointConfig(backend=route, url=url, max_concurrency=concurrency, timeout=30))
    store = None
    if record_dir is not None:
        store = RunStore(record_dir)
        store.open_records()
    messages = [{"role": "user", "content": "ping"}]
    done = failed = 0
    latencies: list[float] = []
    stop_at = 0.0

    async def worker(wid: int) -> None:
        nonlocal done, failed
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            t0 = time.monotonic()
            result = await backend.generate(messages, GenerationParams(max_new_tokens=4, seed=wid * 1_000_000 + i))
            latencies.append(time.monotonic() - t0)
            if store is not None:
                store.append_record(
                    {"id": f"{wid}-{i}", "status": "ok" if result.ok else "failed", "text": result.text}
                )
            done += result.ok
            failed += not result.ok

    # warm up the connection pool, then measure
    await asyncio.gather(*(backend.generate(messages, GenerationParams(seed=i)) for i in range(concurrency)))
    start = time.monotonic()
    stop_at = start + seconds
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.monotonic() - start
    await backend.aclose()
    if store is not None:
        store.close()
    latencies.sort()
    return {
        "route": route + (" + requests.jsonl (fsync)" if record_dir else ""),
        "requests": done + failed,
        "failed": failed,
        "seconds": round(elapsed, 3),
        "requests_per_s": round((done + failed) / elapsed, 1),
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.1, help="server answer time in seconds")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per variant")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    os.environ.pop("HF_HUB_OFFLINE", None)

    import huggingface_hub

    import gvendi

    load_before = round(os.getloadavg()[0], 2)
    process, url = start_server(args.delay)
    try:
        ideal = args.concurrency / args.delay
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for route, record in (("tgi", None), ("openai", None), ("tgi", tmp)):
                row = asyncio.run(measure(route, url, args.concurrency, args.seconds, record))
                row["fraction_of_ideal"] = round(row["requests_per_s"] / ideal, 3)
                rows.append(row)
                print(json.dumps(row))
    finally:
        process.kill()
        process.wait()
    result = {
        "benchmark": "synthesis client sustained request rate",
        "concurrency": args.concurrency,
        "server_delay_s": args.delay,
        "ideal_requests_per_s": ideal,
        "target_fraction": 0.8,
        "results": rows,
        "passed": all(row["fraction_of_ideal"] >= 0.8 for row in rows),
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1min_before": load_before,
            "gvendi": gvendi.__version__,
            "huggingface_hub": huggingface_hub.__version__,
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "synthesis_client.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Synthesis client: sustained request rate",
        "",
        f"Concurrency {args.concurrency}, loopback server answering in {args.delay * 1000:.0f} ms (separate process), "
        f"ideal {ideal:.0f} requests/s, target ≥ 80% of ideal. Machine: {os.cpu_count()} CPUs (1-min load average "
        f"{load_before} before the run; other jobs share it), "
        f"Python {platform.python_version()}, huggingface_hub {huggingface_hub.__version__}.",
        "",
        "| variant | requests | failed | requests/s | of ideal | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['route']} | {row['requests']} | {row['failed']} | {row['requests_per_s']} | "
            f"{row['fraction_of_ideal']:.0%} | {row['latency_p50_ms']} | {row['latency_p99_ms']} |"
        )
    lines += ["", f"Reproduce: `python benchmarks/bench_synthesis_client.py --seconds {args.seconds:g}`.", ""]
    (out / "synthesis_client.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
