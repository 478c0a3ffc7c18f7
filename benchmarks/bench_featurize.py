"""Featurization speed, memory and accuracy, side by side in one process (issue 6, items 1–2).

    python benchmarks/bench_featurize.py                       # full run (~15 min on 2 shared CPU cores)
    python benchmarks/bench_featurize.py --examples 32 --skip-accuracy   # quicker speed-only run
    python benchmarks/bench_featurize.py --shape real          # the paper's proxy widths (~40 min on 2 CPU cores)

Speed: CPU, 2 threads, a randomly initialised Qwen2 (hidden 256, 4 layers, vocab 8192, intermediate 1024, 4 heads /
2 KV heads, tied embeddings; ~6.1M parameters), 256-token examples (64 prompt tokens masked), dim 1024, the same
examples for every method:

- plain forward + backward of the same batches, no projection (the practical limit);
- gvendi ``factored`` (the default), ``sketch`` and ``dense``;
- the paper-faithful reference (``methods.PaperReference``: one backward per example, full ``.grad``, dense
  Rademacher projection), on fewer examples, reported per example;
- bergson (PyPI) at dim 1024: ``per_module`` (its default two-sided projection per Linear module, rank 16 and 64,
  then a dense map of the concatenation to 1024) and ``global`` (its single-sided dense projection of every module
  to 1024).

The fast methods run interleaved batch by batch (order rotated every round) and report medians of per-batch times;
the ratio to the plain forward+backward is the median of per-batch paired ratios. Peak memory is the process RSS
above its level when the method's batch began, sampled every 2 ms in a thread (``_common.PeakRSS``), measured in a
separate pass.

Accuracy (foundation issue, item 3): a tiny random Qwen2 (hidden 64, 2 layers, ~87k parameters) where exact
per-example gradients fit in memory, N = 256, dim = 1024, seeds 0, 1, 2, a low- and a high-diversity set (the sets of
tests/test_accuracy.py). Each method's G-Vendi (mean over seeds) is compared with the exact gradients times an
independently drawn dense Rademacher matrix (the paper's definition) and with the exact, unprojected value.

Writes benchmarks/results/featurize.json and featurize.md.

``--shape real``: the paper's proxy shape (Qwen2.5-0.5B-Instruct: hidden 896, MLP 4864, 14/2 heads, vocabulary
151,936, tied embeddings; random weights, ``--layers`` of its 24 layers, 1 by default on a CPU), 128- and
512-token examples, batches of 2. The default projection and the plain forward+backward run interleaved over
``--rounds`` batches (order rotated); a frozen forward+backward (activation gradients only: the physical floor of any
method that reads per-token layer inputs and output gradients) runs with them; ``sketch``, ``dense`` and bergson are
timed on one batch each. Then the peak memory of one 4,096-token example. Writes featurize_real.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/utils.py: the accuracy sets

import _common  # noqa: E402  (sets thread/OpenMP environment first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from methods import (  # noqa: E402
    BergsonMethod,
    GvendiMethod,
    PaperReference,
    bergson_available,
    plain_forward_backward,
    random_examples,
)
from utils import accuracy_records  # noqa: E402

from gvendi import score  # noqa: E402

VOCAB, HIDDEN, LAYERS, INTERMEDIATE = 8192, 256, 4, 1024
LENGTH, PROMPT, DIM, BATCH = 256, 64, 1024, 8


# speed -------------------------------------------------------------------------------------------------------------
def speed(args) -> dict:
    model = _common.tiny_qwen(VOCAB, hidden=HIDDEN, layers=LAYERS, intermediate=INTERMEDIATE, max_positions=1024)
    tokenizer = _common.word_tokenizer(200)
    n_params = sum(p.numel() for p in model.parameters())
    examples = random_examples(args.examples, length=LENGTH, prompt_length=PROMPT, vocab=VOCAB, seed=1)
    batches = [examples[i : i + BATCH] for i in range(0, len(examples), BATCH)]

    fast = {
        "plain": lambda b: plain_forward_backward(model, b),
        "gvendi_factored": GvendiMethod(model, tokenizer, projection="factored", dim=DIM).features,
        "gvendi_sketch": GvendiMethod(model, tokenizer, projection="sketch", dim=DIM).features,
    }
    ok, why_not = bergson_available()
    bergson_note = None if ok else f"bergson could not be imported: {why_not}"
    if ok:
        try:
            for rank in args.bergson_ranks:
                fast[f"bergson_per_module_r{rank}"] = BergsonMethod(
                    model, mode="per_module", dim=DIM, rank=rank
                ).features
        except Exception as err:  # noqa: BLE001
            bergson_note = f"bergson per_module failed: {type(err).__name__}: {err}"

    # warm-up (caches, allocator), then interleaved timing with rotated order
    for fn in fast.values():
        fn(batches[0])
    times = {key: [] for key in fast}
    keys = list(fast)
    for round_index in range(args.rounds):
        for batch_index, batch in enumerate(batches):
            shift = (round_index * len(batches) + batch_index) % len(keys)
            for key in keys[shift:] + keys[:shift]:
                seconds, _ = _common.timed(lambda key=key, batch=batch: fast[key](batch))
                times[key].append(seconds)
        print(
            f"round {round_index + 1}/{args.rounds}: "
            + ", ".join(f"{k} {_common.median(v):.2f}s" for k, v in times.items()),
            flush=True,
        )

    memory = {}
    for key, fn in fast.items():
        with _common.PeakRSS() as peak:
            fn(batches[0])
        memory[key] = peak.delta_mb

    rows = {}
    for key in fast:
        per_batch = _common.median(times[key])
        rows[key] = {
            "examples_per_s": BATCH / per_batch,
            "tokens_per_s": BATCH * LENGTH / per_batch,
            "seconds_per_batch": per_batch,
            "ratio_to_plain": _common.median([t / p for t, p in zip(times[key], times["plain"])]),
            "peak_rss_delta_mb": memory[key],
            "examples_timed": len(times[key]) * BATCH,
            "measured": "interleaved, median of per-batch times",
        }

    # the paper-faithful reference: a real run on fewer examples
    reference = PaperReference(model, dim=DIM, seed=0, group=BATCH)
    ref_examples = examples[: args.reference_examples]
    with _common.PeakRSS() as peak:
        seconds, _ = _common.timed(lambda: reference.features(ref_examples))
    plain_seconds = rows["plain"]["seconds_per_batch"] * len(ref_examples) / BATCH
    rows["reference"] = {
        "examples_per_s": len(ref_examples) / seconds,
        "tokens_per_s": len(ref_examples) * LENGTH / seconds,
        "seconds_per_batch": seconds * BATCH / len(ref_examples),
        "ratio_to_plain": seconds / plain_seconds,
        "peak_rss_delta_mb": peak.delta_mb,
        "examples_timed": len(ref_examples),
        "measured": f"one run of {len(ref_examples)} examples (one backward each, projected in groups of {BATCH})",
    }
    print(f"reference: {seconds:.1f}s for {len(ref_examples)} examples", flush=True)

    # bergson's global (single-sided dense) projection: one batch
    if ok and not args.skip_bergson_global:
        try:
            method = BergsonMethod(model, mode="global", dim=DIM)
            with _common.PeakRSS() as peak:
                seconds, _ = _common.timed(lambda: method.features(batches[0]))
            rows["bergson_global"] = _row(
                [seconds],
                BATCH,
                LENGTH,
                rows["plain"]["seconds_per_batch"],
                peak.delta_mb,
                "one batch (its projection blocks are regenerated every batch)",
            )
            print(f"bergson global: {seconds:.1f}s per batch", flush=True)
        except Exception as err:  # noqa: BLE001
            rows["bergson_global"] = {"error": f"{type(err).__name__}: {err}"}

    # gvendi dense: |θ|·k = 6.2e9 matrix entries generated once per batch (seeded PCG64 chunks), timed on one batch
    method = GvendiMethod(model, tokenizer, projection="dense", dim=DIM).features
    with _common.PeakRSS() as peak:
        seconds, _ = _common.timed(lambda: method(batches[0]))
    rows["gvendi_dense"] = _row(
        [seconds],
        BATCH,
        LENGTH,
        rows["plain"]["seconds_per_batch"],
        peak.delta_mb,
        "one batch (its matrix is generated once per batch and applied to all 8 examples)",
    )
    print(f"gvendi dense: {seconds:.1f}s per batch", flush=True)
    return {
        "model": {
            "vocab": VOCAB,
            "hidden": HIDDEN,
            "layers": LAYERS,
            "intermediate": INTERMEDIATE,
            "parameters": n_params,
            "tokens_per_example": LENGTH,
            "prompt_tokens_masked": PROMPT,
            "batch_size": BATCH,
            "dim": DIM,
        },
        "methods": rows,
        "bergson_note": bergson_note,
    }


# speed at the paper's proxy shape ---------------------------------------------------------------------------------
def frozen_forward_backward(model: torch.nn.Module, examples) -> None:
    """Forward + backward with every weight frozen (only activation gradients flow): the floor under any method that
    needs each layer's per-token output gradients."""
    from methods import pad_batch

    from gvendi.gradients import per_example_loss

    ids, labels, mask = pad_batch(examples)
    saved = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        with torch.enable_grad():
            embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
            logits = model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
            per_example_loss(logits, labels).sum().backward()
    finally:
        for p, flag in zip(model.parameters(), saved):
            p.requires_grad_(flag)


