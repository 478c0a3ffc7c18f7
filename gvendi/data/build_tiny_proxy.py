"""Build the bundled tiny proxy: a byte-level BPE tokenizer and a small Qwen2 trained on the bundled samples.

    python -m gvendi.data.build_tiny_proxy                        # rewrite gvendi/data/tiny-proxy/
    python -m gvendi.data.build_tiny_proxy --output-dir /tmp/tp   # build elsewhere
    python -m gvendi.data.build_tiny_proxy --epochs 1             # a quick smoke build

Everything is seeded; training runs on the CPU with 2 threads and takes a few minutes. The model sees each sample
row as one chat (user = prompt, assistant = completion) plus few-shot "write a new problem" chats, so it can stand in
for both the gradient proxy and a local generator in tests. Demo and test material only: it is not a real model.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import TINY_PROXY_PATH, load_math_sample, load_nli_sample

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
FEW_SHOT_INSTRUCTIONS = [
    "Here are some example problems:\n\n{shots}\n\nWrite one new problem in the same style.",
    "Example problems:\n\n{shots}\n\nCreate a new problem like these.",
    "{shots}\n\nWrite another problem similar to the ones above.",
]
NLI_FEW_SHOT_INSTRUCTIONS = [
    "Here are some example premise and hypothesis pairs:\n\n{shots}\n\nWrite one new pair in the same format.",
    "{shots}\n\nWrite another premise and hypothesis like the ones above.",
]


@dataclass
class TinyProxyConfig:
    """Every setting of the build, written into the model card."""

    seed: int = 0
    """Seed of data shuffling, few-shot sampling and weight initialisation."""
    vocab_size: int = 3072
    """Target BPE vocabulary size, special tokens included (the trainer may stop short on a small corpus)."""
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    max_length: int = 512
    """Longest training sequence in tokens; longer chats are cut."""
    epochs: int = 5
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    math_solution_fraction: float = 0.2
    """Share of the math solution chats drawn (afresh, seeded) into each epoch; the other groups go in whole."""
    math_few_shot: int = 400
    """Few-shot "write a new math problem" chats added to the training set."""
    nli_few_shot: int = 100
    """Few-shot "write a new NLI pair" chats added to the training set."""
    num_threads: int = 2


def _shots_text(items: list[str]) -> str:
    return "\n\n".join(f"Problem {i + 1}: {text}" for i, text in enumerate(items))


def training_chats(config: TinyProxyConfig) -> dict[str, list[tuple[str, str]]]:
    """The (user, assistant) pairs the proxy is trained on, by group.

    Args:
        config (`TinyProxyConfig`): supplies the seed and the number of few-shot chats.

    Returns:
        `dict[str, list[tuple[str, str]]]`: prompts and completions in a fixed order, under ``"math"`` and ``"nli"``
        (one chat per sample row) and ``"math_few_shot"`` and ``"nli_few_shot"`` (write-a-new-one chats).
    """
    math_rows, nli_rows = load_math_sample(), load_nli_sample()
    chats = {
        "math": [(row["prompt"], row["completion"]) for row in math_rows],
        "nli": [(row["prompt"], row["completion"]) for row in nli_rows],
        "math_few_shot": [],
        "nli_few_shot": [],
    }
    rng = random.Random(f"{config.seed}:few-shot")
    by_template: dict[str, list[str]] = {}
    for row in math_rows:
        by_template.setdefault(row["template"], []).append(row["problem"])
    templates = sorted(by_template)
    for _ in range(config.math_few_shot):
        # Half the chats draw every shot and the target from one template, half mix templates.
        if rng.random() < 0.5:
            pool = by_template[rng.choice(templates)]
            picked = rng.sample(pool, rng.randint(2, 4) + 1)
        else:
            picked = [rng.choice(by_template[t]) for t in rng.sample(templates, rng.randint(2, 4) + 1)]
        shots, target = picked[:-1], picked[-1]
        chats["math_few_shot"].append((rng.choice(FEW_SHOT_INSTRUCTIONS).format(shots=_shots_text(shots)), target))
    pairs = [f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}" for row in nli_rows]
    for _ in range(config.nli_few_shot):
        picked = rng.sample(pairs, rng.randint(2, 4) + 1)
        shots = "\n\n".join(picked[:-1])
        chats["nli_few_shot"].append((rng.choice(NLI_FEW_SHOT_INSTRUCTIONS).format(shots=shots), picked[-1]))
    return chats


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer with single-digit numbers, trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    Args:
        texts (`list[str]`): the training corpus.
        vocab_size (`int`): target vocabulary size, the three special tokens included.

    Returns:
        `transformers.PreTrainedTokenizerFast`: with ``<|endoftext|>`` as eos and pad and the chat template set.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # Qwen-style: every digit is its own token, so numbers share ten embedding rows instead of one row per number.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=ENDOFTEXT,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer, output_dir: Path, model_max_length: int) -> None:
    """Save ``tokenizer.json`` and a ``tokenizer_config.json`` that older and newer transformers both read.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` and a separate ``chat_template.jinja``, which 4.x
    cannot load; the config written here names ``PreTrainedTokenizerFast`` and carries the chat template inline.
    """
    tokenizer.backend_tokenizer.save(str(output_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": ENDOFTEXT,
        "pad_token": ENDOFTEXT,
        "additional_special_tokens": [IM_START, IM_END],
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (output_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def encode_chat(tokenizer, prompt: str, completion: str, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of one user/assistant chat and its labels, with everything up to the assistant header masked.

    Args:
        tokenizer: the proxy's tokenizer.
        prompt (`str`): the user turn.
        completion (`str`): the assistant turn.
        max_length (`int`): longest sequence kept.

    Returns:
        `tuple[list[int], list[int]]`: input ids and labels (``-100`` on the prompt and the assistant header; the
        completion and its closing ``<|im_end|>\\n`` are scored).
    """
    user = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": completion}], tokenize=False)
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if ids[: len(head_ids)] != head_ids:
        raise RuntimeError(f"the chat's prefix tokenizes differently from its header: {prompt[:60]!r}")
    labels = [-100] * len(head_ids) + ids[len(head_ids) :]
    return ids[:max_length], labels[:max_length]


def build_model(config: TinyProxyConfig, tokenizer):
    """A randomly initialised ``Qwen2ForCausalLM`` with tied embeddings, seeded by ``config.seed``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
        use_cache=True,
    )
    torch.manual_seed(config.seed)
    return Qwen2ForCausalLM(model_config)


def _batches(examples: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random, pad_id: int):
    """Length-bucketed, shuffled, right-padded batches (similar lengths share a batch to save compute)."""
    import torch

    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        width = max(len(examples[i][0]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            seq, lab = examples[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(seq)] = 1
        yield ids, mask, labels


def _completion_loss(model, ids, mask, labels):
    """Mean next-token cross-entropy over the scored tokens, projecting only those positions onto the vocabulary.

    Same value as ``model(..., labels=labels).loss``, but the few-shot chats' long prompts never reach the
    ``[B, T, vocab]`` logits tensor, which is most of the cost of a tiny model.
    """
    import torch.nn.functional as F

    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, T, H]
    targets = labels[:, 1:]  # [B, T-1]
    scored = targets != -100
    logits = model.lm_head(hidden[:, :-1][scored])  # [S, V]
    return F.cross_entropy(logits, targets[scored])


Example = tuple[list[int], list[int]]


def _epoch_examples(groups: dict[str, list[Example]], config: TinyProxyConfig, rng: random.Random) -> list[Example]:
    """One epoch's examples: every group whole, except a ``math_solution_fraction`` draw of the math solutions."""
    examples = []
    for name, group in groups.items():
        if name == "math" and config.math_solution_fraction < 1.0:
            group = rng.sample(group, round(config.math_solution_fraction * len(group)))
        examples += group
    return examples


def train(model, groups: dict[str, list[Example]], config: TinyProxyConfig, pad_id: int) -> list[float]:
    """Train with AdamW, linear warm-up then cosine decay; returns the mean loss of each epoch."""
    import torch

    rng = random.Random(f"{config.seed}:batches")
    epochs = [_epoch_examples(groups, config, rng) for _ in range(config.epochs)]
    total = sum(math.ceil(len(examples) / config.batch_size) for examples in epochs)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.98),
    )

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    epoch_losses = []
    for epoch, examples in enumerate(epochs):
        start, losses = time.perf_counter(), []
        for ids, mask, labels in _batches(examples, config.batch_size, rng, pad_id):
            loss = _completion_loss(model, ids, mask, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
        epoch_losses.append(sum(losses) / len(losses))
        print(f"epoch {epoch + 1}/{config.epochs}: loss {epoch_losses[-1]:.4f} ({time.perf_counter() - start:.0f}s)")
    model.eval()
    return epoch_losses


def completion_loss(model, examples: list[Example]) -> float:
    """Mean per-example completion loss (the quantity whose gradient G-Vendi measures), in nats per token."""
    import torch

    with torch.no_grad():
        losses = [
            _completion_loss(
                model, torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), torch.tensor([lab])
            )
            for ids, lab in examples
        ]
    return float(sum(losses) / len(losses))


def write_model_card(output_dir: Path, config: TinyProxyConfig, stats: dict) -> None:
    """Write ``README.md``: what the model is, how it was built, the settings and the final loss."""
    settings = "\n".join(f"| `{key}` | {value} |" for key, value in asdict(config).items())
    measured = "\n".join(f"| {key} | {value} |" for key, value in stats.items())
    card = f"""---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags:
- gvendi
- test-fixture
---

# gvendi tiny proxy

A {stats["parameters"]:,}-parameter `Qwen2ForCausalLM` and a byte-level BPE tokenizer, bundled with gvendi as
**demo and test material. It is not a real model**: it has seen only gvendi's two synthetic sample files
(`math_sample.jsonl`, `nli_sample.jsonl`) and knows nothing else. Use it to run gvendi offline in examples,
tests and smoke runs (G-Vendi features, the Trainer callback, the synthesis loop's local generator);
use a real instruct model (the paper's proxy is `Qwen/Qwen2.5-0.5B-Instruct`) for real measurements.

## Format

Qwen-style chat: `<|im_start|>user\\n{{prompt}}<|im_end|>\\n<|im_start|>assistant\\n{{completion}}<|im_end|>\\n`.
`<|endoftext|>` is the tokenizer's eos and pad token; generation stops at `<|im_end|>` (see
`generation_config.json`). Math prompts are bare problems and completions step-by-step solutions ending in
`\\boxed{{answer}}`; NLI prompts follow `gvendi.data.nli_prompt_completion` and completions are one label word.

## How it was built

`python -m gvendi.data.build_tiny_proxy` (CPU, {config.num_threads} threads, seeded):

1. Train the tokenizer with `tokenizers` (byte-level BPE, one token per digit as in Qwen) on the chat-formatted
   training set.
2. Train a randomly initialised Qwen2 (tied embeddings, float32) with AdamW, warm-up then cosine decay, on one
   chat per sample row (user = prompt, assistant = completion) plus few-shot "write a new problem / pair"
   chats; the loss covers the assistant turn only. Each epoch sees every NLI and few-shot chat but only a
   seeded `math_solution_fraction` share of the math solutions.
3. Save with `save_pretrained(safe_serialization=True)` and a generation config.

## Why the math solutions are only lightly trained

The paper's proxy has never been trained on the data it measures. A tiny model fitted to these solutions
predicts their template wording perfectly, so what is left of each example's gradient is the digits it cannot
compute, which differ from example to example: G-Vendi then barely depends on the template. Kept at a non-expert
loss on the solutions, the proxy's gradients follow solution structure instead. With the default settings,
exact per-example gradients over all parameters, N = 64 math rows drawn from 1, 2, 4 and 8 templates
(20 draws), gave a mean G-Vendi of 9.3, 14.8, 20.8 and 27.3; the mean gradient cosine is 0.46 within a
template and -0.01 across templates. These numbers describe the bundled copy; rebuild with other settings
and they change.

| setting | value |
|---|---|
{settings}

| result | value |
|---|---|
{measured}
"""
    (output_dir / "README.md").write_text(card, encoding="utf-8")


def build_tiny_proxy(output_dir: str | Path | None = None, config: TinyProxyConfig | None = None) -> Path:
    """Build the tokenizer and model, train, and save everything to ``output_dir``.

    Args:
        output_dir (`str` or `Path`, *optional*): target folder; defaults to `gvendi.data.TINY_PROXY_PATH`.
        config (`TinyProxyConfig`, *optional*): build settings; defaults to `TinyProxyConfig()`.

    Returns:
        `Path`: the folder written.
    """
    import torch
    from transformers import GenerationConfig

    config = config or TinyProxyConfig()
    out = Path(output_dir) if output_dir is not None else TINY_PROXY_PATH
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.num_threads)

    chats = training_chats(config)
    corpus = [
        f"{IM_START}user\n{prompt}{IM_END}\n{IM_START}assistant\n{completion}{IM_END}\n"
        for group in chats.values()
        for prompt, completion in group
    ]
    tokenizer = train_tokenizer(corpus, config.vocab_size)
    groups = {
        name: [encode_chat(tokenizer, p, c, config.max_length) for p, c in group] for name, group in chats.items()
    }
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)

    model = build_model(config, tokenizer)
    losses = train(model, groups, config, pad_id)

    for stale in ("chat_template.jinja", "special_tokens_map.json"):
        (out / stale).unlink(missing_ok=True)
    save_tokenizer(tokenizer, out, config.max_position_embeddings)
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids(IM_END), pad_id],
        pad_token_id=pad_id,
        do_sample=True,
        temperature=1.0,
        top_p=0.95,
        max_new_tokens=256,
    )
    model.save_pretrained(out, safe_serialization=True)
    for path in out.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; package data should be world-readable
    stats = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary size": len(tokenizer),
        "training chats (math / nli / math few-shot / nli few-shot)": " / ".join(
            str(len(group)) for group in chats.values()
        ),
        "mean training loss, first epoch": f"{losses[0]:.4f}",
        "mean training loss, final epoch": f"{losses[-1]:.4f}",
        **{
            f"final completion loss, {name} chats": f"{completion_loss(model, group):.4f}"
            for name, group in groups.items()
        },
        "torch / transformers / tokenizers": _versions(),
    }
    write_model_card(out, config, stats)
    return out


def _versions() -> str:
    import tokenizers
    import torch
    import transformers

    return f"{torch.__version__} / {transformers.__version__} / {tokenizers.__version__}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir", default=None, help="where to write the model (default: gvendi/data/tiny-proxy)"
    )
    parser.add_argument("--epochs", type=int, default=TinyProxyConfig.epochs, help="training epochs")
    parser.add_argument("--seed", type=int, default=TinyProxyConfig.seed, help="seed of everything random")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = build_tiny_proxy(args.output_dir, TinyProxyConfig(seed=args.seed, epochs=args.epochs))
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {out} ({size / 2**20:.1f} MiB) in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
