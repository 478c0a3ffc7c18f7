"""Accuracy of the projections against an independent dense-projection computation (foundation issue, item 3).

On a tiny random Qwen2 (~87k parameters) exact per-example gradients fit in memory. For N = 256 examples, dim = 1024
and 3 seeds, each gvendi projection's G-Vendi must lie within 3% (mean over seeds) of G-Vendi computed from the
exact gradients times independently drawn dense Rademacher matrices (mean of 8 draws) — the paper's definition — on a
low-diversity set (exact value ≈ 20) and a high-diversity set (exact value > N/2). The exact, unprojected value is
reported too.
"""

import json
import os

import numpy as np
import pytest
import torch
from utils import accuracy_records, exact_per_example_gradients, make_word_tokenizer, tiny_qwen

from gvendi import GradientFeaturizer, score

N, DIM, SEEDS, REFERENCE_DRAWS = 256, 1024, (0, 1, 2), 8
TOKENIZER = make_word_tokenizer(200)


def _exact_vendi(grads):
    units = grads / grads.norm(dim=1, keepdim=True)
    eig = torch.linalg.eigvalsh(units @ units.T / len(units)).clamp_min(0).numpy()
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


@pytest.fixture(scope="module")
def model():
    return tiny_qwen(len(TOKENIZER), hidden=64, layers=2, intermediate=128)


@pytest.mark.parametrize("diversity", ["low", "high"])
def test_projections_match_an_independent_dense_projection(model, diversity, tmp_path):
    records = accuracy_records(diversity, N)
    probe = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=DIM, show_progress=False)
    grads = exact_per_example_gradients(model, probe.encode({k: [r[k] for r in records] for k in records[0]})).float()
    exact = _exact_vendi(grads.double())
    if diversity == "low":
        assert 10 < exact < 30, exact
    else:
        assert exact > N / 2, exact

    values = {"independent_dense": [], "sketch": [], "dense": [], "factored": []}
    for seed in range(REFERENCE_DRAWS):  # the reference is cheap, so average more draws of it
        generator = torch.Generator().manual_seed(10_000 + seed)
        rademacher = torch.randint(0, 2, (grads.shape[1], DIM), generator=generator, dtype=torch.int8)
        values["independent_dense"].append(score(grads @ (rademacher.float() * 2 - 1)).value)
    for seed in SEEDS:
        for projection in ("sketch", "dense", "factored"):
            featurizer = GradientFeaturizer(
                model,
                tokenizer=TOKENIZER,
                dim=DIM,
                seed=seed,
                projection=projection,
                batch_size=64,
                show_progress=False,
            )
            values[projection].append(score(featurizer.featurize(records)).value)
    reference = float(np.mean(values["independent_dense"]))
    report = {"diversity": diversity, "exact": exact, **{k: float(np.mean(v)) for k, v in values.items()}}
    for projection in ("sketch", "dense", "factored"):
        report[f"{projection}_vs_dense_%"] = 100 * (report[projection] / reference - 1)
        report[f"{projection}_vs_exact_%"] = 100 * (report[projection] / exact - 1)
    if os.environ.get("GVENDI_ACCURACY_REPORT"):
        with open(os.environ["GVENDI_ACCURACY_REPORT"], "a") as handle:
            handle.write(json.dumps(report) + "\n")
    for projection in ("sketch", "dense", "factored"):
        assert abs(report[f"{projection}_vs_dense_%"]) <= 3.0, report
