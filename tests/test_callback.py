"""GVendiCallback with a real `transformers.Trainer` on a tiny random Qwen2 (CPU, offline, a few dozen steps)."""

import copy
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from callback_helpers import PadCollator, encode, import_callbacks, model, templated_rows, tokenizer, training_args
from datasets import Dataset
from torch import nn
from transformers import Trainer

from gvendi import GradientFeaturizer, score
from gvendi.proxy import EncodedExample

callbacks = import_callbacks()
GVendiCallback = callbacks.GVendiCallback

DIM = 64
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def _trainer(tok, rows, output_dir, callback, *, net=None, **args):
    trainer = Trainer(
        model=net if net is not None else model(),
        args=training_args(output_dir, **args),
        train_dataset=Dataset.from_list(encode(rows, tok)),
        data_collator=PadCollator(tok.pad_token_id),
        callbacks=[callback],
    )
    callback.attach(trainer)
    return trainer


def _gvendi_logs(history, key):
    return [entry for entry in history if key in entry]


def test_callback_import_path():
    assert callbacks.__name__ == "gvendi.callbacks"
    assert Path(callbacks.__file__).resolve().parent == HERE.parent / "callbacks"


def test_logs_reach_log_history_and_tensorboard(tmp_path, tok):
    """A few dozen steps with gradient accumulation and report_to=tensorboard: gvendi/ values and the loss are in
    log_history and in the event files, every value within [1, min(N, dim)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = templated_rows(24, words=range(10, 60), template=0) + templated_rows(24, words=range(100, 200), template=3)
    callback = GVendiCallback(dim=DIM)
    trainer = _trainer(
        tok,
        rows,
        tmp_path,
        callback,
        num_train_epochs=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        logging_steps=3,
        report_to=["tensorboard"],
        train_sampling_strategy="random",
    )
    trainer.train()
    history = trainer.state.log_history
    assert trainer.state.global_step == 24

    loss_steps = [e["step"] for e in _gvendi_logs(history, "loss")]
    assert loss_steps == list(range(3, 25, 3))  # the Trainer's own logs are all there
    assert all("learning_rate" in e for e in _gvendi_logs(history, "loss"))
    points = _gvendi_logs(history, "gvendi/cumulative")
    assert [e["step"] for e in points] == loss_steps
    for entry in points:
        assert 1.0 <= entry["gvendi/window"] <= min(entry["gvendi/window_examples"], DIM)
        assert 1.0 <= entry["gvendi/cumulative"] <= min(entry["gvendi/examples"], DIM)
        assert entry["gvendi/window_examples"] == 3 * 2 * 2  # logging_steps × accumulation × batch
    assert points[-1]["gvendi/examples"] == 2 * len(rows)
    epochs = _gvendi_logs(history, "gvendi/epoch_examples")
    assert [e["gvendi/epoch_examples"] for e in epochs] == [len(rows), len(rows)]

    event_files = list(Path(tmp_path).rglob("events.out.tfevents.*"))
    assert event_files, "no TensorBoard event file was written"
    tags: dict[str, list] = {}
    for file in event_files:
        events = EventAccumulator(str(file))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            tags.setdefault(tag, []).extend(events.Scalars(tag))
    assert [e.step for e in tags["train/loss"]] == loss_steps
    cumulative = tags["train/gvendi/cumulative"]
    assert [e.step for e in cumulative] == loss_steps
    assert all(1.0 <= e.value <= DIM for e in cumulative)
    assert math.isclose(cumulative[-1].value, points[-1]["gvendi/cumulative"], rel_tol=1e-6)
    assert "train/gvendi/window" in tags and "train/gvendi/epoch" in tags

    curve = json.loads((tmp_path / "gvendi_curve.json").read_text())
    assert math.isclose(curve["final"]["cumulative"], points[-1]["gvendi/cumulative"], rel_tol=1e-12)
    assert curve["final"]["examples"] == 2 * len(rows)
    assert len(curve["points"]) == len(points) and len(curve["epochs"]) == 2
    assert (tmp_path / "gvendi_curve.png").stat().st_size > 1000


@pytest.mark.parametrize("projection", ["factored", "sketch"])
def test_model_source_matches_featurizer_exactly(tmp_path, tok, projection):
    """With the weights held still (lr=0), the Trainer-step features under gradient accumulation and padding are
    the per-example gradients: the cumulative G-Vendi equals the featurizer's score of the same examples."""
    rows = templated_rows(24, words=range(10, 60), template=0, seed=1) + templated_rows(
        8, words=range(60, 90), template=1
    )
    net = model(seed=3)
    reference = copy.deepcopy(net).eval()
    callback = GVendiCallback(dim=DIM, projection=None if projection == "factored" else projection)
    assert callback.projection == projection  # "factored" is the default with source="model"
    trainer = _trainer(
        tok,
        rows,
        tmp_path,
        callback,
        net=net,
        learning_rate=0.0,
        gradient_accumulation_steps=2,
        per_device_train_batch_size=3,
        logging_steps=100,
        num_train_epochs=1,
        train_sampling_strategy="random",
    )
    trainer.train()
    measured = callback.summary()["final"]
    encoded = [EncodedExample(r["input_ids"], r["labels"]) for r in encode(rows, tok)]
    featurizer = GradientFeaturizer(
        reference, tokenizer=tok, dim=DIM, projection=projection, show_progress=False, batch_size=5
    )
    expected = score(featurizer.featurize_encoded(encoded)).value
    assert measured["examples"] == len(rows)
    assert measured["cumulative"] == pytest.approx(expected, rel=1e-5)


