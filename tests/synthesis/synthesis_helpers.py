"""Helpers for the synthesis tests: a fast stand-in featurizer, small seed files, subprocess environments."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


class HashingFeaturizer:
    """Unit-norm hashed bag of word bigrams: a fast, deterministic stand-in for the gradient featurizer.

    Used only where a test is about the loop's plumbing, not about gradients; the end-to-end tests use the real
    :class:`gvendi.featurizer.GradientFeaturizer`.
    """

    fingerprint = "hashing-featurizer-v1"
    provenance = {"proxy": "hashing-featurizer", "proxy_revision": None}  # no Hub revision to pin

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.calls = 0

    def featurize(self, records):
        self.calls += 1
        out = np.zeros((len(records), self.dim), dtype=np.float32)
        for i, record in enumerate(records):
            words = re.findall(r"\w+", (record["prompt"] + " " + record["completion"]).lower())
            for a, b in zip(words, words[1:] + ["</s>"]):
                h = int.from_bytes(hashlib.blake2b(f"{a} {b}".encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            out[i] /= max(np.linalg.norm(out[i]), 1e-6)
            if not out[i].any():
                out[i, 0] = 1.0
        return out


def write_seed_subset(task: str, path: Path, n: int) -> Path:
    """Every k-th row of the bundled sample, ``n`` rows in all, written to ``path``."""
    from gvendi.data import MATH_SAMPLE_PATH, NLI_SAMPLE_PATH

    source = MATH_SAMPLE_PATH if task == "math" else NLI_SAMPLE_PATH
    rows = [json.loads(line) for line in open(source, encoding="utf-8") if line.strip()]
    step = max(1, len(rows) // n)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[::step][:n]), encoding="utf-8")
    return path


def online_env() -> dict[str, str]:
    """The environment for a subprocess that talks to a loopback server (HF_HUB_OFFLINE removed)."""
    env = dict(os.environ)
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env["GVENDI_DISABLE_PROGRESS_BAR"] = "1"
    env["OMP_NUM_THREADS"] = "2"
    return env