def _row(seconds: list[float], batch: int, length: int, plain: list[float] | float, memory: float | None, note: str):
    per_batch = _common.median(seconds)
    ratio = _common.median([t / p for t, p in zip(seconds, plain)]) if isinstance(plain, list) else per_batch / plain
    return {
        "examples_per_s": batch / per_batch,
        "tokens_per_s": batch * length / per_batch,
        "seconds_per_batch": per_batch,
        "ratio_to_plain": ratio,
        "peak_rss_delta_mb": memory,
        "batches_timed": len(seconds),
        "measured": note,
    }


def speed_real(args) -> dict:
    from gvendi.projection import DEFAULT_PROJECTION
    from gvendi.proxy import DEFAULT_PROXY_CONFIG, random_proxy_like_default

    vocab = DEFAULT_PROXY_CONFIG["vocab_size"]
    model = random_proxy_like_default(num_hidden_layers=args.layers, max_position_embeddings=8192)
    tokenizer = _common.word_tokenizer(200)
    n_params = sum(p.numel() for p in model.parameters())
    batch_size = args.real_batch
    ok, why_not = bergson_available()
    results: dict = {}
    for length in args.lengths:
        prompt = length // 4
        examples = random_examples(
            batch_size * (args.rounds + 1), length=length, prompt_length=prompt, vocab=vocab, seed=length
        )
        batches = [examples[i : i + batch_size] for i in range(0, len(examples), batch_size)]
        default = GvendiMethod(model, tokenizer, projection=DEFAULT_PROJECTION, dim=DIM).features
        fast = {
            "plain": lambda b: plain_forward_backward(model, b),
            "frozen": lambda b: frozen_forward_backward(model, b),
            f"gvendi_{DEFAULT_PROJECTION}": default,
        }
        for fn in fast.values():  # warm-up
            fn(batches[0])
        times = {key: [] for key in fast}
        keys = list(fast)
        for index, batch in enumerate(batches[1:]):
            shift = index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                times[key].append(_common.timed(lambda key=key, batch=batch, fast=fast: fast[key](batch))[0])
            print(
                f"real {length} tokens, batch {index + 1}/{args.rounds}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                flush=True,
            )
        memory = {}
        for key, fn in fast.items():
            with _common.PeakRSS() as peak:
                fn(batches[0])
            memory[key] = peak.delta_mb
        rows = {
            key: _row(
                times[key],
                batch_size,
                length,
                times["plain"],
                memory[key],
                f"interleaved with plain over {args.rounds} batches, median of paired ratios",
            )
            for key in fast
        }
        plain_median = rows["plain"]["seconds_per_batch"]
        slow: dict = {}
        if length in args.slow_lengths:
            slow["gvendi_sketch"] = GvendiMethod(model, tokenizer, projection="sketch", dim=DIM).features
            slow["gvendi_dense"] = GvendiMethod(model, tokenizer, projection="dense", dim=DIM).features
        if ok:
            for rank in args.bergson_ranks:
                slow[f"bergson_per_module_r{rank}"] = BergsonMethod(
                    model, mode="per_module", dim=DIM, rank=rank
                ).features
        for key, fn in slow.items():
            try:
                if key.startswith("bergson"):
                    fn(batches[0])  # warm-up: module discovery, projection matrices
                with _common.PeakRSS() as peak:
                    seconds, _ = _common.timed(lambda fn=fn, batch=batches[1]: fn(batch))
                rows[key] = _row(
                    [seconds],
                    batch_size,
                    length,
                    plain_median,
                    peak.delta_mb,
                    "one batch, over the median plain batch time",
                )
                print(f"real {length} tokens: {key} {seconds:.1f}s", flush=True)
            except Exception as err:  # noqa: BLE001
                rows[key] = {"error": f"{type(err).__name__}: {err}"}
        results[str(length)] = rows

    long_memory = {}
    if args.long_length:
        (example,) = random_examples(
            1, length=args.long_length, prompt_length=args.long_length // 8, vocab=vocab, seed=7
        )
        default = GvendiMethod(model, tokenizer, projection=DEFAULT_PROJECTION, dim=DIM).features
        for key, fn in {
            "plain": lambda b: plain_forward_backward(model, b),
            f"gvendi_{DEFAULT_PROJECTION}": default,
        }.items():
            with _common.PeakRSS() as peak:
                seconds, _ = _common.timed(lambda fn=fn: fn([example]))
            long_memory[key] = {"seconds": seconds, "peak_rss_delta_mb": peak.delta_mb, "peak_rss_mb": peak.peak_mb}
            print(f"{args.long_length} tokens: {key} {seconds:.1f}s, peak RSS +{peak.delta_mb:.0f} MB", flush=True)
    return {
        "model": {
            **{k: DEFAULT_PROXY_CONFIG[k] for k in ("vocab_size", "hidden_size", "intermediate_size")},
            "layers": args.layers,
            "parameters": n_params,
            "batch_size": batch_size,
            "dim": DIM,
        },
        "lengths": results,
        "long_example": {"tokens": args.long_length, **long_memory},
        "bergson_note": None if ok else f"bergson could not be imported: {why_not}",
    }


