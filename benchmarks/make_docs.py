"""Rebuild the figures in the docs from the committed benchmark results, so no number on a page can drift.

    python benchmarks/make_docs.py          # rewrite docs/benchmarks.md and the marked tables in other pages
    python benchmarks/make_docs.py --check  # exit 1 if a page differs from what the results give (a test runs this)

``docs/benchmarks.md`` is a short introduction, the real-scale summary generated from the JSON results, the cost of
scoring with the paper's proxy (extrapolated from the 1- and 2-layer runs at its widths), ``results/summary.md`` (the
older targets, written by hand after a run), then each ``benchmarks/results/<name>.md`` that exists, headings demoted
one level. In any other page, the lines between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` become the
tables of ``results/NAME.md``, and ``<!-- generated:cost -->`` … ``<!-- /generated:cost -->`` the cost table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
PAGE = DOCS / "benchmarks.md"
ORDER = (
    "featurize_real",
    "featurize_real_2layers",
    "featurize_real_layers",
    "projection_accuracy_real",
    "callback_overhead_real",
    "featurize",
    "projection_accuracy",
    "scoring",
    "scoring_1m_fresh_process",
    "kmeans",
    "gpu",
    "callback_overhead_active",
    "callback_overhead",
    "callback_overhead_small",
    "synthesis_client",
    "synthesis_strategies",
    "synthesis_strategies_small",
    "threads",
    "correlation",
)

INTRO = """# Benchmarks

Side-by-side measurements produced by the scripts in `benchmarks/` (see `benchmarks/README.md` for the commands).
Each section below is the table a script wrote to `benchmarks/results/`, with the machine and its load; the JSON
files beside them hold every number, and `python benchmarks/make_docs.py` rebuilds this page from them (a test checks
that it is current). The CPU figures come from a 2-core machine shared with other jobs, so treat differences under
~10% as noise; the featurization methods are therefore timed interleaved, batch by batch.

Beyond one machine, `gvendi featurize DATA --out DIR` cuts the rows into fixed shards and spreads them over
processes: `accelerate launch -m gvendi.cli featurize …` on GPUs, `torchrun --standalone --nproc_per_node N -m
gvendi.cli featurize …` on CPUs, or `--rank R --world-size W` for independent jobs. Each shard is written atomically
with a completion marker, a rerun skips finished shards, and the merge adds the shard accumulators in shard order, so
the features and G-Vendi do not depend on the number of processes (tests/test_sharded.py checks bitwise equality).

{real_scale}

{cost}

