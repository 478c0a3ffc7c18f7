"""The run report: ``report.json``, ``report.md`` and ``plots/*.png`` (matplotlib's Agg canvas, no display)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["STAGES", "build_report", "render_markdown", "write_plots"]

STAGES = ("generated", "parsed", "solved", "voted", "decontaminated", "deduplicated", "accepted")


def build_report(
    config: dict[str, Any], rounds: list[dict[str, Any]], *, complete: bool, final_gvendi: float | None = None
) -> dict[str, Any]:
    """The ``report.json`` dict: per-round counts and rates, pool G-Vendi, decontamination totals."""
    seed_pool = rounds[0]["gvendi_before"] if rounds else None
    final = final_gvendi if final_gvendi is not None else (rounds[-1]["gvendi_after"] if rounds else seed_pool)
    removed = sum(
        r.get("drop_reasons", {}).get("benchmark_ngram_overlap", 0) + r.get("drop_reasons", {}).get("paraphrase", 0)
        for r in rounds
    )
    decontamination = config.get("decontamination", {})
    return {
        "task": config["task"],
        "complete": complete,
        "rounds": rounds,
        "gvendi": {"seed_pool": seed_pool, "final": final},
        "decontamination": {
            "benchmarks": list(decontamination.get("benchmarks", [])),
            "ngram": int(decontamination.get("ngram", 10)),
            "paraphrase_check": bool(decontamination.get("paraphrase_check", False)),
            "removed": removed,
        },
        "totals": {stage: sum(r[stage] for r in rounds) for stage in STAGES},
    }


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any], config: dict[str, Any]) -> str:
    """A human-readable summary of :func:`build_report`'s dict."""
    status = "complete" if report["complete"] else "in progress (resume with `gvendi synthesize --resume RUN_DIR`)"
    lines = [
        f"# Prismatic Synthesis run: {report['task']}",
        "",
        f"Status: {status}. Generator: `{config['generator'].get('backend')}` {config['generator'].get('url') or ''}"
        f" ({config['generator'].get('model') or 'default model'}); "
        f"strategy {config.get('strategy', 'prismatic')}; vote N={config['vote']['n']}, τ={config['vote']['tau']}; "
        f"seed {config['seed']}.",
        "",
        f"Pool G-Vendi: seeds {_fmt(report['gvendi']['seed_pool'])} → now {_fmt(report['gvendi']['final'])}.",
        "",
        "| round | " + " | ".join(STAGES) + " | pool G-Vendi before → after | clusters (sparse) |",
        "|" + "---|" * (len(STAGES) + 3),
    ]
    for r in report["rounds"]:
        cells = [f"{r[s]} ({r['rates'][s]:.0%})" if s != "generated" else str(r[s]) for s in STAGES]
        lines.append(
            f"| {r['round']} | "
            + " | ".join(cells)
            + f" | {_fmt(r['gvendi_before'])} → {_fmt(r['gvendi_after'])}"
            + f" | {r['n_clusters']} ({len(r['sparse_clusters'])}) |"
        )
    lines += ["", "Rates are fractions of the candidates asked for (`generated`).", "", "## Drops by reason", ""]
    for r in report["rounds"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("drop_reasons", {}).items()) if v) or "none"
        failed = r.get("requests", {}).get("failed", 0)
        lines.append(f"- round {r['round']}: {reasons}; failed requests: {failed}")
    d = report["decontamination"]
    lines += [
        "",
        f"Decontamination: {d['ngram']}-gram overlap against {d['benchmarks'] or 'no benchmarks'}"
        f"{' + LLM paraphrase check' if d['paraphrase_check'] else ''}; removed {d['removed']}.",
        "",
        "Plots: `plots/funnel.png`, `plots/gvendi.png`, `plots/round_RRR_clusters.png`.",
        "",
    ]
    return "\n".join(lines)


def write_plots(report: dict[str, Any], plot_dir: str | Path) -> list[Path]:
    """Funnel per round, pool G-Vendi over rounds, and each round's cluster-size histogram (sparse in orange)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed; skipping plots (pip install matplotlib).")
        return []
    from ..utils import atomic_write
    from .store import _fs_error

    plot_dir = Path(plot_dir)
    try:
        plot_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fs_error("create", plot_dir, exc) from exc
    written = []

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        path = plot_dir / name
        try:
            atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=80))
        except OSError as exc:
            raise _fs_error("write", path, exc) from exc
        written.append(path)

    rounds = report["rounds"]
    if rounds:
        fig = Figure(figsize=(8, 4), layout="tight")
        ax = fig.add_subplot()
        width = 0.8 / len(rounds)
        for i, r in enumerate(rounds):
            ax.bar(
                [x + i * width for x in range(len(STAGES))], [r[s] for s in STAGES], width, label=f"round {r['round']}"
            )
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(STAGES))], STAGES, rotation=20)
        ax.set_ylabel("candidates")
        ax.set_title("Candidates surviving each stage")
        ax.legend(fontsize="small", loc="lower left")
        save(fig, "funnel.png")

        fig = Figure(figsize=(5, 3.5), layout="tight")
        ax = fig.add_subplot()
        xs = [0] + [r["round"] for r in rounds]
        ys = [rounds[0]["gvendi_before"]] + [r["gvendi_after"] for r in rounds]
        ax.plot(xs, ys, marker="o")
        ax.set_xlabel("round")
        ax.set_ylabel("pool G-Vendi")
        ax.set_title("Pool diversity")
        save(fig, "gvendi.png")

    for r in rounds:
        if (plot_dir / f"round_{r['round']:03d}_clusters.png").exists():
            continue  # a finished round never changes
        sizes = r["cluster_sizes"]
        sparse = set(r["sparse_clusters"])
        fig = Figure(figsize=(max(4, 0.25 * len(sizes) + 2), 3.5), layout="tight")
        ax = fig.add_subplot()
        colors = ["tab:orange" if i in sparse else "tab:blue" for i in range(len(sizes))]
        ax.bar(range(len(sizes)), sizes, color=colors)
        ax.set_xlabel("cluster (orange: sparse)")
        ax.set_ylabel("pool examples")
        ax.set_title(f"Round {r['round']}: cluster sizes ({len(sparse)} of {len(sizes)} sparse)")
        save(fig, f"round_{r['round']:03d}_clusters.png")
    return written
