"""Choosing the recorded run to ship, and writing its model as a small, self-describing file.

The package ships one binary and one 4-class model (``spine/weights``), used by ``spine predict``
when no ``--model`` is given. :func:`best_record` picks, among the finished seed-0 runs of fold 0 of
a task on one data source and profile (seed 0 and one fold: they share their validation patients,
so their validation figures compare), the run with the best mean **validation** Dice (never the test
figure, which stays an unbiased estimate of the shipped model). :func:`export_model` writes that run's
model without its optimizer state (a third of the file) and, beside it, a JSON card naming the run,
how it was chosen, and its recorded test figures, against which the shipped file is tested.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from spine.errors import ConfigError
from spine.training import store as results
from spine.training.config import RECORD_VERSION
from spine.training.engine import make_config, save_model

SELECTION_METRIC = "dice"  # mean validation Dice: foreground (binary) or over the 3 structures (4-class)
CARD_FIGURES = ("dice", "fg_iou", "miou", "hd95", "assd")


def candidates(store, data, profile: str, task: str) -> list[results.Record]:
    """The finished runs of ``task`` on ``data`` (the same prepared data) at ``profile``, of the
    current record format (older records were made under another protocol)."""
    data_id = make_config("U-Net", "Dice", task, data, profile).data_id
    return [r for r in results.records(store)
            if (r.config.task, r.config.profile, r.config.data_id, r.config.record_version)
            == (task, profile, data_id, RECORD_VERSION)]


def validation_score(record: results.Record) -> float:
    """The mean validation Dice; -inf when the record has none (it can never be chosen)."""
    value = record.metrics["val"]["per_image"].get(SELECTION_METRIC)
    return float(value) if value is not None and np.isfinite(value) else -np.inf


def best_record(store, data, profile: str, task: str) -> tuple[results.Record, int]:
    """The run with the best mean validation Dice among the seed-0, fold-0 :func:`candidates` that
    have their model file, and how many runs it was chosen from."""
    runs = [r for r in candidates(store, data, profile, task)
            if (r.config.seed, r.config.fold) == (0, 0) and r.model_path.is_file() and np.isfinite(validation_score(r))]
    if not runs:
        raise ConfigError(f"no finished seed-0, fold-0 {task} run with a validation Dice and its model file "
                          f"for {data} at profile {profile!r} in {store}")
    return max(runs, key=validation_score), len(runs)


def card(record: results.Record, compared: int) -> dict:
    """What the shipped file is: its run, how it was chosen, its recorded test figures."""
    test = record.metrics["test"]
    recorded = results.read_json(record.path / "config.json")  # the data path as recorded, not as found here
    figures = {"images": test["n_images"], **{k: test["per_image"].get(k) for k in CARD_FIGURES}}
    if "test_patients" in record.metrics:  # records of format 2: per-patient means too
        patients = record.metrics["test_patients"]
        figures |= {"patients": patients["n"], "patient_mean_dice": patients["means"]["dice"]}
    return {"run_id": record.path.name, "config": recorded,
            "selected_on": f"mean validation {SELECTION_METRIC}, best of {compared} finished seed-0 run(s) of fold 0",
            "validation": {SELECTION_METRIC: validation_score(record)}, "test": figures,
            "selected_epoch": record.metrics["selected_epoch"]}


def export_model(record: results.Record, folder, compared: int = 1, *, overwrite: bool = False) -> Path:
    """Write ``<folder>/<task>.keras`` (weights and architecture, no optimizer) and ``<task>.json``."""
    folder = Path(folder)
    target = folder / f"{record.config.task}.keras"
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    model = keras.saving.load_model(record.model_path, compile=False)
    save_model(model, target)
    results.write_json(target.with_suffix(".json"), card(record, compared))
    return target
