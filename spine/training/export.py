"""Choosing the recorded run to ship, and writing its model as a small, self-describing file.

The package ships one binary and one 4-class model (``spine/weights``), used by ``spine predict``
when no ``--model`` is given. :func:`best_record` picks, among the finished seed-0 runs of fold 0 of
a task on one data source and profile (seed 0 and one fold: they share their validation patients,
so their validation figures compare), the run with the best mean **validation** Dice (never the test
figure, which stays an unbiased estimate of the shipped model), unless runs trained for other
sequences (a robust augmentation, :mod:`spine.training.robust`, or real T1/T2 exams with partial
labels) come within :data:`VALIDATION_TOLERANCE` of it: as good on T2-SPACE as fold 0's few
validation patients can tell, they are preferred, the best of them on the vertebral-body exams
(cross-validated over the exams' folds where a recipe has been; :func:`best_record` states the
rule) or, without exams, on the held-out phantom T1 and T2 cases. :func:`export_model` writes
that run's model without its optimizer state (a third of the file) and, beside it, a JSON card naming
the run, its augmentation, how it was chosen, its recorded test figures (against which the shipped
file is tested), its transfer check (phantom T1 / T2 and, where given, the real T1/T2 slices:
reported, never chosen on) and its validation and test figures at full size through ``spine
predict``'s path (:func:`check_full_size`: what a user's own slices get).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import pandas as pd

from spine import transfer
from spine.data.bodies import PARTIAL_LABELS_VERSION, RULES_OF_DATA_ID
from spine.errors import ConfigError
from spine.training import robust
from spine.training.store import Record, none_to_nan, read_json, records, write_json
from spine.training.config import RECORD_VERSION, augment_name, resolve_profile
from spine.training.engine import exam_fold, save_model, source_data_id

SELECTION_METRIC = "dice"  # mean validation Dice: foreground (binary) or over the 3 structures (4-class)
# Fold 0 has 5 validation patients: a robust run this close to the best validation Dice is preferred.
VALIDATION_TOLERANCE = 0.01
CARD_FIGURES = ("dice", "fg_iou", "miou", "hd95", "assd")
PHANTOM_FIGURE = "phantom_every_slice"  # the stored check's figure the rule chooses robust runs on
CHECK_FILE = "transfer.json"  # a record's stored transfer check (check_transfer): it outlives the model file


def comparable(store, data, profile: str, task: str) -> list[Record]:
    """The finished runs of ``task`` on ``data`` at ``profile``, of the current record format, whatever
    partial-label rules they trained under: those on the data as the profile prepares it, and those
    on the same files prepared at another input size (``--set size=256``: the same bytes,
    ``data_sha256``). The input size is a setting chosen on validation like any other; each run's
    validation Dice is taken at its own size, against the masks resized to it (a card's
    ``full_size`` check says how that compares with the Dice at full size)."""
    data_id = source_data_id(data, resolve_profile(profile)["size"])
    runs = [r for r in records(store)
            if (r.config.task, r.config.profile, r.config.record_version) == (task, profile, RECORD_VERSION)]
    same_files = {_source_bytes(r) for r in runs if r.config.data_id == data_id} - {None}
    # the ids of those files at every size (records made before data_sha256 was kept are known by id)
    prepared = {data_id} | {r.config.data_id for r in runs if _source_bytes(r) in same_files}
    return [r for r in runs if r.config.data_id in prepared]


def _source_bytes(record: Record) -> str | None:
    """The content hash of the files a run trained on (whatever size it prepared them at), if recorded."""
    return read_json(record.path / "config.json").get("resolved", {}).get("data_sha256") or None


def candidates(store, data, profile: str, task: str) -> list[Record]:
    """The :func:`comparable` runs the export rule may ship: for runs that also trained on partial
    labels, those under the current partial-label rules (the others were made under another
    protocol, which the current code does not make)."""
    return [r for r in comparable(store, data, profile, task) if _current_rules(r)]


def _current_rules(record: Record) -> bool:
    partial_id = record.config.partial_id
    return partial_id is None or RULES_OF_DATA_ID.get(partial_id) == PARTIAL_LABELS_VERSION


def validation_score(record: Record) -> float:
    """The mean validation Dice; -inf when the record has none (it can never be chosen)."""
    value = record.metrics["val"]["per_image"].get(SELECTION_METRIC)
    return float(value) if value is not None and np.isfinite(value) else -np.inf


def phantom_score(record: Record) -> float:
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
    return none_to_nan(read_json(path)) if path.is_file() else None


def _checked_model(record: Record):
    """The record's model for a check, or a clear error where its file is not here."""
    if not record.model_path.is_file():
        raise ConfigError(f"{record.path.name}: no model file to check (records are committed without them)")
    return keras.saving.load_model(record.model_path, compile=False)


