"""Helpers for the GVendiCallback tests: a tiny causal LM, word-level curriculum data, a padding collator.

Also run as a script by ``tests/callback_ddp_script.py`` under torchrun, so it imports nothing from pytest.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from utils import make_word_tokenizer, tiny_qwen  # noqa: E402

VOCAB_WORDS = 200


def import_callbacks():
    """``gvendi.callbacks`` (top-level ``callbacks/`` installed under that name). An editable install made before
    setup.cfg mapped the package has no such module yet; then load the folder under that name, as the mapping does."""
    try:
        import gvendi.callbacks as module

        return module
    except ModuleNotFoundError:
        pass
    import gvendi

    folder = REPO / "callbacks"
    spec = importlib.util.spec_from_file_location(
        "gvendi.callbacks", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["gvendi.callbacks"] = module
    spec.loader.exec_module(module)
    gvendi.callbacks = module
    return module


def tokenizer():
    return make_word_tokenizer(VOCAB_WORDS)


def model(seed: int = 0):
    """A 2-layer random Qwen2 (hidden 32) in train mode."""
    return tiny_qwen(len(tokenizer()), seed=seed).train()


def templated_rows(n: int, *, words: range, template: int, stage: str | None = None, seed: int = 0) -> list[dict]:
    """``n`` (prompt, completion) rows of one template over a block of the vocabulary.

    Rows of one template share their structure and differ in the filled-in words, so their gradients overlap; two
    templates over disjoint word blocks give new gradient directions.
    """
    generator = torch.Generator().manual_seed(seed)
    words = list(words)
    rows = []
    for _ in range(n):
        a, b, c = (words[int(i)] for i in torch.randint(len(words), (3,), generator=generator))
        head = words[template % len(words)]
        prompt = f"w{head} w{a} w{b} w{head}"
        completion = f"w{c} w{a} w{head}" if template % 2 == 0 else f"w{b} w{c} w{c} w{a}"
        row = {"prompt": prompt, "completion": completion}
        if stage is not None:
            row["stage"] = stage
        rows.append(row)
    return rows


def encode(rows: list[dict], tok=None) -> list[dict]:
    """Add ``input_ids`` and ``labels`` (prompt masked with -100, completion + eos trained) to each row."""
    tok = tok or tokenizer()
    out = []
    for row in rows:
        prompt = tok(row["prompt"], add_special_tokens=False)["input_ids"]
        completion = tok(row["completion"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append({**row, "input_ids": prompt + completion, "labels": [-100] * len(prompt) + completion})
    return out


class PadCollator:
    """Right-pads ``input_ids`` (pad id), ``labels`` (-100) and builds ``attention_mask``."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), longest), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), longest), -100, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def training_args(output_dir, **overrides):
    from transformers import TrainingArguments

    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
        train_sampling_strategy="sequential",
        num_train_epochs=1,
    )
    defaults.update(overrides)
    return TrainingArguments(**defaults)