def layer_scaling(args) -> dict:
    """Seconds per batch of the default projection for models of the real shape with different depths, interleaved
    batch by batch in one process (so the machine's load hits every depth alike): the per-layer increment and the
    fixed part (embedding, LM head) that the 24-layer cost is extrapolated from."""
    from gvendi.projection import DEFAULT_PROJECTION
    from gvendi.proxy import DEFAULT_PROXY_CONFIG, random_proxy_like_default

    tokenizer = _common.word_tokenizer(200)
    methods = {
        layers: GvendiMethod(
            random_proxy_like_default(num_hidden_layers=layers, max_position_embeddings=8192),
            tokenizer,
            projection=DEFAULT_PROJECTION,
            dim=DIM,
        ).features
        for layers in args.layer_scaling
    }
    out: dict = {}
    for length in args.lengths:
        examples = random_examples(
            args.real_batch * (args.rounds + 1),
            length=length,
            prompt_length=length // 4,
            vocab=DEFAULT_PROXY_CONFIG["vocab_size"],
            seed=length,
        )
        batches = [examples[i : i + args.real_batch] for i in range(0, len(examples), args.real_batch)]
        for fn in methods.values():
            fn(batches[0])
        times: dict = {layers: [] for layers in methods}
        keys = list(methods)
        for index, batch in enumerate(batches[1:]):
            shift = index % len(keys)
            for layers in keys[shift:] + keys[:shift]:
                times[layers].append(_common.timed(lambda fn=methods[layers], batch=batch: fn(batch))[0])
        medians = {layers: _common.median(v) / args.real_batch for layers, v in times.items()}
        low, high = min(medians), max(medians)
        per_layer = (medians[high] - medians[low]) / (high - low)
        fixed = medians[low] - low * per_layer
        out[str(length)] = {
            "seconds_per_example": {str(k): v for k, v in medians.items()},
            "per_layer_s": per_layer,
            "fixed_s": fixed,
            "extrapolated_24_layers_s": fixed + 24 * per_layer,
        }
        print(
            f"{length} tokens: {medians}, per layer {per_layer:.3f}s, 24 layers {fixed + 24 * per_layer:.2f}s",
            flush=True,
        )
    return out


