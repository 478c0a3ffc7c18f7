"""GVendiCallback takes a `GVendiConfig` (the one configuration every door takes) on a tiny random Qwen2 (CPU)."""

import pytest
from callback_helpers import PadCollator, encode, import_callbacks, model, templated_rows, tokenizer, training_args
from datasets import Dataset
from transformers import Trainer

from gvendi.config import GVendiConfig
from gvendi.errors import ConfigFieldError
from gvendi.projection import FactoredSketchProjector

GVendiCallback = import_callbacks().GVendiCallback

DIM = 32
ROWS = templated_rows(12, words=range(10, 60), template=0, seed=1) + templated_rows(
    8, words=range(100, 200), template=3
)


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def _trainer(tok, output_dir, callback=None):
    trainer = Trainer(
        model=model(seed=3),
        args=training_args(output_dir, learning_rate=0.0, logging_steps=2, per_device_train_batch_size=4),
        train_dataset=Dataset.from_list(encode(ROWS, tok)),
        data_collator=PadCollator(tok.pad_token_id),
    )
    if callback is not None:
        callback.attach(trainer)
    return trainer


def _values(trainer):
    return [
        {key: value for key, value in entry.items() if key.startswith("gvendi/")}
        for entry in trainer.state.log_history
        if "gvendi/cumulative" in entry
    ]


def test_a_bad_config_field_fails_in_the_constructor_before_training(tmp_path, tok):
    trainer = _trainer(tok, tmp_path)
    with pytest.raises(ConfigFieldError, match=r"^fold must be an integer ≥ 1 \(got 0\)") as err:
        GVendiCallback(config=GVendiConfig(dim=DIM), proxy_kwargs={"fold": 0}, trainer=trainer)
    assert (err.value.field, err.value.value) == ("fold", 0)
    with pytest.raises(
        ConfigFieldError, match=r"^fold applies to projection='factored' only \(got fold=64 with projection='sketch'\)"
    ) as err:
        GVendiCallback(config=GVendiConfig(dim=DIM, fold=64), projection="sketch", trainer=trainer)
    assert err.value.field == "fold"
    with pytest.raises(ConfigFieldError, match=r"^unknown projection 'gaussian'") as err:
        GVendiCallback(projection="gaussian", trainer=trainer)
    assert err.value.field == "projection"
    with pytest.raises(TypeError, match="config must be a GVendiConfig"):
        GVendiCallback(config={"dim": DIM})
    assert not any(isinstance(cb, GVendiCallback) for cb in trainer.callback_handler.callbacks)
    assert trainer.state.global_step == 0


def test_config_logs_what_the_same_keywords_log(tmp_path, tok):
    """``config=`` and the equivalent keyword arguments give the same logged values and the same recorded
    configuration; the config's fold is the one used (another fold logs other values)."""
    config = GVendiConfig(dim=DIM, seed=3, fold=8)
    by_config = GVendiCallback(config=config)
    by_keywords = GVendiCallback(dim=DIM, seed=3, proxy_kwargs={"fold": 8})
    default_fold = GVendiCallback(dim=DIM, seed=3)
    runs = []
    for name, callback in (("config", by_config), ("keywords", by_keywords), ("default", default_fold)):
        trainer = _trainer(tok, tmp_path / name, callback)
        trainer.train()
        runs.append(_values(trainer))
    assert [p["gvendi/examples"] for p in runs[0]] == [8, 16]  # logging steps 2 and 4 of 5
    assert by_config.summary()["final"] == by_keywords.summary()["final"]
    assert by_config.summary()["final"]["examples"] == len(ROWS)
    assert runs[0] == runs[1]
    assert [p["gvendi/cumulative"] for p in runs[0]] != [p["gvendi/cumulative"] for p in runs[2]]
    assert by_config.config == by_keywords.config == config
    recorded = by_config.summary()["config"]
    assert recorded == by_keywords.summary()["config"]
    assert recorded["config"] == config.to_dict()
    assert (recorded["dim"], recorded["seed"], recorded["fold"], recorded["projection"]) == (DIM, 3, 8, "factored")
    assert default_fold.summary()["config"]["fold"] == 128


def test_keywords_override_the_config():
    callback = GVendiCallback(config=GVendiConfig(dim=DIM, seed=1, projection="sketch"), seed=2, dim=16)
    assert (callback.config.dim, callback.config.seed, callback.config.projection) == (16, 2, "sketch")
    assert (callback.dim, callback.seed, callback.projection) == (16, 2, "sketch")


def test_a_projector_with_seed_5_is_used_and_recorded_as_seed_5(tmp_path, tok):
    """A `Projector` handed over is used as it is (train begin no longer asks it for seed 0) and its seed is recorded;
    its features equal those of ``seed=5``."""
    with pytest.raises(ValueError, match=r"seed=3 contradicts the projector handed over \(its seed is 5\)"):
        GVendiCallback(projection=FactoredSketchProjector(DIM, 5), seed=3)
    with pytest.raises(ValueError, match="the projector has dim 32 but dim=16"):
        GVendiCallback(projection=FactoredSketchProjector(DIM, 5), dim=16)
    projector = FactoredSketchProjector(DIM, 5, fold=16)
    handed = GVendiCallback(projection=projector, config=GVendiConfig(dim=1024))
    assert (handed.config.dim, handed.config.seed, handed.config.fold) == (DIM, 5, 16)
    named = GVendiCallback(dim=DIM, seed=5, proxy_kwargs={"fold": 16})
    runs = []
    for name, callback in (("projector", handed), ("named", named)):
        trainer = _trainer(tok, tmp_path / name, callback)
        trainer.train()
        runs.append(_values(trainer))
    assert runs[0] and runs[0] == runs[1]
    recorded = handed.summary()["config"]
    assert recorded["seed"] == 5 and recorded["config"]["seed"] == 5
    assert recorded["projection"] == projector.config() and recorded["projection"]["seed"] == 5