def test_bf16_autocast(tmp_path, tok):
    rows = templated_rows(16, words=range(10, 60), template=0)
    net = model(seed=3)
    reference = copy.deepcopy(net).eval()
    callback = GVendiCallback(dim=DIM)
    _trainer(
        tok, rows, tmp_path, callback, net=net, bf16=True, learning_rate=0.0, logging_steps=2, num_train_epochs=1
    ).train()
    encoded = [EncodedExample(r["input_ids"], r["labels"]) for r in encode(rows, tok)]
    featurizer = GradientFeaturizer(
        reference, tokenizer=tok, dim=DIM, projection=callback.projection, show_progress=False
    )
    expected = score(featurizer.featurize_encoded(encoded)).value
    assert callback.summary()["final"]["cumulative"] == pytest.approx(expected, rel=0.05)


def _two_stage(tmp_path, tok, stage_two):
    stage_one = templated_rows(48, words=range(10, 60), template=0, stage="one")
    rows = stage_one + stage_two
    callback = GVendiCallback(dim=DIM, stage_column="stage")
    trainer = _trainer(
        tok, rows, tmp_path, callback, learning_rate=1e-5, per_device_train_batch_size=8, logging_steps=2
    )
    trainer.train()  # sequential sampling: stage one, then stage two
    points = callback.summary()["points"]
    end_of_one = next(p for p in points if p["examples"] == len(stage_one))
    assert set(end_of_one["stages"]) == {"one"}
    history = _gvendi_logs(trainer.state.log_history, "gvendi/stage/two")
    assert history and all(1.0 <= e["gvendi/stage/two"] <= DIM for e in history)
    return end_of_one["cumulative"], points[-1]["cumulative"], callback.summary()


def test_curriculum_copy_of_stage_one_adds_nothing(tmp_path, tok):
    stage_two = [{**row, "stage": "two"} for row in templated_rows(48, words=range(10, 60), template=0)]
    before, after, summary = _two_stage(tmp_path, tok, stage_two)
    assert after == pytest.approx(before, rel=0.02)
    stages = summary["final"]["stages"]
    assert stages["two"]["gvendi"] == pytest.approx(stages["one"]["gvendi"], rel=0.02)


def test_curriculum_new_templates_raise_cumulative(tmp_path, tok):
    stage_two = templated_rows(48, words=range(100, 200), template=3, stage="two")
    before, after, _ = _two_stage(tmp_path, tok, stage_two)
    assert after > 1.3 * before


def test_set_stage_across_train_calls(tmp_path, tok):
    callback = GVendiCallback(dim=DIM)
    callback.set_stage("warmup")
    trainer = _trainer(tok, templated_rows(16, words=range(10, 60), template=0), tmp_path, callback, logging_steps=2)
    trainer.train()
    callback.set_stage("main")
    trainer.train_dataset = Dataset.from_list(encode(templated_rows(16, words=range(100, 200), template=3), tok))
    trainer.train()
    final = callback.summary()["final"]
    assert final["examples"] == 32
    assert set(final["stages"]) == {"warmup", "main"}
    assert [p["run"] for p in callback.summary()["points"]] == [1, 1, 2, 2]
    assert any("gvendi/stage/main" in e for e in trainer.state.log_history)


