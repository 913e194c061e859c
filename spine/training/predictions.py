"""Label maps of a grid's models on test images: those a record keeps (``predictions.npz``, matched
to the store's committed inputs, so figures are drawn from the store alone) and those of models
loaded or rebuilt now, each beside the reference. Nothing here trains: a model a record lacks is
rebuilt by a caller that asks for it (``engine.retrain``) and handed in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spine.errors import ConfigError
from spine.inference import predict_labels
from spine.training.engine import record_model, split_data
from spine.training.store import Record, load_record, recorded_inputs


def trained_records(table: pd.DataFrame, store) -> dict[str, Record]:
    """The record of every trained row of a table, by run id."""
    return {run_id: load_record(Path(store) / run_id) for run_id in table.loc[table["trained"], "run_id"]}


def model_predictions(table: pd.DataFrame, store, images, models: dict | None = None) -> dict:
    """Label maps of every trained row's model on ``images``: ``{row label: (N, H, W) uint8}``.

    The label is the model's name, with the loss in brackets when the table holds several
    losses. ``models`` (by run id) supplies models, e.g. those that ``engine.retrain`` rebuilt
    for records committed without their files; any other is loaded from its record
    (``engine.record_model``: a clear error when the record has no model file).
    """
    models = models or {}
    out = {}
    for name, row in _trained_rows(table):
        model = models[row.run_id] if row.run_id in models else record_model(load_record(Path(store) / row.run_id))
        out[name] = predict_labels(model, images)
    return out


def sample_predictions(table: pd.DataFrame, store, count: int = 4, models: dict | None = None) -> tuple:
    """The first ``count`` test images of a grid, their reference and every trained row's labels.

    The test patients are those of the table's first trained row (the rows of a grid share the
    split). Returns ``(sample, rows)``: the images as a ``SliceSet``, and the label maps by row
    name, ``"reference"`` (in the rows' task) first, then each trained row's (:func:`model_predictions`,
    with ``models`` as there).
    """
    first = load_record(Path(store) / table.loc[table["trained"], "run_id"].iloc[0])
    test = split_data(first.config)["test"]
    sample = test.select(np.arange(min(count, len(test))))
    return sample, {"reference": sample.labels(first.config.task), **model_predictions(table, store, sample.images, models)}


def recorded_predictions(record: Record, store=None) -> dict | None:
    """A record's test images as the store keeps them: ``{"images"`` (N, S, S, 1) in [0, 1],
    ``"reference"`` and ``"prediction"`` (N, S, S) label maps in the record's task, ``"case_ids"``,
    ``"patients"``, ``"spacing"``}``, the stored predictions matched to the fold's committed inputs
    by case id. Nothing is trained or run. ``None`` for records that keep no predictions (the
    first format) or whose inputs the store lacks. ``store`` defaults to the record's own folder's."""
    store = Path(store) if store is not None else record.path.parent
    if not (record.path / "predictions.npz").is_file():
        return None
    inputs = recorded_inputs(record.config, store)
    if inputs is None:
        return None
    stored = record.predictions()
    where = {case: i for i, case in enumerate(map(str, inputs.case_ids))}
    missing = [case for case in map(str, stored["case_ids"]) if case not in where]
    if missing:
        raise ConfigError(f"{record.path.name}: {len(missing)} predicted test image(s) not in the store's inputs "
                          f"({', '.join(missing[:3])}...)")
    order = np.array([where[case] for case in map(str, stored["case_ids"])])
    subset = inputs.select(order)
    return {"images": subset.images, "reference": subset.labels(record.config.task),
            "prediction": stored["labels"].astype(np.uint8), "case_ids": np.asarray(subset.case_ids),
            "patients": np.asarray(subset.patients), "spacing": subset.spacing}


def recorded_sample(table: pd.DataFrame, store, count: int = 4, fold: int | None = None) -> tuple | None:
    """The first ``count`` test images of one fold of a grid (the lowest recorded fold unless
    given), each a different patient where the fold has enough: the images, and the label maps
    by row name (``"reference"`` first, then each row recorded in that fold), all from the store
    (:func:`recorded_predictions`). ``None`` when no row of the table keeps predictions.
    Returns ``(images, case_ids, rows)``."""
    per_row = {name: [r for r in records if fold is None or r.config.fold == fold]
               for name, records in _row_records(table, store).items()}
    shown = {name: min(records, key=lambda r: r.config.fold) for name, records in per_row.items() if records}
    folds = [r.config.fold for r in shown.values() if (r.path / "predictions.npz").is_file()]
    if not folds:
        return None
    chosen = min(folds)
    shown = {name: recorded_predictions(r, store) for name, r in shown.items() if r.config.fold == chosen}
    shown = {name: maps for name, maps in shown.items() if maps is not None}
    if not shown:
        return None
    first = next(iter(shown.values()))
    patients = first["patients"]
    pick = [int(np.flatnonzero(patients == p)[len(np.flatnonzero(patients == p)) // 2]) for p in dict.fromkeys(patients)]
    pick = (pick + [i for i in range(len(patients)) if i not in pick])[:count]
    rows = {"reference": first["reference"][pick]}
    for name, maps in shown.items():
        if not np.array_equal(maps["case_ids"], first["case_ids"]):
            raise ConfigError(f"{name}: its fold-{chosen} test images differ from the other rows'")
        rows[name] = maps["prediction"][pick]
    return first["images"][pick], list(first["case_ids"][pick]), rows


def _row_records(table: pd.DataFrame, store) -> dict[str, list]:
    """The records of every trained row of a table, by row name (the model, with the loss in
    brackets when the table holds several losses)."""
    return {name: [load_record(Path(store) / run_id) for run_id in getattr(row, "run_ids", None) or [row.run_id]]
            for name, row in _trained_rows(table)}


def _trained_rows(table: pd.DataFrame):
    """``(row name, row)`` of every trained row: the model, with the loss in brackets when the
    table holds several losses."""
    several = table["loss"].nunique() > 1
    return [(f"{row.model} ({row.loss})" if several else row.model, row) for row in table[table["trained"]].itertuples()]


def recorded_patient(table: pd.DataFrame, store, patient) -> tuple | None:
    """One test patient's slices with every trained row's prediction, from the store alone
    (:func:`recorded_predictions` of the records of the fold that tests the patient): the images,
    their case ids, and the label maps by row name, ``"reference"`` first. ``None`` when no row keeps
    predictions of that patient."""
    rows, images, case_ids = {}, None, None
    for name, records in _row_records(table, store).items():
        for record in records:
            maps = recorded_predictions(record, store)
            mine = np.flatnonzero(maps["patients"].astype(str) == str(patient)) if maps is not None else []
            if len(mine):
                if images is None:
                    images, case_ids = maps["images"][mine], [str(c) for c in maps["case_ids"][mine]]
                    rows["reference"] = maps["reference"][mine]
                elif [str(c) for c in maps["case_ids"][mine]] != case_ids:
                    raise ConfigError(f"{name}: patient {patient}'s test images differ from the other rows'")
                rows[name] = maps["prediction"][mine]
    return None if images is None else (images, case_ids, rows)
