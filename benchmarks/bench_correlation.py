"""Does diversity predict generalisation? G-Vendi and the paper's baselines against out-of-distribution loss over a
controlled family of fine-tuning runs (issue 18, item 1).

    python benchmarks/bench_correlation.py                     # the committed run: 32 sets, ≤ 30 min on 2 CPU cores
    python benchmarks/bench_correlation.py --draws 1 --steps 40 --out correlation_quick   # a 2-minute smoke run

The bundled math sample has 15 solution templates × 64 problems (names, objects, numbers and phrasing vary the same
way in every template). Three templates, drawn once with the seed, are held out. From the other twelve, the script
builds training sets of equal size (48 rows) and equal quality (every row is correct by construction) that differ
only in how many templates they draw from and in what mixture: uniform over 1, 2, 3, 4, 6, 8 or 12 templates, and
skewed mixtures (one dominant template plus a few rows of others). For each set:

- the same small model (a Qwen2 built from the bundled tiny proxy's config and tokenizer, random weights from one
  seed: nothing downloaded, and no knowledge of the held-out templates) is trained from the same start with a real
  ``transformers.Trainer`` for a fixed number of steps;
- the out-of-distribution metric is its mean completion loss on the held-out templates' 192 problems (primary), and
  the ``\\boxed{}`` accuracy of greedy answers on some of them (reported; at this scale it is expected near 0);
- diversity is measured as a user would: G-Vendi with ``GradientFeaturizer("tiny")`` + ``gvendi.score``; embedding
  Vendi (mean-pooled hidden states of the same tiny proxy), self-similarity (mean pairwise cosine of those
  embeddings), distinct-1/2/3, and the proxy's mean completion loss (perplexity baseline).

Spearman ρ of each measure against −held-out loss (higher = generalises better), with a percentile bootstrap
interval over the sets, goes to ``benchmarks/results/<out>.{json,md,png}``; the default run also refreshes the
bundled ``gvendi/data/evidence.json`` that ``gvendi demo --evidence`` prints.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

SIZE = 48
HELD_OUT_COUNT = 3
# (rows per template, draws): uniform mixtures over 1…12 templates, then skewed ones (one dominant template)
MIXTURES: list[tuple[tuple[int, ...], int]] = [
    ((48,), 4),
    ((24, 24), 4),
    ((16, 16, 16), 4),
    ((12,) * 4, 4),
    ((8,) * 6, 3),
    ((6,) * 8, 3),
    ((4,) * 12, 2),
    ((40, 8), 2),
    ((30, 6, 6, 6), 2),
    ((28, 4, 4, 4, 4, 4), 2),
    ((26,) + (2,) * 11, 2),
]
MEASURES = {  # key → (label, the sign a measure of diversity should have against −held-out loss)
    "gvendi": ("G-Vendi (tiny proxy)", "+"),
    "embedding_vendi": ("embedding Vendi", "+"),
    "self_similarity": ("self-similarity (mean pairwise cosine)", "−"),
    "distinct_1": ("distinct-1", "+"),
    "distinct_2": ("distinct-2", "+"),
    "distinct_3": ("distinct-3", "+"),
    "proxy_loss": ("proxy loss (perplexity baseline)", "?"),
}
# not measures (they read the design, which a user does not have): what the sets were built from, for reference
REFERENCES = {
    "templates": ("reference: templates in the set", "+"),
    "effective_templates": ("reference: exp(entropy) of the mixture", "+"),
}


def split_templates(templates: list[str], *, seed: int, held_out: int = HELD_OUT_COUNT) -> tuple[list[str], list[str]]:
    """(training templates, held-out templates), the held-out ones drawn once from ``seed``."""
    chosen = sorted(random.Random(f"{seed}:held-out").sample(sorted(templates), held_out))
    return [t for t in sorted(templates) if t not in chosen], chosen


def build_set_family(
    by_template: dict[str, list[dict]],
    train_templates: list[str],
    *,
    seed: int,
    mixtures: list[tuple[tuple[int, ...], int]] = MIXTURES,
    draws: int | None = None,
) -> list[dict]:
    """Training sets of equal size from ``train_templates`` only: for each mixture (rows per template) and draw, a
    seeded choice of templates and of rows within each. ``draws`` caps the draws per mixture (quick runs)."""
    sizes = {sum(counts) for counts, _ in mixtures}
    if len(sizes) != 1:
        raise ValueError(f"every mixture must have the same total size (got {sorted(sizes)}).")
    rng = random.Random(f"{seed}:sets")
    family = []
    for counts, mixture_draws in mixtures:
        for draw in range(min(mixture_draws, draws) if draws else mixture_draws):
            templates = rng.sample(train_templates, len(counts))
            rows = [row for name, n in zip(templates, counts) for row in rng.sample(by_template[name], n)]
            kind = "uniform" if len(set(counts)) == 1 else "skewed"
            family.append(
                {
                    "name": f"{kind}-{len(counts)}x-{draw + 1}",
                    "kind": kind,
                    "templates": len(counts),
                    "mixture": dict(zip(templates, counts)),
                    "rows": rows,
                }
            )
    return family


# training and evaluation -------------------------------------------------------------------------------------
class _Rows(torch.utils.data.Dataset):
    def __init__(self, examples):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.examples[i].input_ids, "labels": self.examples[i].labels}


def _pad(batch: list[dict]) -> dict[str, torch.Tensor]:
    longest = max(len(item["input_ids"]) for item in batch)
    ids = torch.zeros(len(batch), longest, dtype=torch.long)
    labels = torch.full((len(batch), longest), -100, dtype=torch.long)
    mask = torch.zeros(len(batch), longest, dtype=torch.long)
    for i, item in enumerate(batch):
        n = len(item["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(item["input_ids"]), torch.tensor(item["labels"]), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@torch.no_grad()
def completion_losses(model, examples, *, batch_size: int = 32) -> np.ndarray:
    """Each example's mean next-token loss over its completion tokens (the labels that are not −100)."""
    model.eval()
    out = []
    for start in range(0, len(examples), batch_size):
        batch = _pad([{"input_ids": e.input_ids, "labels": e.labels} for e in examples[start : start + batch_size]])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels, ignore_index=-100, reduction="none"
        )  # [b, T-1]
        counted = (labels != -100).sum(1)
        out.append((loss.sum(1) / counted).numpy())
    return np.concatenate(out)


