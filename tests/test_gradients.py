"""Per-example gradient features: exact against one-backward-per-example references, invariant to batching."""

import numpy as np
import pytest
import torch
from utils import exact_per_example_gradients, make_word_tokenizer, tiny_qwen

from gvendi import GradientFeaturizer
from gvendi.projection import CountSketchProjector, DenseProjector, FactoredSketchProjector

TOKENIZER = make_word_tokenizer(60)


def _records(n, seed=0, min_len=3, max_len=12):
    rng = np.random.default_rng(seed)
    words = lambda k: " ".join(f"w{int(i)}" for i in rng.integers(0, 60, size=k))  # noqa: E731
    return [
        {"prompt": words(rng.integers(min_len, max_len)), "completion": words(rng.integers(1, max_len))}
        for _ in range(n)
    ]


def _exact_features(featurizer, records, transform):
    examples = featurizer.encode({k: [r[k] for r in records] for k in records[0]})
    exact = exact_per_example_gradients(featurizer.model, examples).float()
    projected = transform(exact)
    return (projected / projected.norm(dim=1, keepdim=True)).numpy()


def _dense_matrix(projector, model):
    return torch.cat([projector.signs(name, torch.arange(p.numel())) for name, p in model.named_parameters()])


def _sketch_matrix(projector, model):
    blocks = []
    for name, p in model.named_parameters():
        buckets = projector.signed_buckets(name, torch.arange(p.numel()))
        block = torch.zeros(p.numel(), 2 * projector.dim)
        block[torch.arange(p.numel()), buckets] = 1.0
        blocks.append(block)
    return torch.cat(blocks)


def _factored_matrix(projector, model):
    """The explicit factored map: nn.Linear biases fold with their weight's rows, other vectors map flat."""
    linear_biases = {
        f"{name}.bias": f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.bias is not None
    }
    blocks = []
    for name, p in model.named_parameters():
        buckets, signs = projector.element_buckets(name, tuple(p.shape), bias_of=linear_biases.get(name))
        block = torch.zeros(p.numel(), 2 * projector.dim)
        block[torch.arange(p.numel()), buckets] = signs
        blocks.append(block)
    return torch.cat(blocks)


def _cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("tied", [True, False])
def test_dense_projection_is_exact(tied):
    model = tiny_qwen(len(TOKENIZER), tied=tied)
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=128, projection="dense", batch_size=4, show_progress=False)
    records = _records(10)
    ours = featurizer.featurize(records)
    matrix = _dense_matrix(featurizer.projector, model)
    reference = _exact_features(featurizer, records, lambda g: g @ matrix)
    assert _cosines(ours, reference).min() > 0.9999
    assert all(p.requires_grad for p in model.parameters()), "requires_grad must be restored"


def test_sketch_projection_is_exact():
    model = tiny_qwen(len(TOKENIZER))
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=128, batch_size=3, show_progress=False)
    records = _records(9, seed=1)
    ours = featurizer.featurize(records)
    matrix = _sketch_matrix(featurizer.projector, model)
    reference = _exact_features(featurizer, records, lambda g: featurizer.projector.finalize(g @ matrix))
    assert _cosines(ours, reference).min() > 0.9999


@pytest.mark.parametrize("tied", [True, False])
def test_factored_projection_is_exact(tied):
    """Folding each side of every weight (fold 8, smaller than every side) and multiplying the folded factors
    equals the explicit factored map applied to each example's full gradient."""
    model = tiny_qwen(len(TOKENIZER), tied=tied)
    projector = FactoredSketchProjector(128, fold=8)
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=128, projection=projector, batch_size=4, show_progress=False)
    records = _records(10, seed=4, min_len=1, max_len=16)  # ragged: padding must add nothing
    ours = featurizer.featurize(records)
    matrix = _factored_matrix(projector, model)
    reference = _exact_features(featurizer, records, lambda g: projector.finalize(g @ matrix))
    assert _cosines(ours, reference).min() > 0.9999
    # folds are balanced permutations: every element of a side lands in exactly one of `fold` buckets, evenly
    buckets, signs = projector.element_buckets("model.layers.0.mlp.up_proj.weight", (64, 32))
    assert set(signs.tolist()) == {-1.0, 1.0} and buckets.numel() == 64 * 32


