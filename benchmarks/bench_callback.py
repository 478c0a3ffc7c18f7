"""Wall-time overhead of GVendiCallback(source="model") on a tiny model's Trainer run.

    python benchmarks/bench_callback.py                       # 60 steps, batch 8, 5 repeats
    python benchmarks/bench_callback.py --steps 100 --repeats 5 --dim 1024 --logging-steps 20
    python benchmarks/bench_callback.py --model real --steps 6 --batch-size 2 --logging-steps 3 \
        --projections factored --every-n-steps 1 --repeats 5     # the paper's proxy widths, 1 layer (~15 min)

The bundled tiny proxy (Qwen2, 1.03M parameters: hidden 128, 4 layers, MLP 384, vocab 1,868, tied embeddings) is
fine-tuned on the bundled math sample (chat format, 79–182 tokens, loss on the solution). The same training (same
weights, data, steps, logging) runs with and without the callback. Each repeat runs the baseline and every variant
once, in an order rotated from repeat to repeat, so a shared machine's load drift hits all alike and no variant
always follows the baseline. The overhead is the median over repeats of the variant's wall time of
``trainer.train()`` divided by the same repeat's baseline, minus one (a paired ratio: a slow minute slows both). The
median per-step time (a training step, hooks included; logging steps too) is reported beside it as a steady-state
check that single slow steps do not move. Variants: the callback's default projection for ``source="model"``
(``"factored"``) and ``"sketch"``, every step and every 4th. The target is ≤ 15% extra wall time (≤ 5% at the real
widths, ``--model real``). Results go to benchmarks/results/callback_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, markdown_table, median, write_results  # noqa: E402


def _callback_class():
    try:
        from gvendi.callbacks import GVendiCallback
    except ModuleNotFoundError:  # editable install without the gvendi.callbacks mapping yet
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from callback_helpers import import_callbacks

        GVendiCallback = import_callbacks().GVendiCallback
    return GVendiCallback


def _dataset(n: int, seed: int):
    """``n`` rows of the bundled math sample, shuffled, as chat-formatted ``input_ids``/``labels``."""
    import numpy as np
    from datasets import Dataset

    from gvendi import GradientFeaturizer
    from gvendi.data import load_math_sample

    rows = load_math_sample()
    order = np.random.default_rng(seed).permutation(len(rows))
    chosen = [rows[int(i)] for i in np.resize(order, n)]
    encoder = GradientFeaturizer("tiny", dim=8, show_progress=False)
    encoded = encoder.encode({key: [r[key] for r in chosen] for key in ("prompt", "completion")})
    return Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for e in encoded])


def _model(kind: str, layers: int = 1):
    """The bundled tiny proxy, ("small") a 4× wider random Qwen2 with its vocabulary (hidden 512, MLP 1536), or
    ("real") a random Qwen2 with the paper's proxy widths and vocabulary and ``layers`` of its 24 layers."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from gvendi.data import TINY_PROXY_PATH
    from gvendi.proxy import random_proxy_like_default

    if kind == "real":
        return random_proxy_like_default(num_hidden_layers=layers, max_position_embeddings=2048).train()
    if kind == "tiny":
        return AutoModelForCausalLM.from_pretrained(TINY_PROXY_PATH).train()
    config = AutoConfig.from_pretrained(TINY_PROXY_PATH)
    config.hidden_size, config.intermediate_size, config.num_attention_heads, config.num_key_value_heads = (
        512,
        1536,
        8,
        4,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).train()