@torch.no_grad()
def boxed_accuracy(model, tokenizer, rows: list[dict], *, max_new_tokens: int, batch_size: int = 16) -> float:
    """Share of greedy answers whose last ``\\boxed{…}`` equals the row's answer."""
    import re

    boxed = re.compile(r"\\boxed\{([^{}]*)\}")
    model.eval()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    right = 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        prompts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": r["problem"]}], tokenize=False, add_generation_prompt=True
            )
            for r in chunk
        ]
        encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        longest = max(map(len, encoded))
        ids = torch.zeros(len(chunk), longest, dtype=torch.long)
        mask = torch.zeros(len(chunk), longest, dtype=torch.long)
        for i, e in enumerate(encoded):  # left padding for generation
            ids[i, longest - len(e) :], mask[i, longest - len(e) :] = torch.tensor(e), 1
        generated = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=end,
            pad_token_id=tokenizer.pad_token_id,
        )
        for row, tokens in zip(chunk, generated[:, longest:]):
            found = boxed.findall(tokenizer.decode(tokens, skip_special_tokens=True))
            right += bool(found) and found[-1].strip() == row["answer"]
    return right / len(rows)


def fresh_model(seed: int):
    """The start of every run: a Qwen2 with the tiny proxy's config, random weights from ``seed``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from gvendi.data import TINY_PROXY_PATH

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(TINY_PROXY_PATH))


def fine_tune(start_state: dict, examples, *, steps: int, lr: float, seed: int, workdir: str):
    """Train a copy of the start model on ``examples`` with a ``transformers.Trainer`` for ``steps`` steps."""
    import transformers
    from transformers import Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    model = fresh_model(seed)
    model.load_state_dict(start_state)
    args = TrainingArguments(
        output_dir=workdir,
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=lr,
        warmup_steps=max(1, steps // 10),
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        seed=seed,
        data_seed=seed,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=_Rows(examples), data_collator=_pad)
    trainer.train()
    return model


# measures ----------------------------------------------------------------------------------------------------
def measure_set(featurizer, rows: list[dict]) -> dict[str, float]:
    """Every diversity measure of one set, computed with the fixed tiny proxy."""
    import gvendi
    from gvendi.measures import distinct_n, self_similarity
    from gvendi.report import embedding_features

    pairs = [{"prompt": r["problem"], "completion": r["solution"]} for r in rows]
    texts = [r["problem"] + "\n" + r["solution"] for r in rows]
    embeddings = embedding_features(featurizer, pairs)
    examples = featurizer.encode(
        {"prompt": [p["prompt"] for p in pairs], "completion": [p["completion"] for p in pairs]}
    )
    return {
        "gvendi": gvendi.score(featurizer.featurize(pairs)).value,
        "embedding_vendi": gvendi.score(embeddings).value,
        "self_similarity": self_similarity(embeddings),
        **{f"distinct_{n}": distinct_n(texts, n) for n in (1, 2, 3)},
        "proxy_loss": float(completion_losses(featurizer.loaded.model, examples).mean()),
    }


# report ------------------------------------------------------------------------------------------------------
def correlations(family: list[dict], *, n_boot: int, seed: int) -> dict[str, dict]:
    """ρ of each measure against −held-out loss, its bootstrap interval over the sets, and, from the same resamples,
    how often G-Vendi's |ρ| exceeds the measure's."""
    from gvendi.measures import bootstrap_spearman, spearman

    outcome = np.array([-s["heldout_loss"] for s in family])
    values = {key: np.array([s["measures"][key] for s in family]) for key in MEASURES | REFERENCES}
    generator = np.random.default_rng(seed)
    picks = [generator.integers(0, len(family), len(family)) for _ in range(n_boot)]
    out = {}
    for key in MEASURES | REFERENCES:
        result = bootstrap_spearman(values[key], outcome, n_boot=n_boot, seed=seed)
        ahead = [
            abs(spearman(values["gvendi"][p], outcome[p])) > abs(spearman(values[key][p], outcome[p])) for p in picks
        ]
        out[key] = {**result, "gvendi_ahead_share": float(np.mean(ahead)) if key != "gvendi" else None}
    return out


def plot(family: list[dict], table: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(MEASURES | REFERENCES)
    labels = {key: label for key, (label, _) in (MEASURES | REFERENCES).items()}
    fig, axes = plt.subplots(2, 5, figsize=(19, 7.5))
    loss = np.array([s["heldout_loss"] for s in family])
    colour = np.array([s["templates"] for s in family])
    marker = {"uniform": "o", "skewed": "^"}
    for ax, key in zip(axes.flat, keys):
        x = np.array([s["measures"][key] for s in family])
        for kind in marker:
            pick = np.array([s["kind"] == kind for s in family])
            points = ax.scatter(
                x[pick],
                loss[pick],
                c=colour[pick],
                cmap="viridis",
                vmin=1,
                vmax=12,
                marker=marker[kind],
                label=kind,
                edgecolors="k",
                linewidths=0.3,
            )
        r = table[key]
        ax.set_title(f"{labels[key]}\nρ = {r['rho']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]", fontsize=9)
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel("held-out loss", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    last = axes.flat[len(keys)]
    last.axis("off")
    fig.colorbar(points, ax=last, label="templates in the set", fraction=0.5)
    fig.suptitle(
        "Diversity of a 48-row training set vs the fine-tuned model's loss on 3 held-out templates "
        "(ρ against −loss, 95% bootstrap interval over sets)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(payload: dict) -> str:
    table = payload["correlation"]
    cfg = payload["config"]
    rows = []
    for key, (label, sign) in (MEASURES | REFERENCES).items():
        r = table[key]
        ahead = "—" if r["gvendi_ahead_share"] is None else f"{r['gvendi_ahead_share']:.2f}"
        rows.append([label, sign, f"{r['rho']:+.3f}", f"[{r['low']:+.3f}, {r['high']:+.3f}]", ahead])
    by_count: dict[int, list[dict]] = {}
    for s in payload["sets"]:
        by_count.setdefault(s["templates"], []).append(s)
    count_rows = [
        [
            n,
            len(sets),
            f"{np.mean([s['heldout_loss'] for s in sets]):.4f}",
            f"{np.mean([s['heldout_accuracy'] for s in sets]):.3f}",
            f"{np.mean([s['measures']['gvendi'] for s in sets]):.2f}",
            f"{np.mean([s['measures']['embedding_vendi'] for s in sets]):.3f}",
            f"{np.mean([s['measures']['distinct_2'] for s in sets]):.3f}",
        ]
        for n, sets in sorted(by_count.items())
    ]
    acc = [s["heldout_accuracy"] for s in payload["sets"]]
    return "\n\n".join(
        [
            "# Diversity vs out-of-distribution loss",
            f"{len(payload['sets'])} training sets of {cfg['size']} rows from {len(cfg['train_templates'])} templates "
            "of the "
            f"bundled math sample; each trained from the same random start ({cfg['model']}) for {cfg['steps']} steps "
            f"(batch 8, lr {cfg['lr']}) with `transformers.Trainer`; held-out templates "
            f"{', '.join(f'`{t}`' for t in cfg['held_out_templates'])}. ρ is Spearman's against −held-out loss "
            "(higher "
            f"ρ: the measure ranks the sets by how well they generalise); interval: 95% percentile bootstrap over the "
            f"sets ({cfg['n_boot']} resamples); last column: share of those resamples in which G-Vendi's |ρ| is "
            "larger.",
            _common.markdown_table(["measure", "expected sign", "Spearman ρ", "95% interval", "G-Vendi ahead"], rows),
            _common.markdown_table(
                [
                    "templates",
                    "sets",
                    "mean held-out loss",
                    "mean boxed accuracy",
                    "mean G-Vendi",
                    "mean embedding Vendi",
                    "mean distinct-2",
                ],
                count_rows,
            ),
            f"Boxed-answer accuracy on {cfg['accuracy_problems']} held-out problems: mean {np.mean(acc):.3f}, max "
            f"{max(acc):.3f} (greedy, {cfg['max_new_tokens']} new tokens), too close to 0 to rank the sets; the "
            "held-out "
            f"loss is the primary metric. Run time {payload['seconds_total'] / 60:.1f} min"
            + (f" ({payload['cpu_seconds'] / 60:.1f} CPU-minutes)" if "cpu_seconds" in payload else "")
            + f" on "
            f"{payload['machine']['torch_threads']} threads ({payload['machine']['cpu']}, load "
            f"{payload['machine']['load_average_1_5_15']} at the start); reproduce with "
            f"`python benchmarks/bench_correlation.py`.",
        ]
    )


def bundle(payload: dict) -> dict:
    """The small summary that ships as gvendi/data/evidence.json for ``gvendi demo --evidence``."""
    cfg = payload["config"]
    return {
        "source": "python benchmarks/bench_correlation.py",
        "sets": len(payload["sets"]),
        "size": cfg["size"],
        "steps": cfg["steps"],
        "held_out_templates": cfg["held_out_templates"],
        "outcome": "-held-out completion loss of the fine-tuned model",
        "n_boot": cfg["n_boot"],
        "minutes": round(payload["seconds_total"] / 60, 1),
        "measures": [
            {
                "key": key,
                "label": label,
                "expected_sign": sign,
                "reference": key in REFERENCES,
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in payload["correlation"][key].items()},
            }
            for key, (label, sign) in (MEASURES | REFERENCES).items()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="training steps per set (batch 8).")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--draws", type=int, default=None, help="cap on draws per mixture (quick runs).")
    parser.add_argument("--accuracy-problems", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=112)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="correlation", help="results file stem under benchmarks/results/.")
    parser.add_argument(
        "--followup",
        action="store_true",
        help="instead of a run: post-hoc checks on results/<out>.json's sets (no retraining).",
    )
    args = parser.parse_args(argv)
    if args.followup:
        return followup(args.out, seed=args.seed, n_boot=args.n_boot, threads=args.threads)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()

    import gvendi
    from gvendi.data import load_math_sample

    gvendi.disable_progress_bar()
    info = _common.machine_info(args.threads)
    by_template: dict[str, list[dict]] = {}
    for row in load_math_sample():
        by_template.setdefault(row["template"], []).append(row)
    train_templates, held_out = split_templates(list(by_template), seed=args.seed)
    family = build_set_family(by_template, train_templates, seed=args.seed, draws=args.draws)
    featurizer = gvendi.GradientFeaturizer("tiny", dim=1024, seed=args.seed, show_progress=False)
    heldout_rows = [row for name in held_out for row in by_template[name]]
    heldout_examples = featurizer.encode(
        {"prompt": [r["problem"] for r in heldout_rows], "completion": [r["solution"] for r in heldout_rows]}
    )
    accuracy_rows = random.Random(f"{args.seed}:accuracy").sample(heldout_rows, args.accuracy_problems)
    start_state = {k: v.clone() for k, v in fresh_model(args.seed).state_dict().items()}
    start_loss = float(completion_losses(_loaded(start_state, args.seed), heldout_examples).mean())

    with tempfile.TemporaryDirectory() as workdir:
        for i, entry in enumerate(family):
            t0 = time.perf_counter()
            shares = np.array(list(entry["mixture"].values())) / SIZE
            entry["measures"] = {
                **measure_set(featurizer, entry["rows"]),
                "templates": entry["templates"],
                "effective_templates": float(np.exp(-(shares * np.log(shares)).sum())),
            }
            t1 = time.perf_counter()
            examples = featurizer.encode(
                {"prompt": [r["problem"] for r in entry["rows"]], "completion": [r["solution"] for r in entry["rows"]]}
            )
            model = fine_tune(start_state, examples, steps=args.steps, lr=args.lr, seed=args.seed, workdir=workdir)
            t2 = time.perf_counter()
            entry["train_loss"] = float(completion_losses(model, examples).mean())
            entry["heldout_loss"] = float(completion_losses(model, heldout_examples).mean())
            entry["heldout_accuracy"] = (
                boxed_accuracy(model, featurizer.tokenizer, accuracy_rows, max_new_tokens=args.max_new_tokens)
                if args.accuracy_problems
                else 0.0
            )
            entry["seconds"] = {
                "measures": round(t1 - t0, 2),
                "train": round(t2 - t1, 2),
                "eval": round(time.perf_counter() - t2, 2),
            }
            entry["row_ids"] = [r["id"] for r in entry.pop("rows")]
            print(
                f"[{i + 1}/{len(family)}] {entry['name']:<22} G-Vendi {entry['measures']['gvendi']:6.2f}  "
                f"held-out loss {entry['heldout_loss']:.4f}  acc {entry['heldout_accuracy']:.3f}  "
                f"{entry['seconds']}",
                flush=True,
            )

    table = correlations(family, n_boot=args.n_boot, seed=args.seed)
    payload = {
        "benchmark": "correlation",
        "config": {
            "size": SIZE,
            "steps": args.steps,
            "lr": args.lr,
            "batch_size": 8,
            "seed": args.seed,
            "n_boot": args.n_boot,
            "accuracy_problems": args.accuracy_problems,
            "max_new_tokens": args.max_new_tokens,
            "model": "Qwen2 with the tiny proxy's config, random weights (seed 0)",
            "proxy": "tiny",
            "dim": 1024,
            "projection": featurizer.projection,
            "train_templates": train_templates,
            "held_out_templates": held_out,
            "mixtures": [[list(c), d] for c, d in MIXTURES],
            "draws_cap": args.draws,
        },
        "start_heldout_loss": start_loss,
        "correlation": table,
        "sets": family,
        "machine": info,
        "load_average_end": _common.machine_info(args.threads)["load_average_1_5_15"],
        "seconds_total": time.perf_counter() - began,
        "cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),  # user + system, all threads
    }
    _common.write_results(args.out, payload, markdown(payload))
    plot(family, table, _common.RESULTS / f"{args.out}.png")
    if args.out == "correlation":  # the committed run: refresh what the package and the docs show
        from gvendi.data import DATA_DIR

        (DATA_DIR / "evidence.json").write_text(json.dumps(bundle(payload), indent=2) + "\n")
        shutil.copyfile(_common.RESULTS / "correlation.png", _common.ROOT / "docs" / "assets" / "correlation.png")
    for key, (label, _) in (MEASURES | REFERENCES).items():
        r = table[key]
        print(f"{label:<40} ρ = {r['rho']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]")
    print(f"total {payload['seconds_total'] / 60:.1f} min")
    return 0


def followup(name: str, *, seed: int, n_boot: int, threads: int) -> int:
    """Post-hoc checks on a finished run's sets (no retraining): G-Vendi's order q, G-Vendi with an untrained proxy
    (the fine-tuning start), and every measure's ρ on the uniform mixtures only. Writes results/<name>_followup.*."""
    import gvendi
    from gvendi.data import load_math_sample
    from gvendi.measures import bootstrap_spearman

    torch.set_num_threads(threads)
    gvendi.disable_progress_bar()
    began = time.perf_counter()
    run = json.loads((_common.RESULTS / f"{name}.json").read_text())
    by_id = {row["id"]: row for row in load_math_sample()}
    family = run["sets"]
    outcome = np.array([-s["heldout_loss"] for s in family])
    tiny = gvendi.GradientFeaturizer("tiny", dim=1024, seed=seed, show_progress=False)
    untrained = gvendi.GradientFeaturizer(
        _loaded(fresh_model(seed).state_dict(), seed),
        tokenizer=tiny.tokenizer,
        dim=1024,
        seed=seed,
        show_progress=False,
    )
    variants: dict[str, list[float]] = {
        "gvendi_q0.5": [],
        "gvendi_q1": [],
        "gvendi_q2": [],
        "gvendi_untrained_proxy": [],
    }
    for entry in family:
        pairs = [{"prompt": by_id[i]["problem"], "completion": by_id[i]["solution"]} for i in entry["row_ids"]]
        features = tiny.featurize(pairs)
        for q in (0.5, 1, 2):
            variants[f"gvendi_q{q}"].append(gvendi.score(features, q=q).value)
        variants["gvendi_untrained_proxy"].append(gvendi.score(untrained.featurize(pairs)).value)
    rows = {key: bootstrap_spearman(values, outcome, n_boot=n_boot, seed=seed) for key, values in variants.items()}
    uniform = np.array([s["kind"] == "uniform" for s in family])
    subgroup = {
        key: bootstrap_spearman(
            np.array([s["measures"][key] for s in family])[uniform], outcome[uniform], n_boot=n_boot, seed=seed
        )
        for key in MEASURES | REFERENCES
    }
    accuracy = np.array([s["heldout_accuracy"] for s in family])
    against_accuracy = {
        key: bootstrap_spearman(np.array([s["measures"][key] for s in family]), accuracy, n_boot=n_boot, seed=seed)
        for key in MEASURES | REFERENCES
    }
    payload = {
        "run": name,
        "variants": rows,
        "variant_values": variants,
        "uniform_only": subgroup,
        "against_accuracy": against_accuracy,
        "uniform_sets": int(uniform.sum()),
        "machine": _common.machine_info(threads),
        "seconds_total": time.perf_counter() - began,
    }
    labels = {
        "gvendi_q0.5": "G-Vendi, order q = 0.5 (weights rare directions up)",
        "gvendi_q1": "G-Vendi, order q = 1 (the paper's; the main table)",
        "gvendi_q2": "G-Vendi, order q = 2",
        "gvendi_untrained_proxy": "G-Vendi with an untrained proxy (the fine-tuning start)",
    }
    fmt = lambda r: [f"{r['rho']:+.3f}", f"[{r['low']:+.3f}, {r['high']:+.3f}]"]  # noqa: E731
    text = "\n\n".join(
        [
            "# Diversity vs out-of-distribution loss: follow-up checks",
            f"Post hoc, on the {len(family)} sets and fine-tuning outcomes of `results/{name}.json` (no retraining); "
            f"written by `python benchmarks/bench_correlation.py --followup`. Spearman ρ against −held-out loss, 95% "
            f"bootstrap interval over the sets.",
            _common.markdown_table(
                ["G-Vendi variant", "Spearman ρ", "95% interval"], [[labels[k], *fmt(r)] for k, r in rows.items()]
            ),
            f"The uniform mixtures only ({int(uniform.sum())} sets; the skewed ones left out):",
            _common.markdown_table(
                ["measure", "Spearman ρ", "95% interval"],
                [[label, *fmt(subgroup[k])] for k, (label, _) in (MEASURES | REFERENCES).items()],
            ),
            f"Against boxed-answer accuracy instead of loss (accuracy on {run['config']['accuracy_problems']} "
            "held-out "
            f"problems; {int((accuracy > 0).sum())} of {len(family)} sets get any right, so most values tie at 0 and "
            f"these ρ are noisy):",
            _common.markdown_table(
                ["measure", "Spearman ρ", "95% interval"],
                [[label, *fmt(against_accuracy[k])] for k, (label, _) in (MEASURES | REFERENCES).items()],
            ),
        ]
    )
    _common.write_results(f"{name}_followup", payload, text)
    print(text)
    return 0


def _loaded(state: dict, seed: int):
    model = fresh_model(seed)
    model.load_state_dict(state)
    return model


if __name__ == "__main__":
    raise SystemExit(main())
