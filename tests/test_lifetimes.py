"""Issue 17: lifetimes. No registry keeps a featurizer (or its model) alive, the measurement keeps at most two and
never changes a shared featurizer's settings, one gradient collector serves every batch of a featurizer, and the
evaluate hook acts only on the evaluate releases it is tested with (the public local-path route works with any)."""

from __future__ import annotations

import gc
import pickle
import weakref

import numpy as np
import pytest

from gvendi import GradientFeaturizer, gradients

ROWS = [{"prompt": f"{a}+{b}?", "completion": str(a + b)} for a, b in [(2, 2), (3, 5), (1, 1), (4, 4), (6, 1)]]


def test_a_dropped_featurizer_and_its_model_are_freed():
    featurizer = GradientFeaturizer("tiny", dim=16, show_progress=False)
    featurizer.featurize(ROWS[:2])
    ref, model = weakref.ref(featurizer), weakref.ref(featurizer.model)
    del featurizer
    gc.collect()
    assert ref() is None and model() is None


def test_pickling_reuses_a_live_featurizer_and_rebuilds_a_dropped_one():
    featurizer = GradientFeaturizer("tiny", dim=16, show_progress=False)
    payload = pickle.dumps(featurizer)
    assert len(payload) < 4096  # the config, not the model
    assert pickle.loads(payload) is featurizer  # the same process (a forked Dataset.map worker): no reload
    expected, fingerprint = featurizer.featurize(ROWS), featurizer.fingerprint
    del featurizer
    gc.collect()
    rebuilt = pickle.loads(payload)  # a worker whose parent's featurizer is gone: built again from the config
    assert rebuilt.fingerprint == fingerprint
    np.testing.assert_array_equal(rebuilt.featurize(ROWS), expected)


def test_one_collector_serves_every_batch(monkeypatch):
    built = []
    original = gradients.GradientCollector.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(gradients.GradientCollector, "__init__", counting)
    featurizer = GradientFeaturizer("tiny", dim=16, batch_size=2, show_progress=False)
    many_batches = featurizer.featurize(ROWS)  # 3 batches
    assert len(built) == 1
    assert not any(module._forward_hooks for module in featurizer.model.modules())  # hooks only during a batch
    assert all(p.requires_grad for p in featurizer.model.parameters())  # frozen only during a batch
    one_batch = GradientFeaturizer("tiny", dim=16, batch_size=8, show_progress=False).featurize(ROWS)
    np.testing.assert_allclose(many_batches, one_batch, rtol=0, atol=1e-6)


def test_the_measurement_keeps_two_featurizers_and_leaves_their_batch_size(monkeypatch):
    import evaluate

    import gvendi  # noqa: F401
    from gvendi import measurement

    monkeypatch.setattr(measurement, "_featurizers", type(measurement._featurizers)())
    module = evaluate.load("gvendi")
    texts = dict(prompts=[r["prompt"] for r in ROWS], completions=[r["completion"] for r in ROWS])
    module.compute(proxy="tiny", dim=8, batch_size=4, **texts)
    first = weakref.ref(next(iter(measurement._featurizers.values())))
    module.compute(proxy="tiny", dim=8, batch_size=1, **texts)
    assert len(measurement._featurizers) == 1  # batch size is not part of the key ...
    assert first().batch_size == 4  # ... and a call's batch size is never written into the shared featurizer
    module.compute(proxy="tiny", dim=12, **texts)
    module.compute(proxy="tiny", dim=16, **texts)
    gc.collect()
    assert len(measurement._featurizers) == 2 and first() is None


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.4.3", True),
        ("0.4.6", True),
        ("0.4.10.dev0", True),
        ("0.4.2", False),
        ("0.5.0", False),
        ("1.0", False),
        ("", False),
        ("main", False),
    ],
)
def test_the_hook_knows_which_evaluate_it_is_tested_with(version, expected):
    from gvendi import _evaluate_hook

    assert _evaluate_hook.supported(version) is expected


def test_an_untested_evaluate_is_left_alone(monkeypatch):
    import evaluate
    import evaluate.loading

    from gvendi import _evaluate_hook

    def untouched(*args, **kwargs):
        raise AssertionError("not called")

    monkeypatch.setattr(evaluate, "__version__", "0.9.0")
    monkeypatch.setattr(evaluate.loading, "evaluation_module_factory", untouched)
    monkeypatch.setattr(_evaluate_hook, "register", lambda: pytest.fail("wrote into evaluate's cache"))
    _evaluate_hook._after_evaluate_import()
    assert evaluate.loading.evaluation_module_factory is untouched


def test_the_public_local_path_route(tmp_path, monkeypatch):
    import evaluate

    from gvendi.data import EVALUATE_MODULE_PATH

    module = evaluate.load(str(EVALUATE_MODULE_PATH))
    assert type(module).__name__ == "Gvendi"
    assert round(module.compute(features=[[1.0, 0.0], [0.0, 1.0]])["gvendi"], 6) == 2.0