REAL_LABELS = {
    "plain": "plain forward+backward",
    "frozen": "frozen forward+backward (floor)",
    "gvendi_factored": "**gvendi `factored` (default)**",
    "gvendi_sketch": "gvendi `sketch`",
    "gvendi_dense": "gvendi `dense` (paper-faithful)",
    **{f"bergson_per_module_r{r}": f"bergson `per_module` rank {r} → 1024" for r in (8, 16, 32, 64, 128)},
}


def render_real(payload: dict) -> str:
    machine, speed_payload = payload["machine"], payload["speed_real"]
    m = speed_payload["model"]
    header = ["tokens", "method", "examples/s", "tokens/s", "× plain fwd+bwd", "peak RSS Δ (MB)", "timed"]
    rows = []
    for length, methods_ in speed_payload["lengths"].items():
        for key, label in REAL_LABELS.items():
            r = methods_.get(key)
            if r is None:
                continue
            if "error" in r:
                rows.append([length, label, r["error"], "", "", "", ""])
                continue
            digits = 3 if r["examples_per_s"] < 1 else 2
            rows.append(
                [
                    length,
                    label,
                    _fmt(r["examples_per_s"], digits),
                    _fmt(r["tokens_per_s"], 0),
                    _fmt(r["ratio_to_plain"]),
                    _fmt(r["peak_rss_delta_mb"], 0),
                    f"{r['batches_timed']} batch(es)",
                ]
            )
    lines = [
        "# Featurization at the paper's proxy shape (CPU)",
        "",
        f"Random Qwen2 with Qwen2.5-0.5B-Instruct's widths: hidden {m['hidden_size']}, MLP {m['intermediate_size']}, "
        f"14/2 heads, vocabulary {m['vocab_size']:,} (tied), {m['layers']} of its 24 layers "
        f"({m['parameters']:,} parameters); batches of {m['batch_size']}, a quarter of each example's tokens masked "
        "as "
        f"prompt, dim {m['dim']}. CPU: {machine['cpu']}, {machine['torch_threads']} torch threads, "
        f"OMP_WAIT_POLICY={machine['omp_wait_policy']}, load average at start {machine['load_average_1_5_15']} "
        "(shared "
        f"machine); torch {machine['torch']}; {machine['date_utc']} UTC.",
        "",
        _common.markdown_table(header, rows),
        "",
        "- × plain fwd+bwd: interleaved rows give the median of per-batch paired ratios; one-batch rows their time "
        "over "
        "the median plain batch time.",
        "- The frozen forward+backward computes activation gradients only (no weight gradient): the floor of any "
        "method "
        "that projects each layer's per-token inputs and output gradients.",
        "- `sketch` forms each example's vocabulary × hidden LM-head gradient; `factored` never forms a per-example "
        "matrix of any layer (embedding and LM head included).",
    ]
    long = speed_payload.get("long_example", {})
    if long.get("tokens"):
        cells = [
            f"{key}: {v['seconds']:.1f} s, peak RSS +{v['peak_rss_delta_mb']:,.0f} MB (process "
            f"{v['peak_rss_mb']:,.0f} MB)"
            for key, v in long.items()
            if isinstance(v, dict)
        ]
        lines.append(f"- One {long['tokens']:,}-token example (batch 1): " + "; ".join(cells) + ".")
    if speed_payload.get("bergson_note"):
        lines.append(f"- {speed_payload['bergson_note']}")
    lines.append("\nRe-run: `python benchmarks/bench_featurize.py --shape real`.")
    return "\n".join(lines)