def test_every_n_steps_with_dataloader_workers(tmp_path, tok):
    """Stage values travel through dataloader worker processes; every_n_steps=2 featurizes steps 0, 2, … only."""
    rows = templated_rows(8, words=range(10, 60), template=0, stage="a")
    rows += templated_rows(8, words=range(100, 200), template=3, stage="b")
    callback = GVendiCallback(dim=DIM, stage_column="stage", every_n_steps=2)
    trainer = _trainer(tok, rows, tmp_path, callback, dataloader_num_workers=2, logging_steps=4)
    trainer.train()
    final = callback.summary()["final"]
    assert final["examples"] == 8  # steps 0 and 2 of 4, batch 4
    assert {name: stage["examples"] for name, stage in final["stages"].items()} == {"a": 4, "b": 4}
    trainer.train()  # a second train() call keeps reading the stage column
    final = callback.summary()["final"]
    assert {name: stage["examples"] for name, stage in final["stages"].items()} == {"a": 8, "b": 8}


def test_resume_continues_the_cumulative_curve(tmp_path, tok):
    rows = templated_rows(48, words=range(10, 60), template=0) + templated_rows(48, words=range(100, 200), template=3)
    kwargs = dict(max_steps=8, per_device_train_batch_size=4, logging_steps=2, save_strategy="steps", save_steps=4)
    full = GVendiCallback(dim=DIM)
    _trainer(tok, rows, tmp_path / "full", full, **kwargs).train()

    checkpoint = tmp_path / "full" / "checkpoint-4"
    assert (checkpoint / callbacks.gvendi_callback.STATE_FILE).is_file()
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(checkpoint, resumed_dir / "checkpoint-4")
    resumed = GVendiCallback(dim=DIM)
    _trainer(tok, rows, resumed_dir, resumed, **kwargs).train(resume_from_checkpoint=str(resumed_dir / "checkpoint-4"))

    a, b = full.summary(), resumed.summary()
    assert b["final"]["examples"] == a["final"]["examples"] == 32
    assert [p["step"] for p in b["points"]] == [p["step"] for p in a["points"]]
    assert b["final"]["cumulative"] == pytest.approx(a["final"]["cumulative"], rel=1e-5)
    curve = json.loads((resumed_dir / "gvendi_curve.json").read_text())
    assert curve["points"][0]["step"] == 2  # the pre-checkpoint part of the curve came back
    other = GVendiCallback(dim=DIM, projection="sketch")  # the checkpoint was measured with "factored"
    with pytest.raises(ValueError, match="projection='factored'"):
        _trainer(tok, rows, resumed_dir, other, **kwargs).train(
            resume_from_checkpoint=str(resumed_dir / "checkpoint-4")
        )


