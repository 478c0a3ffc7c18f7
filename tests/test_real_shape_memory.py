"""At the paper's real vocabulary (151,936 × 896, tied), the default projection never allocates a per-example matrix of
the embedding's or the LM head's size: the largest single allocation of a featurize call stays far below one."""

import pytest
from torch.profiler import ProfilerActivity, profile
from utils import make_word_tokenizer, real_width_qwen

from gvendi import GradientFeaturizer
from gvendi.proxy import DEFAULT_PROXY_CONFIG


@pytest.fixture(scope="module")
def model():
    return real_width_qwen(layers=1, vocab=DEFAULT_PROXY_CONFIG["vocab_size"])


def test_default_projection_forms_no_vocabulary_by_hidden_matrix(model):
    featurizer = GradientFeaturizer(model, tokenizer=make_word_tokenizer(200), dim=256, show_progress=False)
    records = [{"prompt": "w1 w2 w3", "completion": "w4 w5 w6 w7"}, {"prompt": "w8", "completion": "w9 w10"}]
    featurizer.featurize(records)  # warm-up: folds and caches
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        features = featurizer.featurize(records)
    assert features.shape == (2, 256)
    vocab_by_hidden = DEFAULT_PROXY_CONFIG["vocab_size"] * DEFAULT_PROXY_CONFIG["hidden_size"] * 4  # bytes in fp32
    largest = max(prof.events(), key=lambda event: event.cpu_memory_usage)
    assert largest.cpu_memory_usage < vocab_by_hidden / 8, (largest.name, largest.cpu_memory_usage)
    assert all(p.grad is None for p in model.parameters())  # no weight gradient (136M entries) either
