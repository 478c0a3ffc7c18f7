"""Issue 15: bad input to the measurement, the featurizer, the proxy loader and ``gvendi score`` ends in one clear
``ValueError``/``TypeError`` naming the field (or a documented, correct value), never a traceback or a wrong number.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from gvendi import GradientFeaturizer


@pytest.fixture(scope="module")
def tiny():
    return GradientFeaturizer("tiny", dim=16, show_progress=False)


@pytest.fixture(scope="module")
def module():
    import evaluate

    import gvendi  # noqa: F401 - places the evaluate shim

    return evaluate.load("gvendi")


TEXTS = {"proxy": "tiny", "dim": 16}


# -- the evaluate measurement -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            dict(prompts=["a", "b", "c"], completions=["d"], **TEXTS),
            ValueError,
            "prompts has 3 items and completions 1",
        ),
        (dict(prompts=["a"], completions=["b"], seed=1.7, **TEXTS), TypeError, "seed must be an integer"),
        (dict(prompts=["a"], completions=["b"], seed="abc", **TEXTS), TypeError, "seed must be an integer"),
        (dict(prompts=["a"], completions=["b"], seed=None, **TEXTS), TypeError, "seed must be an integer"),
        (dict(prompts=["a"], completions=["b"], dim=0, proxy="tiny"), ValueError, "dim must be"),
        (dict(prompts=["a", "b"], completions=[4, 5], **TEXTS), TypeError, r"completions\[0\] is a int"),
        (dict(prompts="ab", completions=["c"], **TEXTS), TypeError, "prompts must be a list of strings"),
        (dict(features=[[1.0, 0.0]], prompts=["a"]), ValueError, "not both"),
        (dict(features=[]), ValueError, "features= is empty"),
        (dict(prompts=["a"], completions=["b"], q=-1, **TEXTS), ValueError, "q must be a number > 0"),
        (dict(prompts=["a"], completions=["b"], q=True, **TEXTS), ValueError, "q must be a number > 0"),
    ],
)
def test_measurement_checks_its_inputs_first(module, monkeypatch, kwargs, error, message):
    from gvendi import measurement

    monkeypatch.setattr(measurement, "_cached_featurizer", lambda *a: pytest.fail("featurized before checking"))
    with pytest.raises(error, match=message):
        module.compute(**kwargs)


def test_a_refused_add_batch_leaves_the_module_usable(module):
    with pytest.raises(TypeError, match=r"completions\[0\]"):
        module.add_batch(prompts=["a"], completions=[3])
    with pytest.raises(Exception):  # noqa: B017 - evaluate's own schema error
        module.add_batch(features=[[1.0, "x"]])
    assert round(module.compute(features=[[1.0, 0.0], [0.0, 1.0]])["gvendi"], 6) == 2.0


def test_integer_completions_are_refused_by_evaluate_and_the_cli_alike(module, tmp_path, capsys):
    from gvendi.cli import main

    with pytest.raises(TypeError, match="not a string"):
        module.compute(prompts=["p0", "p1"], completions=[0, 1], **TEXTS)
    data = tmp_path / "ints.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": i}) + "\n" for i in range(2)))
    assert main(["score", str(data), "--proxy", "tiny", "--dim", "8"]) == 2
    assert "must be a string" in capsys.readouterr().err


# -- the featurizer and the proxy -------------------------------------------------------------------------------------
def test_unequal_columns_are_refused(tiny):
    message = r"columns have different lengths \('prompt': 3, 'completion': 1\)"
    with pytest.raises(ValueError, match=message):
        tiny.featurize({"prompt": ["a", "b", "c"], "completion": ["d"]})


@pytest.mark.parametrize(
    ("ids", "labels", "message"),
    [
        ([1, 2, 10**7], [-100, 2, 3], "input_ids holds token id 10000000, outside the proxy's vocabulary"),
        ([1, -5, 3], [-100, 2, 3], "input_ids holds token id -5"),
        ([1, 2, 3], [-100, 2, 10**7], "labels holds 10000000"),
        ([1, "x", 3], [-100, 2, 3], "input_ids must be a list of integer token ids"),
    ],
)
def test_out_of_vocabulary_token_ids_are_named(tiny, ids, labels, message):
    with pytest.raises((ValueError, TypeError), match=message):
        tiny.featurize({"input_ids": [ids], "labels": [labels]})


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "user"}, {"role": "assistant", "content": "x"}], r"messages\[0\] has no 'content'"),
        ([{"content": "hi"}, {"role": "assistant", "content": "x"}], r"messages\[0\] has no 'role'"),
        ([{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}], r"messages\[0\]\.content"),
        (["hello", {"role": "assistant", "content": "x"}], r"messages\[0\] is a str"),
    ],
)
def test_chat_messages_are_checked(messages, message):
    featurizer = GradientFeaturizer("tiny", dim=8, messages_column="messages", show_progress=False)
    with pytest.raises((ValueError, TypeError), match=message):
        featurizer.featurize({"messages": [messages]})


def test_pickled_proxy_folder_is_refused(tmp_path):
    from gvendi.data import TINY_PROXY_PATH

    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((TINY_PROXY_PATH / name).read_bytes())
    torch.save({"junk": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pickled weights only \(pytorch_model\.bin\).*safetensors"):
        GradientFeaturizer(str(tmp_path), dim=8, show_progress=False)


@pytest.mark.parametrize(("device", "message"), [("tpu", "unknown device 'tpu'"), ("cuda:0", "CUDA GPU")])
def test_unsupported_device_is_a_clear_error(device, message):
    if device.startswith("cuda") and torch.cuda.is_available():
        device, message = f"cuda:{torch.cuda.device_count()}", "CUDA GPU"
    with pytest.raises(ValueError, match=message):
        GradientFeaturizer("tiny", dim=8, device=device, show_progress=False)


def test_rows_past_the_context_are_cut_with_a_warning_or_refused(tiny, caplog):
    long = [{"prompt": "p", "completion": "word " * 3000}]  # ≈ 3,000 tokens on a 1,024-position proxy
    with caplog.at_level(logging.WARNING, logger="gvendi"):
        cut = tiny.featurize(long)
    assert "longer than the proxy's context window of 1024 tokens were cut" in caplog.text
    again = GradientFeaturizer("tiny", dim=16, max_length=1024, show_progress=False).featurize(long)
    np.testing.assert_allclose(cut, again, atol=1e-5)  # truncate == an explicit max_length at the context
    strict = GradientFeaturizer("tiny", dim=16, truncation="error", show_progress=False)
    with pytest.raises(ValueError, match=r"row 1: \d+ tokens, past the proxy's context window of 1024"):
        strict.featurize(long)
    with pytest.raises(ValueError, match="truncation must be one of"):
        GradientFeaturizer("tiny", dim=8, truncation="sometimes", show_progress=False)


def test_batches_are_bounded_by_tokens_not_rows(monkeypatch):
    featurizer = GradientFeaturizer("tiny", dim=16, batch_size=8, max_batch_tokens=64, show_progress=False)
    seen = []
    run = featurizer._run_batch

    def spy(examples):
        seen.append(len(examples) * max(len(e.input_ids) for e in examples))
        return run(examples)

    monkeypatch.setattr(featurizer, "_run_batch", spy)
    rows = [{"prompt": f"p{i}", "completion": "word " * (2 + 5 * i)} for i in range(8)]
    feats = featurizer.featurize(rows)
    reference = GradientFeaturizer("tiny", dim=16, batch_size=1, show_progress=False).featurize(rows)
    np.testing.assert_allclose(feats, reference, atol=1e-5)  # features do not depend on the batching
    assert len(seen) > 1 and all(tokens <= 64 or tokens == max(seen) for tokens in seen)


def test_out_of_memory_halves_the_batch_then_names_the_row(monkeypatch):
    featurizer = GradientFeaturizer("tiny", dim=16, batch_size=4, show_progress=False)
    run = featurizer._run_batch

    def tight(examples):
        if max(len(e.input_ids) for e in examples) > 40:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        if len(examples) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return run(examples)

    monkeypatch.setattr(featurizer, "_run_batch", tight)
    short = [{"prompt": "p", "completion": f"answer {i}"} for i in range(3)]
    assert featurizer.featurize(short).shape == (3, 16)  # split down to one row per pass
    with pytest.raises(ValueError, match=r"row 3: \d+ tokens need more memory.*max_length"):
        featurizer.featurize(short + [{"prompt": "p", "completion": "word " * 60}])


def test_dataset_map_errors_name_the_row(tiny):
    import datasets

    ds = datasets.Dataset.from_dict({"prompt": ["p"] * 6, "completion": ["ok"] * 5 + [""]})
    with pytest.raises(ValueError, match=r"row 6: field 'completion' is empty"):
        ds.map(tiny, batched=True, batch_size=4, with_indices=True)
    with pytest.raises(ValueError, match=r"row 2: .*counted within this Dataset.map batch.*with_indices=True"):
        ds.map(tiny, batched=True, batch_size=4)
    mapped = ds.select(range(5)).map(tiny, batched=True, batch_size=4, with_indices=True)
    assert len(mapped["gvendi_grad"][0]) == 16


# -- gvendi score -----------------------------------------------------------------------------------------------------
@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": f"c {i}"}) + "\n" for i in range(4)))
    return path


def test_cli_q_inf_json_is_strict_json(data_file, capsys):
    from gvendi.cli import main

    assert main(["score", str(data_file), "--proxy", "tiny", "--dim", "8", "--q", "inf", "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert out["q"] == "inf" and 1.0 <= out["gvendi"] <= 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--q", "-1"], "q must be a number > 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_cli_settings_are_checked_before_loading(data_file, capsys, monkeypatch, argv, message):
    from gvendi import cli, io

    monkeypatch.setattr(io, "load_table", lambda *a, **k: pytest.fail("loaded the data before checking"))
    assert cli.main(["score", str(data_file), "--proxy", "tiny", "--dim", "8", *argv]) == 2  # a user error
    assert message in capsys.readouterr().err


def test_cli_empty_jsonl_is_a_clear_error(tmp_path, capsys):
    from gvendi.cli import main

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["score", str(empty), "--proxy", "tiny"]) == 2
    assert "is empty (0 rows)" in capsys.readouterr().err
