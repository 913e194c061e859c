"""Choosing the recorded run to ship, and writing its model as a small, self-describing file.

The package ships one binary and one 4-class model (``spine/weights``), used by ``spine predict``
when no ``--model`` is given. :func:`best_record` picks, among the finished seed-0 runs of fold 0 of
a task on one data source and profile (seed 0 and one fold: they share their validation patients,
so their validation figures compare), the run with the best mean **validation** Dice (never the test
figure, which stays an unbiased estimate of the shipped model), unless runs trained for other
sequences (a robust augmentation, :mod:`spine.training.robust`) come within
:data:`VALIDATION_TOLERANCE` of it: as good on T2-SPACE as fold 0's few validation patients can tell,
they are preferred, the best of them on the held-out phantom T1 and T2 cases
(:func:`spine.transfer.phantom_scores`). :func:`export_model` writes
that run's model without its optimizer state (a third of the file) and, beside it, a JSON card naming
the run, its augmentation, how it was chosen, its recorded test figures (against which the shipped
file is tested) and its transfer check (phantom T1 / T2 and, where given, the real T1/T2 slices:
reported, never chosen on).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from spine import transfer
from spine.data.bodies import PARTIAL_LABELS_VERSION, RULES_OF_DATA_ID
from spine.errors import ConfigError
from spine.training import robust
from spine.training import store as results
from spine.training.config import RECORD_VERSION, augment_name, resolve_profile
from spine.training.engine import save_model, source_data_id

SELECTION_METRIC = "dice"  # mean validation Dice: foreground (binary) or over the 3 structures (4-class)
# Fold 0 has 5 validation patients: a robust run this close to the best validation Dice is preferred.
VALIDATION_TOLERANCE = 0.01
CARD_FIGURES = ("dice", "fg_iou", "miou", "hd95", "assd")
PHANTOM_FIGURE = "phantom_every_slice"  # the stored check's figure the rule chooses robust runs on
CHECK_FILE = "transfer.json"  # a record's stored transfer check (check_transfer): it outlives the model file


def candidates(store, data, profile: str, task: str) -> list[results.Record]:
    """The finished runs of ``task`` on ``data`` (the same prepared data) at ``profile``, of the
    current record format, and, for runs that also trained on partial labels, under the current
    partial-label rules (older records were made under another protocol, and cannot be re-made)."""
    data_id = source_data_id(data, resolve_profile(profile)["size"])
    return [r for r in results.records(store)
            if (r.config.task, r.config.profile, r.config.data_id, r.config.record_version)
            == (task, profile, data_id, RECORD_VERSION) and _current_rules(r)]


def _current_rules(record: results.Record) -> bool:
    partial_id = record.config.partial_id
    return partial_id is None or RULES_OF_DATA_ID.get(partial_id) == PARTIAL_LABELS_VERSION


def validation_score(record: results.Record) -> float:
    """The mean validation Dice; -inf when the record has none (it can never be chosen)."""
    value = record.metrics["val"]["per_image"].get(SELECTION_METRIC)
    return float(value) if value is not None and np.isfinite(value) else -np.inf


def phantom_score(record: results.Record) -> float:
    """The mean Dice over every sagittal slice of the held-out phantom T1 and T2 cases
    (:func:`spine.transfer.phantom_scores` with ``every_slice``): from the record's stored check if it
    has it, else from its model; -inf for a record with neither (it cannot be judged on it)."""
    stored = stored_check(record.path)
    if stored is not None and stored.get(PHANTOM_FIGURE):
        sequences = stored[PHANTOM_FIGURE].values()
        return float(np.average([s["dice"] for s in sequences], weights=[s["cases"] for s in sequences]))
    if not record.model_path.is_file():
        return -np.inf
    model = keras.saving.load_model(record.model_path, compile=False)
    return float(transfer.phantom_scores(model, every_slice=True)["dice"].mean())


def stored_check(folder) -> dict | None:
    """The transfer check stored beside a record (``<run>/transfer.json``), if there is one (figures
    stored as null, NaN when checked, read back as NaN)."""
    path = Path(folder) / CHECK_FILE
    return results.none_to_nan(results.read_json(path)) if path.is_file() else None


def _checked_model(record: results.Record):
    """The record's model for a check, or a clear error where its file is not here."""
    if not record.model_path.is_file():
        raise ConfigError(f"{record.path.name}: no model file to check (records are committed without them)")
    return keras.saving.load_model(record.model_path, compile=False)


def check_transfer(record: results.Record, t1t2_folder=None, model=None) -> dict:
    """Run the transfer check of the record's model (``model`` if already loaded) and store it beside
    the record (``transfer.json``): the figures outlive the model file, which is not committed."""
    check = transfer.transfer_check(_checked_model(record) if model is None else model, t1t2_folder)
    results.write_json(record.path / CHECK_FILE, check)
    return check


def body_score(record: results.Record) -> float:
    """The mean body Dice of the validation exams in the record's stored body check
    (:func:`check_bodies`, or the one a partial-label run stores); -inf without one."""
    path = record.path / transfer.BODY_CHECK_FILE
    value = results.read_json(path).get("val", {}).get("dice", {}).get("mean") if path.is_file() else None
    return float(value) if value is not None and np.isfinite(value) else -np.inf