# accuracy ----------------------------------------------------------------------------------------------------------
N_ACC, SEEDS = 256, (0, 1, 2)


def _exact_gradients(model, examples) -> torch.Tensor:
    from gvendi.gradients import per_example_loss

    params = [p for _, p in model.named_parameters()]
    rows = []
    for example in examples:
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            per_example_loss(
                model(input_ids=torch.tensor([example.input_ids])).logits, torch.tensor([example.labels])
            ).sum().backward()
        rows.append(torch.cat([p.grad.flatten() for p in params]).double())
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


def _exact_vendi(grads: torch.Tensor) -> float:
    units = grads / grads.norm(dim=1, keepdim=True)
    eig = torch.linalg.eigvalsh(units @ units.T / len(units)).clamp_min(0).numpy()
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


def accuracy(args) -> dict:
    tokenizer = _common.word_tokenizer(200)
    model = _common.tiny_qwen(len(tokenizer), hidden=64, layers=2, intermediate=128)
    probe = GvendiMethod(model, tokenizer, dim=DIM).featurizer
    ok, _ = bergson_available()
    report = {}
    for name in ("low", "high"):
        records = accuracy_records(name, N_ACC)
        examples = probe.encode({k: [r[k] for r in records] for k in records[0]})
        grads = _exact_gradients(model, examples)
        exact = _exact_vendi(grads)
        values: dict[str, list[float]] = {"independent_dense": []}
        for seed in SEEDS:
            generator = torch.Generator().manual_seed(10_000 + seed)
            rademacher = torch.randint(0, 2, (grads.shape[1], DIM), generator=generator, dtype=torch.int8)
            values["independent_dense"].append(score(grads.float() @ (rademacher.float() * 2 - 1)).value)
            methods = {
                "gvendi_factored": GvendiMethod(model, tokenizer, projection="factored", dim=DIM, seed=seed).features,
                "gvendi_sketch": GvendiMethod(model, tokenizer, projection="sketch", dim=DIM, seed=seed).features,
                "gvendi_dense": GvendiMethod(model, tokenizer, projection="dense", dim=DIM, seed=seed).features,
                "reference": PaperReference(model, dim=DIM, seed=seed, group=64).features,
            }
            if ok:
                for rank in args.bergson_ranks:
                    methods[f"bergson_per_module_r{rank}"] = BergsonMethod(
                        model, mode="per_module", dim=DIM, rank=rank, seed=seed
                    ).features
                methods["bergson_global"] = BergsonMethod(model, mode="global", dim=DIM, seed=seed).features
            for key, fn in methods.items():
                values.setdefault(key, []).append(score(fn(examples)).value)
        reference_value = float(np.mean(values["independent_dense"]))
        report[name] = {"exact": exact, "parameters": grads.shape[1]}
        for key, vals in values.items():
            mean = float(np.mean(vals))
            report[name][key] = {
                "gvendi": mean,
                "per_seed": vals,
                "vs_independent_dense_pct": 100 * (mean / reference_value - 1),
                "vs_exact_pct": 100 * (mean / exact - 1),
            }
        print(
            f"accuracy {name}: exact {exact:.2f}, "
            + ", ".join(f"{k} {v['gvendi']:.2f}" for k, v in report[name].items() if isinstance(v, dict)),
            flush=True,
        )
    return report


