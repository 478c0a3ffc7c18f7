"""GradientFeaturizer as a user meets it: formats, errors, Dataset.map and its cache."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from utils import make_word_tokenizer, tiny_qwen

from gvendi import GradientFeaturizer
from gvendi.projection import DEFAULT_PROJECTION
from gvendi.proxy import IGNORE_INDEX

TOKENIZER = make_word_tokenizer(40)
RECORDS = [
    {"prompt": "w1 w2 w3", "completion": "w4 w5"},
    {"prompt": "w6", "completion": "w7 w8 w9 w10"},
    {"prompt": "w11 w12", "completion": "w13"},
]


def _featurizer(**kwargs):
    kwargs.setdefault("dim", 32)
    return GradientFeaturizer(tiny_qwen(len(TOKENIZER)), tokenizer=TOKENIZER, show_progress=False, **kwargs)


def test_chat_format_masks_everything_up_to_the_assistant_header():
    featurizer = _featurizer()
    example = featurizer.encode({"prompt": ["w1 w2"], "completion": ["w3 w4"]})[0]
    tokens = TOKENIZER.convert_ids_to_tokens(example.input_ids)
    scored = [t for t, label in zip(tokens, example.labels) if label != IGNORE_INDEX]
    assert tokens[:6] == ["<|im_start|>", "user", "w1", "w2", "<|im_end|>", "<|im_start|>"]
    assert scored == ["w3", "w4", "<|im_end|>"]  # completion plus the template's closing token


def test_plain_format_masks_the_prompt():
    featurizer = _featurizer(use_chat_template=False)
    example = featurizer.encode({"prompt": ["w1 w2"], "completion": ["w3"]})[0]
    assert TOKENIZER.convert_ids_to_tokens(example.input_ids) == ["w1", "w2", "w3", "<|im_end|>"]
    assert example.labels[:2] == [IGNORE_INDEX, IGNORE_INDEX]


def test_messages_column_scores_assistant_turns():
    featurizer = _featurizer(messages_column="messages")
    conversation = [
        {"role": "user", "content": "w1"},
        {"role": "assistant", "content": "w2"},
        {"role": "user", "content": "w3"},
        {"role": "assistant", "content": "w4 w5"},
    ]
    example = featurizer.encode({"messages": [conversation]})[0]
    tokens = TOKENIZER.convert_ids_to_tokens(example.input_ids)
    assert [t for t, label in zip(tokens, example.labels) if label != IGNORE_INDEX] == [
        "w2",
        "<|im_end|>",
        "w4",
        "w5",
        "<|im_end|>",
    ]
    assert featurizer.featurize({"messages": [conversation]}).shape == (1, 32)


def test_unit_rows_and_provenance():
    featurizer = _featurizer(dim=48, seed=3)
    features = featurizer.featurize(RECORDS)
    assert features.shape == (3, 48) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    assert featurizer.provenance["seed"] == 3 and featurizer.provenance["projection"] == DEFAULT_PROJECTION
    assert "gvendi_version" in featurizer.provenance


@pytest.mark.parametrize(
    "data, kwargs, error, message",
    [
        ([{"question": "w1", "completion": "w2"}], {}, ValueError, r"missing column\(s\) \['prompt'\]"),
        ([{"prompt": "w1", "completion": 7}], {}, TypeError, r"row 1: field 'completion' must be a string"),
        (
            [{"prompt": "w1", "completion": "w2"}, {"prompt": "w1", "completion": "  "}],
            {},
            ValueError,
            "row 2: field 'completion' is empty",
        ),
        (
            [{"prompt": "w1 w2 w3 w4 w5 w6", "completion": "w2"}],
            {"max_length": 6},
            ValueError,
            "row 1: no completion token is left",
        ),
        ([], {}, ValueError, "0 rows"),
    ],
)
def test_bad_rows_fail_before_compute(data, kwargs, error, message):
    featurizer = _featurizer(**kwargs)
    with pytest.raises(error, match=message):
        featurizer.featurize(data)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"projection": "kronecker"}, "unknown projection 'kronecker'"), ({"dim": 0}, "dim must be an integer ≥ 1")],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _featurizer(**kwargs)


def test_model_object_needs_its_tokenizer():
    with pytest.raises(ValueError, match="its tokenizer must be passed"):
        GradientFeaturizer(tiny_qwen(len(TOKENIZER)))


def test_uncached_hub_proxy_offline_names_the_ways_out():
    with pytest.raises(ValueError) as info:
        GradientFeaturizer("nobody/not-a-cached-model")
    message = str(info.value)  # phrased for Python (the CLI names the same ways out as --proxy tiny, see test_cli)
    assert "nobody/not-a-cached-model" in message and "proxy='tiny'" in message and "proxy='/path/to/model'" in message
    assert "`hf download nobody/not-a-cached-model`" in message and "huggingface-cli" not in message
    assert "--" not in message


def test_hub_proxy_without_network_fails_at_once(monkeypatch):
    """HF_HUB_OFFLINE unset and no network: one probe, then the cache only (no minute of "Retrying in Ns")."""
    from gvendi import proxy

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(proxy, "_hub_reachable", lambda timeout=3.0: False)
    import huggingface_hub.utils._http as http

    monkeypatch.setattr(http, "get_session", lambda: pytest.fail("a Hub request was made"))
    with pytest.raises(ValueError, match="cannot be reached .no network.") as info:
        GradientFeaturizer("Qwen/Qwen2.5-0.5B-Instrukt")  # a typo, uncached
    assert "hf download Qwen/Qwen2.5-0.5B-Instrukt" in str(info.value)


@pytest.mark.parametrize("path", ["/nonexistent/model", "./no-such-folder", "models/qwen/missing"])
def test_missing_local_proxy_folder_is_reported_as_a_missing_folder(path):
    with pytest.raises(ValueError, match="does not exist") as info:
        GradientFeaturizer(path)
    assert "repo id" not in str(info.value).lower()


def test_the_model_loads_on_first_use_and_the_fingerprint_does_not_change(word_proxy_dir):
    """Constructing a featurizer reads the tokenizer only (a cached Dataset.map never loads the model); its
    fingerprint is the one the loaded model gives (so caches written before stay valid)."""
    from gvendi.proxy import load_proxy

    featurizer = GradientFeaturizer(word_proxy_dir, dim=16, show_progress=False)
    assert featurizer._loaded is None
    before = featurizer.fingerprint
    loaded = load_proxy(word_proxy_dir)
    assert featurizer.provenance["proxy_digest"] == loaded.digest
    assert featurizer.provenance["proxy_revision"] == loaded.revision
    featurizer.featurize(RECORDS)
    assert featurizer._loaded is not None and featurizer.fingerprint == before


def test_encode_given_one_row_says_so():
    featurizer = _featurizer(dim=16)
    with pytest.raises(TypeError, match="looks like a single row"):
        featurizer.encode({"prompt": "w1", "completion": "w2"})
    with pytest.raises(TypeError, match="got one row"):
        featurizer.featurize({"prompt": "w1", "completion": "w2"})


def test_dataset_map_adds_fixed_length_column_and_reuses_cache(word_proxy_dir, tmp_path):
    import datasets

    datasets.Dataset.from_list(RECORDS * 4).save_to_disk(tmp_path / "ds")
    ds = datasets.load_from_disk(tmp_path / "ds")  # file-backed, so map results are cached
    featurizer = GradientFeaturizer(word_proxy_dir, dim=16, show_progress=False)
    mapped = ds.map(featurizer, batched=True, batch_size=5, features=featurizer.features(ds.features))
    assert mapped.features["gvendi_grad"] == datasets.List(datasets.Value("float32"), length=16)
    np.testing.assert_allclose(np.asarray(mapped["gvendi_grad"]), featurizer.featurize(ds), atol=1e-5)
    assert np.ptp(np.asarray(mapped["gvendi_grad"])[:3], axis=0).max() > 1e-3, "distinct examples, distinct features"

    calls = []
    original = featurizer._run_batch
    featurizer._run_batch = lambda examples: calls.append(1) or original(examples)
    again = ds.map(featurizer, batched=True, batch_size=5, features=featurizer.features(ds.features))
    assert calls == [] and again.cache_files == mapped.cache_files  # served from the cache, no compute

    changed = {
        "seed": GradientFeaturizer(word_proxy_dir, dim=16, seed=1, show_progress=False),
        "dim": GradientFeaturizer(word_proxy_dir, dim=17, show_progress=False),
        "projection": GradientFeaturizer(word_proxy_dir, dim=16, projection="dense", show_progress=False),
        "proxy": GradientFeaturizer(
            tiny_qwen(len(TOKENIZER), seed=1), tokenizer=TOKENIZER, dim=16, show_progress=False
        ),
    }
    for name, other in changed.items():
        assert other.fingerprint != featurizer.fingerprint, name
    assert (
        GradientFeaturizer(word_proxy_dir, dim=16, batch_size=2, show_progress=False).fingerprint
        == featurizer.fingerprint
    )


def test_dataset_map_cache_is_reused_in_a_new_process(word_proxy_dir, tmp_path):
    """The second map, in a fresh interpreter, must not compute anything (its forward pass is made to fail)."""
    script = textwrap.dedent(
        f"""
        import sys, datasets
        from gvendi import GradientFeaturizer
        ds = datasets.Dataset.from_list({RECORDS!r} * 4)
        ds = datasets.load_from_disk({str(tmp_path / "ds")!r}) if len(sys.argv) > 1 else ds
        if len(sys.argv) == 1:
            ds.save_to_disk({str(tmp_path / "ds")!r})
            ds = datasets.load_from_disk({str(tmp_path / "ds")!r})
        featurizer = GradientFeaturizer({word_proxy_dir!r}, dim=16, show_progress=False)
        if len(sys.argv) > 1:
            def refuse(examples):
                raise SystemExit("recomputed instead of using the cache")
            featurizer._run_batch = refuse
        out = ds.map(featurizer, batched=True, batch_size=5, features=featurizer.features(ds.features))
        print(out.cache_files[0]["filename"])
        """
    )
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(
        [sys.executable, "-c", script, "again"], capture_output=True, text=True, env=env, timeout=300
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert first.stdout.strip().splitlines()[-1] == second.stdout.strip().splitlines()[-1]


def test_with_rank_runs_on_cpu(word_proxy_dir):
    import datasets

    ds = datasets.Dataset.from_list(RECORDS)
    featurizer = GradientFeaturizer(word_proxy_dir, dim=8, show_progress=False)
    mapped = ds.map(featurizer, batched=True, with_rank=True, features=featurizer.features(ds.features))
    assert np.asarray(mapped["gvendi_grad"]).shape == (3, 8)
    assert torch.device("cpu") == next(featurizer.model.parameters()).device