{summary}
"""


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def real_scale_summary() -> str:
    """The real-scale targets and where the committed results put them."""
    real, toy, acc = _load("featurize_real"), _load("featurize"), _load("projection_accuracy_real")
    callback, gpu = _load("callback_overhead_real"), _load("gpu")
    rows = []
    if real:
        lengths = real["speed_real"]["lengths"]
        cells = ", ".join(
            f"{tokens} tokens {m['gvendi_factored']['ratio_to_plain']:.2f}× (frozen floor "
            f"{m['frozen']['ratio_to_plain']:.2f}×)"
            for tokens, m in lengths.items()
        )
        worst = max(m["gvendi_factored"]["ratio_to_plain"] for m in lengths.values())
        rows.append(
            [
                "default projection ≤ 1.15× a plain forward+backward at the real shape (CPU)",
                cells,
                "holds" if worst <= 1.15 else "misses",
            ]
        )
        slow = [(t, m) for t, m in lengths.items() if "gvendi_sketch" in m and "ratio_to_plain" in m["gvendi_sketch"]]
        for tokens, m in slow:
            rows.append(
                [
                    "`sketch` and `dense` at the real shape",
                    f"{tokens} tokens: `sketch` "
                    f"{m['gvendi_sketch']['ratio_to_plain']:.1f}×, `dense` {m['gvendi_dense']['ratio_to_plain']:.0f}× "
                    f"({m['gvendi_dense']['examples_per_s']:.4f} examples/s)",
                    "reported",
                ]
            )
        long = real["speed_real"].get("long_example", {})
        if long.get("tokens"):
            rows.append(
                [
                    f"peak memory of one {long['tokens']:,}-token example, reported",
                    "; ".join(
                        f"{key}: +{v['peak_rss_delta_mb']:,.0f} MB RSS, {v['seconds']:.0f} s"
                        for key, v in long.items()
                        if isinstance(v, dict)
                    ),
                    "reported",
                ]
            )
    if toy and "gvendi_factored" in toy.get("speed", {}).get("methods", {}):
        methods = toy["speed"]["methods"]
        rows.append(
            [
                "default ≤ 1.33× plain on the toy-shape benchmark",
                f"{methods['gvendi_factored']['ratio_to_plain']:.2f}×",
                "holds" if methods["gvendi_factored"]["ratio_to_plain"] <= 1.33 else "misses",
            ]
        )
        dense = methods.get("gvendi_dense", {})
        if "examples_per_s" in dense:
            speedup = dense["examples_per_s"] / 0.010
            rows.append(
                [
                    "`dense` ≥ 5× faster than before on the toy benchmark (0.010 examples/s on 2026-11-22)",
                    f"{dense['examples_per_s']:.3f} examples/s ({speedup:.0f}×), {dense['ratio_to_plain']:.1f}× plain",
                    "holds" if speedup >= 5 else "misses",
                ]
            )
    if acc:
        cells, ok = [], True
        for row in acc["results"]:
            delta = row["factored fold 128 vs dense %"]
            ok &= abs(delta) <= 3
            cells.append(f"{row['set']} {delta:+.2f}% (exact {row['exact']:.2f}, dense {row['simulated_dense']:.2f})")
        rows.append(
            ["default within 3% of dense at the real widths (3 seeds)", "; ".join(cells), "holds" if ok else "misses"]
        )
    if callback:
        for variant in callback["variants"]:
            rows.append(
                [
                    f"Trainer callback at the real widths ≤ {callback['target_fraction']:.0%} every step",
                    f"{variant['projection']}: {variant['overhead_wall_fraction'] * 100:+.1f}% wall (median of "
                    f"{callback['settings']['repeats']} paired repeats), "
                    f"{variant['overhead_cpu_fraction'] * 100:+.1f}% CPU",
                    "holds" if variant["overhead_wall_fraction"] <= callback["target_fraction"] else "misses",
                ]
            )
    rows.append(
        [
            "≥ 150 examples/s on one GPU (24 layers, bf16, 512 tokens)",
            f"{gpu['examples_per_s']:.0f} examples/s" if gpu else "not measured: no GPU was lent to this work",
            ("holds" if gpu["examples_per_s"] >= 150 else "misses") if gpu else "open",
        ]
    )
    lines = ["## Real scale: where the targets stand", "", "| target | measured | status |", "| --- | --- | --- |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def cost_table() -> str:
    """Hours to featurize 10k / 100k / 1M examples with the 24-layer proxy on this CPU, extrapolated from depths timed
    interleaved in one process (``featurize_real_layers``)."""
    scaling = _load("featurize_real_layers")
    if not scaling:
        return ""
    rows = []
    for tokens, r in scaling["layer_scaling"].items():
        t24 = r["extrapolated_24_layers_s"]
        depths = ", ".join(f"{d}: {s:.2f}" for d, s in r["seconds_per_example"].items())
        rows.append(
            [
                tokens,
                depths,
                f"{r['per_layer_s']:.3f}",
                f"{r['fixed_s']:.2f}",
                f"{t24:.1f}",
                *(f"{n * t24 / 3600:,.1f}" for n in (10_000, 100_000, 1_000_000)),
            ]
        )
    lines = [
        "| tokens per example | s/example by depth | s per layer | fixed s (embedding, LM head) | 24 layers, "
        "s/example "
        "| 10k examples (h) | 100k (h) | 1M (h) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def cost_section() -> str:
    table = cost_table()
    if not table:
        return ""
    return "\n".join(
        [
            "## What scoring costs with the paper's proxy (CPU)",
            "",
            "Seconds per example of the default projection with the paper's widths and vocabulary at several depths, "
            "timed interleaved in one process (`featurize_real_layers.json`; each layer adds the same work, the "
            "embedding and LM head are the fixed part), extrapolated linearly to the proxy's 24 layers, on this "
            "shared 2-core CPU (2 threads). A GPU is the machine for more than a "
            "few thousand examples (`benchmarks/bench_gpu.py`; not yet measured here). Use the default `factored` "
            "everywhere; `sketch` only to cross-check at small widths, `dense` only as the paper-faithful reference "
            "on "
            "small sets.",
            "",
            table,
        ]
    )


def _tables(name: str) -> str:
    path = RESULTS / f"{name}.md"
    if not path.is_file():
        return f"(not measured yet: `benchmarks/results/{name}.md` does not exist)"
    tables, current = [], []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:  # a table ended: keep separate tables apart
            tables.append("\n".join(current))
            current = []
    return "\n\n".join(tables)


def real_claim() -> str:
    """One sentence on the default projection at the real shape, for the README."""
    real, acc = _load("featurize_real"), _load("projection_accuracy_real")
    if not (real and acc):
        return "(not measured yet)"
    ratios = [m["gvendi_factored"]["ratio_to_plain"] for m in real["speed_real"]["lengths"].values()]
    errors = [abs(row["factored fold 128 vs dense %"]) for row in acc["results"]]
    sketch = [
        m["gvendi_sketch"]["ratio_to_plain"] for m in real["speed_real"]["lengths"].values() if "gvendi_sketch" in m
    ]
    text = (
        f"at the paper's proxy widths it runs at {min(ratios):.2f}–{max(ratios):.2f}× a plain forward+backward and "
        f"reads within {max(errors):.1f}% of a dense projection"
    )
    return text + (f" (`sketch`: {max(sketch):.0f}× there)" if sketch else "")


def evidence_claim() -> str:
    """The correlation benchmark's result in two sentences, for docs/evidence.md and the README."""
    data = _load("correlation")
    if not data:
        return "(not measured yet)"
    table = data["correlation"]
    measures = [k for k in table if k not in ("templates", "effective_templates")]
    g = table["gvendi"]
    best = max((k for k in measures if k != "gvendi"), key=lambda k: abs(table[k]["rho"]))
    b = table[best]
    lead = (
        "leads every baseline"
        if all(abs(g["rho"]) > abs(table[k]["rho"]) for k in measures if k != "gvendi")
        else "does not lead every baseline"
    )
    return (
        f"Over {len(data['sets'])} fine-tuning runs, G-Vendi's Spearman ρ with −held-out loss is {g['rho']:+.2f} "
        f"(95% bootstrap interval {g['low']:+.2f} to {g['high']:+.2f}); it {lead}: the strongest baseline, "
        f"{best.replace('_', '-')}, reads {b['rho']:+.2f} ({b['low']:+.2f} to {b['high']:+.2f}), and G-Vendi's |ρ| "
        f"is the larger in {b['gvendi_ahead_share']:.0%} of the bootstrap resamples."
    )