def check_transfer(record: Record, t1t2_folder=None, model=None) -> dict:
    """Run the transfer check of the record's model (``model`` if already loaded) and store it beside
    the record (``transfer.json``): the figures outlive the model file, which is not committed."""
    check = transfer.transfer_check(_checked_model(record) if model is None else model, t1t2_folder)
    write_json(record.path / CHECK_FILE, check)
    return check


def check_full_size(record: Record, model=None) -> dict | None:
    """The full-size T2-SPACE check (:func:`spine.transfer.full_size_check`: the run's validation and
    test patients through ``spine predict``'s path, scored at 512 x 640) of the record's model
    (``model`` if already loaded), stored beside the record (``full_size.json``); ``None`` where the
    run's data is not a slice folder."""
    data = Path(record.config.data)
    if not (data / "images").is_dir():
        return None
    model = _checked_model(record) if model is None else model
    split = pd.read_csv(record.path / "split.csv", dtype={"patient": str})
    check = transfer.full_size_check(model, data, split, record.config.settings["eval_slices_per_patient"])
    write_json(record.path / transfer.FULL_SIZE_CHECK_FILE, check)
    return check


def body_score(record: Record) -> float:
    """The mean body Dice of the validation exams in the record's stored body check
    (:func:`check_bodies`, or the one a partial-label run stores); -inf without one, and for a binary
    run whose check scored its foreground on the bodies alone (stored before
    :data:`spine.transfer.BINARY_REFERENCE`: not comparable)."""
    path = record.path / transfer.BODY_CHECK_FILE
    check = read_json(path) if path.is_file() else {}
    if transfer.stored_reference(check) != transfer.body_reference(record.config.task):
        return -np.inf
    value = check.get("val", {}).get("dice", {}).get("mean")
    return float(value) if value is not None and np.isfinite(value) else -np.inf


def check_bodies(record: Record, folder, model=None) -> dict:
    """Run the body check (:func:`spine.transfer.body_check`) of the record's model (``model`` if
    already loaded) on every exam of ``folder``, each with its subset in the partial-label split of
    the record's fold and seed (the validation exams a partial-label run of that fold and seed has),
    and store it beside the record (``bodies.json``)."""
    from spine.training.engine import partial_split

    model = _checked_model(record) if model is None else model
    check = transfer.body_check(model, folder, partial_split(record.config, folder), ("train", "val", "test"))
    write_json(record.path / transfer.BODY_CHECK_FILE, check)
    return check


def _transfers(record: Record) -> bool:
    """Whether the run was trained for other sequences: a robust augmentation or real T1/T2 exams."""
    return record.config.augment in robust.RANDOMISED_FRACTION or record.config.partial is not None


def recipe(record: Record) -> str:
    """A run's configuration but the fold of the exams it holds out: the runs of one recipe
    cross-validate it over the exams."""
    config = record.config.to_dict()
    config["settings"] = {k: v for k, v in config["settings"].items() if k != "partial_fold"}
    return json.dumps({k: v for k, v in config.items() if k not in ("data", "partial")}, sort_keys=True)


def cross_validated(runs: list[Record]) -> dict[str, list[Record]]:
    """The recipes among ``runs`` with a body check recorded on every fold of the exams: recipe ->
    its runs in fold order."""
    groups: dict[str, dict[int, Record]] = {}
    for run in runs:
        if np.isfinite(body_score(run)):
            groups.setdefault(recipe(run), {})[exam_fold(run.config)] = run
    return {key: [folds[k] for k in sorted(folds)] for key, folds in groups.items()
            if sorted(folds) == list(range(next(iter(folds.values())).config.settings["folds"]))}


