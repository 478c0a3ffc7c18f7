"""The diversity report: metrics beside each other, self-contained HTML that a real headless browser renders with
every plot decoded, Markdown with PNGs beside it, and the `gvendi report` door."""

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest

from gvendi.cli import main
from gvendi.report import build_report, text_diversity, write_report


def _data(n=120, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    x[n - 20 :] = x[:20]  # planted duplicates
    texts = [f"problem {i}: add {i % 7} and {i % 5} <b>bold</b>" for i in range(n)]
    return x, texts


def test_text_diversity_values():
    metrics = text_diversity(["a b a b", "a b c"])
    assert metrics["distinct_1"] == pytest.approx(3 / 7) and metrics["distinct_2"] == pytest.approx(3 / 5)
    assert (
        text_diversity(["same line"] * 200)["compression_ratio"]
        > text_diversity([f"{i} {i * i}" for i in range(200)])["compression_ratio"]
    )


def test_report_contents_and_markdown(tmp_path):
    x, texts = _data()
    report = build_report(x, texts, embeddings=np.random.default_rng(1).normal(size=(120, 8)), n_boot=30, top=3)
    m = report.metrics
    assert {"gvendi", "gvendi_ci", "distinct_1", "distinct_2", "compression_ratio", "embedding_vendi"} <= set(m)
    assert set(report.figures) == {"spectrum", "cluster_sizes", "pca_map"}
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in report.figures.values())
    assert len(report.examples["redundant"]) == 3 and sum(c["size"] for c in report.clusters) == 120
    redundant_rows = {e["row"] for e in report.examples["redundant"]}
    assert redundant_rows <= set(range(20)) | set(range(100, 120)), "the planted duplicates are the most redundant"
    out = write_report(report, str(tmp_path / "r.md"))
    text = (tmp_path / "r.md").read_text()
    assert out.endswith("r.md") and "![Eigenvalue spectrum](r_files/spectrum.png)" in text
    assert (tmp_path / "r_files" / "pca_map.png").is_file()
    with pytest.raises(ValueError, match="must end in .html or .md"):
        write_report(report, str(tmp_path / "r.pdf"))


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_html_report_renders_in_a_headless_browser(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium found (apt-get install -y chromium)")
    x, texts = _data()
    path = write_report(build_report(x, texts, n_boot=30), str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page, "texts are escaped"
    assert "src='http" not in page and page.count("data:image/png;base64,") == 3, "self-contained"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    try:
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", f"file://{path}"], capture_output=True, text=True, timeout=120
        ).stdout
        subprocess.run(
            [browser, *flags, "--window-size=1000,1400", f"--screenshot={tmp_path / 'shot.png'}", f"file://{path}"],
            capture_output=True,
            timeout=120,
        )
    except (subprocess.TimeoutExpired, OSError) as err:
        pytest.skip(f"chromium did not run here: {err}")
    assert 'data-plots-loaded="3"' in dom, "every embedded plot decoded in the browser"
    import matplotlib.image

    pixels = matplotlib.image.imread(str(tmp_path / "shot.png"))
    assert pixels.shape[0] > 500 and pixels[..., :3].std() > 0.05, "the page painted more than a blank screen"


def test_report_door_with_features_and_with_the_proxy(tmp_path, word_proxy_dir, capsys):
    x, texts = _data(n=24, dim=16)
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": t, "completion": f"answer {i}"}) + "\n" for i, t in enumerate(texts))
    )
    np.save(tmp_path / "f.npy", x.astype(np.float32))
    assert (
        main(
            [
                "report",
                str(data),
                "--features",
                str(tmp_path / "f.npy"),
                "--out",
                str(tmp_path / "a.html"),
                "--n-boot",
                "20",
            ]
        )
        == 0
    )
    assert "report ->" in capsys.readouterr().out
    page = (tmp_path / "a.html").read_text()
    assert "distinct-2" in page and base64.b64decode(page.split("base64,")[1].split("'")[0])[:4] == b"\x89PNG"
    assert (
        main(
            [
                "report",
                str(data),
                "--proxy",
                word_proxy_dir,
                "--dim",
                "16",
                "--out",
                str(tmp_path / "b.md"),
                "--n-boot",
                "20",
            ]
        )
        == 0
    )
    assert "embedding Vendi" in capsys.readouterr().out and "embedding Vendi" in (tmp_path / "b.md").read_text()