def test_interval_is_scores_interval_and_survives_a_resume(tmp_path, tok):
    """ci=0.9: the logged and summarised interval of the cumulative value is gvendi.score(features, ci=0.9) of the
    same examples (weights held still, sequential order); a run resumed from a checkpoint outside its output_dir
    (callback.restore) ends with the same interval as the uninterrupted run."""
    rows = templated_rows(24, words=range(10, 60), template=0, seed=1)
    rows += templated_rows(8, words=range(60, 90), template=1)
    net = model(seed=3)
    reference = copy.deepcopy(net).eval()
    kwargs = dict(learning_rate=0.0, logging_steps=2, max_steps=8, save_strategy="steps", save_steps=4)
    full = GVendiCallback(dim=DIM, ci=0.9, n_boot=50)
    trainer = _trainer(tok, rows, tmp_path / "full", full, net=net, **kwargs)
    trainer.train()
    final = full.summary()["final"]
    assert final["ci_level"] == 0.9 and final["n_boot"] == 50
    logged = _gvendi_logs(trainer.state.log_history, "gvendi/cumulative_ci_low")
    assert [e["step"] for e in logged] == [2, 4, 6, 8]
    assert [logged[-1]["gvendi/cumulative_ci_low"], logged[-1]["gvendi/cumulative_ci_high"]] == final["cumulative_ci"]
    assert [p["cumulative_ci"] for p in full.summary()["points"]] == [
        [e["gvendi/cumulative_ci_low"], e["gvendi/cumulative_ci_high"]] for e in logged
    ]
    encoded = [EncodedExample(r["input_ids"], r["labels"]) for r in encode(rows, tok)]
    featurizer = GradientFeaturizer(reference, tokenizer=tok, dim=DIM, show_progress=False)
    expected = score(featurizer.featurize_encoded(encoded), ci=0.9, n_boot=50, seed=0)
    assert final["cumulative"] == pytest.approx(expected.value, rel=1e-5)
    assert final["cumulative_ci"] == pytest.approx(list(expected.ci), rel=1e-4)

    resumed = GVendiCallback(dim=DIM, ci=0.9, n_boot=50)
    checkpoint = str(tmp_path / "full" / "checkpoint-4")
    resumed.restore(checkpoint)  # not under the resumed run's output_dir: found only through restore()
    again = _trainer(tok, rows, tmp_path / "resumed", resumed, net=model(seed=3), **kwargs)
    again.train(resume_from_checkpoint=checkpoint)
    summary = resumed.summary()
    assert summary["final"]["examples"] == 32 and [p["step"] for p in summary["points"]] == [2, 4, 6, 8]
    assert summary["final"]["cumulative_ci"] == pytest.approx(final["cumulative_ci"], rel=1e-5)


def test_a_format_1_checkpoint_still_restores(tmp_path):
    """The state file of the callback before the accumulator set moved to the core (accumulators at the top level)."""
    import numpy as np
    import torch

    from gvendi import VendiAccumulator

    rows = np.random.default_rng(0).normal(size=(10, DIM))
    stage = VendiAccumulator(DIM).update(rows[:4])
    whole = VendiAccumulator(DIM).update(rows)
    old = {
        "format": 1,
        "config": {"source": "model", "dim": DIM, "projection": "factored", "seed": 0},
        "window": VendiAccumulator(DIM).state_dict(),
        "window_stages": [],
        "cumulative": whole.state_dict(),
        "epoch": whole.state_dict(),
        "stages": {"a": stage.state_dict()},
        "curve": [{"step": 2, "examples": 10}],
        "epochs": [],
        "skipped": 1,
        "current_stage": "a",
    }
    (tmp_path / "checkpoint-2").mkdir()
    torch.save(old, tmp_path / "checkpoint-2" / callbacks.gvendi_callback.STATE_FILE)
    callback = GVendiCallback(dim=DIM)
    callback.restore(str(tmp_path / "checkpoint-2"))
    final = callback.summary()["final"]
    assert final["cumulative"] == pytest.approx(whole.score().value, rel=1e-12) and final["examples"] == 10
    assert final["stages"]["a"]["examples"] == 4 and final["skipped_examples"] == 1
    assert callback.curve == old["curve"] and callback._current_stage == "a"
    with pytest.raises(ValueError, match="seed=0"):
        GVendiCallback(dim=DIM, seed=1).restore(str(tmp_path / "checkpoint-2"))


