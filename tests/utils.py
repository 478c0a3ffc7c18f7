"""Shared test helpers."""

from gvendi.testing import CHAT_TEMPLATE, tiny_qwen  # noqa: F401  (the shared offline builders)
from gvendi.testing import word_tokenizer as make_word_tokenizer  # noqa: F401

# what a Trainer snippet in the README or the docs leaves to the reader (model, args, train_ds / train), as code a
# fresh process runs first: the bundled tiny proxy and 16 tokenized arithmetic rows in two stages
TRAINER_PRELUDE = """
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
from gvendi.data import TINY_PROXY_PATH

tokenizer = AutoTokenizer.from_pretrained(TINY_PROXY_PATH)
model = AutoModelForCausalLM.from_pretrained(TINY_PROXY_PATH)
rows = []
for i in range(16):
    prompt = tokenizer(f"What is {i}+{i}?")["input_ids"]
    completion = tokenizer(f" {i}+{i}={2 * i}.")["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + completion)[:24]
    labels = ([-100] * len(prompt) + completion)[:24]
    pad = 24 - len(ids)
    rows.append({"input_ids": ids + [tokenizer.pad_token_id or 0] * pad, "labels": labels + [-100] * pad,
                 "attention_mask": [1] * len(ids) + [0] * pad, "stage": "easy" if i < 8 else "hard"})
train_ds = train = Dataset.from_list(rows)
args = TrainingArguments(output_dir="trainer-out", max_steps=4, per_device_train_batch_size=4, logging_steps=2,
                         report_to=[], save_strategy="no", use_cpu=True, train_sampling_strategy="sequential")
"""


def exact_per_example_gradients(model, examples):
    """Full per-example gradients over every parameter, one backward per example: [N, |θ|] float64 (the reference)."""
    import torch

    from gvendi.gradients import per_example_loss

    rows = []
    params = [p for _, p in model.named_parameters()]
    for example in examples:
        model.zero_grad(set_to_none=True)
        ids = torch.tensor([example.input_ids])
        labels = torch.tensor([example.labels])
        per_example_loss(model(input_ids=ids).logits, labels).sum().backward()
        rows.append(torch.cat([p.grad.flatten() for p in params]).double())
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


def accuracy_records(diversity: str, n: int, seed: int = 0) -> list[dict[str, str]]:
    """The ``n`` records of the projection accuracy checks (tests/test_accuracy.py, benchmarks/bench_featurize.py).

    ``"low"``: six base answers of 12 words, each example swapping one random word of one of them (prompt: the base's
    first 6 words). ``"high"``: random 8-word prompts and 12-word completions. Words are ``w0 … w199``, drawn with
    ``np.random.default_rng(seed)``.
    """
    import numpy as np

    if diversity not in ("low", "high"):
        raise ValueError(f"diversity must be 'low' or 'high', not {diversity!r}")
    rng = np.random.default_rng(seed)

    def words(ids) -> str:
        return " ".join(f"w{int(i)}" for i in ids)

    if diversity == "high":
        return [
            {"prompt": words(rng.integers(0, 200, 8)), "completion": words(rng.integers(0, 200, 12))} for _ in range(n)
        ]
    bases = [rng.integers(0, 200, 12) for _ in range(6)]
    records = []
    for i in range(n):
        base = bases[i % len(bases)]
        answer = base.copy()
        answer[rng.integers(0, 12)] = rng.integers(0, 200)
        records.append({"prompt": words(base[:6]), "completion": words(answer)})
    return records


def real_width_qwen(*, layers: int = 1, vocab: int = 8192, seed: int = 0, max_positions: int = 1024):
    """A random Qwen2 with Qwen2.5-0.5B-Instruct's widths (hidden 896, MLP 4864, 14/2 heads, tied embeddings, q/k/v
    biases) and ``layers`` layers; the vocabulary defaults to 8,192 (pass 151_936 for the real one)."""
    from gvendi.proxy import random_proxy_like_default

    return random_proxy_like_default(
        seed=seed, num_hidden_layers=layers, vocab_size=vocab, max_position_embeddings=max_positions
    )


# fresh environments --------------------------------------------------------------------------------------------
def copy_of_the_source(tmp_path):
    """The project's files (what a fresh clone holds) in a temporary folder, so builds leave the checkout alone."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "clone"
    skip = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".ci-venv",
        "build",
        "dist",
        "site",
        "runs",
        "*.egg-info",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
    )
    shutil.copytree(root, source, ignore=skip)
    return source


def venv_borrowing_these_packages(tmp_path):
    """A brand-new virtual environment (no pip, no gvendi) that sees this environment's installed packages through a
    path file, so installing gvendi into it works offline (``--no-index``) and in seconds. gvendi's own editable
    finder and .pth files here do not run there (a path file adds folders, it does not process their .pth files).

    Returns:
        (python, purelib): the new interpreter and its site-packages folder.
    """
    import os
    import subprocess
    import sys
    import venv
    from pathlib import Path

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # every package of this environment but gvendi itself: a non-editable gvendi here (as CI installs it) would
    # otherwise shadow the one under test, since a path file's folders come before an editable install's finder
    borrowed = tmp_path / "borrowed" / "site-packages"  # so named: datasets/dill treat such modules as installed
    borrowed.mkdir(parents=True)
    for folder in (Path(p) for p in sys.path if p.endswith("site-packages")):
        for entry in folder.iterdir() if folder.is_dir() else ():
            name = entry.name.lower()
            if name.startswith(("gvendi", "__editable__")) or (borrowed / entry.name).exists():
                continue
            (borrowed / entry.name).symlink_to(entry)
    (Path(purelib) / "_borrowed.pth").write_text(f"{borrowed}\n")
    return python, Path(purelib)


def offline_pip(python) -> list:
    """``pip`` for the environment of ``python``, run by this interpreter's pip: no index, no build isolation."""
    import sys

    return [sys.executable, "-m", "pip", "--python", str(python)]
