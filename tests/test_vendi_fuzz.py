"""Issue 15: a seeded fuzz of the scoring and featurizer inputs (1,200 cases, a few seconds).

Every case ends in a correct value (checked against an independent float64 reference: the N×N Gram spectrum, rows
scaled by their peak before normalising) or in a ``ValueError``/``TypeError`` whose message names what was wrong (the
argument, the row or the column): never another exception, never a silently wrong number.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gvendi import GradientFeaturizer, score

SCORE_CASES = 900
FEATURIZER_CASES = 300
WORDS = ["two", "plus", "3", "π", "שלום", "مرحبا", "\u202eevil\u202c", "😀", "x\u0301", "", " ", "\t", "\x00"]


def _reference(x: np.ndarray, q: float) -> float:
    x = x / np.abs(x).max(axis=1, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(x @ x.T / len(x)), 0, None)  # N×N: the other side of the k×k the code uses
    p = lam[lam > 1e-12 * lam.max()]
    p = p / p.sum()
    if q == 1:
        h = -(p * np.log(p)).sum()
    elif math.isinf(q):
        h = -np.log(p.max())
    else:
        h = np.log(np.sum(np.exp(q * np.log(p) - q * np.log(p).max()))) / (1 - q) + q * np.log(p).max() / (1 - q)
    return float(np.exp(h))


def _rows(rng: np.random.Generator) -> tuple[object, np.ndarray | None, str | None]:
    """A random feature input, its float64 meaning (None when it has none) and the word the error must contain."""
    n, d = int(rng.integers(0, 12)), int(rng.integers(1, 10))
    base = rng.standard_normal((n, d)) * rng.choice([1.0, 1e-3, 1e3])
    kind = rng.choice(["plain", "zero", "nan", "inf", "huge", "tiny", "dup", "ragged", "text", "complex"])
    if kind == "zero" and n:
        base[rng.integers(n)] = 0.0
    elif kind == "nan" and n:
        base[rng.integers(n), rng.integers(d)] = np.nan
    elif kind == "inf" and n:
        base[rng.integers(n), rng.integers(d)] = rng.choice([np.inf, -np.inf])
    elif kind == "huge":
        base = base * 1e200
    elif kind == "tiny":
        base = base * 1e-200
    elif kind == "dup" and n:
        base[:] = base[0]
    dtype = rng.choice(["float64", "float32", "float16", "int32", "torch32", "torch64", "list"])
    if dtype in ("float32", "float16", "int32"):
        with np.errstate(all="ignore"):
            array = base.astype(dtype)
        meaning = array.astype(np.float64)
        value: object = array
    elif dtype.startswith("torch"):
        tensor = torch.tensor(base, dtype=torch.float32 if dtype == "torch32" else torch.float64)
        meaning, value = tensor.double().numpy(), tensor
    else:
        meaning, value = base, base.tolist()
    if kind == "ragged" and n >= 2:
        rows = base.tolist()
        rows[rng.integers(n)] = rows[0] + [1.0]
        return rows, None, "row"
    if kind == "text" and n:
        rows = base.tolist()
        rows[rng.integers(n)][rng.integers(d)] = str(rng.choice(WORDS))
        return rows, None, "row"
    if kind == "complex" and n:
        return base + 1j * base, None, "complex"
    if n == 0:
        return value, None, "0 rows"
    bad = ~np.isfinite(meaning).all(axis=1)
    if bad.any():
        return value, None, "row"
    if (meaning == 0).all(axis=1).any():
        return value, None, "row"
    return value, meaning, None


def _order(rng: np.random.Generator) -> tuple[object, bool]:
    choice = rng.integers(0, 10)
    if choice < 8:
        return float(rng.choice([1.0, 2.0, 0.5, 1 + 1e-9, 1 - 1e-9, 10.0, 1000.0, float("inf"), 0.01])), True
    return [0, -1.0, float("nan"), "1", None, True, [1]][int(rng.integers(0, 7))], False


def test_score_fuzz():
    rng = np.random.default_rng(20261202)
    outcomes = {"value": 0, "error": 0}
    for case in range(SCORE_CASES):
        features, meaning, word = _rows(rng)
        q, q_ok = _order(rng)
        where = f"case {case} (q={q!r}, expected error {word!r})"
        if not q_ok:
            word, meaning = "q", None
        try:
            result = score(features, q=q)
        except (ValueError, TypeError) as exc:
            assert meaning is None, f"{where}: refused a valid input: {exc}"
            assert word.lower() in str(exc).lower(), f"{where}: the message does not name it: {exc}"
            outcomes["error"] += 1
            continue
        assert meaning is not None, f"{where}: accepted bad input, returned {result.value}"
        n, d = meaning.shape
        assert 1.0 - 1e-9 <= result.value <= min(n, d) + 1e-9, where
        assert result.value == pytest.approx(_reference(meaning, float(q)), rel=1e-6, abs=1e-9), where
        outcomes["value"] += 1
    assert outcomes["value"] > 150 and outcomes["error"] > 150, outcomes


def _text(rng: np.random.Generator) -> str:
    words = [str(rng.choice(WORDS)) for _ in range(int(rng.integers(0, 6)))]
    if rng.random() < 0.1:
        words.append("\ud800")  # a lone surrogate: not encodable as UTF-8
    return " ".join(words)


def _cell(rng: np.random.Generator) -> object:
    roll = rng.random()
    if roll < 0.7:
        return _text(rng)
    return [None, 3, 2.5, ["a"], {"a": 1}, b"bytes"][int(rng.integers(0, 6))]


@pytest.fixture(scope="module")
def featurizer():
    return GradientFeaturizer("tiny", dim=8, show_progress=False)


def test_featurizer_fuzz(featurizer):
    chat = GradientFeaturizer("tiny", dim=8, messages_column="messages", show_progress=False)
    rng = np.random.default_rng(7)
    computed = refused = 0
    for case in range(FEATURIZER_CASES):
        n = int(rng.integers(0, 4))
        layout = rng.choice(["pair", "pair", "pair", "missing", "ragged", "messages", "ids"])
        if layout in ("pair", "missing", "ragged"):
            batch = {"prompt": [_cell(rng) for _ in range(n)], "completion": [_cell(rng) for _ in range(n)]}
            if layout == "missing":
                batch.pop(str(rng.choice(["prompt", "completion"])))
            if layout == "ragged":
                batch["completion"].append("one more")
            target = featurizer
        elif layout == "messages":
            roles = ["user", "assistant", "system", None]
            batch = {
                "messages": [
                    [
                        {
                            k: v
                            for k, v in (("role", roles[int(rng.integers(0, 4))]), ("content", _cell(rng)))
                            if v is not None
                        }
                        for _ in range(int(rng.integers(0, 3)))
                    ]
                    for _ in range(n)
                ]
            }
            target = chat
        else:
            vocab = featurizer.model.get_input_embeddings().num_embeddings
            ids = [[int(t) for t in rng.integers(-2, vocab + 2, size=int(rng.integers(2, 6)))] for _ in range(n)]
            batch = {"input_ids": ids, "labels": [[-100] + row[1:] for row in ids]}
            target = featurizer
        where = f"case {case} ({layout}): {str(batch)[:200]!r}"
        try:
            examples = target.encode(batch)
            if not examples:
                continue
            if rng.random() < 0.15:  # compute a few: unit rows of the right shape
                feats = target.featurize_encoded(examples[:2])
                assert feats.shape == (min(2, len(examples)), 8) and np.isfinite(feats).all(), where
                np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-4)
                computed += 1
        except (ValueError, TypeError) as exc:
            message = str(exc)
            named = any(word in message for word in ("row", "column", *batch))
            assert named, f"{where}: the message names no row, column or field: {message}"
            refused += 1
    assert computed >= 5 and refused > 50, (computed, refused)