def test_fold_side_applies_its_bucket_map():
    """Both fold paths (rotated blocks, and one index-add for more than 16 blocks) apply the map that
    ``element_buckets`` reports; buckets are balanced and two parameters of one shape pair different entries."""
    projector = FactoredSketchProjector(64, fold=8)
    for size in (20, 8 * 17 + 3):
        values = torch.randn(3, 5, size)
        bucket_of, sign_of, *_ = projector._side("w", "rows", size, torch.device("cpu"))
        expected = torch.zeros(3, 5, 8).index_add_(2, bucket_of, values * sign_of)
        torch.testing.assert_close(projector.fold_side("w", "rows", values), expected)
        counts = torch.bincount(bucket_of, minlength=8)
        assert int(counts.max() - counts.min()) <= 1
    other, *_ = projector._side("v", "rows", 20, torch.device("cpu"))
    assert not torch.equal(other, projector._side("w", "rows", 20, torch.device("cpu"))[0])


def test_factored_projection_equals_sketch_when_nothing_folds():
    model = tiny_qwen(len(TOKENIZER))
    records = _records(6, seed=5)
    wide = FactoredSketchProjector(64, fold=1 << 20)
    factored = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=64, projection=wide, show_progress=False)
    sketch = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=64, projection="sketch", show_progress=False)
    assert _cosines(factored.featurize(records), sketch.featurize(records)).min() > 0.9999


