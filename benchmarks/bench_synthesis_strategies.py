"""Prismatic Synthesis against plain few-shot generation (``vanilla``): same seeds, generator and budget.

    python benchmarks/bench_synthesis_strategies.py          # ~10 min on 2 busy CPU cores
    python benchmarks/bench_synthesis_strategies.py --seed-mix 16,2,2,2,2 --per-round 24 --budget 48 \
        --max-rounds 10 --k-ratio 0.2 --sweep 0.1,0.4 --name synthesis_strategies_small      # ~7 min, a smaller pool

Every arm runs ``gvendi.synthesis.synthesize`` against the same loopback TGI-compatible server (tests/tgi_server.py,
``responder="template-walk"``: each new math problem is a fresh instance of the template of one of its shots, or,
with probability ``--drift``, of a neighbouring template on a fixed ring of the bundled sample's 15 templates), from
the same skewed seed pool (one dominant template, a few rare ones), with the same root seed and candidates per round,
round after round until the pool has gained ``--budget`` accepted examples (or ``--max-rounds`` passed). Features
and G-Vendi come from the real gradient featurizer on the bundled tiny proxy.

Arms: ``vanilla`` (uniform shots, no sparse-cluster filter), ``prismatic`` (the default: uniform shots, keep only
candidates landing in sparse clusters), ``prismatic + sparse shots`` (shots from one sparse cluster too), and a
K-ratio sweep of ``prismatic`` (clusters coarser and finer). For each: G-Vendi of the pool after every round, the
round's cluster-size histogram, the fraction of candidates rejected (all stages, and by the sparse filter alone),
the solution templates the pool covers, and G-Vendi of the seeds plus the first ``budget`` accepted examples.
Writes ``benchmarks/results/<name>.{json,md,png}`` (and, for the two committed runs, ``docs/assets/<name>.png``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets the thread policy before torch loads
from _common import ROOT, machine_info, markdown_table, write_results

sys.path.insert(0, str(ROOT / "tests"))

DOCS_ASSETS = ROOT / "docs" / "assets"
DOCS_RUNS = ("synthesis_strategies", "synthesis_strategies_small")  # the committed runs whose plots the docs show


class SharedFeaturizer:
    """One gradient featurizer for every arm, memoising rows it has featurized (the seeds are shared)."""

    def __init__(self, dim: int):
        from gvendi import GradientFeaturizer

        self.inner = GradientFeaturizer("tiny", dim=dim, show_progress=False, batch_size=16)
        self.fingerprint = self.inner.fingerprint
        self.provenance = self.inner.provenance
        self.memo: dict[tuple[str, str], Any] = {}
        self.featurized = 0

    def featurize(self, records):
        import numpy as np

        keys = [(r["prompt"], r["completion"]) for r in records]
        todo = list(dict.fromkeys(k for k in keys if k not in self.memo))
        if todo:
            feats = np.asarray(self.inner.featurize([{"prompt": p, "completion": c} for p, c in todo]))
            self.memo.update(zip(todo, feats))
            self.featurized += len(todo)
        return np.stack([self.memo[k] for k in keys])


def seed_pool(path: Path, counts: list[int]) -> dict[str, int]:
    """The skewed seed pool: ``counts[i]`` rows of templates spread evenly over the responder's ring (so every seed
    template has unseen neighbours, one drift step away); the first gets the most rows."""
    from gvendi.data import load_math_sample

    rows = load_math_sample()
    ring = sorted({row["template"] for row in rows})  # the ring TemplateWalkResponder walks
    step = len(ring) // len(counts)
    mix = {ring[i * step]: count for i, count in enumerate(counts)}
    out = []
    for template, count in mix.items():
        out += [row for row in rows if row["template"] == template][:count]
    path.write_text(
        "".join(json.dumps({k: row[k] for k in ("id", "problem", "solution", "answer")}) + "\n" for row in out)
    )
    return mix


def run_arm(
    name: str, options: dict[str, Any], root_seed: int, args, featurizer: SharedFeaturizer, work: Path, seeds: Path
) -> dict:
    import huggingface_hub.constants
    import numpy as np
    from tgi_server import LoopbackTGIServer

    from gvendi.synthesis import EndpointConfig, SynthesisConfig, synthesize
    from gvendi.vendi import score

    huggingface_hub.constants.HF_HUB_OFFLINE = False  # the loopback server only
    started = time.perf_counter()
    with LoopbackTGIServer(mode="scripted", responder="template-walk", drift=args.drift, seed=0) as server:
        endpoint = EndpointConfig(backend="tgi", url=server.url, timeout=30, max_new_tokens=512, max_concurrency=16)
        base = dict(
            task="math",
            out=str(work / f"{name.replace(' ', '_')}-seed{root_seed}"),
            seeds_path=str(seeds),
            per_round=args.per_round,
            seed=root_seed,
            k_ratio=args.k_ratio,
            generator=endpoint,
            show_progress=False,
        )
        base.update(options)
        rounds: list[dict[str, Any]] = []
        result = None
        for r in range(1, args.max_rounds + 1):
            result = synthesize(SynthesisConfig(**base, rounds=r), featurizer=featurizer)
            rounds = result.report["rounds"]
            if sum(s["accepted"] for s in rounds) >= args.budget:
                break
        template_of = {problem: template for problem, (template, _) in server._respond.known.items()}
    pool = result.rows
    seeds_n = sum(row["source"] == "seed" for row in pool)
    budget_pool = pool[: seeds_n + args.budget]
    feats = featurizer.featurize([{"prompt": row["problem"], "completion": row["solution"]} for row in budget_pool])
    per_round = []
    for s in rounds:
        drops = s["drop_reasons"]
        in_pool = [row for row in pool if row["round"] <= s["round"]]
        per_round.append(
            {
                "round": s["round"],
                "pool": s["pool_after"],
                "gvendi": round(s["gvendi_after"], 3),
                "accepted": s["accepted"],
                "generated": s["generated"],
                "rejected_fraction": round(1 - s["accepted"] / s["generated"], 3) if s["generated"] else None,
                "rejected_by_sparse_filter": drops.get("dense_cluster", 0),
                "templates": len({template_of.get(row["problem"].strip(), "?") for row in in_pool}),
                "n_clusters": s["n_clusters"],
                "cluster_sizes": sorted(s["cluster_sizes"], reverse=True),
                "sparse_clusters": len(s["sparse_clusters"]),
                "drop_reasons": drops,
            }
        )
    return {
        "arm": name,
        "root_seed": root_seed,
        "options": options,
        "seed_gvendi": round(rounds[0]["gvendi_before"], 3),
        "rounds": per_round,
        "accepted": sum(s["accepted"] for s in rounds),
        "budget_gvendi": round(float(score(np.asarray(feats)).value), 3) if len(budget_pool) > seeds_n else None,
        "budget_reached": sum(s["accepted"] for s in rounds) >= args.budget,
        "seconds": round(time.perf_counter() - started, 1),
    }


def plot(arms: list[dict], path: Path) -> None:
    """G-Vendi against pool size, one colour per arm, one line per root seed (the first seed with markers)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours: dict[str, str] = {}
    for arm in arms:
        first = arm["arm"] not in colours
        colours.setdefault(arm["arm"], f"C{len(colours)}")
        seeds = arm["rounds"][0]["pool"] - arm["rounds"][0]["accepted"]
        xs = [seeds] + [r["pool"] for r in arm["rounds"]]
        ys = [arm["seed_gvendi"]] + [r["gvendi"] for r in arm["rounds"]]
        style = "--" if arm["arm"].startswith("prismatic K") else "-"
        ax.plot(
            xs, ys, style, color=colours[arm["arm"]], marker="o" if first else None, markersize=3,
            alpha=1.0 if first else 0.45, label=arm["arm"] if first else None,
        )  # fmt: skip
    ax.set_xlabel("pool size (seeds + accepted)")
    ax.set_ylabel("pool G-Vendi")
    ax.set_title("G-Vendi of the pool after each round (one line per root seed)")
    ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def _by_arm(arms: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for arm in arms:
        groups.setdefault(arm["arm"], []).append(arm)
    return groups


def markdown(payload: dict) -> str:
    a = payload["arguments"]
    arms = payload["arms"]
    lines = [
        "# Synthesis strategies: Prismatic Synthesis against vanilla few-shot generation",
        "",
        f"Same seeds ({a['seeds']} rows: template mix {payload['seed_mix']}), the same loopback generator "
        f"(template-walk responder, drift {a['drift']}), {a['per_round']} candidates asked per round, until "
        f"{a['budget']} accepted (at most {a['max_rounds']} rounds); K ratio {a['k_ratio']} "
        f"unless named. G-Vendi from the bundled tiny proxy (factored, dim {a['dim']}). Machine: "
        f"{payload['machine']['cpu_count']} CPUs, load {payload['machine']['load_average_1_5_15']}; "
        f"{payload['seconds']:.0f} s in all.",
        "",
        markdown_table(
            [
                "arm",
                "rounds",
                "accepted",
                f"G-Vendi at {a['budget']} accepted",
                "final pool G-Vendi",
                "templates",
                "rejected (all rounds)",
            ],
            [
                [
                    name,
                    " / ".join(str(len(arm["rounds"])) for arm in group),
                    " / ".join(str(arm["accepted"]) for arm in group),
                    " / ".join(f"{arm['budget_gvendi']}" + ("" if arm["budget_reached"] else "*") for arm in group),
                    " / ".join(str(arm["rounds"][-1]["gvendi"]) for arm in group),
                    " / ".join(str(arm["rounds"][-1]["templates"]) for arm in group),
                    " / ".join(
                        f"{1 - arm['accepted'] / sum(r['generated'] for r in arm['rounds']):.0%}" for arm in group
                    ),
                ]
                for name, group in _by_arm(arms).items()
            ],
        ),
        "",
        f"Values per root seed ({' / '.join(str(x) for x in a['root_seeds'])}). Seed pool G-Vendi "
        f"{arms[0]['seed_gvendi']} ({a['seeds']} rows). *: the budget was not reached within {a['max_rounds']} "
        "rounds (G-Vendi of the seeds and every accepted example then). Templates: distinct solution templates in the "
        "final pool.",
        "",
        f"Per round, root seed {a['root_seeds'][0]}: pool size, pool G-Vendi after the round, templates covered, "
        "candidates rejected (of those asked for; in brackets: by the sparse-cluster filter), and the sizes of the "
        "clusters the round's k-means cut the pool into (largest first; how many were sparse).",
        "",
        markdown_table(
            ["arm", "round", "pool", "G-Vendi", "templates", "rejected", "cluster sizes (sparse count)"],
            [
                [
                    arm["arm"],
                    r["round"],
                    r["pool"],
                    r["gvendi"],
                    r["templates"],
                    f"{r['rejected_fraction']:.0%} ({r['rejected_by_sparse_filter']})",
                    f"{' '.join(map(str, r['cluster_sizes']))} ({r['sparse_clusters']})",
                ]
                for arm in arms
                if arm["root_seed"] == a["root_seeds"][0]
                for r in arm["rounds"]
            ],
        ),
        "",
        f"Reproduce: `{payload['command']}`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=96, help="accepted examples each arm runs to")
    parser.add_argument("--per-round", type=int, default=48, help="candidates asked for per round")
    parser.add_argument("--max-rounds", type=int, default=8)
    parser.add_argument("--seed-mix", default="64,8,8,8,8", help="seed rows per template (a skewed pool)")
    parser.add_argument("--k-ratio", type=float, default=0.1, help="clusters per pool example of the main arms")
    parser.add_argument("--sweep", default="0.05,0.2", help="further K ratios for prismatic")
    parser.add_argument(
        "--drift", type=float, default=0.25, help="the generator's chance to move to a neighbour template"
    )
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--root-seeds", default="0,1", help="root seeds: every arm runs once per seed")
    parser.add_argument("--name", default="synthesis_strategies")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    root_seeds = [int(x) for x in args.root_seeds.split(",")]
    featurizer = SharedFeaturizer(args.dim)
    work = Path(tempfile.mkdtemp(prefix="gvendi-strategies-"))
    try:
        seeds = work / "seeds.jsonl"
        mix = seed_pool(seeds, [int(x) for x in args.seed_mix.split(",")])
        arms_spec = [
            ("vanilla", {"strategy": "vanilla"}),
            ("prismatic", {"strategy": "prismatic"}),
            ("prismatic + sparse shots", {"strategy": "prismatic", "shot_policy": "sparse-cluster"}),
        ]
        arms_spec += [
            (f"prismatic K ratio {k}", {"strategy": "prismatic", "k_ratio": float(k)})
            for k in args.sweep.split(",")
            if k.strip()
        ]
        arms = []
        for root_seed in root_seeds:
            for name, options in arms_spec:
                arms.append(run_arm(name, options, root_seed, args, featurizer, work, seeds))
                last = arms[-1]
                print(
                    f"{name} (seed {root_seed}): G-Vendi {[r['gvendi'] for r in last['rounds']]} at pools "
                    f"{[r['pool'] for r in last['rounds']]} ({last['seconds']:.0f} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/bench_synthesis_strategies.py" + (" " + " ".join(argv) if argv else "")
    payload = {
        "arguments": {**vars(args), "root_seeds": root_seeds, "seeds": sum(mix.values())},
        "seed_mix": mix,
        "arms": arms,
        "featurized_rows": featurizer.featurized,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
        "command": command,
    }
    write_results(args.name, payload, markdown(payload))
    png = ROOT / "benchmarks" / "results" / f"{args.name}.png"
    plot([arm for arm in arms], png)
    if args.name in DOCS_RUNS:
        shutil.copyfile(png, DOCS_ASSETS / f"{args.name}.png")
    print(f"wrote benchmarks/results/{args.name}.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
