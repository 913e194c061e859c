"""The experiment engine on the phantom at the smoke profile: store, resume, determinism, studies."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from spine.data import load_dataset, make_split
from spine.errors import ConfigError, DataError
from spine.training import engine, make_config, resolve_profile, studies, train
from spine.training.store import RECORD_FILES, inputs_path, is_finished, load_record, read_json, run_dir, write_json

pytestmark = pytest.mark.slow
DATA = "phantom:12"


def smoke_config(model="U-Net", loss="Dice", seed=0, **overrides):
    return make_config(model, loss, "binary", DATA, "smoke", seed=seed, overrides={"epochs": 2, **overrides})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted dual-output run with dropout, the yardstick of the resume test."""
    config = smoke_config("Proposed", dropout=0.3)
    return config, train(config, tmp_path_factory.mktemp("reference"), verbose=False)


def test_record_files_and_contents(reference):
    config, record = reference
    for name in RECORD_FILES + ("model.keras", "split.csv"):
        assert (record.path / name).is_file(), name
    assert not (record.path / "last.keras").exists() and not (record.path / "state.json").exists()
    assert record.path.name == config.run_id
    stored = json.loads((record.path / "config.json").read_text())
    assert stored["settings"] == resolve_profile("smoke", {"epochs": 2, "dropout": 0.3})
    assert stored["data_id"].startswith("phantom-")
    metrics = record.metrics
    history = record.history()
    assert metrics["selected_epoch"] == history.loc[history["val_dice"].idxmax(), "epoch"]
    assert metrics["subsets"]["test"]["patients"] == len(record.per_image())
    assert {"dice", "miou", "fg_iou", "hd95"} <= set(metrics["test"]["per_image"])
    low, high = metrics["test_ci95"]["dice"]["low"], metrics["test_ci95"]["dice"]["high"]
    assert low <= metrics["test"]["per_image"]["dice"] <= high
    assert len(record.history()) == 2
    split = pd.read_csv(record.path / "split.csv", dtype=str)
    assert set(split.subset) == {"train", "val", "test"}