def test_a_callback_without_its_trainer_says_how_to_attach(tmp_path, tok):
    callback = GVendiCallback(dim=DIM)
    trainer = Trainer(
        model=model(),
        args=training_args(tmp_path),
        train_dataset=Dataset.from_list(encode(templated_rows(8, words=range(10, 60), template=0), tok)),
        data_collator=PadCollator(tok.pad_token_id),
        callbacks=[callback],
    )
    with pytest.raises(RuntimeError, match=r"callback\.attach\(trainer\)"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_proxy_source_reads_text_columns(tmp_path, tok):
    proxy = model(seed=7).eval()
    callback = GVendiCallback(
        source="proxy", dim=DIM, stage_column="stage", proxy=proxy, proxy_kwargs={"tokenizer": tok}
    )
    rows = templated_rows(16, words=range(10, 60), template=0, stage="one")
    trainer = _trainer(tok, rows, tmp_path, callback, logging_steps=2)
    trainer.train()
    points = _gvendi_logs(trainer.state.log_history, "gvendi/cumulative")
    assert points and all(1.0 <= e["gvendi/cumulative"] <= DIM for e in points)
    assert points[-1]["gvendi/examples"] == 16
    expected = score(GradientFeaturizer(proxy, tokenizer=tok, dim=DIM, show_progress=False).featurize(rows)).value
    assert points[-1]["gvendi/cumulative"] == pytest.approx(expected, rel=1e-5)
    trainer.evaluate(Dataset.from_list(encode(rows, tok)))  # evaluation after training works
    callback.close()
    assert isinstance(trainer.data_collator, PadCollator)  # close() gives the Trainer its collator back
    trainer.evaluate(Dataset.from_list(encode(rows, tok)))


# bad input: a clear error at on_train_begin, before any step ---------------------------------------------------
class _NoLinear(nn.Module):
    """Embedding-only LM: logits are inner products with the embedding table (no nn.Linear anywhere)."""

    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.embed(input_ids) @ self.embed.weight.T
        loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        return {"loss": loss, "logits": logits}


def test_error_model_without_linear_layers(tmp_path, tok):
    trainer = _trainer(
        tok,
        templated_rows(8, words=range(10, 60), template=0),
        tmp_path,
        GVendiCallback(dim=DIM),
        net=_NoLinear(len(tok)),
    )
    with pytest.raises(ValueError, match=r"no linear layers.*source='proxy'"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_error_missing_stage_column(tmp_path, tok):
    trainer = _trainer(
        tok,
        templated_rows(8, words=range(10, 60), template=0),
        tmp_path,
        GVendiCallback(dim=DIM, stage_column="difficulty"),
    )
    with pytest.raises(ValueError, match=r"stage_column='difficulty' is not a column.*set_stage"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert isinstance(trainer.data_collator, PadCollator)  # the Trainer is left as it was


def test_error_proxy_without_text_columns(tmp_path, tok):
    rows = [
        {"input_ids": r["input_ids"], "labels": r["labels"]}
        for r in encode(templated_rows(8, words=range(10, 60), template=0), tok)
    ]
    trainer = Trainer(
        model=model(),
        args=training_args(tmp_path),
        train_dataset=Dataset.from_list(rows),
        data_collator=PadCollator(tok.pad_token_id),
    )
    GVendiCallback(source="proxy", dim=DIM, proxy=model(), proxy_kwargs={"tokenizer": tok}, trainer=trainer)
    with pytest.raises(ValueError, match=r"no text column\(s\) \['prompt', 'completion'\]"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_constructor_errors():
    with pytest.raises(ValueError, match="source must be"):
        GVendiCallback(source="data")
    with pytest.raises(ValueError, match="dim must be"):
        GVendiCallback(dim=0)
    with pytest.raises(ValueError, match="unknown projection .gaussian."):
        GVendiCallback(projection="gaussian")
    with pytest.raises(ValueError, match="confidence level"):
        GVendiCallback(ci=95)


# distributed ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [64, 16])
def test_two_processes_match_one(tmp_path, dim):
    """torchrun with 2 CPU processes (gloo) gives the G-Vendi values of 1 process on the same data. With ``dim=64``
    every synced stage travels between ranks as rows; with ``dim=16`` stages past 16 rows travel as moments."""
    script = HERE / "callback_ddp_script.py"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one"), "8", str(dim)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # the rendezvous store binds a port the OS picks: no race for a "free" port
            "--nproc_per_node",
            "2",
            str(script),
            str(tmp_path / "two"),
            "4",
            str(dim),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "gvendi_curve.json").read_text())
    two = json.loads((tmp_path / "two" / "gvendi_curve.json").read_text())
    assert one["final"]["examples"] == two["final"]["examples"] == 2 * 40
    assert two["final"]["cumulative"] == pytest.approx(one["final"]["cumulative"], rel=1e-6)
    for name in ("a", "b"):
        assert two["final"]["stages"][name]["gvendi"] == pytest.approx(
            one["final"]["stages"][name]["gvendi"], rel=1e-6
        )
    assert [p["examples"] for p in two["points"]] == [p["examples"] for p in one["points"]]
    for run in (one, two):  # both report an interval (its resamples depend on the order the rows arrived in)
        low, high = run["final"]["cumulative_ci"]
        assert 1.0 <= low < high and run["final"]["n_boot"] == 20
    for mine, theirs in zip(two["points"], one["points"]):
        for key in ("window", "cumulative"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-6), (key, mine["step"])
