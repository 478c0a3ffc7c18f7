"""The bundled material in gvendi/data: the two samples, their builder, and the tiny proxy."""

import json
import re
from collections import Counter

import pytest
import torch

from gvendi.data import (
    DATA_DIR,
    MATH_SAMPLE_PATH,
    NLI_SAMPLE_PATH,
    TINY_PROXY_PATH,
    load_math_sample,
    load_nli_sample,
    math_prompt_completion,
    math_templates,
    nli_prompt_completion,
)
from gvendi.data.build_samples import build_samples

LABELS = {"entailment", "neutral", "contradiction"}
BOXED = re.compile(r"\\boxed\{([^{}]*)\}\s*$")


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def math_rows():
    return _rows(MATH_SAMPLE_PATH)


@pytest.fixture(scope="module")
def nli_rows():
    return _rows(NLI_SAMPLE_PATH)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_PROXY_PATH)


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(TINY_PROXY_PATH, output_loading_info=True)
    assert not any(info.get(key) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model.eval()


def test_paths_point_into_the_package():
    assert DATA_DIR.is_dir()
    for path in (MATH_SAMPLE_PATH, NLI_SAMPLE_PATH, TINY_PROXY_PATH):
        assert path.exists() and path.parent == DATA_DIR


def test_math_sample_rows(math_rows):
    assert len(math_rows) >= 600
    assert len({r["id"] for r in math_rows}) == len(math_rows)
    assert len({r["problem"] for r in math_rows}) == len(math_rows)
    for i, row in enumerate(math_rows):
        assert list(row) == ["id", "template", "problem", "solution", "answer"]
        assert row["id"] == f"math-{i + 1:04d}"
        match = BOXED.search(row["solution"])
        assert match is not None and match.group(1) == row["answer"], row["id"]
        assert row["solution"].count("\n") >= 2, f"{row['id']}: the solution should have several steps"
        float(row["answer"])  # every answer is a number


def test_math_templates_have_many_varied_rows(math_rows):
    counts = Counter(r["template"] for r in math_rows)
    assert len(counts) >= 10
    assert min(counts.values()) >= 64  # enough for a one-template subset of 64
    for template in counts:
        problems = [r["problem"] for r in math_rows if r["template"] == template]
        openings = {p.split()[1] for p in problems}  # the word after the name or number varies with the phrasing
        assert len(openings) >= 2, f"{template}: problems should not all share one sentence"
    assert math_templates() == sorted(counts)


def test_nli_sample_rows(nli_rows):
    assert len(nli_rows) >= 600
    assert len({r["id"] for r in nli_rows}) == len(nli_rows)
    assert len({(r["premise"], r["hypothesis"]) for r in nli_rows}) == len(nli_rows)
    for i, row in enumerate(nli_rows):
        assert list(row) == ["id", "phenomenon", "premise", "hypothesis", "label"]
        assert row["id"] == f"nli-{i + 1:04d}"
        assert row["label"] in LABELS
    assert len({r["phenomenon"] for r in nli_rows}) >= 6
    labels = Counter(r["label"] for r in nli_rows)
    assert set(labels) == LABELS and min(labels.values()) >= len(nli_rows) // 4


def test_loaders_add_prompt_and_completion(math_rows, nli_rows):
    math = load_math_sample()
    assert len(math) == len(math_rows)
    assert math[0]["prompt"] == math_rows[0]["problem"] and math[0]["completion"] == math_rows[0]["solution"]
    nli = load_nli_sample()
    assert len(nli) == len(nli_rows)
    assert nli[0]["completion"] == nli_rows[0]["label"]
    assert nli_rows[0]["premise"] in nli[0]["prompt"] and nli_rows[0]["hypothesis"] in nli[0]["prompt"]


def test_prompt_formats():
    assert math_prompt_completion("2 + 2?", "4.\n\\boxed{4}") == {"prompt": "2 + 2?", "completion": "4.\n\\boxed{4}"}
    pair = nli_prompt_completion("A dog ran.", "An animal ran.", "entailment")
    assert pair == {
        "prompt": "Premise: A dog ran.\nHypothesis: An animal ran.\n"
        "Answer with one word: entailment, neutral or contradiction.",
        "completion": "entailment",
    }
    with pytest.raises(ValueError, match="label must be one of"):
        nli_prompt_completion("A dog ran.", "An animal ran.", "yes")


def test_sample_builder_is_deterministic(tmp_path):
    math_path, nli_path = build_samples(tmp_path)
    assert math_path.read_bytes() == MATH_SAMPLE_PATH.read_bytes()
    assert nli_path.read_bytes() == NLI_SAMPLE_PATH.read_bytes()


def test_bundled_files_are_small():
    assert MATH_SAMPLE_PATH.stat().st_size < 500_000
    assert NLI_SAMPLE_PATH.stat().st_size < 500_000
    proxy_bytes = sum(f.stat().st_size for f in TINY_PROXY_PATH.iterdir() if f.is_file())
    assert proxy_bytes <= 20 * 2**20
    names = {f.name for f in TINY_PROXY_PATH.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names
    assert {"tokenizer_config.json", "README.md"} <= names


def test_tiny_proxy_tokenizer_and_chat_template(tokenizer):
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert {"<|im_start|>", "<|im_end|>"} <= set(tokenizer.all_special_tokens)
    assert 1500 <= len(tokenizer) <= 4096
    chat = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "\\boxed{5}"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    assert text == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n\\boxed{5}<|im_end|>\n"
    head = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert head == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    assert ids[: len(head_ids)] == head_ids  # the prompt's tokens are a prefix of the chat's tokens


def test_tiny_proxy_model_loads_and_generates(tokenizer, model):
    assert model.config.model_type == "qwen2" and model.config.tie_word_embeddings
    assert model.config.vocab_size == len(tokenizer)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eos = model.generation_config.eos_token_id
    assert im_end in (eos if isinstance(eos, list) else [eos])
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": load_math_sample()[0]["problem"]}], add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=96, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 0 < len(new) <= 96
    assert tokenizer.decode(new, skip_special_tokens=True).strip()


def test_tiny_proxy_fits_its_samples_and_masks_the_prompt(tokenizer, model):
    from gvendi.data.build_tiny_proxy import encode_chat

    row = load_math_sample()[0]
    ids, labels = encode_chat(tokenizer, row["prompt"], row["completion"], 512)
    head = tokenizer.apply_chat_template(
        [{"role": "user", "content": row["prompt"]}], add_generation_prompt=True, tokenize=False
    )
    n_head = len(tokenizer(head, add_special_tokens=False)["input_ids"])
    assert labels[:n_head] == [-100] * n_head and labels[n_head:] == ids[n_head:]
    assert tokenizer.decode(ids[n_head:]) == row["completion"] + "<|im_end|>\n"
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    # Trained, but on purpose not to expert level (see the model card); an untrained model scores log(1868) ≈ 7.5.
    assert loss.item() < 4.0
