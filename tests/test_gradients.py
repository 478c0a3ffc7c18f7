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
    featurizer = GradientFeaturizer(
        model, tokenizer=TOKENIZER, dim=128, projection="dense", batch_size=4, show_progress=False
    )
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
    featurizer = GradientFeaturizer(
        model, tokenizer=TOKENIZER, dim=128, projection=projector, batch_size=4, show_progress=False
    )
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
    return GPT2LMHeadModel(
        GPT2Config(vocab_size=len(TOKENIZER), n_embd=32, n_layer=2, n_head=4, n_positions=64)
    ).eval()


def test_factored_projection_on_gpt2_conv1d():
    """Conv1D stores its weight transposed: the input is the row side there; LayerNorm in closed form."""
    model = _tiny_gpt2()
    projector = FactoredSketchProjector(96, fold=16)
    featurizer = GradientFeaturizer(
        model, tokenizer=TOKENIZER, dim=96, projection=projector, batch_size=4, show_progress=False
    )
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
    torch.testing.assert_close(
        third / third.norm(dim=1, keepdim=True), one / one.norm(dim=1, keepdim=True), rtol=0, atol=1e-6
    )
    with pytest.raises(ValueError, match="product_dtype"):
        FactoredSketchProjector(64, product_dtype="float16")


def test_gpt2_conv1d_layernorm_and_position_embeddings():
    """Another architecture: Conv1D layers, LayerNorm with bias (generic path), learned position embeddings."""
    model = _tiny_gpt2()
    featurizer = GradientFeaturizer(
        model, tokenizer=TOKENIZER, dim=96, projection="dense", batch_size=4, show_progress=False
    )
    records = _records(6, seed=2)
    ours = featurizer.featurize(records)
    matrix = _dense_matrix(featurizer.projector, model)
    reference = _exact_features(featurizer, records, lambda g: g @ matrix)
    assert _cosines(ours, reference).min() > 0.9999


def test_features_do_not_depend_on_batching_padding_or_threads():
    model = tiny_qwen(len(TOKENIZER))
    records = _records(12, seed=3, min_len=1, max_len=20)
    alone = GradientFeaturizer(model, tokenizer=TOKENIZER, dim=256, batch_size=1, show_progress=False).featurize(
        records
    )
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
    assert (
        CountSketchProjector(1024, seed=1)
        .signed_buckets("model.layers.0.mlp.up_proj.weight", torch.arange(6))
        .tolist()
        != buckets
    )


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
    encoded = featurizer.encode(
        {"prompt": [r["prompt"] for r in records], "completion": [r["completion"] for r in records]}
    )
    pretokenized = {"input_ids": [e.input_ids for e in encoded], "labels": [e.labels for e in encoded]}
    np.testing.assert_allclose(featurizer.featurize(pretokenized), featurizer.featurize(records), atol=1e-6)


@pytest.mark.parametrize("product_dtype", ["float32", "bfloat16"])
def test_factored_features_of_the_bundled_proxy_are_pinned(product_dtype):
    """Features end to end (bundled proxy, bundled sample, two batches of a reused projector) against values recorded
    before the per-batch state moved into its own object: a change in the map, the queue or the scaling shows."""
    from gvendi.data import TINY_PROXY_PATH, load_math_sample

    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in load_math_sample()[:3]]
    projector = FactoredSketchProjector(12, 3, product_dtype=product_dtype)
    featurizer = GradientFeaturizer(
        str(TINY_PROXY_PATH), dim=12, projection=projector, seed=3, batch_size=2, show_progress=False
    )
    np.testing.assert_allclose(featurizer.featurize(rows), PINNED_TINY_FEATURES[product_dtype], rtol=0, atol=2e-6)
    assert projector._batch is None, "a finished batch leaves no state on the projector"


def test_factored_batches_share_no_state():
    """A projector reused over batches of other sizes (and a batch whose queue overflows) gives bit-identical
    features to a fresh projector per batch; an output that is not the open batch's is projected directly."""
    from gvendi.gradients import GradientCollector, per_example_loss

    model = tiny_qwen(len(TOKENIZER))
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, len(TOKENIZER), (n, 9), generator=generator) for n in (3, 5, 2)]

    def run(projector, ids):
        with GradientCollector(model, projector) as collector:
            collector.begin_batch(ids.shape[0], torch.ones_like(ids))
            per_example_loss(model(input_ids=ids).logits, ids).sum().backward()
            return collector.end_batch()

    for options in ({"product_dtype": "bfloat16"}, {"product_dtype": "bfloat16", "queue_bytes": 2048}):
        reused = FactoredSketchProjector(32, fold=8, **options)
        for ids in batches:
            assert torch.equal(run(reused, ids), run(FactoredSketchProjector(32, fold=8, **options), ids))
    projector = FactoredSketchProjector(32, fold=8)
    grads = torch.randn(2, 40, generator=generator)
    direct, expected = torch.zeros(2, 64), torch.zeros(2, 64)
    projector.new_output(2, torch.device("cpu"))  # another batch is open: `direct` is not its output
    projector.add_dense(direct, "w", grads)
    CountSketchProjector(32).add_dense(expected, "w", grads)
    assert direct.abs().sum() > 0 and torch.equal(direct, expected)


# recorded with gvendi 0.1.0 (CPU); a change here changes every published feature, so it needs a version bump
PINNED_BUCKETS = [1983, 1300, 1670, 1468, 1443, 1752]
PINNED_SIGNS = [[1, 1, 1, -1, -1, 1, 1, 1], [-1, 1, 1, -1, -1, 1, -1, -1]]  # PCG64 chunk streams (NumPy-stable)
# features of the bundled tiny proxy (dim 12, seed 3, fold 128, first three math sample rows), recorded on CPU
PINNED_TINY_FEATURES = {
    "float32": [
        [
            0.472937,
            -0.056785,
            -0.195975,
            0.511885,
            -0.097296,
            -0.477072,
            -0.161412,
            0.124546,
            -0.054343,
            -0.359159,
            0.186583,
            0.165172,
        ],
        [
            0.478074,
            0.125261,
            -0.134333,
            0.337567,
            -0.103352,
            -0.529162,
            -0.193460,
            0.047347,
            -0.039745,
            -0.313734,
            0.347282,
            0.269781,
        ],
        [
            0.351627,
            0.067444,
            -0.220991,
            0.524441,
            -0.071731,
            -0.264164,
            0.250261,
            0.100990,
            -0.198398,
            -0.374123,
            0.452496,
            0.126862,
        ],
    ],
    "bfloat16": [
        [
            0.472828,
            -0.057560,
            -0.195994,
            0.512085,
            -0.096840,
            -0.476887,
            -0.161498,
            0.125090,
            -0.053960,
            -0.359082,
            0.186490,
            0.165282,
        ],
        [
            0.478058,
            0.125289,
            -0.134614,
            0.338363,
            -0.103377,
            -0.528760,
            -0.193246,
            0.047479,
            -0.039382,
            -0.313123,
            0.347843,
            0.269609,
        ],
        [
            0.352566,
            0.067016,
            -0.219851,
            0.524656,
            -0.072093,
            -0.263853,
            0.249823,
            0.101899,
            -0.198418,
            -0.373326,
            0.452842,
            0.127236,
        ],
    ],
}
