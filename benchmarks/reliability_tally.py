"""Bad-input tally for issue 15: each case ends clear / correct / wrong / traceback.

    HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 python benchmarks/reliability_tally.py [--json OUT]

- ``clear``: a ``ValueError``/``TypeError`` (or a one-line CLI error, exit ≠ 0) whose message names the field;
- ``correct``: a value that matches the float64/mpmath reference (or the documented behaviour);
- ``wrong``: a value returned silently that is wrong, or bad input accepted without a word;
- ``traceback``: any other exception (or a CLI traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("GVENDI_DISABLE_PROGRESS_BAR", "1")


def _reference_vendi(x: np.ndarray, q: float) -> float:
    import mpmath

    mpmath.mp.dps = 50
    x = np.asarray(x, dtype=np.float64)
    x = x / np.abs(x).max(axis=1, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(x.T @ x / len(x)), 0, None)
    lam = [mpmath.mpf(float(v)) for v in lam if v > 1e-12 * lam.max()]
    total = sum(lam)
    p = [v / total for v in lam]
    if q == 1:
        h = -sum(v * mpmath.log(v) for v in p)
    elif q == float("inf"):
        h = -mpmath.log(max(p))
    else:
        qq = mpmath.mpf(q)
        h = mpmath.log(sum(v**qq for v in p)) / (1 - qq)
    return float(mpmath.exp(h))


def _data(seed: int = 0, n: int = 64, d: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.linspace(1, 8, d)


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(b))


def _expect_value(fn, reference: float, rel: float = 1e-6) -> tuple[str, str]:
    value = float(fn())
    return ("correct" if _close(value, reference, rel) else "wrong", f"{value:.6g} (reference {reference:.6g})")


def _expect_error(fn, *words: str) -> tuple[str, str]:
    try:
        out = fn()
    except (ValueError, TypeError) as exc:
        message = str(exc)
        named = all(w.lower() in message.lower() for w in words)
        return ("clear" if named else "wrong", f"{type(exc).__name__}: {message.splitlines()[0][:140]}")
    return ("wrong", f"accepted, returned {str(out)[:80]!r}")


_tiny = None


def tiny():
    global _tiny
    if _tiny is None:
        from gvendi import GradientFeaturizer

        _tiny = GradientFeaturizer("tiny", dim=32, show_progress=False)
    return _tiny


_module = None


def module():
    global _module
    if _module is None:
        import evaluate

        import gvendi  # noqa: F401  (places the evaluate shim)

        _module = evaluate.load("gvendi")
    return _module


def _cli(argv: list[str], *words: str, want_json: bool = False) -> tuple[str, str]:
    from gvendi.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001
        return ("traceback", f"{type(exc).__name__}: {str(exc).splitlines()[0][:140] if str(exc) else ''}")
    if want_json:
        if code != 0:
            return ("wrong", f"exit {code}: {err.getvalue().strip()[:140]}")
        try:
            json.loads(out.getvalue(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError as exc:
            return ("wrong", f"not JSON: {exc} in {out.getvalue().strip()[:80]}")
        return ("correct", out.getvalue().strip()[:140])
    lines = [line for line in err.getvalue().splitlines() if line.startswith("gvendi") or "Error" in line]
    message = "\n".join(lines) or err.getvalue().strip()
    if code == 0:
        return ("wrong", f"exit 0: {out.getvalue().strip()[:100]}")
    if "Traceback" in message:
        return ("traceback", err.getvalue().strip().splitlines()[-1][:140])
    named = all(w.lower() in message.lower() for w in words)
    return ("clear" if named else "wrong", f"exit {code}: {message.splitlines()[0][:140] if message else ''}")


def cases(tmp: Path):
    from gvendi import score

    x = _data()
    yield "score q=1000", lambda: _expect_value(lambda: score(x, q=1000).value, _reference_vendi(x, 1000), 1e-6)
    q = 1 + 1e-13
    yield "score q=1+1e-13", lambda: _expect_value(lambda: score(x, q=q).value, _reference_vendi(x, q), 1e-6)
    yield "score q=1.5", lambda: _expect_value(lambda: score(x, q=1.5).value, _reference_vendi(x, 1.5), 1e-9)
    yield "score rows ×1e200", lambda: _expect_value(lambda: score(x * 1e200).value, _reference_vendi(x, 1), 1e-9)
    yield "score rows ×1e-200", lambda: _expect_value(lambda: score(x * 1e-200).value, _reference_vendi(x, 1), 1e-9)
    yield "score NaN row", lambda: _expect_error(lambda: score(np.array([[1.0, np.nan]])), "row 0")
    yield "score ragged list", lambda: _expect_error(lambda: score([[1.0, 2.0], [1.0]]), "row")
    yield "score q='2'", lambda: _expect_error(lambda: score(x, q="2"), "q")
    yield "score []", lambda: _expect_error(lambda: score([]), "0 rows")
    yield "score complex rows (fuzz)", lambda: _expect_error(lambda: score(x[:4] + 1j * x[:4]), "complex")
    yield (
        "score numeric string in a row (fuzz)",
        lambda: _expect_error(lambda: score([[1.0, 2.0], [3.0, "3"]]), "text"),
    )

    def m(**kw):
        return module().compute(**kw)

    common = {"proxy": "tiny", "dim": 32}
    yield (
        "compute 3 prompts 1 completion",
        lambda: _expect_error(lambda: m(prompts=["a", "b", "c"], completions=["d"], **common), "completions"),
    )
    yield (
        "compute seed=1.7",
        lambda: _expect_error(lambda: m(prompts=["a"], completions=["b"], seed=1.7, **common), "seed"),
    )
    yield (
        "compute seed='abc'",
        lambda: _expect_error(lambda: m(prompts=["a"], completions=["b"], seed="abc", **common), "seed"),
    )
    yield (
        "compute seed=None",
        lambda: _expect_error(lambda: m(prompts=["a"], completions=["b"], seed=None, **common), "seed"),
    )
    yield (
        "compute integer completions",
        lambda: _expect_error(lambda: m(prompts=["a", "b"], completions=[4, 5], **common), "completions"),
    )
    yield (
        "compute features= and prompts=",
        lambda: _expect_error(lambda: m(features=[[1.0, 0.0]], prompts=["a"]), "prompts"),
    )
    yield "compute features=[]", lambda: _expect_error(lambda: m(features=[]), "features")
    yield (
        "compute q=-1 with texts",
        lambda: _expect_error(lambda: m(prompts=["a"], completions=["b"], q=-1, **common), "q"),
    )

    def failed_add_batch_then_compute():
        mod = module()
        try:
            mod.add_batch(features=[[1.0, "x"]])
        except Exception:  # noqa: BLE001
            pass
        return mod.compute(features=[[1.0, 0.0], [0.0, 1.0]])["gvendi"]

    yield "failed add_batch leaves module usable", lambda: _expect_value(failed_add_batch_then_compute, 2.0)

    feat = tiny

    yield (
        "featurize unequal columns",
        lambda: _expect_error(
            lambda: feat().featurize({"prompt": ["a", "b", "c"], "completion": ["d"]}), "completion"
        ),
    )
    yield (
        "featurize out-of-vocab input_ids",
        lambda: _expect_error(
            lambda: feat().featurize({"input_ids": [[1, 2, 10**7]], "labels": [[-100, 2, 10**7]]}), "input_ids"
        ),
    )
    yield (
        "featurize chat message missing content",
        lambda: _expect_error(
            lambda: GradientFeaturizerChat().featurize(
                {"messages": [[{"role": "user"}, {"role": "assistant", "content": "x"}]]}
            ),
            "content",
        ),
    )

    yield (
        "featurize lone surrogate in text (fuzz)",
        lambda: _expect_error(
            lambda: feat().featurize([{"prompt": "p", "completion": "bad \ud800 text"}]), "completion"
        ),
    )
    yield (
        "featurize chat opening with the assistant (fuzz)",
        lambda: _expect_error(
            lambda: GradientFeaturizerChat().featurize({"messages": [[{"role": "assistant", "content": "x"}]]}),
            "messages",
        ),
    )

    def long_completion():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import logging

            records = []

            class H(logging.Handler):
                def emit(self, record):
                    records.append(record)

            h = H()
            logging.getLogger("gvendi").addHandler(h)
            try:
                feats = feat().featurize([{"prompt": "p", "completion": "word " * 5000}])
            finally:
                logging.getLogger("gvendi").removeHandler(h)
        said = [str(w.message) for w in caught] + [r.getMessage() for r in records]
        if any("context" in s or "position" in s for s in said):
            return ("clear", said[0][:140])
        return ("wrong", f"featurized silently to shape {feats.shape}")

    def long_completion_case():
        try:
            return long_completion()
        except (ValueError, TypeError) as exc:
            ok = "max_length" in str(exc) or "position" in str(exc) or "context" in str(exc)
            return ("clear" if ok else "wrong", str(exc)[:140])

    yield "featurize completion past the context", long_completion_case

    def pickled_proxy():
        import torch

        from gvendi import GradientFeaturizer
        from gvendi.data import TINY_PROXY_PATH

        folder = tmp / "pickled-proxy"
        folder.mkdir(exist_ok=True)
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
            (folder / name).write_bytes((Path(TINY_PROXY_PATH) / name).read_bytes())
        torch.save({"junk": torch.zeros(1)}, folder / "pytorch_model.bin")
        return GradientFeaturizer(str(folder), dim=8, show_progress=False)

    yield "proxy folder with a pickled pytorch_model.bin", lambda: _expect_error(pickled_proxy, "pytorch_model.bin")

    from gvendi.hub.card import check_license, check_repo_id

    yield "repo id org/name.git", lambda: _expect_error(lambda: check_repo_id("org/name.git"), ".git")
    yield "license cc-by-99.0", lambda: _expect_error(lambda: check_license("cc-by-99.0"), "license")

    def map_row_numbers(with_indices: bool):
        import datasets

        ds = datasets.Dataset.from_dict({"prompt": ["p"] * 6, "completion": ["ok"] * 5 + [""]})
        try:
            ds.map(feat(), batched=True, batch_size=4, with_indices=with_indices)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            # ds[5] is the bad row; without indices the message must say its number is counted within the batch
            ok = (
                "row 5" in message
                if with_indices
                else ("row 1" in message and "within this Dataset.map batch" in message)
            )
            return ("clear" if ok else "wrong", message.splitlines()[0][:140])
        except Exception as exc:  # noqa: BLE001
            return ("traceback", f"{type(exc).__name__}: {str(exc)[:120]}")
        return ("wrong", "accepted an empty completion")

    yield "Dataset.map error row (ds[5], 2nd batch)", lambda: map_row_numbers(False)
    yield "Dataset.map with_indices=True error row (ds[5])", lambda: map_row_numbers(True)

    empty = tmp / "empty.jsonl"
    empty.write_text("")
    yield "cli score empty .jsonl", lambda: _cli(["score", str(empty), "--proxy", "tiny", "--dim", "8"], "0 rows")
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": f"c {i}"}) + "\n" for i in range(4)))
    yield (
        "cli score --q inf --json",
        lambda: _cli(["score", str(data), "--proxy", "tiny", "--dim", "8", "--q", "inf", "--json"], want_json=True),
    )
    yield "cli score --device tpu", lambda: _cli(["score", str(data), "--proxy", "tiny", "--device", "tpu"], "device")
    ints = tmp / "ints.jsonl"
    ints.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": i}) + "\n" for i in range(3)))
    yield (
        "cli score integer completions",
        lambda: _cli(["score", str(ints), "--proxy", "tiny", "--dim", "8"], "completion"),
    )
    yield "cli score --q -1", lambda: _cli(["score", str(data), "--proxy", "tiny", "--dim", "8", "--q", "-1"], "q")


class GradientFeaturizerChat:
    def featurize(self, data):
        from gvendi import GradientFeaturizer

        return GradientFeaturizer("tiny", dim=8, messages_column="messages", show_progress=False).featurize(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in cases(Path(tmp)):
            try:
                outcome, detail = run()
            except Exception as exc:  # noqa: BLE001
                outcome, detail = (
                    "traceback",
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:140] if str(exc) else ''}",
                )
            rows.append({"case": name, "outcome": outcome, "detail": detail})
            print(f"{outcome:9}  {name}: {detail}", flush=True)
    tally = Counter(row["outcome"] for row in rows)
    print("tally:", dict(sorted(tally.items())))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "tally": tally}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
