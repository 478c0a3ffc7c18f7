"""Issue 17: one `GVendiConfig` for what produces a G-Vendi number, validated once and taken by every door."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gvendi import GradientFeaturizer
from gvendi.config import ConfigError, ConfigFieldError, GVendiConfig, read_config_file
from gvendi.projection import CountSketchProjector, FactoredSketchProjector, make_projector

ROWS = [
    {"prompt": "2+2?", "completion": "4"},
    {"prompt": "3+5?", "completion": "8"},
    {"prompt": "1+1?", "completion": "2"},
]

BAD_FIELDS = [
    ({"dim": -3}, "dim", "dim must be an integer ≥ 1 (got -3); the paper uses dim=1024."),
    ({"dim": 2.5}, "dim", "dim must be an integer ≥ 1 (got 2.5)"),
    ({"projection": "kronecker"}, "projection", "unknown projection 'kronecker': choose one of"),
    ({"fold": 0}, "fold", "fold must be an integer ≥ 1 (got 0); 128 is the default."),
    ({"fold": 64, "projection": "dense"}, "fold", "fold applies to projection='factored' only"),
    ({"seed": "abc"}, "seed", "seed must be an integer (got 'abc')"),
    ({"max_length": 1}, "max_length", "max_length must be an integer ≥ 2 (got 1)"),
    ({"truncation": "cut"}, "truncation", "truncation must be one of ('truncate', 'error')"),
    ({"batch_size": 0}, "batch_size", "batch_size must be an integer ≥ 1 (got 0)"),
    ({"max_batch_tokens": 0}, "max_batch_tokens", "max_batch_tokens must be an integer ≥ 1"),
    ({"prompt_column": " "}, "prompt_column", "prompt_column is empty; name a column of the data."),
    ({"device": "tpu9"}, "device", "device: unknown device 'tpu9'"),
    ({"dtype": "float77"}, "dtype", "dtype: unknown dtype 'float77'"),
    ({"proxy": ""}, "proxy", "proxy must be a Hub id, a local folder or 'tiny'"),
    ({"revision": ""}, "revision", "revision must be a Hub branch, tag or commit or None"),
    ({"use_chat_template": "yes"}, "use_chat_template", "use_chat_template must be True, False or None"),
]


@pytest.mark.parametrize(("fields", "name", "message"), BAD_FIELDS)
def test_a_bad_field_names_itself_its_value_and_the_fix(fields, name, message):
    with pytest.raises(ConfigFieldError) as info:
        GVendiConfig(**fields)
    assert info.value.field == name
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_the_command_line_reads_the_same_error_with_flags():
    with pytest.raises(ConfigFieldError) as info:
        GVendiConfig(dim=-3)
    flags = info.value.render(GVendiConfig.flag, lambda name, value: f"{GVendiConfig.flag(name)} {value}")
    assert flags == "--dim must be an integer ≥ 1 (got -3); the paper uses --dim 1024."
    with pytest.raises(ConfigFieldError) as info:
        GVendiConfig(projection="sketch", fold=32)
    assert "--fold applies to --projection factored only" in info.value.render(
        GVendiConfig.flag, lambda name, value: f"{GVendiConfig.flag(name)} {value}"
    )


def test_to_dict_round_trips_through_json_and_yaml(tmp_path):
    config = GVendiConfig(proxy="tiny", dim=48, seed=3, projection="factored", fold=64, max_length=128, batch_size=2)
    assert GVendiConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    import yaml

    path = tmp_path / "gvendi.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert GVendiConfig.from_file(path) == config
    assert set(config.identity()) == set(config.to_dict()) - {"batch_size", "device", "dtype", "max_batch_tokens"}


def test_unknown_keys_are_named_with_the_closest_valid_one(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'dimm' \(did you mean 'dim'\?\)"):
        GVendiConfig.from_dict({"dimm": 3})
    path = tmp_path / "bad.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        read_config_file(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        read_config_file(path)


# -- every door -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "name", "message"), BAD_FIELDS[:6])
def test_the_featurizer_door_fails_before_loading(fields, name, message, monkeypatch):
    import gvendi.featurizer

    monkeypatch.setattr(gvendi.featurizer, "load_tokenizer", lambda *a, **k: pytest.fail("loaded before checking"))
    with pytest.raises(ConfigFieldError, match=message.split("(")[0].strip()):
        GradientFeaturizer("tiny", **fields)


def test_the_featurizer_takes_a_config_and_keyword_arguments_alike():
    config = GVendiConfig(proxy="tiny", dim=16, seed=2, batch_size=2)
    by_config = GradientFeaturizer(config=config, show_progress=False)
    by_kwargs = GradientFeaturizer("tiny", dim=16, seed=2, batch_size=2, show_progress=False)
    assert by_config.fingerprint == by_kwargs.fingerprint
    assert by_config.config == config and by_config.provenance["config"] == config.to_dict()
    np.testing.assert_array_equal(by_config.featurize(ROWS), by_kwargs.featurize(ROWS))
    overridden = GradientFeaturizer(config=config, dim=8, show_progress=False)
    assert overridden.dim == 8 and overridden.seed == 2
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['dimension'\]"):
        GradientFeaturizer("tiny", dimension=8)


def test_the_fingerprint_keeps_its_0_1_0_value():
    """Caches (sharded runs, synthesis feature caches) keyed by it stay valid: the value of gvendi 0.1.0's
    featurizer for the bundled proxy, pinned."""
    assert GradientFeaturizer("tiny", dim=16, show_progress=False).fingerprint == "e9d1d09ff800f7ab47a308c25bbcc051"
    default_fold = GradientFeaturizer("tiny", dim=16, fold=128, show_progress=False)
    other_fold = GradientFeaturizer("tiny", dim=16, fold=64, show_progress=False)
    assert default_fold.fingerprint == "e9d1d09ff800f7ab47a308c25bbcc051" != other_fold.fingerprint
    assert other_fold.projector.fold == 64 and other_fold.provenance["fold"] == 64


def test_batch_size_is_per_call_and_never_changes_the_features():
    featurizer = GradientFeaturizer("tiny", dim=16, batch_size=3, show_progress=False)
    once = featurizer.featurize(ROWS, batch_size=1)
    assert featurizer.batch_size == 3
    np.testing.assert_array_equal(once, featurizer.featurize(ROWS))


def test_a_projector_handed_over_records_its_own_seed():
    projector = CountSketchProjector(16, seed=5)
    featurizer = GradientFeaturizer("tiny", projection=projector, show_progress=False)
    assert featurizer.seed == 5 and featurizer.provenance["seed"] == 5 and featurizer.config.projection == "sketch"
    with pytest.raises(ValueError, match="seed=1 contradicts the projector handed over"):
        GradientFeaturizer("tiny", projection=projector, seed=1)
    assert make_projector(projector, 16) is projector and make_projector(projector, 16, 5) is projector
    with pytest.raises(ValueError, match="the projector has seed 5 but seed=0 was requested"):
        make_projector(projector, 16, 0)
    assert make_projector("factored", 16, 1, fold=32).fold == 32
    with pytest.raises(ValueError, match="the projector has fold 128 but fold=32"):
        make_projector(FactoredSketchProjector(16), 16, fold=32)


def test_the_measurement_door_fails_before_featurizing(monkeypatch):
    import evaluate

    import gvendi  # noqa: F401 - places the evaluate shim
    from gvendi import measurement

    module = evaluate.load("gvendi")
    monkeypatch.setattr(measurement, "_cached_featurizer", lambda *a: pytest.fail("featurized before checking"))
    for kwargs, message in [
        (dict(fold=0), "fold must be an integer ≥ 1"),
        (dict(projection="kronecker"), "unknown projection 'kronecker'"),
        (dict(config={"proxy": "tiny", "dimm": 4}), r"did you mean 'dim'"),
        (dict(config=GVendiConfig(proxy="tiny"), batch_size=0), "batch_size must be an integer ≥ 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            module.compute(prompts=["a"], completions=["b"], **{"proxy": "tiny", **kwargs})


def test_the_measurement_takes_a_config_and_records_it():
    import evaluate

    import gvendi  # noqa: F401

    module = evaluate.load("gvendi")
    config = GVendiConfig(proxy="tiny", dim=16, seed=1)
    texts = dict(prompts=[r["prompt"] for r in ROWS], completions=[r["completion"] for r in ROWS])
    by_config = module.compute(config=config, **texts)
    by_kwargs = module.compute(proxy="tiny", dim=16, seed=1, **texts)
    assert by_config["gvendi"] == by_kwargs["gvendi"]
    assert by_config["config"] == config.to_dict()
    assert module.compute(config=config, batch_size=1, **texts)["gvendi"] == pytest.approx(
        by_config["gvendi"], abs=1e-6
    )


def test_the_synthesis_door_fails_when_its_config_is_built():
    from gvendi.synthesis import SynthesisConfig

    with pytest.raises(ConfigFieldError, match=r"proxy\.dim must be an integer ≥ 1 \(got -3\)"):
        SynthesisConfig(proxy={"name": "tiny", "dim": -3})
    with pytest.raises(ConfigFieldError, match=r"unknown proxy\.projection 'kronecker'"):
        SynthesisConfig.from_dict({"proxy": {"projection": "kronecker"}})
    assert SynthesisConfig().proxy.gvendi_config(batch_size=4).to_dict()["batch_size"] == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(dim=-3), "dim must be an integer ≥ 1"),
        (dict(projection="kronecker"), "unknown projection 'kronecker'"),
        (dict(proxy_kwargs={"fold": 0}), "fold must be an integer ≥ 1"),
    ],
)
def test_the_callback_door_fails_in_its_constructor(kwargs, message):
    pytest.importorskip("transformers")
    from callbacks import GVendiCallback

    with pytest.raises(ConfigFieldError, match=message):
        GVendiCallback(**kwargs)


def test_the_module_example_runs():
    import doctest

    import gvendi.config

    assert doctest.testmod(gvendi.config).failed == 0
