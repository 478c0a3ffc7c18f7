"""The bundled evidence that G-Vendi predicts generalisation: the table ``gvendi demo --evidence`` prints.

``benchmarks/bench_correlation.py`` fine-tunes one small model on a family of training sets that differ only in
diversity, scores each set with G-Vendi and the paper's baselines, and writes the Spearman ρ of each measure against
the fine-tuned models' out-of-distribution loss to ``gvendi/data/evidence.json`` (shipped with the package). This
module only reads and formats that file; see ``docs/evidence.md`` for the method and the full results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVIDENCE_PATH = Path(__file__).resolve().parent / "data" / "evidence.json"
"""The bundled summary of the correlation benchmark."""


def load_evidence(path: str | Path | None = None) -> dict[str, Any]:
    """The correlation summary: ``measures`` (``key``, ``label``, ``rho``, ``low``, ``high``, …) and the run's setup.

    Args:
        path (`str` or `Path`, *optional*): a summary written by the benchmark; defaults to the bundled one.

    Returns:
        `dict[str, Any]`: the parsed JSON.
    """
    path = Path(path) if path is not None else EVIDENCE_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"no evidence summary at {path}; run `python benchmarks/bench_correlation.py` from a source checkout "
            "to write it."
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data.get("measures"), list) or not data["measures"]:
        raise ValueError(f"{path}: field 'measures' must be a non-empty list; rewrite it with the benchmark.")
    return data


def evidence_table(path: str | Path | None = None) -> str:
    """The correlation result as a plain-text table: one line per measure, Spearman ρ and its 95% interval.

    Args:
        path (`str` or `Path`, *optional*): a summary written by the benchmark; defaults to the bundled one.

    Returns:
        `str`: the table with a heading and a closing note, lines joined by ``\\n``.
    """
    data = load_evidence(path)
    width = max(len(m["label"]) for m in data["measures"])
    lines = [
        f"Does diversity predict generalisation? {data['sets']} training sets of {data['size']} math rows, one small "
        f"model fine-tuned on each ({data['steps']} steps);",
        f"outcome: {data['outcome']}; held-out templates: {', '.join(data['held_out_templates'])}.",
        f"Spearman ρ of each measure with the outcome, 95% bootstrap interval over the sets ({data['n_boot']} "
        "resamples),",
        "and the share of resamples in which G-Vendi's |ρ| is the larger:",
        "",
        f"{'measure':<{width}}  {'ρ':>5}  {'95% interval':<14}  G-Vendi |ρ| larger",
    ]
    for m in data["measures"]:
        ahead = "" if m.get("gvendi_ahead_share") is None else f"{m['gvendi_ahead_share']:.0%}"
        interval = f"[{m['low']:+.2f}, {m['high']:+.2f}]"
        lines.append(f"{m['label']:<{width}}  {m['rho']:>+5.2f}  {interval:<14}  {ahead}")
    gvendi = next(m for m in data["measures"] if m["key"] == "gvendi")
    ahead_of = [m["label"] for m in data["measures"] if not m.get("reference") and abs(m["rho"]) > abs(gvendi["rho"])]
    verdict = (
        f"G-Vendi is not ahead of every baseline here: {', '.join(ahead_of)} rank the sets better."
        if ahead_of
        else "G-Vendi ranks the sets better than every baseline here."
    )
    lines += [
        "",
        verdict + " Reference rows read the design, not the data.",
        f"Recorded by `{data['source']}` (a {data['minutes']}-min run on 2 shared CPU cores); see docs/evidence.md.",
    ]
    return "\n".join(lines)