def _tiny_gpt2():
    """A 2-layer GPT-2 (Conv1D layers, LayerNorm with bias, learned positions), seeded, without dropout."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(TOKENIZER), n_embd=32, n_layer=2, n_head=4, n_positions=64)).eval()


def test_factored_projection_on_gpt2_conv1d():
    """Conv1D stores its weight transposed: the input is the row side there; LayerNorm in closed form."""
    model = _tiny_gpt2()
    projector = FactoredSketchProjector(96, fold=16)
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=96, projection=projector, batch_size=4, show_progress=False)
    records = _records(6, seed=6)
    ours = featurizer.featurize(records)
    matrix = _factored_matrix(projector, model)
    reference = _exact_features(featurizer, records, lambda g: projector.finalize(g @ matrix))
    assert _cosines(ours, reference).min() > 0.9999


def test_factored_bfloat16_products_agree_with_float32():
    """bfloat16 folds and products (the default where the CPU/GPU has them) only round each cell: the features agree
    with float32 ones, and scattering the queue early (a tiny ``queue_bytes``) changes nothing."""
    model = tiny_qwen(len(TOKENIZER))
    records = _records(12, seed=7)
    features = []
    for dtype, queue_bytes in (("float32", 1 << 28), ("bfloat16", 1 << 28), ("bfloat16", 4096)):
        projector = FactoredSketchProjector(96, fold=16, product_dtype=dtype, queue_bytes=queue_bytes)
        featurizer = GradientFeaturizer(
            model, tokenizer=TOKENIZER, dim=96, projection=projector, batch_size=5, show_progress=False
        )
        features.append(featurizer.featurize(records))
    assert _cosines(features[0], features[1]).min() > 0.9999
    np.testing.assert_allclose(features[1], features[2], atol=1e-6)


@pytest.mark.parametrize("architecture", ["qwen2", "gpt2"])  # output gradient on the left (Linear) / right (Conv1D)
def test_factored_features_do_not_depend_on_the_loss_scale(architecture):
    """The Trainer normalises the loss by batch size, accumulation steps and processes; a reduced-precision product
    rounds each example at its own scale, so the directions are unchanged and the magnitude follows the loss."""
    from gvendi.gradients import GradientCollector, per_example_loss

    model = tiny_qwen(len(TOKENIZER)) if architecture == "qwen2" else _tiny_gpt2()
    ids = torch.randint(0, len(TOKENIZER), (4, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # a padded example
    labels = ids.masked_fill(mask == 0, -100)
    features = {}
    for scale in (1.0, 1 / 3):
        projector = FactoredSketchProjector(64, fold=16, product_dtype="bfloat16")
        with GradientCollector(model, projector) as collector:
            collector.begin_batch(4, mask)
            logits = model(input_ids=ids, attention_mask=mask).logits
            (per_example_loss(logits, labels).sum() * scale).backward()
            features[scale] = collector.end_batch()
    one, third = features[1.0], features[1 / 3]
    torch.testing.assert_close(third.norm(dim=1), one.norm(dim=1) / 3, rtol=1e-5, atol=0)
    torch.testing.assert_close(third / third.norm(dim=1, keepdim=True), one / one.norm(dim=1, keepdim=True), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="product_dtype"):
        FactoredSketchProjector(64, product_dtype="float16")


def test_gpt2_conv1d_layernorm_and_position_embeddings():
    """Another architecture: Conv1D layers, LayerNorm with bias (generic path), learned position embeddings."""
    model = _tiny_gpt2()
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=96, projection="dense", batch_size=4, show_progress=False)
    records = _records(6, seed=2)
    ours = featurizer.featurize(records)
    matrix = _dense_matrix(featurizer.projector, model)
    reference = _exact_features(featurizer, records, lambda g: g @ matrix)
    assert _cosines(ours, reference).min() > 0.9999


def test_features_do_not_depend_on_batching_padding_or_threads():
    model = tiny_qwen(len(TOKENIZER))
    records = _records(12, seed=3, min_len=1, max_len=20)
    alone = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=256, batch_size=1, show_progress=False).featurize(records)
    threads = torch.get_num_threads()
    for batch_size in (2, 5, 12):
        batched = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=256, batch_size=batch_size, show_progress=False)
        assert _cosines(alone, batched.featurize(records)).min() > 0.9999
    try:
        torch.set_num_threads(1)
        single = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=256, batch_size=4, show_progress=False)
        assert _cosines(alone, single.featurize(records)).min() > 0.9999
    finally:
        torch.set_num_threads(threads)


def test_projection_matrices_are_pinned():
    """Matrices are pure functions of (seed, parameter, index): pinned values guard every device and release."""
    sketch = CountSketchProjector(1024, seed=0)
    buckets = sketch.signed_buckets("model.layers.0.mlp.up_proj.weight", torch.arange(6)).tolist()
    dense = DenseProjector(8, seed=3).signs("lm_head.weight", torch.arange(2)) * np.sqrt(8)
    assert buckets == PINNED_BUCKETS
    assert dense.round().int().tolist() == PINNED_SIGNS
    # another seed gives another matrix
    assert CountSketchProjector(1024, seed=1).signed_buckets("model.layers.0.mlp.up_proj.weight", torch.arange(6)).tolist() != buckets


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_projection_matrices_identical_on_gpu():
    index = torch.arange(100_000)
    sketch = CountSketchProjector(1024, seed=0)
    assert torch.equal(sketch.signed_buckets("w", index), sketch.signed_buckets("w", index.cuda()).cpu())
    dense = DenseProjector(64, seed=0)
    assert torch.equal(dense.signs("w", index[:1000]), dense.signs("w", index[:1000].cuda()).cpu())


def test_pretokenized_input_matches_text_input():
    model = tiny_qwen(len(TOKENIZER))
    featurizer = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=64, show_progress=False)
    records = _records(5, seed=4)
    encoded = featurizer.encode({"prompt": [r["prompt"] for r in records], "completion": [r["completion"] for r in records]})
    pretokenized = {"input_ids": [e.input_ids for e in encoded], "labels": [e.labels for e in encoded]}
    np.testing.assert_allclose(featurizer.featurize(pretokenized), featurizer.featurize(records), atol=1e-6)


# recorded with gvendi 0.1.0 (CPU); a change here changes every published feature, so it needs a version bump
PINNED_BUCKETS = [1983, 1300, 1670, 1468, 1443, 1752]
PINNED_SIGNS = [[1, 1, 1, -1, -1, 1, 1, 1], [-1, 1, 1, -1, -1, 1, -1, -1]]  # PCG64 chunk streams (NumPy-stable)
