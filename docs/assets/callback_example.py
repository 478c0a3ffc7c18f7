"""The worked example of docs/callback.md: a three-stage curriculum on a tiny model, with GVendiCallback.

    python docs/assets/callback_example.py            # writes callback-example/ and docs/assets/callback_curve.png

Offline and CPU-only (about a minute): the model is a randomly initialised 2-layer Qwen2 and the texts come from a
word-level tokenizer, so the numbers illustrate the mechanics, not a real fine-tune. Stage ``arithmetic`` is one
solution template; ``arithmetic-again`` repeats its examples; ``word-problems`` brings a new template over new words.
"""

import random
import shutil
from pathlib import Path

from datasets import Dataset
from gvendi.callbacks import GVendiCallback
from transformers import Trainer, TrainingArguments, set_seed

from gvendi.testing import tiny_qwen, word_tokenizer

# a word-level tokenizer over w0 … w299 (the tiny random Qwen2 is built below, seeded) ------------------------------
tokenizer = word_tokenizer(300, chat=False)


def rows(n, words, template, stage, seed):
    """``n`` (prompt, completion) pairs of one template, filled with words from ``words``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b, c = (f"w{rng.choice(words)}" for _ in range(3))
        prompt = f"w{template} {a} w{template + 1} {b}"
        completion = f"{c} {a} w{template + 2}" if template < 100 else f"{b} {c} {c} {a} w{template + 2}"
        out.append({"prompt": prompt, "completion": completion, "stage": stage})
    return out


def tokenize(row):
    prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    completion = tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": prompt + completion, "labels": [-100] * len(prompt) + completion}


def collate(features):
    import torch

    longest = max(len(f["input_ids"]) for f in features)
    batch = {"input_ids": [], "labels": [], "attention_mask": []}
    for f in features:
        pad = longest - len(f["input_ids"])
        batch["input_ids"].append(f["input_ids"] + [tokenizer.pad_token_id] * pad)
        batch["labels"].append(f["labels"] + [-100] * pad)
        batch["attention_mask"].append([1] * len(f["input_ids"]) + [0] * pad)
    return {key: torch.tensor(value) for key, value in batch.items()}


# the curriculum: stage 1, a repeat of stage 1, then a new template over new words --------------------------------
stage_one = rows(96, range(10, 90), template=3, stage="arithmetic", seed=0)
stage_two = [{**row, "stage": "arithmetic-again"} for row in stage_one]
stage_three = rows(96, range(150, 290), template=120, stage="word-problems", seed=1)
train = Dataset.from_list(stage_one + stage_two + stage_three).map(tokenize)

args = TrainingArguments(
    output_dir="callback-example",
    per_device_train_batch_size=8,
    num_train_epochs=1,
    learning_rate=1e-3,
    logging_steps=3,
    train_sampling_strategy="sequential",  # keep the curriculum order
    report_to=["tensorboard"],
    save_strategy="no",
    use_cpu=True,
    seed=0,
)
set_seed(0)  # the model's random initialisation, so the printed numbers reproduce
model = tiny_qwen(len(tokenizer), hidden=64, intermediate=128, tied=False, max_positions=64, seed=0)
trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collate)
callback = GVendiCallback(dim=256, stage_column="stage", trainer=trainer)
trainer.train()

final = callback.summary()["final"]
print(f"cumulative G-Vendi {final['cumulative']:.2f} over {final['examples']} examples")
for name, stage in final["stages"].items():
    print(f"  stage {name:>18}: {stage['gvendi']:.2f} over {stage['examples']} examples")
shutil.copy(Path(args.output_dir) / "gvendi_curve.png", Path(__file__).with_name("callback_curve.png"))
