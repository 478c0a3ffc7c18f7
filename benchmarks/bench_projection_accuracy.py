"""Accuracy of the projections at the toy widths (the bundled tiny proxy) and at the paper's proxy widths.

    python benchmarks/bench_projection_accuracy.py               # tiny proxy: N = 256 math-sample examples, dim 1024
    python benchmarks/bench_projection_accuracy.py --n 128 --draws 2
    python benchmarks/bench_projection_accuracy.py --shape real  # hidden 896, MLP 4864: N = 256 (~30 min on 2 cores)

``--shape real``: a random Qwen2 with Qwen2.5-0.5B-Instruct's widths (hidden 896, MLP 4864, 14/2 heads, q/k/v biases,
tied embeddings), 1 layer, vocabulary 8,192, and the low- and high-diversity sets of ``tests/test_accuracy.py``. At
this width a full per-example gradient has 22M entries, so the reference is the exact Gram matrix of the per-example
gradients from token-level Gram matrices (``gvendi.exact``): it gives the exact G-Vendi, and exact draws of a dense
Gaussian projection (mean of ``--draws``). gvendi's own ``dense`` projection (1 seed) checks that reference. Results
go to ``benchmarks/results/projection_accuracy_real.{json,md}``.

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


def real_shape(args) -> int:
    """The paper's proxy widths: exact Gram reference, simulated dense, gvendi's projections at several folds."""
    import numpy as np

    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))
    from _common import word_tokenizer
    from utils import accuracy_records

    from gvendi import GradientFeaturizer, score
    from gvendi.exact import dense_projection_from_gram, exact_gradient_gram, exact_gvendi_from_gram
    from gvendi.projection import DEFAULT_PROJECTION, FactoredSketchProjector
    from gvendi.proxy import random_proxy_like_default

    info = machine_info()
    model = random_proxy_like_default(num_hidden_layers=1, vocab_size=8192, max_position_embeddings=1024)
    tokenizer = word_tokenizer(200)
    n_params = sum(p.numel() for p in model.parameters())
    methods: dict[str, tuple[object, int]] = {"sketch": ("sketch", 1), "dense": ("dense", 1)}
    methods.update({f"factored fold {f}": (f, args.seeds) for f in args.folds})
    results = []
    for diversity in ("low", "high"):
        records = accuracy_records(diversity, args.n)
        featurize = lambda projection, seed, records=records: GradientFeaturizer(  # noqa: E731
            model,
            tokenizer=tokenizer,
            dim=args.dim,
            seed=seed,
            projection=projection,
            batch_size=32,
            show_progress=False,
        ).featurize(records)
        examples = GradientFeaturizer(model, tokenizer=tokenizer, dim=args.dim, show_progress=False).encode(
            {k: [r[k] for r in records] for k in records[0]}
        )
        gram = exact_gradient_gram(model, examples)
        exact = exact_gvendi_from_gram(gram)
        draws = [score(dense_projection_from_gram(gram, args.dim, seed=s)).value for s in range(args.draws)]
        reference = float(np.mean(draws))
        row = {
            "set": diversity,
            "n": len(records),
            "exact": exact,
            "simulated_dense": reference,
            "simulated_dense_draws": draws,
        }
        for method, (spec, seeds) in methods.items():
            values = []
            for seed in range(seeds):
                projection = FactoredSketchProjector(args.dim, seed, fold=spec) if isinstance(spec, int) else spec
                values.append(score(featurize(projection, seed)).value)
            row[method] = float(np.mean(values))
            row[f"{method} seeds"] = values
            row[f"{method} vs dense %"] = 100 * (row[method] / reference - 1)
            row[f"{method} vs exact %"] = 100 * (row[method] / exact - 1)
            print(
                f"{diversity}: {method} {row[method]:.2f} ({row[f'{method} vs dense %']:+.2f}% vs dense)", flush=True
            )
        results.append(row)

    default_fold = FactoredSketchProjector(args.dim).fold
    header = ["set", "N", "exact", "dense (simulated)", *methods]
    table = [
        [
            r["set"],
            str(r["n"]),
            f"{r['exact']:.2f}",
            f"{r['simulated_dense']:.2f}",
            *(f"{r[m]:.2f} ({r[f'{m} vs dense %']:+.2f}%)" for m in methods),
        ]
        for r in results
    ]
    markdown = "\n\n".join(
        [
            "# Projection accuracy at the paper's proxy widths",
            "A random Qwen2 with Qwen2.5-0.5B-Instruct's widths (hidden 896, MLP 4864, 14/2 heads, q/k/v biases, "
            "tied "
            f"embeddings), 1 layer, vocabulary 8,192 ({n_params:,} parameters); the low- and high-diversity sets of "
            f"`tests/test_accuracy.py`, N = {args.n}, dim {args.dim}. 'exact' is G-Vendi of the unprojected "
            "per-example "
            f"gradients, from their exact Gram matrix (`gvendi.exact.exact_gradient_gram`); 'dense (simulated)' the "
            f"mean of {args.draws} exact draws of a dense Gaussian projection of those gradients. Factored rows are "
            f"means over {args.seeds} seeds, `sketch` and gvendi's `dense` one seed; in brackets, the difference from "
            "'dense (simulated)'.",
            markdown_table(header, table),
            f"Every matrix side here is longer than 128 (hidden 896, MLP 4864, vocabulary 8,192), so every layer is "
            f"folded. The default is `{DEFAULT_PROJECTION}` with fold {default_fold}.",
            f"Machine: {info['cpu']}, torch {info['torch']}, {info['date_utc']} UTC. "
            "Re-run: `python benchmarks/bench_projection_accuracy.py --shape real`.",
        ]
    )
    print(markdown)
    if not args.no_write:
        write_results(
            "projection_accuracy_real", {"settings": vars(args), "results": results, "machine": info}, markdown
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["toy", "real"], default="toy")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--draws", type=int, default=None, help="dense reference draws (toy 4, real 8)")
    parser.add_argument("--seeds", type=int, default=3, help="gvendi projection seeds per method")
    parser.add_argument(
        "--folds", type=int, nargs="+", default=None, help="factored folds (toy 32 64 128, real 64 128 256)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.shape == "real":
        args.draws = args.draws or 8
        args.folds = args.folds or [64, 128, 256]
        return real_shape(args)
    args.draws = args.draws or 4
    args.folds = args.folds or [32, 64, 128]

    import numpy as np
    import torch

    from gvendi import GradientFeaturizer, score
    from gvendi.projection import FactoredSketchProjector

    info = machine_info()
    base = GradientFeaturizer("tiny", dim=args.dim, show_progress=False)
    methods: dict[str, object] = {"sketch": "sketch", "dense": "dense"}
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
                    base.model,
                    tokenizer=base.tokenizer,
                    dim=args.dim,
                    seed=seed,
                    projection=projection,
                    batch_size=32,
                    show_progress=False,
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
            f"gvendi's projections are means over {args.seeds} seeds; in brackets, the difference from 'indep. "
            "dense'.",
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