def cross_validated_score(runs: list[Record]) -> float:
    """A cross-validated recipe's figure: its folds' mean body Dice of the validation exams, averaged."""
    return float(np.mean([body_score(run) for run in runs]))


def cross_validated_bodies(runs: list[Record]) -> dict:
    """A cross-validated recipe's body check: the validation figure the rule chooses on (and, for a
    4-class recipe, the level order of its folds' validation exams; and the mean share of vertebra
    voxels far behind the spine on them, where every check has it), and the test exams of every
    fold pooled (each exam once, scored by the run that never saw it), with intervals over patients."""
    checked = pd.concat([pd.DataFrame(read_json(run.path / transfer.BODY_CHECK_FILE)["exams"])
                         .assign(run_id=run.path.name, fold=exam_fold(run.config)) for run in runs], ignore_index=True)
    tested, validated = checked.query("subset == 'test'").reset_index(drop=True), checked.query("subset == 'val'")
    order = transfer.level_order_share(validated)
    behind = validated.get("behind")  # checks made before it lack it
    return {"folds": len(runs), "runs": [run.path.name for run in runs], "val_dice": cross_validated_score(runs)} | (
        {"val_level_order": order} if order else {}) | (
        {"val_behind": float(behind.mean())} if behind is not None and behind.notna().all() else {}) | {
        "test": transfer.summarize_bodies(tested), "exams": tested.to_dict("records")}


class Choice(NamedTuple):
    """The run the rule ships, and what it was chosen from."""

    record: Record
    compared: int  # finished seed-0 runs of fold 0
    close: int  # of them, runs trained for other sequences within VALIDATION_TOLERANCE of the best
    crossed: int = 0  # of those, recipes cross-validated over every fold of the exams
    folds: tuple = ()  # the chosen recipe's runs, one per fold of the exams, where it is cross-validated


def best_record(store, data, profile: str, task: str, *, need_model: bool = True) -> Choice:
    """The run to ship, by a rule declared before its runs:

    1. among the seed-0, fold-0 :func:`candidates` holding out their own fold of the exams, the
       runs trained for other sequences (robust augmentation or partial labels) within
       :data:`VALIDATION_TOLERANCE` of the best mean validation Dice are *close*;
    2. where any close run's recipe is cross-validated over every fold of the vertebral-body
       exams (:func:`cross_validated`: runs differing only in ``partial_fold``), the best such
       recipe on its folds' validation exams (:func:`cross_validated_score`) is chosen, and its run
       of fold 0 ships: two validation subjects per fold are too few to choose on alone;
    3. else the close run best on the body check of its validation exams (:func:`body_score`) where
       any has one, else the best on the phantom (:func:`phantom_score`); without close runs, the
       best run.

    The chosen run needs its model file unless ``need_model`` is false (to check a choice from the
    records alone)."""
    everything = [r for r in candidates(store, data, profile, task)
                  if (r.config.seed, r.config.fold) == (0, 0) and np.isfinite(validation_score(r))]
    runs = [r for r in everything if exam_fold(r.config) == r.config.fold]
    if not runs:
        raise ConfigError(f"no finished seed-0, fold-0 {task} run with a validation Dice "
                          f"for {data} at profile {profile!r} in {store}")
    best = max(map(validation_score, runs))
    close = [r for r in runs if _transfers(r) and validation_score(r) >= best - VALIDATION_TOLERANCE]
    crossed = {key: folds for key, folds in cross_validated(everything).items() if key in map(recipe, close)}
    if crossed:
        folds = crossed[max(crossed, key=lambda key: cross_validated_score(crossed[key]))]
        chosen = next(r for r in close if recipe(r) == recipe(folds[0]))
    elif any(np.isfinite(body_score(r)) for r in close):
        chosen, folds = max(close, key=body_score), ()
    elif len(close) > 1:
        chosen, folds = max(close, key=phantom_score), ()
    else:
        chosen, folds = (close[0] if close else max(runs, key=validation_score)), ()
    if need_model and not chosen.model_path.is_file():
        raise ConfigError(f"the chosen run {chosen.path.name} has no model file (records are committed without "
                          "them); train it again (engine.retrain) into this store first")
    return Choice(chosen, len(runs), len(close), len(crossed), tuple(folds))