def interrupt_at_epoch(config, store, monkeypatch, stop: int):
    """Train ``config`` into ``store`` until Ctrl-C at the start of epoch ``stop`` (0-based);
    returns the engine's own ``epoch_dataset``, which the caller puts back."""
    original = engine.epoch_dataset

    def interrupted(subset, task, batch_size, seed, epoch, *args):
        if epoch == stop:
            raise KeyboardInterrupt
        return original(subset, task, batch_size, seed, epoch, *args)

    monkeypatch.setattr(engine, "epoch_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, store, verbose=False)
    return original


def test_resume_after_interruption_gives_the_same_record(reference, tmp_path, monkeypatch):
    config, uninterrupted = reference
    original = interrupt_at_epoch(config, tmp_path, monkeypatch, 1)
    assert not is_finished(tmp_path / config.run_id)
    checkpoint = tmp_path / config.run_id / "last.keras"
    assert checkpoint.is_file() and not list(checkpoint.parent.glob(".*.keras"))  # no temporary left behind
    monkeypatch.setattr(engine, "epoch_dataset", original)
    whole = checkpoint.read_bytes()
    checkpoint.write_bytes(whole[: len(whole) // 3])  # what a save cut short used to leave
    with pytest.raises(DataError, match="damaged checkpoint"):
        train(config, tmp_path, verbose=False)
    checkpoint.write_bytes(whole)
    resumed = train(config, tmp_path, verbose=False)
    pd.testing.assert_frame_equal(resumed.per_image(), uninterrupted.per_image())
    np.testing.assert_allclose(resumed.history()["loss"], uninterrupted.history()["loss"], rtol=1e-6)


def test_store_reuses_finished_runs(reference, monkeypatch):
    config, record = reference
    store = record.path.parent
    monkeypatch.setattr(engine, "_train_epochs", lambda *a, **k: pytest.fail("trained again"))
    again = train(config, store, verbose=False)
    assert again.path == record.path and again.metrics == record.metrics


def test_same_seed_same_metrics_other_seed_differs(reference, tmp_path):
    config, first = reference
    second = train(config, tmp_path / "again", verbose=False)
    other = train(smoke_config("Proposed", seed=6, dropout=0.3), tmp_path / "other", verbose=False)
    pd.testing.assert_frame_equal(first.per_image(), second.per_image())
    np.testing.assert_array_equal(first.history()["loss"], second.history()["loss"])
    assert not np.allclose(first.history()["loss"], other.history()["loss"])


def test_a_short_run_trains_eagerly_and_as_its_graph_would(reference, tmp_path, monkeypatch):
    """Smoke runs skip tracing (``EAGER_STEPS``); the same run traced into graphs gives the same
    losses to float rounding and the same test Dice, so the eager path checks what longer runs trace."""
    config, eager = reference
    steps = int(np.ceil(eager.metrics["subsets"]["train"]["images"] / config.settings["batch_size"]))
    assert steps * config.settings["epochs"] <= engine.EAGER_STEPS
    modes, train_epochs = [], engine._train_epochs
    monkeypatch.setattr(engine, "_train_epochs",
                        lambda model, *args: modes.append(model.run_eagerly) or train_epochs(model, *args))
    monkeypatch.setattr(engine, "EAGER_STEPS", 0)
    graph = train(config, tmp_path, verbose=False)
    assert modes == [False]
    np.testing.assert_allclose(graph.history()["loss"], eager.history()["loss"], rtol=1e-3)
    np.testing.assert_allclose(graph.per_image()["dice"], eager.per_image()["dice"], atol=0.02)


def test_run_id_changes_with_what_determines_a_run():
    base = smoke_config()
    assert smoke_config().run_id == base.run_id
    assert smoke_config(seed=1).run_id != base.run_id
    assert smoke_config(loss="BCE").run_id != base.run_id
    assert smoke_config(width=8).run_id != base.run_id


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: .*Proposed"):
        make_config("UNet++", "Dice", "binary", DATA, "smoke")
    with pytest.raises(ConfigError, match="BCE-Dice"):
        make_config("U-Net", "Lovasz", "binary", DATA, "smoke")
    with pytest.raises(ConfigError, match="valid: paper, cpu"):
        make_config("U-Net", "Dice", "binary", DATA, "gpu")
    with pytest.raises(ConfigError, match="unknown profile field"):
        make_config("U-Net", "Dice", "binary", DATA, "smoke", overrides={"epoch": 3})


def test_study_runs_missing_cells_by_shard_then_in_parallel_processes(tmp_path):
    store = tmp_path / "store"
    table = studies.run_study("augmentation", DATA, "smoke", store, shard=(1, 2), verbose=False)
    assert list(table["trained"]) == [True, False]
    assert table.loc[0, "study_mIoU"] == pytest.approx(0.8974)
    assert table.loc[1, "model"] == "Proposed + data augmentation"
    # The rest of the grid in worker processes, merged through the same store.
    table = studies.run_study("augmentation", DATA, "smoke", store, jobs=2, verbose=False)
    assert list(table["trained"]) == [True, True]
    assert table.loc[1, "study_f1"] == pytest.approx(0.9259)
    assert np.isfinite(table["f1"]).all()


def test_every_grid_matches_the_study_tables():
    assert len(studies.cells("loss")) == 20 and len(studies.cells("multiclass")) == 20
    assert [c.seed for c in studies.cells("stability")] == list(range(1, 11))
    assert {c.model for c in studies.cells("attention")} >= {"Proposed + SE block", "ResUNet + CBAM"}
    with pytest.raises(ConfigError, match="valid: loss, ablation"):
        studies.cells("tables")


def test_a_record_without_its_model_is_retrained_only_when_asked_and_left_untouched(reference, tmp_path):
    """Committed records carry no model file: loading one says so; ``retrain`` rebuilds the model by
    training the same run into the cache, the record's own files stay byte for byte, and the
    rebuilt model is the same."""
    import shutil

    config, record = reference
    copy = tmp_path / config.run_id
    shutil.copytree(record.path, copy)
    (copy / "model.keras").unlink()
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    with pytest.raises(DataError, match="no model file.*retrain"):
        engine.record_model(load_record(copy))
    model = engine.retrain(load_record(copy))
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    test = engine.split_data(config)["test"]
    original = engine.record_model(record)
    np.testing.assert_array_equal(engine.predict_labels(model, test.images),
                                  engine.predict_labels(original, test.images))


# --------------------------------------------------------------------------- cross-validation


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    """A 3-fold run (fold 1) with a cosine schedule and a checkpoint every 2 of 3 epochs."""
    config = make_config("Proposed", "Dice", "binary", DATA, "smoke", fold=1,
                         overrides={"epochs": 3, "folds": 3, "lr_schedule": "cosine", "warmup_epochs": 1,
                                    "checkpoint_every": 2, "learning_rate": 0.01})
    store = tmp_path_factory.mktemp("folded")
    return config, store, train(config, store, verbose=False)


def test_folds_test_every_patient_once_and_never_train_on_it():
    from spine.data import load_dataset, make_folds, make_split

    patients = load_dataset(DATA, size=64).patients
    tested = []
    for fold in range(3):
        split = make_split(patients, seed=0, val_seed=5, folds=3, fold=fold)
        test = set(split.loc[split.subset == "test", "patient"])
        assert not test & set(split.loc[split.subset != "test", "patient"])
        tested += sorted(test)
    assert sorted(tested) == sorted(set(map(str, patients)))  # each patient in exactly one test fold
    manifest = make_folds(patients, 3, seed=0)
    assert sorted(manifest.groupby("fold").size()) == [4, 4, 4]
    with pytest.raises(DataError, match="fold 3 does not exist"):
        make_split(patients, folds=3, fold=3)


def test_a_folded_record_stores_its_fold_predictions_and_inputs(folded):
    config, store, record = folded
    manifest = pd.read_csv(next((store / "folds").glob("*.csv")), dtype={"patient": str})
    split = pd.read_csv(record.path / "split.csv", dtype={"patient": str})
    assert set(split.loc[split.subset == "test", "patient"]) == set(manifest.loc[manifest.fold == 1, "patient"])
    history = record.history()
    assert record.metrics["selected_epoch"] == history.loc[history["val_dice"].idxmax(), "epoch"]
    assert history["checkpoint_seconds"].notna().tolist() == [False, True, True]
    assert record.config.fold == 1 and record.metrics["precision"] in ("float32", "mixed_bfloat16")


def test_stored_predictions_rescore_to_the_recorded_metrics(folded):
    config, store, record = folded
    from spine.data import SliceSet

    stored = np.load(inputs_path(config, store))
    predictions = record.predictions()
    np.testing.assert_array_equal(predictions["case_ids"], stored["case_ids"])
    test = SliceSet(images=stored["images"][..., None] / 255.0, structures=stored["structures"],
                    instances=stored["structures"], spacing=stored["spacing"], case_ids=stored["case_ids"],
                    patients=stored["patients"], slice_index=stored["slice_index"])
    per_image, summary = engine.score_predictions(predictions["labels"], test, "binary")
    assert summary["per_image"]["dice"] == pytest.approx(record.metrics["test"]["per_image"]["dice"], abs=1e-12)
    recorded = record.per_image()
    np.testing.assert_allclose(per_image["dice"], recorded["dice"])
    means = record.per_patient().set_index("patient")["dice"]
    np.testing.assert_allclose(per_image.groupby("patient")["dice"].mean().loc[means.index], means)


def test_learning_rate_warms_up_then_decays_to_zero():
    settings = resolve_profile("smoke", {"epochs": 4, "lr_schedule": "cosine", "warmup_epochs": 1,
                                         "learning_rate": 0.01})
    schedule = engine.learning_rate(settings, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert rates[0] == 0 and rates[1] == pytest.approx(0.005) and rates[2] == pytest.approx(0.01)
    assert rates[3] == pytest.approx(0.005, rel=1e-4) and rates[4] == pytest.approx(0, abs=1e-9)
    assert engine.learning_rate(resolve_profile("smoke"), 10) == resolve_profile("smoke")["learning_rate"]


@pytest.mark.parametrize("gpus, flags, requested, expected", [
    ([], {"avx2"}, "auto", "float32"),
    ([], {"avx512_bf16"}, "auto", "mixed_bfloat16"),
    (["/physical_device:GPU:0"], set(), "auto", "mixed_float16"),
    ([], {"avx2"}, "mixed_bfloat16", "float32"),  # emulated bf16 would be slower: fall back
    ([], {"avx2"}, "mixed_float16", "float32"),
    ([], {"amx_bf16"}, "mixed_bfloat16", "mixed_bfloat16"),
    (["/physical_device:GPU:0"], set(), "float32", "float32"),
])
def test_precision_follows_the_device(monkeypatch, gpus, flags, requested, expected):
    from spine.training import device

    monkeypatch.setattr(device, "gpus", lambda: gpus)
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset(flags))
    assert device.resolve_precision(requested) == expected


def test_a_mixed_precision_model_keeps_float32_heads_and_weights():
    config = make_config("Proposed", "Dice", "binary", DATA, "smoke")
    model = engine.compile_model(config, precision="mixed_bfloat16")
    assert model.get_layer("mask").dtype_policy.name == "float32"
    assert model.get_layer("aux").compute_dtype == "float32"
    assert {w.dtype for w in model.weights} == {"float32"}
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
    import keras

    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was


def test_a_checkpoint_ahead_of_its_state_starts_the_run_over(folded, tmp_path, monkeypatch):
    """Killed between writing the checkpoint and its state.json, a run must not resume from a
    model that is epochs ahead of what the state says: it starts over, and ends as an
    uninterrupted run does."""
    config, _, uninterrupted = folded
    original = interrupt_at_epoch(config, tmp_path, monkeypatch, 2)
    state_path = tmp_path / config.run_id / "state.json"
    state = read_json(state_path)
    assert state["epochs_done"] == 2  # the checkpoint of epoch 2
    write_json(state_path, state | {"epochs_done": 1, "history": state["history"][:1]})  # the older state
    monkeypatch.setattr(engine, "epoch_dataset", original)
    resumed = train(config, tmp_path, verbose=False)
    pd.testing.assert_frame_equal(resumed.per_image(), uninterrupted.per_image())
    assert resumed.metrics["selected_epoch"] == uninterrupted.metrics["selected_epoch"]


def test_a_run_whose_data_now_prepare_otherwise_is_refused_before_anything_is_written(tmp_path):
    config = smoke_config()
    changed = dataclasses.replace(config, data_id=config.data_id.rsplit("-", 1)[0] + "-0123456789abcdef")
    with pytest.raises(DataError, match="not the run's"):
        train(changed, tmp_path, verbose=False)
    assert not run_dir(tmp_path, changed).exists()


def test_a_run_resumed_on_data_whose_bytes_changed_is_refused(tmp_path):
    config = smoke_config()
    folder = run_dir(tmp_path, config)
    folder.mkdir(parents=True)  # an interrupted run that started on other bytes
    write_json(folder / "config.json", config.to_dict() | {"resolved": {"data_sha256": "0" * 64}})
    with pytest.raises(DataError, match="bytes differ from those run"):
        train(config, tmp_path, verbose=False)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


def test_a_record_keeps_the_sha256_of_its_data(reference):
    config, record = reference
    resolved = read_json(record.path / "config.json")["resolved"]
    digest = engine.load_dataset(config.data, size=config.settings["size"]).data_sha256
    assert resolved["data_sha256"] == digest and len(digest) == 64  # the phantom's written files too


def test_a_fine_tuning_may_not_start_from_a_run_that_trained_on_its_validation_patients(tmp_path):
    store = tmp_path / "store"
    request = dict(model="U-Net", loss="Dice", task="binary", data="phantom:12", profile="smoke")
    other_seed = make_config(**request, seed=1)  # draws other validation patients from the same training ones
    same_split = make_config(**request, seed=0, overrides={"epochs": 1})
    for config in (other_seed, same_split):
        write_json(store / config.run_id / "config.json", config.to_dict())
    patients = np.unique(load_dataset("phantom:12").patients)
    ours = make_split(patients, seed=0, val_seed=0, folds=0)
    theirs = make_split(patients, seed=0, val_seed=1, folds=0)
    expected = set(ours.query("subset == 'val'")["patient"]) & set(theirs.query("subset == 'train'")["patient"])
    assert expected  # the case tests something: seed 1 trained on some of seed 0's validation patients
    fine_tuning = make_config(**request, seed=0, init=other_seed.run_id)
    assert engine.init_leaks(fine_tuning, store) == {str(p) for p in expected}
    assert engine.init_leaks(make_config(**request, seed=0, init=same_split.run_id), store) == set()
    with pytest.raises(ConfigError, match=f"--init {other_seed.run_id}: that run trained on "):
        train(fine_tuning, store)
    assert not run_dir(store, fine_tuning).exists()  # nothing written


@pytest.mark.parametrize("select, kept", [("best", 1), ("last", 3)])
def test_a_fine_tuning_keeps_the_best_or_the_last_epoch_as_its_partial_select_says(tmp_path, monkeypatch, select, kept):
    falling = iter([0.9, 0.5, 0.1, 0.1])  # each epoch's validation Dice, then the final scoring's
    monkeypatch.setattr(engine, "validation_dice", lambda *args: next(falling))
    config = smoke_config(epochs=3)
    if select == "last":  # what --set partial_select=last stores (it needs a partial source to be set)
        config = dataclasses.replace(config, settings=config.settings | {"partial_select": "last"})
    record = train(config, tmp_path, verbose=False)
    assert record.metrics["selected_epoch"] == kept
    assert record.metrics["selection"] == engine.SELECTIONS[select]
    assert record.history()["val_dice"].tolist() == [0.9, 0.5, 0.1]
