"""Full-size proxy throughput on one GPU: Qwen2.5-0.5B architecture, random weights, bf16 (issue 6, item 6).

    python benchmarks/bench_gpu.py                         # 512-token examples, default projection; target ≥ 150 ex/s
    python benchmarks/bench_gpu.py --batch-size 32 --batches 20 --projection dense

Builds the Qwen2.5-0.5B-Instruct architecture from its config values (no download; random weights), runs gvendi's
default projection (dim 1024) on random 512-token examples (128 prompt tokens masked), and reports
examples/s, tokens/s, peak GPU memory and the ratio to a plain bf16 forward+backward of the same batches. On a
machine without CUDA it prints that it needs a GPU and exits 0. Writes benchmarks/results/gpu.json and gpu.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import torch  # noqa: E402

from gvendi.projection import DEFAULT_PROJECTION  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--prompt", type=int, default=128, help="leading tokens masked from the loss.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=10, help="timed batches (after 2 warm-up batches).")
    parser.add_argument("--projection", default=DEFAULT_PROJECTION, choices=["factored", "sketch", "dense"])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--name", default="gpu")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA GPU (none found): nothing measured. Run it on a GPU machine.")
        return 0

    from methods import plain_forward_backward, random_examples

    from gvendi import GradientFeaturizer
    from gvendi.proxy import DEFAULT_PROXY_CONFIG, random_proxy_like_default

    device = torch.device("cuda")
    model = random_proxy_like_default(seed=0, dtype=torch.bfloat16).to(device)
    tokenizer = _common.word_tokenizer(200)
    featurizer = GradientFeaturizer(
        model,
        tokenizer=tokenizer,
        dim=args.dim,
        projection=args.projection,
        batch_size=args.batch_size,
        show_progress=False,
    )
    examples = random_examples(
        (args.batches + 2) * args.batch_size,
        length=args.length,
        prompt_length=args.prompt,
        vocab=DEFAULT_PROXY_CONFIG["vocab_size"],
        seed=1,
    )
    batches = [examples[i : i + args.batch_size] for i in range(0, len(examples), args.batch_size)]

    def timed_cuda(fn) -> float:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        return start.elapsed_time(stop) / 1000.0

    for batch in batches[:2]:  # warm-up: kernels, allocator, projection caches
        featurizer.featurize_encoded(batch)
        plain_forward_backward(model, batch)
    torch.cuda.reset_peak_memory_stats()
    gvendi_times, plain_times = [], []
    for batch in batches[2:]:
        gvendi_times.append(timed_cuda(lambda batch=batch: featurizer.featurize_encoded(batch)))
        plain_times.append(timed_cuda(lambda batch=batch: plain_forward_backward(model, batch)))
    peak = torch.cuda.max_memory_allocated() / 2**30
    per_batch = _common.median(gvendi_times)
    payload = {
        "machine": {**_common.machine_info(torch.get_num_threads()), "gpu": torch.cuda.get_device_name(0)},
        "model": "Qwen2.5-0.5B architecture, random weights, bf16",
        "parameters": sum(p.numel() for p in model.parameters()),
        "length": args.length,
        "batch_size": args.batch_size,
        "projection": args.projection,
        "dim": args.dim,
        "examples_per_s": args.batch_size / per_batch,
        "tokens_per_s": args.batch_size * args.length / per_batch,
        "plain_examples_per_s": args.batch_size / _common.median(plain_times),
        "ratio_to_plain": _common.median([g / p for g, p in zip(gvendi_times, plain_times)]),
        "peak_gpu_memory_gib": peak,
        "target_examples_per_s": 150,
    }
    header = ["method", "examples/s", "tokens/s", "× plain fwd+bwd", "peak GPU memory (GiB)"]
    rows = [
        [
            f"gvendi `{args.projection}`",
            f"{payload['examples_per_s']:.1f}",
            f"{payload['tokens_per_s']:,.0f}",
            f"{payload['ratio_to_plain']:.2f}",
            f"{peak:.1f}",
        ],
        [
            "plain forward+backward (bf16)",
            f"{payload['plain_examples_per_s']:.1f}",
            f"{payload['plain_examples_per_s'] * args.length:,.0f}",
            "1.00",
            "–",
        ],
    ]
    markdown = "\n".join(
        [
            "# GPU benchmark",
            "",
            f"{payload['machine']['gpu']}; Qwen2.5-0.5B architecture ({payload['parameters']:,} parameters, random "
            f"weights, bf16), {args.length}-token examples, batch {args.batch_size}, dim {args.dim}; medians of "
            f"{args.batches} batches; {payload['machine']['date_utc']} UTC. Target ≥ 150 examples/s.",
            "",
            _common.markdown_table(header, rows),
        ]
    )
    _common.write_results(args.name, payload, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
