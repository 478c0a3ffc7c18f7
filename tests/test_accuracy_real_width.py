"""Accuracy of the default projection at the paper's proxy widths (real-scale issue: the 3% line).

A random Qwen2 with Qwen2.5-0.5B-Instruct's widths (hidden 896, MLP 4864, 14/2 heads, q/k/v biases, tied
embeddings), one layer, vocabulary 8,192 (so the vocabulary side is folded by index-add, as at 151,936). Every matrix
side is longer than the fold (128) here, which the toy widths never show. The reference is exact: the Gram matrix of
the per-example gradients from token-level Gram matrices (``gvendi.exact``), and a dense Gaussian projection drawn
from it (mean of 8 draws). The default projection's G-Vendi (mean of 3 seeds) must be within 3% of it on a low- and a
high-diversity set. ``benchmarks/bench_projection_accuracy.py --shape real`` reports the same at N = 256 and for
every projection and fold.
"""

import numpy as np
import pytest
from utils import accuracy_records, make_word_tokenizer, real_width_qwen

from gvendi import GradientFeaturizer, score
from gvendi.exact import dense_projection_from_gram, exact_gradient_gram, exact_gvendi_from_gram

N, DIM, SEEDS, DRAWS = 128, 1024, (0, 1, 2), 8
TOKENIZER = make_word_tokenizer(200)


@pytest.fixture(scope="module")
def model():
    return real_width_qwen(layers=1, vocab=8192)


@pytest.mark.parametrize("diversity", ["low", "high"])
def test_default_projection_within_3_percent_of_dense_at_real_widths(model, diversity):
    records = accuracy_records(diversity, N)
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=DIM, batch_size=32, show_progress=False)
    assert featurizer.projection == "factored"  # the default
    gram = exact_gradient_gram(model, featurizer.encode({k: [r[k] for r in records] for k in records[0]}))
    exact = exact_gvendi_from_gram(gram)
    dense = float(np.mean([score(dense_projection_from_gram(gram, DIM, seed=s)).value for s in range(DRAWS)]))
    values = [
        score(
            GradientFeaturizer(
                model, tokenizer=TOKENIZER, dim=DIM, seed=seed, batch_size=32, show_progress=False
            ).featurize(records)
        ).value
        for seed in SEEDS
    ]
    report = {"exact": exact, "dense": dense, "default": float(np.mean(values)), "seeds": values}
    assert (exact < 40) if diversity == "low" else (exact > N / 2), report
    assert abs(report["default"] / dense - 1) <= 0.03, report
