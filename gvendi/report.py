"""A diversity report of one data set: G-Vendi beside word-level and embedding diversity, with plots and examples.

:func:`build_report` computes everything from the features (and, when given, the texts and embeddings);
:func:`write_report` renders it as one self-contained HTML page (PNG plots embedded as base64) or as Markdown with
the PNGs in a folder beside it. The pieces:

- G-Vendi with a bootstrap interval (:mod:`gvendi.bootstrap`);
- n-gram diversity ``distinct-n`` (unique / total word n-grams, n = 1, 2, 3) and the gzip compression ratio
  (raw bytes / compressed bytes: higher means more repeated text);
- embedding Vendi: the Vendi Score of the cosine kernel of mean-pooled last hidden states of the proxy
  (:func:`embedding_features`);
- the eigenvalue spectrum of the features' second moment, the cluster-size histogram of a spherical k-means, a 2-D
  map of the features on their top two principal directions (uncentred, as G-Vendi's moment is);
- the most redundant and most distinctive examples: all rows ranked by the first-order leave-one-out change, the
  ends of the ranking re-scored exactly (:mod:`gvendi.per_example`);
- per cluster: size, G-Vendi within the cluster and sample texts.
"""

from __future__ import annotations

import base64
import gzip
import html
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .measures import distinct_n

__all__ = ["DiversityReport", "build_report", "embedding_features", "text_diversity", "write_report"]


@dataclass
class DiversityReport:
    """Everything a report shows: ``metrics`` (JSON-ready), ``figures`` (name → PNG bytes), ``examples`` (the most
    redundant and distinctive rows), ``clusters`` (per-cluster rows) and ``config``."""

    metrics: dict[str, Any]
    figures: dict[str, bytes]
    examples: dict[str, list[dict[str, Any]]]
    clusters: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)


def text_diversity(texts: Sequence[str], *, orders: Sequence[int] = (1, 2, 3)) -> dict[str, float]:
    """``distinct-n`` for each order (unique / total lower-cased word n-grams over all texts) and the gzip
    ``compression_ratio`` of the texts joined by newlines (≥ 1; higher means more repetition)."""
    out: dict[str, float] = {f"distinct_{n}": distinct_n(texts, n) for n in orders}
    raw = "\n".join(str(t) for t in texts).encode()
    out["compression_ratio"] = len(raw) / max(1, len(gzip.compress(raw, compresslevel=9)))
    return out


@torch.no_grad()
def embedding_features(featurizer: Any, data: Any, *, batch_size: int = 16) -> np.ndarray:
    """Mean-pooled last hidden states of ``featurizer``'s proxy over each example's tokens (prompt and completion),
    (N, hidden) float32: the embedding baseline the paper compares G-Vendi with."""
    from .featurizer import _as_columns

    examples = featurizer.encode(_as_columns(data))
    model = featurizer.loaded.model
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        longest = max(len(e.input_ids) for e in chunk)
        ids = torch.zeros(len(chunk), longest, dtype=torch.long)
        mask = torch.zeros(len(chunk), longest, dtype=torch.long)
        for i, example in enumerate(chunk):
            ids[i, : len(example.input_ids)] = torch.tensor(example.input_ids)
            mask[i, : len(example.input_ids)] = 1
        hidden = (
            model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True, use_cache=False)
            .hidden_states[-1]
            .float()
        )  # [b,T,h]
        weights = mask.to(device).unsqueeze(-1).float()
        out.append(((hidden * weights).sum(1) / weights.sum(1)).cpu().numpy())  # [b,h]
    return np.concatenate(out)