# report ------------------------------------------------------------------------------------------------------------
LABELS = {
    "plain": "plain forward+backward (no projection)",
    "gvendi_factored": "**gvendi `factored` (default)**",
    "gvendi_sketch": "gvendi `sketch`",
    "gvendi_dense": "gvendi `dense`",
    "reference": "paper-faithful reference",
    **{f"bergson_per_module_r{r}": f"bergson `per_module` rank {r} → 1024" for r in (8, 16, 32, 64, 128)},
    "bergson_global": "bergson `global` 1024",
}


def _fmt(value, digits=2):
    if value is None:
        return "–"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render(payload: dict) -> str:
    speed_rows, acc = payload.get("speed", {}).get("methods", {}), payload.get("accuracy", {})
    reference_rate = speed_rows.get("reference", {}).get("examples_per_s")
    header = [
        "method",
        "examples/s",
        "tokens/s",
        "× plain fwd+bwd",
        "speed-up vs reference",
        "peak RSS Δ (MB)",
        "G-Vendi err. vs indep. dense, low / high",
        "vs exact, low / high",
    ]
    rows = []
    for key, label in LABELS.items():
        s = speed_rows.get(key, {})
        if key not in speed_rows and key not in acc.get("low", {}):
            continue
        if "error" in s:
            rows.append([label, s["error"], "", "", "", "", "", ""])
            continue
        accuracy_cells = ["–", "–"]
        if key in acc.get("low", {}) and key != "plain":
            low, high = acc["low"][key], acc["high"][key]
            accuracy_cells = [
                f"{low['vs_independent_dense_pct']:+.1f}% / {high['vs_independent_dense_pct']:+.1f}%",
                f"{low['vs_exact_pct']:+.1f}% / {high['vs_exact_pct']:+.1f}%",
            ]
        digits = 3 if s.get("examples_per_s", 1) < 1 else 2
        rows.append(
            [
                label,
                _fmt(s.get("examples_per_s"), digits),
                _fmt(s.get("tokens_per_s"), 0),
                _fmt(s.get("ratio_to_plain")),
                f"{s['examples_per_s'] / reference_rate:.3g}×" if reference_rate and s.get("examples_per_s") else "–",
                _fmt(s.get("peak_rss_delta_mb"), 0),
                *accuracy_cells,
            ]
        )
    machine = payload["machine"]
    lines = [
        "# Featurization benchmark",
        "",
        f"CPU: {machine['cpu']}, {machine['torch_threads']} torch threads, "
        f"OMP_WAIT_POLICY={machine['omp_wait_policy']}; "
        f"load average at start {machine['load_average_1_5_15']} (machine shared with other jobs); torch "
        f"{machine['torch']}; "
        f"{machine['date_utc']} UTC.",
    ]
    if "speed" in payload:
        m = payload["speed"]["model"]
        lines += [
            "",
            f"Speed: random Qwen2, hidden {m['hidden']}, {m['layers']} layers, vocab {m['vocab']}, intermediate "
            f"{m['intermediate']}, tied embeddings ({m['parameters']:,} parameters); {m['tokens_per_example']}-token "
            f"examples ({m['prompt_tokens_masked']} prompt tokens masked), batch {m['batch_size']}, dim {m['dim']}.",
        ]
    if acc:
        lines += [
            "",
            f"Accuracy: tiny random Qwen2 ({acc['low']['parameters']:,} parameters), N = {N_ACC}, dim = {DIM}, mean "
            f"of seeds {list(SEEDS)}; exact G-Vendi low = {acc['low']['exact']:.2f}, high = "
            f"{acc['high']['exact']:.2f}; "
            f"independent dense = {acc['low']['independent_dense']['gvendi']:.2f} / "
            f"{acc['high']['independent_dense']['gvendi']:.2f} "
            f"({acc['low']['independent_dense']['vs_exact_pct']:+.1f}% / "
            f"{acc['high']['independent_dense']['vs_exact_pct']:+.1f}% vs exact).",
        ]
    lines += ["", _common.markdown_table(header, rows), ""]
    notes = []
    for key, s in speed_rows.items():
        if isinstance(s, dict) and "measured" in s:
            notes.append(f"- {LABELS.get(key, key)}: {s['measured']}.")
    if payload.get("speed", {}).get("bergson_note"):
        notes.append(f"- {payload['speed']['bergson_note']}")
    notes.append(
        "- × plain fwd+bwd: median of per-batch paired ratios (interleaved methods) or the method's time over the "
        "median "
        "plain batch time; speed-up vs reference: examples/s over the reference's examples/s."
    )
    notes.append(
        "- The reference projects the full gradients of 8 examples at once (one generated matrix per group); "
        "projecting each example alone, as a batch-size-1 script does, regenerates the matrix per example."
    )
    notes.append("- Peak RSS Δ: resident memory above the process level when the batch began, sampled every 2 ms.")
    notes.append("- bergson hooks `nn.Linear` modules only: its features miss the input-embedding and norm gradients.")
    return "\n".join(lines + notes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64, help="examples timed per fast method (multiple of 8).")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the examples.")
    parser.add_argument("--reference-examples", type=int, default=8)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-bergson-global", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--bergson-ranks",
        type=lambda text: [int(r) for r in text.split(",")],
        default=[16, 64],
        help="ranks of bergson's per-module projection to compare (comma-separated).",
    )
    parser.add_argument("--shape", choices=["toy", "real"], default="toy", help="toy widths, or the paper's proxy.")
    parser.add_argument("--layers", type=int, default=1, help="--shape real: layers of the 24 (CPU: 1).")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512], help="--shape real: tokens per example.")
    parser.add_argument(
        "--slow-lengths",
        type=int,
        nargs="*",
        default=[128],
        help="--shape real: lengths at which sketch and dense (minutes per batch) are timed.",
    )
    parser.add_argument("--real-batch", type=int, default=2, help="--shape real: examples per batch.")
    parser.add_argument(
        "--layer-scaling",
        type=int,
        nargs="*",
        default=None,
        help="--shape real: time the default at these depths only, interleaved (e.g. 1 3).",
    )
    parser.add_argument(
        "--long-length", type=int, default=4096, help="--shape real: tokens of the memory probe (0: skip)."
    )
    parser.add_argument("--name", default=None, help="results file name (default: featurize or featurize_real).")
    parser.add_argument("--render-only", action="store_true", help="rewrite results/<name>.md from its JSON file.")
    args = parser.parse_args(argv)
    args.name = args.name or ("featurize_real" if args.shape == "real" else "featurize")
    if args.render_only:
        payload = json.loads((_common.RESULTS / f"{args.name}.json").read_text())
        markdown = render_real(payload) if "speed_real" in payload else render(payload)
        (_common.RESULTS / f"{args.name}.md").write_text(markdown.rstrip() + "\n")
        print(markdown)
        return 0
    torch.set_num_threads(args.threads)
    payload = {"machine": _common.machine_info(args.threads), "started": time.time()}
    if args.shape == "real" and args.layer_scaling:
        payload["layer_scaling"] = layer_scaling(args)
        payload["seconds"] = time.time() - payload.pop("started")
        scaling = payload["layer_scaling"]
        depths = list(next(iter(scaling.values()))["seconds_per_example"])
        header = [
            "tokens",
            *(f"s/example, {d} layer(s)" for d in depths),
            "per layer",
            "fixed",
            "24 layers (extrapolated)",
        ]
        table = [
            [
                t,
                *(f"{r['seconds_per_example'][d]:.2f}" for d in depths),
                f"{r['per_layer_s']:.3f}",
                f"{r['fixed_s']:.2f}",
                f"{r['extrapolated_24_layers_s']:.1f}",
            ]
            for t, r in scaling.items()
        ]
        markdown = "\n".join(
            [
                "# Cost per layer at the paper's proxy shape (CPU)",
                "",
                f"The default projection on random Qwen2 models with Qwen2.5-0.5B-Instruct's widths and vocabulary at "
                f"depths {', '.join(depths)}, interleaved batch by batch in one process (batches of "
                f"{args.real_batch}, "
                f"{args.rounds} batches, medians); {payload['machine']['cpu']}, {args.threads} threads, "
                f"{payload['machine']['date_utc']} UTC. Re-run: `python benchmarks/bench_featurize.py --shape real "
                f"--layer-scaling {' '.join(depths)} --name {args.name}`.",
                "",
                _common.markdown_table(header, table),
            ]
        )
        _common.write_results(args.name, payload, markdown)
        print(markdown)
        return 0
    if args.shape == "real":
        payload["speed_real"] = speed_real(args)
        payload["seconds"] = time.time() - payload.pop("started")
        markdown = render_real(payload)
        _common.write_results(args.name, payload, markdown)
        print(markdown)
        return 0
    if not args.skip_speed:
        payload["speed"] = speed(args)
    if not args.skip_accuracy:
        payload["accuracy"] = accuracy(args)
    payload["machine"]["load_average_at_end"] = list(__import__("os").getloadavg())
    payload["seconds"] = time.time() - payload.pop("started")
    markdown = render(payload)
    _common.write_results(args.name, payload, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
