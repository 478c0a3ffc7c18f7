"""Accuracy of the projections on the bundled tiny proxy (1M parameters) and the bundled math sample.

    python benchmarks/bench_projection_accuracy.py               # N = 256 mixed-template examples, dim 1024
    python benchmarks/bench_projection_accuracy.py --n 128 --draws 2

Exact per-example gradients of the real (trained) tiny proxy fit in memory at this size, so every projection can be
compared with the paper's definition computed independently: the exact gradients times freshly drawn dense
Rademacher matrices (mean of ``--draws`` draws), and with the exact, unprojected G-Vendi. Two sets: one template
(low diversity) and all templates mixed (high). ``"factored"`` is run at several fold sizes, since on this model,
unlike the 87k-parameter model of ``tests/test_accuracy.py``, every matrix side is folded. Results go to
``benchmarks/results/projection_accuracy.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, markdown_table, write_results  # noqa: E402


def _sets(n: int) -> dict[str, list[dict[str, str]]]:
    import numpy as np

    from gvendi.data import load_math_sample

    rows = load_math_sample()
    rng = np.random.default_rng(0)
    templates = sorted({row["template"] for row in rows})
    one = [row for row in rows if row["template"] == templates[0]]
    pick = lambda pool: [pool[i] for i in rng.permutation(len(pool))[:n]]  # noqa: E731
    as_records = lambda chosen: [{"prompt": r["prompt"], "completion": r["completion"]} for r in chosen]  # noqa: E731
    return {"one template": as_records(pick(one)), "all templates": as_records(pick(rows))}


def _exact_gradients(featurizer, records):
    import torch

    from gvendi.gradients import per_example_loss

    model = featurizer.model
    examples = featurizer.encode({k: [r[k] for r in records] for k in records[0]})
    params = [p for _, p in model.named_parameters()]
    rows = []
    for example in examples:
        model.zero_grad(set_to_none=True)
        ids, labels = torch.tensor([example.input_ids]), torch.tensor([example.labels])
        per_example_loss(model(input_ids=ids).logits, labels).sum().backward()
        rows.append(torch.cat([p.grad.flatten() for p in params]))
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)  # [N, |θ|] float32


def _dense_reference(grads, dim: int, draws: int, chunk: int = 1 << 16) -> list[float]:
    import torch

    from gvendi import score

    values = []
    for draw in range(draws):
        generator = torch.Generator().manual_seed(10_000 + draw)
        projected = torch.zeros(grads.shape[0], dim, dtype=torch.float64)
        for start in range(0, grads.shape[1], chunk):
            stop = min(grads.shape[1], start + chunk)
            signs = torch.randint(0, 2, (stop - start, dim), generator=generator, dtype=torch.int8).float() * 2 - 1
            projected += (grads[:, start:stop] @ signs).double()
        values.append(score(projected).value)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--draws", type=int, default=4, help="independent dense reference draws")
    parser.add_argument("--seeds", type=int, default=3, help="gvendi projection seeds per method")
    parser.add_argument("--folds", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from gvendi import GradientFeaturizer, score
    from gvendi.projection import FactoredSketchProjector

    info = machine_info()
    base = GradientFeaturizer("tiny", dim=args.dim, show_progress=False)
    methods: dict[str, object] = {"sketch": "sketch"}  # "dense" regenerates a 1G-entry matrix per batch here
    methods.update({f"factored fold {f}": f for f in args.folds})
    results = []
    for name, records in _sets(args.n).items():
        grads = _exact_gradients(base, records)
        units = (grads / grads.norm(dim=1, keepdim=True)).double()
        exact = score(units).value  # N ≤ |θ|: the N×N Gram gives the exact, unprojected value
        reference = float(np.mean(_dense_reference(grads, args.dim, args.draws)))
        del grads, units
        row = {"set": name, "n": len(records), "exact": exact, "independent_dense": reference}
        for method, spec in methods.items():
            values = []
            for seed in range(args.seeds):
                projection = FactoredSketchProjector(args.dim, seed, fold=spec) if isinstance(spec, int) else spec
                featurizer = GradientFeaturizer(
                    base.model, tokenizer=base.tokenizer, dim=args.dim, seed=seed, projection=projection,
                    batch_size=32, show_progress=False,
                )
                values.append(score(featurizer.featurize(records)).value)
            row[method] = float(np.mean(values))
            row[f"{method} vs dense %"] = 100 * (row[method] / reference - 1)
            row[f"{method} vs exact %"] = 100 * (row[method] / exact - 1)
        results.append(row)
        print(row, flush=True)
        torch.cuda.empty_cache() if torch.cuda.is_available() else None

    header = ["set", "N", "exact", "indep. dense", *methods]
    table = [
        [
            r["set"],
            str(r["n"]),
            f"{r['exact']:.2f}",
            f"{r['independent_dense']:.2f}",
            *(f"{r[m]:.2f} ({r[f'{m} vs dense %']:+.1f}%)" for m in methods),
        ]
        for r in results
    ]
    markdown = "\n\n".join(
        [
            "# Projection accuracy on the bundled tiny proxy",
            f"The bundled tiny proxy (Qwen2, 1.03M parameters: hidden 128, 4 layers, MLP 384, vocab 1,868), up to "
            f"{args.n} examples of the bundled math sample (one template, and all templates mixed), dim {args.dim}. "
            f"'exact' is G-Vendi of the unprojected per-example gradients; 'indep. dense' the paper's definition: "
            f"the exact gradients times independently drawn dense Rademacher matrices (mean of {args.draws} draws). "
            f"gvendi's projections are means over {args.seeds} seeds; in brackets, the difference from 'indep. dense'.",
            markdown_table(header, table),
            "Every side of every matrix of this model is longer than 64, so 'factored fold 64' folds all of them "
            "(hidden 128 → 64, MLP 384 → 64, vocab 1,868 → 64); at fold 128 only the MLP and vocabulary sides fold.",
            f"Machine: {info['cpu']}, torch {info['torch']}, {info['date_utc']} UTC. "
            "Re-run: `python benchmarks/bench_projection_accuracy.py`.",
        ]
    )
    print(markdown)
    if not args.no_write:
        write_results("projection_accuracy", {"settings": vars(args), "results": results, "machine": info}, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