# plots ---------------------------------------------------------------------------------------------------------
def _figure_png(draw) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _plots(
    eigenvalues: np.ndarray, sizes: np.ndarray, coords: np.ndarray, labels: np.ndarray, value: float
) -> dict[str, bytes]:
    def spectrum(ax):
        p = eigenvalues[eigenvalues > 0]
        ax.semilogy(np.arange(1, p.size + 1), p, lw=1.5)
        ax.axvline(value, color="tab:red", ls="--", lw=1, label=f"G-Vendi = {value:.1f}")
        ax.set(xlabel="eigenvalue rank", ylabel="eigenvalue of Σ (log)", title="Spectrum of the gradient features")
        ax.legend()

    def histogram(ax):
        ax.hist(sizes, bins=min(30, max(5, len(sizes) // 2)), color="tab:green")
        ax.axvline(np.median(sizes), color="k", ls="--", lw=1, label="median (sparse: below)")
        ax.set(xlabel="cluster size (rows)", ylabel="clusters", title=f"Cluster sizes ({len(sizes)} clusters)")
        ax.legend()

    def pca_map(ax):
        ax.scatter(coords[:, 0], coords[:, 1], c=labels % 20, cmap="tab20", s=4, alpha=0.6, linewidths=0)
        ax.set(
            xlabel="principal direction 1",
            ylabel="principal direction 2",
            title="Features on their top two directions",
        )

    return {
        "spectrum": _figure_png(spectrum),
        "cluster_sizes": _figure_png(histogram),
        "pca_map": _figure_png(pca_map),
    }


# building ------------------------------------------------------------------------------------------------------
def _short(text: str | None, limit: int = 240) -> str:
    if text is None:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_report(
    features: Any,
    texts: Sequence[str] | None = None,
    *,
    embeddings: Any = None,
    ci: float = 0.95,
    n_boot: int = 100,
    n_clusters: int | None = None,
    top: int = 5,
    seed: int = 0,
    title: str = "Diversity report",
    provenance: dict[str, Any] | None = None,
) -> DiversityReport:
    """Compute a diversity report.

    Args:
        features: (N, dim) gradient features (N ≥ 3).
        texts (list of `str`, *optional*): one text per row (word-level metrics, example and cluster texts).
        embeddings (array, *optional*): (N, hidden) embeddings for embedding Vendi (e.g. :func:`embedding_features`).
        ci (`float`, *optional*, defaults to 0.95): bootstrap level of G-Vendi's interval.
        n_boot (`int`, *optional*, defaults to 100): bootstrap resamples.
        n_clusters (`int`, *optional*): spherical k-means K; defaults to ``clip(round(√N), 2, 50)`` (a readable
            breakdown).
        top (`int`, *optional*, defaults to 5): examples listed at each end.
        seed (`int`, *optional*, defaults to 0): seeds k-means and the bootstrap.
        title (`str`, *optional*): the page title.
        provenance (`dict`, *optional*): what produced the features, shown in the report.

    Returns:
        `DiversityReport`
    """
    from .cluster import spherical_kmeans
    from .per_example import _spectrum, leave_one_out
    from .selection import _unit_features
    from .vendi import score

    timings: dict[str, float] = {}
    began = time.perf_counter()
    x = _unit_features(features, torch.float64).numpy()
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"a report needs at least 3 rows (got {n}).")
    if texts is not None and len(texts) != n:
        raise ValueError(f"got {len(texts)} texts for {n} feature rows: give one text per row, in order.")
    result = score(x, ci=ci, n_boot=n_boot, seed=seed)
    metrics: dict[str, Any] = {
        "num_samples": n,
        "dim": x.shape[1],
        "gvendi": result.value,
        "gvendi_ci": result.ci,
        "ci_level": ci,
        "n_boot": n_boot,
    }
    timings["gvendi_with_ci"] = time.perf_counter() - began
    if texts is not None:
        metrics.update(text_diversity(texts))
    if embeddings is not None:
        metrics["embedding_vendi"] = score(np.asarray(embeddings, dtype=np.float64)).value
    t = time.perf_counter()
    lam, vectors = _spectrum(x)
    eigenvalues = lam / lam.sum()
    coords = x @ vectors[:, :2]  # [N,2] on the top two directions
    if n_clusters is None:
        n_clusters = int(np.clip(round(np.sqrt(n)), 2, 50))
    km = spherical_kmeans(x.astype(np.float32), min(int(n_clusters), n), seed=seed, device="cpu", show_progress=False)
    timings["spectrum_and_clusters"] = time.perf_counter() - t
    t = time.perf_counter()
    approx = leave_one_out(x, exact=False)
    order = np.argsort(approx)  # low leave-one-out value: removing the row hurts → distinctive (descending below)
    shortlist = np.unique(np.r_[order[: 4 * top], order[-4 * top :]])
    exact = leave_one_out(x, indices=shortlist)
    contribution = result.value - exact
    ranked = shortlist[np.argsort(contribution)]
    by_row = dict(zip(shortlist.tolist(), contribution.tolist()))
    timings["examples"] = time.perf_counter() - t

    def example(row: int) -> dict[str, Any]:
        return {
            "row": int(row),
            "contribution": by_row[int(row)],
            "cluster": int(km.labels[row]),
            "text": _short(texts[row]) if texts is not None else "",
        }

    examples = {
        "redundant": [example(r) for r in ranked[:top]],
        "distinctive": [example(r) for r in ranked[::-1][:top]],
    }
    t = time.perf_counter()
    clusters = []
    rng = np.random.default_rng(seed)
    for c in np.argsort(-km.sizes):
        members = np.flatnonzero(km.labels == c)
        if members.size == 0:
            continue
        samples = rng.choice(members, size=min(2, members.size), replace=False)
        clusters.append(
            {
                "cluster": int(c),
                "size": int(members.size),
                "gvendi": score(x[members]).value,
                "samples": [_short(texts[s], 160) for s in samples] if texts is not None else [],
            }
        )
    metrics["num_clusters"] = len(clusters)
    metrics["sparse_clusters"] = int((km.sizes < np.median(km.sizes)).sum())
    timings["clusters_breakdown"] = time.perf_counter() - t
    t = time.perf_counter()
    figures = _plots(eigenvalues, km.sizes, coords, km.labels, result.value)
    timings["plots"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - began
    config = {
        "title": title,
        "seed": seed,
        "n_clusters": int(n_clusters),
        "top": top,
        "timings_s": timings,
        **(provenance or {}),
    }
    return DiversityReport(metrics=metrics, figures=figures, examples=examples, clusters=clusters, config=config)


# rendering -----------------------------------------------------------------------------------------------------
_FIGURE_TITLES = {"spectrum": "Eigenvalue spectrum", "cluster_sizes": "Cluster sizes", "pca_map": "2-D map (PCA)"}


def _metric_rows(report: DiversityReport) -> list[tuple[str, str, str]]:
    m = report.metrics
    rows = []
    interval = (
        f" ({m['ci_level']:.0%} CI {m['gvendi_ci'][0]:.2f}–{m['gvendi_ci'][1]:.2f})" if m.get("gvendi_ci") else ""
    )
    rows.append(
        (
            "G-Vendi",
            f"{m['gvendi']:.2f}{interval}",
            f"effective number of gradient directions, 1 … {min(m['num_samples'], m['dim'])}",
        )
    )
    for n in (1, 2, 3):
        if f"distinct_{n}" in m:
            rows.append((f"distinct-{n}", f"{m[f'distinct_{n}']:.3f}", f"unique / total word {n}-grams"))
    if "compression_ratio" in m:
        rows.append(
            ("compression ratio", f"{m['compression_ratio']:.2f}", "raw / gzip bytes (higher: more repetition)")
        )
    if "embedding_vendi" in m:
        rows.append(("embedding Vendi", f"{m['embedding_vendi']:.2f}", "Vendi of mean-pooled proxy hidden states"))
    rows.append(
        (
            "rows / clusters",
            f"{m['num_samples']} / {m['num_clusters']}",
            f"{m['sparse_clusters']} sparse (below the median size)",
        )
    )
    return rows


def _render_html(report: DiversityReport) -> str:
    esc = html.escape
    title = esc(str(report.config.get("title", "Diversity report")))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
        "vertical-align:top}img{max-width:100%}figure{margin:1em 0}</style></head><body>",
        f"<h1>{title}</h1><h2>Diversity</h2><table><tr><th>measure</th><th>value</th><th>meaning</th></tr>",
    ]
    parts += [f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in _metric_rows(report)]
    parts.append("</table><h2>Plots</h2>")
    for name, png in report.figures.items():
        data = base64.b64encode(png).decode()
        parts.append(
            f"<figure><img class='plot' alt='{esc(_FIGURE_TITLES.get(name, name))}' "
            f"src='data:image/png;base64,{data}'>"
            f"<figcaption>{esc(_FIGURE_TITLES.get(name, name))}</figcaption></figure>"
        )
    for kind, heading in (("distinctive", "Most distinctive examples"), ("redundant", "Most redundant examples")):
        parts.append(f"<h2>{heading}</h2><table><tr><th>row</th><th>Δ G-Vendi</th><th>cluster</th><th>text</th></tr>")
        parts += [
            f"<tr><td>{e['row']}</td><td>{e['contribution']:+.4f}</td><td>{e['cluster']}</td><td>{esc(e['text'])}</td></tr>"
            for e in report.examples[kind]
        ]
        parts.append("</table>")
    parts.append(
        "<h2>Clusters</h2><table><tr><th>cluster</th><th>size</th><th>G-Vendi within</th><th>sample texts</th></tr>"
    )
    parts += [
        f"<tr><td>{c['cluster']}</td><td>{c['size']}</td><td>{c['gvendi']:.2f}</td>"
        f"<td>{'<br>'.join(esc(s) for s in c['samples'])}</td></tr>"
        for c in report.clusters
    ]
    parts.append("</table>")
    provenance = {k: v for k, v in report.config.items() if k not in {"title", "timings_s"}}
    parts.append(f"<h2>Provenance</h2><pre>{esc(_json(provenance))}</pre>")
    # lets a headless browser (and the tests) confirm that every embedded plot decoded
    parts.append(
        "<script>window.addEventListener('load',function(){var i=document.querySelectorAll('img.plot'),n=0;"
        "i.forEach(function(x){if(x.complete&&x.naturalWidth>0)n++});"
        "document.body.setAttribute('data-plots-loaded',n)});</script></body></html>"
    )
    return "".join(parts)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, default=str)


def _render_markdown(report: DiversityReport, folder_name: str) -> str:
    lines = [
        f"# {report.config.get('title', 'Diversity report')}",
        "",
        "| measure | value | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _metric_rows(report)]
    lines.append("")
    for name in report.figures:
        lines += [f"![{_FIGURE_TITLES.get(name, name)}]({folder_name}/{name}.png)", ""]
    for kind, heading in (("distinctive", "Most distinctive examples"), ("redundant", "Most redundant examples")):
        lines += [f"## {heading}", "", "| row | Δ G-Vendi | cluster | text |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {e['row']} | {e['contribution']:+.4f} | {e['cluster']} | {e['text'].replace('|', '/')} |"
            for e in report.examples[kind]
        ]
        lines.append("")
    lines += ["## Clusters", "", "| cluster | size | G-Vendi within | sample texts |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {c['cluster']} | {c['size']} | {c['gvendi']:.2f} | "
        f"{' / '.join(s.replace('|', '/') for s in c['samples'])} |"
        for c in report.clusters
    ]
    return "\n".join(lines) + "\n"


def write_report(report: DiversityReport, out: str) -> str:
    """Write ``report`` to ``out``: ``.html`` (one self-contained file) or ``.md`` (PNGs in ``<stem>_files/``)."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in {".html", ".htm", ".md"}:
        raise ValueError(f"report output {out!r} must end in .html or .md.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".md":
        folder = path.with_name(path.stem + "_files")
        folder.mkdir(exist_ok=True)
        for name, png in report.figures.items():
            (folder / f"{name}.png").write_bytes(png)
        path.write_text(_render_markdown(report, folder.name), encoding="utf-8")
    else:
        path.write_text(_render_html(report), encoding="utf-8")
    return str(path)
