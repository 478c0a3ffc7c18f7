"""Shared helpers for the benchmarks: thread setup, the benchmark model, memory sampling, result files.

Import this module before torch is used: it pins the thread count and the OpenMP wait policy first.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# On a shared CPU, busy-waiting OpenMP workers get descheduled and every parallel region can stall for a whole
# scheduler time slice; PASSIVE (sleep instead of spin) makes timings reflect the arithmetic. It applies to every
# method in a run alike. Set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GVENDI_DISABLE_PROGRESS_BAR", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gvendi.testing import tiny_qwen, word_tokenizer  # noqa: E402,F401  (the offline builders tests use too)


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, load, versions, threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; falls back to the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_parts() -> dict[str, int]:
    """``RssAnon`` (private memory the process allocated) and ``RssFile`` (file pages mapped in, e.g. a
    memory-mapped Arrow dataset: page cache the kernel can reclaim), in bytes, from /proc/self/status."""
    parts = {"RssAnon": 0, "RssFile": 0}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key = line.split(":", 1)[0]
                if key in parts:
                    parts[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return parts


class PeakRSS:
    """Samples the process RSS every ``interval`` seconds in a thread: ``peak - baseline`` is the extra memory a
    block of code needed (RSS above what the process held when the block began)."""

    def __init__(self, interval: float = 0.002, *, track_anon: bool = False):
        self.interval = interval
        self.track_anon = track_anon
        self.baseline_anon = self.peak_anon = 0
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.peak = max(self.peak, rss_bytes())
        if self.track_anon:
            self.peak_anon = max(self.peak_anon, rss_parts()["RssAnon"])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.baseline = self.peak = rss_bytes()
        self.baseline_anon = self.peak_anon = rss_parts()["RssAnon"] if self.track_anon else 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def write_results(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
