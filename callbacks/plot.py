"""The ``gvendi_curve.png`` figure: cumulative, window and per-stage G-Vendi against examples seen."""

from __future__ import annotations

from typing import Any


def plot_curve(summary: dict[str, Any], path: str) -> bool:
    """Draw ``summary`` (``GVendiCallback.summary()``) to ``path``; ``False`` when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    config = summary["config"]
    points = [p for p in summary["points"] if p["cumulative"] is not None]
    figure = Figure(figsize=(7.0, 4.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    if points:
        x = [p["examples"] for p in points]
        axes.plot(x, [p["cumulative"] for p in points], color="black", linewidth=2, label="cumulative")
        interval = [(p["examples"], *p["cumulative_ci"]) for p in points if p.get("cumulative_ci")]
        if interval:
            level = summary["final"].get("ci_level")
            axes.fill_between(*zip(*interval), color="black", alpha=0.15, linewidth=0, label=f"{level:.0%} interval")
        window = [(p["examples"], p["window"]) for p in points if p["window"] is not None]
        axes.plot(*zip(*window), color="gray", linewidth=1, marker=".", alpha=0.7, label="window")
        names = sorted({name for p in points for name in p["stages"]})
        for i, name in enumerate(names):
            staged = [(p["examples"], p["stages"][name]) for p in points if name in p["stages"]]
            axes.plot(*zip(*staged), linestyle="--", marker="o", markersize=3, color=f"C{i}", label=f"stage {name}")
    axes.set_xlabel("examples seen")
    axes.set_ylabel(f"G-Vendi (q={config['q']:g}, k={config['dim']})")
    axes.set_title(f"Gradient diversity during training (source={config['source']})")
    axes.grid(alpha=0.3)
    if points:
        axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return True
