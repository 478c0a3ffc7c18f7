"""The exact Gram reference (gvendi.exact) against one backward per example, and the simulated dense projection."""

import numpy as np
import pytest
import torch
from utils import accuracy_records, exact_per_example_gradients, make_word_tokenizer, tiny_qwen

from gvendi import GradientFeaturizer, score
from gvendi.exact import dense_projection_from_gram, exact_gradient_gram, exact_gvendi_from_gram

TOKENIZER = make_word_tokenizer(200)


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(vocab_size=len(TOKENIZER), n_embd=32, n_layer=2, n_head=4, n_positions=64)
    ).eval()


def _examples(model, n_high=10, n_low=8):
    records = accuracy_records("high", n_high) + accuracy_records("low", n_low, seed=1)
    records[2] = {"prompt": "w1 w2", "completion": "w3 w4 w5"}  # a length of its own (a batch of one)
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=8, show_progress=False)
    return featurizer.encode({k: [r[k] for r in records] for k in records[0]})


@pytest.mark.parametrize("architecture", ["qwen2-tied", "qwen2-untied", "gpt2"])
def test_gram_matches_one_backward_per_example(architecture):
    """Linear and Conv1D weights, biases, RMSNorm/LayerNorm, tied and untied embeddings, learned positions, examples
    of several lengths run in batches of different sizes: the Gram equals GGᵀ of the exact per-example gradients."""
    if architecture == "gpt2":
        model = _gpt2()
    else:
        model = tiny_qwen(len(TOKENIZER), hidden=32, layers=2, intermediate=64, tied=architecture == "qwen2-tied")
    examples = _examples(model)
    grads = exact_per_example_gradients(model, examples)
    reference = grads @ grads.T
    for batch_size in (1, 5):
        gram = exact_gradient_gram(model, examples, batch_size=batch_size, block_tokens=64)
        assert gram.dtype == torch.float64 and gram.shape == reference.shape
        assert float((gram - reference).abs().max() / reference.abs().max()) < 1e-6
    assert all(p.requires_grad for p in model.parameters())  # requires_grad restored
    assert exact_gvendi_from_gram(reference) == pytest.approx(score(grads.numpy()).value, rel=1e-9)


def test_gram_restores_frozen_parameters_and_rejects_no_examples():
    model = tiny_qwen(len(TOKENIZER))
    model.model.norm.weight.requires_grad_(False)
    exact_gradient_gram(model, _examples(model, 2, 2))
    assert not model.model.norm.weight.requires_grad
    with pytest.raises(ValueError, match="at least one example"):
        exact_gradient_gram(model, [])


def test_simulated_dense_projection_matches_projecting_the_gradients():
    """Features drawn from the Gram's eigendecomposition score like a dense Gaussian projection of the gradients
    themselves (the same law), and reproduce with the seed."""
    model = tiny_qwen(len(TOKENIZER), hidden=32, layers=2, intermediate=64)
    grads = exact_per_example_gradients(model, _examples(model, 40, 24))
    gram = grads @ grads.T
    simulated = [score(dense_projection_from_gram(gram, 64, seed=s)).value for s in range(24)]
    generator = torch.Generator().manual_seed(1)
    direct = [
        score(grads @ torch.randn(grads.shape[1], 64, generator=generator, dtype=torch.float64)).value
        for _ in range(24)
    ]
    spread = np.std(direct) / np.sqrt(len(direct)) + np.std(simulated) / np.sqrt(len(simulated))
    assert abs(np.mean(simulated) - np.mean(direct)) < 4 * spread
    np.testing.assert_array_equal(
        dense_projection_from_gram(gram, 64, seed=3), dense_projection_from_gram(gram, 64, seed=3)
    )
    assert dense_projection_from_gram(gram, 64).shape == (len(gram), 64)