def check_bodies(record: results.Record, folder, model=None) -> dict:
    """Run the body check (:func:`spine.transfer.body_check`) of the record's model (``model`` if
    already loaded) on every exam of ``folder``, each with its subset in the partial-label split of
    the record's fold and seed (the validation exams a partial-label run of that fold and seed has),
    and store it beside the record (``bodies.json``)."""
    from spine.training.engine import partial_split

    model = _checked_model(record) if model is None else model
    check = transfer.body_check(model, folder, partial_split(record.config, folder), ("train", "val", "test"))
    results.write_json(record.path / transfer.BODY_CHECK_FILE, check)
    return check


def _transfers(record: results.Record) -> bool:
    """Whether the run was trained for other sequences: a robust augmentation or real T1/T2 exams."""
    return record.config.augment in robust.RANDOMISED_FRACTION or record.config.partial is not None


def best_record(store, data, profile: str, task: str, *, need_model: bool = True) -> tuple[results.Record, int, int]:
    """Among the seed-0, fold-0 :func:`candidates`, the runs trained for other sequences (robust
    augmentation or partial labels) within :data:`VALIDATION_TOLERANCE` of the best mean validation
    Dice: the best of them on the body check of the validation exams (:func:`body_score`) where any
    has one, else the best on the phantom (:func:`phantom_score`); without such runs, that best run.
    Also returns how many runs it was chosen from, and how many were that close. The chosen run
    needs its model file unless ``need_model`` is false (to check a choice from the records alone)."""
    runs = [r for r in candidates(store, data, profile, task)
            if (r.config.seed, r.config.fold) == (0, 0) and np.isfinite(validation_score(r))]
    if not runs:
        raise ConfigError(f"no finished seed-0, fold-0 {task} run with a validation Dice "
                          f"for {data} at profile {profile!r} in {store}")
    best = max(map(validation_score, runs))
    close = [r for r in runs if _transfers(r) and validation_score(r) >= best - VALIDATION_TOLERANCE]
    if any(np.isfinite(body_score(r)) for r in close):
        chosen = max(close, key=body_score)
    elif len(close) > 1:
        chosen = max(close, key=phantom_score)
    else:
        chosen = close[0] if close else max(runs, key=validation_score)
    if need_model and not chosen.model_path.is_file():
        raise ConfigError(f"the chosen run {chosen.path.name} has no model file (records are committed without "
                          "them); train it again (engine.retrain) into this store first")
    return chosen, len(runs), len(close)


def selection(compared: int, close: int = 0, on_bodies: bool = False) -> str:
    """How the shipped run was chosen, in words (the card's ``selected_on``)."""
    runs = f"{compared} finished seed-0 run(s) of fold 0"
    if not close:
        return f"mean validation {SELECTION_METRIC}, best of {runs}"
    figure = ("mean body Dice in the anterior column of the validation exams (real T1/T2/TIRM volumes)" if on_bodies
              else f"mean phantom T1/T2 {SELECTION_METRIC} over every sagittal slice")
    return (f"{figure}, best of the {close} run(s) trained for other sequences within "
            f"{VALIDATION_TOLERANCE} of the best mean validation {SELECTION_METRIC} of {runs}")


def card(record: results.Record, compared: int, close: int = 0, check: dict | None = None) -> dict:
    """What the shipped file is: its run and augmentation, how it was chosen, its recorded test
    figures, and its transfer check (``check``: :func:`spine.transfer.transfer_check`) if given."""
    test = record.metrics["test"]
    recorded = results.read_json(record.path / "config.json")  # the data path as recorded, not as found here
    figures = {"images": test["n_images"], **{k: test["per_image"].get(k) for k in CARD_FIGURES}}
    if "test_patients" in record.metrics:  # records of format 2: per-patient means too
        patients = record.metrics["test_patients"]
        figures |= {"patients": patients["n"], "patient_mean_dice": patients["means"]["dice"]}
    bodies = results.read_json(record.path / transfer.BODY_CHECK_FILE) if np.isfinite(body_score(record)) else None
    return {"run_id": record.path.name, "config": recorded, "augment": augment_name(record.config.augment),
            "selected_on": selection(compared, close, np.isfinite(body_score(record))),
            "validation": {SELECTION_METRIC: validation_score(record)}, "test": figures,
            "selected_epoch": record.metrics["selected_epoch"]} | ({"transfer": check} if check else {}) | (
        {"bodies": {key: bodies[key] for key in ("source", "val", "test") if key in bodies}} if bodies else {})


def export_model(record: results.Record, folder, compared: int = 1, close: int = 0, *, overwrite: bool = False,
                 t1t2_folder=None) -> Path:
    """Write ``<folder>/<task>.keras`` (weights and architecture, no optimizer) and ``<task>.json``,
    whose transfer check covers the real T1/T2 slices too where ``t1t2_folder`` is given."""
    folder = Path(folder)
    target = folder / f"{record.config.task}.keras"
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    model = keras.saving.load_model(record.model_path, compile=False)
    # The record keeps the card's check only when it covers the real slices: a phantom-only check
    # must not replace a stored one that does.
    check = (check_transfer(record, t1t2_folder, model) if t1t2_folder is not None
             else transfer.transfer_check(model, None))
    save_model(model, target)
    results.write_json(target.with_suffix(".json"), card(record, compared, close, check))
    return target
