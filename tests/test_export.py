"""Choosing and exporting the shipped models (spine.training.export)."""

import json

import keras
import numpy as np
import pytest

from spine.errors import ConfigError
from spine.models import build_model
from spine.training import export, make_config
from spine.training import store as results

DATA = "phantom:12"


def _record_with_model(store, model: str, val: float, test: float, seed: int = 0):
    """A finished run with chosen figures and an (untrained) model file: what export reads."""
    config = make_config(model, "Dice", "binary", DATA, "smoke", seed=seed)
    folder = results.run_dir(store, config)
    folder.mkdir(parents=True)
    results.write_json(folder / "config.json", config.to_dict())
    results.write_json(folder / "metrics.json", {"selected_epoch": 1, "val": {"per_image": {"dice": val}},
                                                 "test": {"n_images": 3, "per_image": {"dice": test}}})
    built = build_model(model, input_shape=(64, 64, 1), width=4)
    built.compile(optimizer="adam", loss="binary_crossentropy")
    built.save(folder / "model.keras")
    return results.load_record(folder)


def test_best_record_is_chosen_on_validation_not_test(tmp_path):
    _record_with_model(tmp_path, "U-Net", val=0.70, test=0.95)
    chosen = _record_with_model(tmp_path, "ResUNet", val=0.80, test=0.60)
    _record_with_model(tmp_path, "Attention U-Net", val=None, test=0.99)  # no validation figure: never chosen
    _record_with_model(tmp_path, "Proposed", val=0.99, test=0.99, seed=3)  # other validation patients
    record, compared = export.best_record(tmp_path, DATA, "smoke", "binary")
    assert record.path == chosen.path and compared == 2
    assert len(export.candidates(tmp_path, DATA, "smoke", "binary")) == 4
    with pytest.raises(ConfigError, match="no finished seed-0 multiclass run"):
        export.best_record(tmp_path, DATA, "smoke", "multiclass")


def test_export_writes_the_weights_without_the_optimizer_and_a_card(tmp_path):
    record = _record_with_model(tmp_path / "store", "Proposed", val=0.8, test=0.7)
    path = export.export_model(record, tmp_path / "weights", compared=2)
    shipped = keras.saving.load_model(path)
    original = keras.saving.load_model(record.model_path, compile=False)
    for mine, theirs in zip(shipped.weights, original.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    images = np.random.default_rng(0).random((2, 64, 64, 1), dtype=np.float32)
    np.testing.assert_allclose(shipped.predict(images, verbose=0)["mask"], original.predict(images, verbose=0)["mask"])
    assert getattr(shipped, "optimizer", None) is None and path.stat().st_size < record.model_path.stat().st_size
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["run_id"] == record.path.name and card["config"]["model"] == "Proposed"
    assert card["validation"] == {"dice": 0.8} and card["test"]["dice"] == 0.7 and "best of 2" in card["selected_on"]
    with pytest.raises(ConfigError, match="exists"):
        export.export_model(record, tmp_path / "weights")

