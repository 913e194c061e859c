"""The experiment engine on the phantom at the smoke profile: store, resume, determinism, studies."""

import json

import numpy as np
import pandas as pd
import pytest

from spine.errors import ConfigError, DataError
from spine.training import engine, make_config, resolve_profile, studies, train
from spine.training import store as results

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
    for name in results.RECORD_FILES + ("model.keras", "split.csv"):
        assert (record.path / name).is_file(), name
    assert not (record.path / "last.keras").exists() and not (record.path / "state.json").exists()
    assert record.path.name == config.run_id
    stored = json.loads((record.path / "config.json").read_text())
    assert stored["settings"] == resolve_profile("smoke", {"epochs": 2, "dropout": 0.3})
    assert stored["data_id"].startswith("phantom-")
    metrics = record.metrics
    assert 1 <= metrics["selected_epoch"] <= 2
    assert metrics["subsets"]["test"]["patients"] == len(record.per_image())
    assert {"dice", "miou", "fg_iou", "hd95"} <= set(metrics["test"]["per_image"])
    low, high = metrics["test_ci95"]["dice"]["low"], metrics["test_ci95"]["dice"]["high"]
    assert low <= metrics["test"]["per_image"]["dice"] <= high
    assert len(record.history()) == 2
    split = pd.read_csv(record.path / "split.csv", dtype=str)
    assert set(split.subset) == {"train", "val", "test"}


def test_resume_after_interruption_gives_the_same_record(reference, tmp_path, monkeypatch):
    config, uninterrupted = reference
    original = engine.epoch_dataset

    def interrupted(subset, task, batch_size, seed, epoch, *args):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(subset, task, batch_size, seed, epoch, *args)

    monkeypatch.setattr(engine, "epoch_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, verbose=False)
    assert not results.is_finished(tmp_path / config.run_id)
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


def test_run_id_changes_with_what_determines_a_run():
    base = smoke_config()
    assert smoke_config().run_id == base.run_id
    assert smoke_config(seed=1).run_id != base.run_id
    assert smoke_config(loss="BCE").run_id != base.run_id
    assert smoke_config(width=8).run_id != base.run_id


def test_augmentation_keeps_labels_and_aux_target_consistent():
    from spine.data import load_dataset

    subset = load_dataset(DATA, size=64)
    batch = next(iter(engine.epoch_dataset(subset, "multiclass", 4, 0, 0, True, True)))
    images, targets = batch
    mask = targets["mask"].numpy()
    assert set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_allclose(mask.sum(-1), 1.0)
    aux = targets["aux"].numpy()
    assert aux.shape == (4, 4, 4, 4)
    np.testing.assert_allclose(aux, mask.reshape(4, 4, 16, 4, 16, 4).mean(axis=(2, 4)), atol=1e-6)


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


def test_a_record_without_its_model_is_retrained_elsewhere_and_left_untouched(reference, tmp_path):
    """Committed records carry no model file: the model is rebuilt by training the same run into
    the cache, the record's own files stay byte for byte, and the rebuilt model is the same."""
    import shutil

    config, record = reference
    copy = tmp_path / config.run_id
    shutil.copytree(record.path, copy)
    (copy / "model.keras").unlink()
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    model = engine.record_model(results.load_record(copy))
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    test = engine.split_data(config)["test"]
    original = engine.record_model(record)
    np.testing.assert_array_equal(engine.predict_labels(model, test.images),
                                  engine.predict_labels(original, test.images))