class _Pad:
    def __call__(self, features):
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.zeros((len(features), longest), dtype=torch.long)
        labels = torch.full((len(features), longest), -100, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _step_timer(durations: list[float]):
    """A callback that appends each optimizer step's wall time to ``durations``."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            durations.append(time.perf_counter() - self.begin)

    return StepTimer()


def _projection(spec: str, dim: int):
    """A projection name, or ``factored:FOLD`` for the factored projection with another fold."""
    name, _, fold = spec.partition(":")
    if not fold:
        return name
    from gvendi.projection import FactoredSketchProjector

    if name != "factored":
        raise SystemExit(f"only 'factored' takes a fold (got {spec!r}); e.g. --projections factored factored:64")
    return FactoredSketchProjector(dim, fold=int(fold))


def run_once(
    args, data, variant: tuple[str, int] | None, steps: list[float] | None = None
) -> tuple[tuple[float, float], dict]:
    """One training run; ``variant`` is ``(projection, every_n_steps)``, or None for the baseline. Step times are
    appended to ``steps`` when given (the timer runs last, after the callback's own step-end work)."""
    from transformers import Trainer, TrainingArguments

    model = _model(args.model, args.layers)
    callbacks = (
        []
        if variant is None
        else [
            _callback_class()(
                dim=args.dim, projection=_projection(variant[0], args.dim), every_n_steps=variant[1], save_plot=False
            )
        ]
    )
    timers = [] if steps is None else [_step_timer(steps)]
    with tempfile.TemporaryDirectory() as output_dir:
        training = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            logging_steps=args.logging_steps,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
            dataloader_num_workers=0,
            learning_rate=1e-4,
        )
        trainer = Trainer(
            model=model, args=training, train_dataset=data, data_collator=_Pad(), callbacks=callbacks + timers
        )
        scoring = [0.0]
        if callbacks:  # time the scoring (eigendecompositions at logging steps) apart from the per-step hooks
            callbacks[0].attach(trainer)
            accumulators = callbacks[0].accumulators
            score = accumulators.value

            def timed_score(name):
                begin = time.perf_counter()
                try:
                    return score(name)
                finally:
                    scoring[0] += time.perf_counter() - begin

            accumulators.value = timed_score
        start, start_cpu = time.perf_counter(), time.process_time()
        trainer.train()
        seconds = (time.perf_counter() - start, time.process_time() - start_cpu)
    summary = dict(callbacks[0].summary()["final"], scoring_s=scoring[0]) if callbacks else {}
    return seconds, summary


MODELS = {
    "tiny": "The bundled tiny proxy (Qwen2, 1.03M parameters: hidden 128, 4 layers, MLP 384, vocab 1,868)",
    "small": "A 4× wider Qwen2 (random init, 14M parameters: hidden 512, 4 layers, MLP 1536, vocab 1,868)",
    "real": "A random Qwen2 with Qwen2.5-0.5B-Instruct's widths and vocabulary (hidden 896, MLP 4864, 14/2 heads, "
    "vocab 151,936, tied embeddings), {layers} of its 24 layers",
}


def _label(variant: tuple[str, int]) -> str:
    return f"{variant[0]}, every_n_steps={variant[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        choices=["tiny", "small", "real"],
        default="tiny",
        help="the bundled proxy, a 4× wider one, or the paper's proxy widths (--layers of 24)",
    )
    parser.add_argument("--layers", type=int, default=1, help="--model real: layers")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--logging-steps", type=int, default=20)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument(
        "--projections",
        nargs="+",
        default=["factored", "sketch"],
        help="callback projections; factored:FOLD for another fold (e.g. factored:64)",
    )
    parser.add_argument("--every-n-steps", type=int, nargs="+", default=[1, 4], help="callback sampling rates")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the results files")
    parser.add_argument("--tag", default="", help="suffix of the results files (e.g. 'active' for another setting)")
    args = parser.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = machine_info(args.threads)
    MODELS["real"] = MODELS["real"].format(layers=args.layers)
    target = 0.05 if args.model == "real" else 0.15
    data = _dataset(args.steps * args.batch_size, seed=0)
    tested = [(projection, n) for projection in args.projections for n in args.every_n_steps]
    run_once(args, data, tested[0])  # warm-up: imports, allocator, projection caches
    variants: list[tuple[str, int] | None] = [None, *tested]
    wall: dict = {v: [] for v in variants}
    cpu: dict = {v: [] for v in variants}
    steps: dict = {v: [] for v in variants}
    scoring: dict = {v: [] for v in tested}
    finals: dict = {}
    for repeat in range(args.repeats):  # interleaved, the order rotated each repeat
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            (elapsed, elapsed_cpu), final = run_once(args, data, variant, steps[variant])
            wall[variant].append(elapsed)
            cpu[variant].append(elapsed_cpu)
            if variant is not None:
                finals[variant] = final
                scoring[variant].append(final["scoring_s"])
    base, base_cpu, base_step = median(wall[None]), median(cpu[None]), median(steps[None])
    paired = {v: [w / b for w, b in zip(wall[v], wall[None])] for v in tested}
    overhead = {v: median(paired[v]) - 1.0 for v in tested}
    overhead_cpu = {v: median([c / b for c, b in zip(cpu[v], cpu[None])]) - 1.0 for v in tested}
    overhead_step = {v: median(steps[v]) / base_step - 1.0 for v in tested}
    load_after = [round(x, 2) for x in os.getloadavg()]
    payload = {
        "benchmark": "GVendiCallback(source='model') wall-time overhead",
        "model": MODELS[args.model],
        "data": "bundled math sample, chat format, 79-182 tokens",
        "settings": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "logging_steps": args.logging_steps,
            "dim": args.dim,
            "repeats": args.repeats,
            "threads": args.threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        },
        "baseline": {
            "wall_s": wall[None],
            "cpu_s": cpu[None],
            "median_wall_s": base,
            "median_cpu_s": base_cpu,
            "median_step_s": base_step,
        },
        "variants": [
            {
                "projection": v[0],
                "every_n_steps": v[1],
                "wall_s": wall[v],
                "cpu_s": cpu[v],
                "median_wall_s": median(wall[v]),
                "median_cpu_s": median(cpu[v]),
                "wall_ratio_to_baseline_each_repeat": paired[v],
                "overhead_wall_fraction": overhead[v],
                "overhead_wall_fraction_of_medians": median(wall[v]) / base - 1.0,
                "overhead_cpu_fraction": overhead_cpu[v],
                "median_step_s": median(steps[v]),
                "overhead_step_fraction": overhead_step[v],
                "meets_target_wall": overhead[v] <= target,
                "scoring_wall_s": scoring[v],
                "examples_featurized": finals[v].get("examples"),
                "final_cumulative_gvendi": finals[v].get("cumulative"),
            }
            for v in tested
        ],
        "target_fraction": target,
        "machine": info,
        "load_average_after": load_after,
    }
    header = [
        "run",
        "wall s (each repeat)",
        "median wall s",
        "wall overhead",
        "median step ms",
        "step overhead",
        "CPU-time overhead",
        "scoring s",
        "G-Vendi",
    ]
    rows = [
        ["no callback", " ".join(f"{x:.2f}" for x in wall[None]), f"{base:.2f}", "—", f"{base_step * 1000:.1f}"]
        + ["—"] * 4
    ]
    for v in tested:
        rows.append(
            [
                _label(v),
                " ".join(f"{x:.2f}" for x in wall[v]),
                f"{median(wall[v]):.2f}",
                f"{overhead[v] * 100:+.1f}%",
                f"{median(steps[v]) * 1000:.1f}",
                f"{overhead_step[v] * 100:+.1f}%",
                f"{overhead_cpu[v] * 100:+.1f}%",
                f"{median(scoring[v]):.2f}",
                f"{finals[v].get('cumulative') or float('nan'):.1f}",
            ]
        )
    verdicts = ", ".join(
        f"{_label(v)}: {overhead[v] * 100:+.1f}% ({'meets' if overhead[v] <= target else 'misses'} the "
        f"≤ {target:.0%} target)"
        for v in tested
    )
    markdown = "\n\n".join(
        [
            "# GVendiCallback overhead (source='model')",
            f"{MODELS[args.model]}, fine-tuned on the bundled math sample: {args.steps} steps × "
            f"batch {args.batch_size}, logging every {args.logging_steps} steps, dim {args.dim}, {args.threads} torch "
            f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, CPU. Wall time of `trainer.train()`, "
            f"variants interleaved per repeat (order rotated), {args.repeats} repeats. Wall overhead: the median "
            "over repeats of the run's wall time over the same repeat's baseline, minus one. Step overhead: the "
            "median step time over all steps of all repeats, against the baseline's.",
            markdown_table(header, rows),
            f"**Wall-time overhead: {verdicts}.**",
            "CPU-time overhead (process time, all threads) is less sensitive to other jobs on a shared machine. "
            '"scoring s" is the time in the eigendecompositions at logging steps, epoch end and train end (a fixed '
            "cost per log; windows under `dim` examples are scored from their small Gram matrix). The rest is the "
            "per-step cost of the hooks: with 'factored', folding each layer's output gradient and input to at most "
            "128 "
            "buckets a side, one small bfloat16 product of the folds per layer (float32 where the CPU has no native "
            "bfloat16) and one scatter of all cells per step; with 'sketch', a float32 per-example gradient product "
            "per layer (as many FLOPs as the weight-gradient GEMM) and a CountSketch scatter of every parameter. "
            "'G-Vendi' is the final cumulative value (the two projections measure the same quantity).",
            f"Machine: {info['cpu']}, {info['cpu_count']} cores, load average {info['load_average_1_5_15']} before "
            "and "
            f"{load_after} after (a shared machine: other jobs ran alongside, so single runs are noisy), torch "
            f"{info['torch']}, {info['date_utc']} UTC.",
            "Re-run: `python benchmarks/bench_callback.py` (options: `--steps`, `--repeats`, `--projections`, "
            "`--every-n-steps`).",
        ]
    )
    print(markdown)
    if not args.no_write:
        name = (
            "callback_overhead"
            + ("" if args.model == "tiny" else f"_{args.model}")
            + (f"_{args.tag}" if args.tag else "")
        )
        write_results(name, payload, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