def selection(choice: Choice) -> str:
    """How the shipped run was chosen, in words (the card's ``selected_on``)."""
    runs = f"{choice.compared} finished seed-0 run(s) of fold 0"
    if not choice.close:
        return f"mean validation {SELECTION_METRIC}, best of {runs}"
    within = (f"the {choice.close} run(s) trained for other sequences within {VALIDATION_TOLERANCE} of the best "
              f"mean validation {SELECTION_METRIC} of {runs}")
    if choice.crossed:
        return (f"mean body Dice in the anterior column of the validation exams (real T1/T2/TIRM volumes) over "
                f"{len(choice.folds)} folds of the exams, best of the {choice.crossed} recipe(s) so cross-validated "
                f"among {within}; its run of fold 0")
    if np.isfinite(body_score(choice.record)):
        return ("mean body Dice in the anterior column of the validation exams (real T1/T2/TIRM volumes), best of "
                + within)
    return f"mean phantom T1/T2 {SELECTION_METRIC} over every sagittal slice, best of {within}"


def card(choice: Choice, check: dict | None = None, full_size: dict | None = None) -> dict:
    """What the shipped file is: its run and augmentation, how it was chosen, its recorded test
    figures, its transfer check (``check``: :func:`spine.transfer.transfer_check`) and its full-size
    T2-SPACE check (``full_size``: :func:`check_full_size`) if given, and its recipe's
    cross-validated body check where it has one."""
    record = choice.record
    test = record.metrics["test"]
    recorded = read_json(record.path / "config.json")  # the data path as recorded, not as found here
    figures = {"images": test["n_images"], **{k: test["per_image"].get(k) for k in CARD_FIGURES}}
    if "test_patients" in record.metrics:  # records of format 2: per-patient means too
        patients = record.metrics["test_patients"]
        figures |= {"patients": patients["n"], "patient_mean_dice": patients["means"]["dice"]}
    bodies = read_json(record.path / transfer.BODY_CHECK_FILE) if np.isfinite(body_score(record)) else None
    return {"run_id": record.path.name, "config": recorded, "augment": augment_name(record.config.augment),
            "selected_on": selection(choice),
            "validation": {SELECTION_METRIC: validation_score(record)}, "test": figures,
            "selected_epoch": record.metrics["selected_epoch"]} | ({"transfer": check} if check else {}) | (
        {"full_size": {key: value for key, value in full_size.items() if key != "slices"}} if full_size else {}) | (
        {"bodies": {key: bodies[key] for key in ("source", "reference", "val", "test") if key in bodies}} if bodies else {}) | (
        {"bodies_cross_validated": _without_exams(cross_validated_bodies(list(choice.folds)))} if choice.folds else {})


def _without_exams(check: dict) -> dict:
    return {key: value for key, value in check.items() if key != "exams"}


def export_model(choice: Choice, folder, *, overwrite: bool = False, t1t2_folder=None) -> Path:
    """Write ``<folder>/<task>.keras`` (weights and architecture, no optimizer) and ``<task>.json``,
    whose transfer check covers the real T1/T2 slices too where ``t1t2_folder`` is given."""
    folder, record = Path(folder), choice.record
    target = folder / f"{record.config.task}.keras"
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    model = keras.saving.load_model(record.model_path, compile=False)
    # The record keeps the card's check only when it covers the real slices: a phantom-only check
    # must not replace a stored one that does.
    check = (check_transfer(record, t1t2_folder, model) if t1t2_folder is not None
             else transfer.transfer_check(model, None))
    full_size = check_full_size(record, model)
    save_model(model, target)
    write_json(target.with_suffix(".json"), card(choice, check, full_size))
    return target