GENERATED = {"cost": cost_table, "real_claim": real_claim, "evidence_claim": evidence_claim}


def fill_markers(text: str) -> str:
    def results(match: re.Match) -> str:
        return f"{match.group(1)}\n{_tables(match.group(2))}\n{match.group(3)}"

    def generated(match: re.Match) -> str:
        return f"{match.group(1)}\n{GENERATED[match.group(2)]()}\n{match.group(3)}"

    text = re.sub(r"(<!-- results:(\w+) -->)\n.*?(<!-- /results:\2 -->)", results, text, flags=re.S)
    return re.sub(r"(<!-- generated:(\w+) -->)\n.*?(<!-- /generated:\2 -->)", generated, text, flags=re.S)


def pages() -> dict[Path, str]:
    """Every page this script writes, with the text it should hold."""
    sections = []
    for name in ORDER:
        path = RESULTS / f"{name}.md"
        if path.is_file():
            lines = [("#" + line) if line.startswith("#") else line for line in path.read_text().strip().splitlines()]
            sections.append("\n".join(lines))
    summary_path = RESULTS / "summary.md"
    summary = summary_path.read_text().strip() if summary_path.is_file() else ""
    intro = INTRO.format(real_scale=real_scale_summary(), cost=cost_section(), summary=summary)
    out = {PAGE: re.sub(r"\n{3,}", "\n\n", intro).rstrip() + "\n\n" + "\n\n".join(sections) + "\n"}
    for page in sorted(DOCS.rglob("*.md")):
        if page != PAGE and "<!-- " in (text := page.read_text()):
            filled = fill_markers(text)
            if filled != text:
                out[page] = filled
    for page in (ROOT / "README.md",):
        text = page.read_text()
        if fill_markers(text) != text:
            out[page] = fill_markers(text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in pages().items():
        current = path.read_text() if path.is_file() else ""
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("out of date (run `python benchmarks/make_docs.py`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print("checked: up to date" if args.check else f"wrote {', '.join(map(str, stale)) or 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
