"""The real T1/T2 study's tables and figures: recorded runs checked on the vertebral-body volumes.

Every figure here comes from the records alone: a record's body check (``bodies.json``, written by a
partial-label run or by ``spine transfer --bodies``) holds per-exam and per-slice scores, never
images, so the tables draw without the volumes (the figures: :mod:`spine.body_figures`).

Runs compare on the exams of one fold's validation and test patients (the split of the body
volumes is fixed by fold and seed, :func:`spine.training.engine.partial_split`): a partial-label run
trained on the others, and a model trained without them saw none. A recipe cross-validated over the
exams (its runs differing only in the fold of the exams they hold out, ``partial_fold``) is tabled
apart (:func:`cross_validation_table`): every exam once, scored by the run that never saw it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spine import transfer
from spine.data.bodies import RULES_OF_DATA_ID
from spine.errors import DataError
from spine.training.store import Record, is_finished, load_record, none_to_nan, read_json, records
from spine.training.config import augment_name, resolve_profile

SUBSETS = ("val", "test")
# The runs shipped before the body volumes were used (spine/weights at commit 5457670): the baseline.
SHIPPED_BEFORE = {"multiclass": "2b6e94e75bb9", "binary": "b984cbabcf0a"}
POSITION_BINS_MM = (0, 5, 10, 15, 20, 25, 30, 40, 60)  # |offset from the mid-line| bands of the slice plot


def checked_records(store, task: str | None = None, *, every_fold: bool = False) -> list[tuple[Record, dict]]:
    """Every finished record of ``store`` with a stored body check (and of ``task`` if given),
    holding out the exams of its own fold unless ``every_fold``."""
    from spine.training.engine import exam_fold

    found = []
    for record in records(store):
        path = record.path / transfer.BODY_CHECK_FILE
        if path.is_file() and task in (None, record.config.task) and (every_fold or exam_fold(record.config) == record.config.fold):
            found.append((record, none_to_nan(read_json(path))))
    return found


def checks_store(store, committed):
    """``store`` if it holds a body check, else ``committed`` (the records shipped with the code)."""
    return store if checked_records(store) else committed


def describe(record: Record) -> str:
    """A run in a few words: model (and its input size, where not its profile's), augmentation, the
    partial-label slices and rules, epochs (and the last kept, where ``partial_select`` says so), and
    the run it was fine-tuned from with the learning rate."""
    config = record.config
    settings = config.settings
    size = settings["size"]
    model = config.model if size == resolve_profile(config.profile)["size"] else f"{config.model} at {size} x {size}"
    trained = "T2-SPACE only"
    if config.partial:
        trained = f"T2-SPACE + bodies every {settings['partial_stride']} mm (rules {partial_rules(config)})"
    kept = ", the last kept" if settings.get("partial_select") == "last" else ""
    tuned = f", fine-tuning {config.init} at {settings['learning_rate']:g}" if config.init else ""
    return f"{model}, {augment_name(config.augment)}, {trained}, {settings['epochs']} epochs{kept}{tuned}"


def partial_rules(config) -> int | str:
    """The partial-label rules a run trained under, by its partial data id ("?" for an id no version names)."""
    return RULES_OF_DATA_ID.get(config.partial_id, "?")


def cost(record: Record) -> dict:
    """What training the run took, the run it was fine-tuned from included (where its record is in the
    same store): its own training images, and image-steps (training images x epochs) and wall minutes."""
    images = record.metrics["subsets"]["train"]["images"]
    environment = read_json(record.path / "environment.json")
    total = {"train_images": images, "image_steps": images * record.config.settings["epochs"],
             "wall_min": environment["wall_seconds"] / 60}
    start = record.path.parent / str(record.config.init)
    if record.config.init and is_finished(start):
        before = cost(load_record(start))
        total |= {key: total[key] + before[key] for key in ("image_steps", "wall_min")}
    return total


def runs_table(store, task: str) -> pd.DataFrame:
    """One row per checked run of ``task``: T2-SPACE validation and test Dice (per-patient means), the
    body Dice (95 % interval over patients, and their number) and recall of the validation and test
    exams (and what they were scored on: a binary check names its reference,
    :data:`spine.transfer.BINARY_REFERENCE`), ``spine predict --levels`` on the validation exams' volumes where the check has it (4-class:
    the share of neighbouring body pairs numbered right, of those found; NaN otherwise) and its
    :func:`cost`."""
    rows = []
    for record, check in checked_records(store, task):
        row = {"run": record.path.name, "trained": describe(record), "scored on": transfer.stored_reference(check),
               "t2space_val_dice": record.metrics["val"]["per_image"]["dice"],
               "t2space_test_dice": record.metrics["test_patients"]["means"]["dice"]}
        for subset in SUBSETS:
            figures = check.get(subset, {})
            row |= {f"body_dice_{subset}": figures.get("dice", {}).get("mean", np.nan),
                    f"body_dice_{subset}_ci95": figures.get("dice", {}).get("ci95", [np.nan, np.nan]),
                    f"recall_{subset}": figures.get("recall", {}).get("mean", np.nan),
                    f"patients_{subset}": figures.get("patients", 0)}
        order = check.get("val", {}).get("level_order") or {}
        row |= {"levels_right_val": order.get("right", np.nan), "levels_found_val": order.get("found", np.nan)}
        rows.append(row | cost(record))
    return pd.DataFrame(rows)


def exams_table(store, runs: list[str]) -> pd.DataFrame:
    """Per validation and test exam (rows), each run's body Dice (columns, by run id)."""
    columns = {}
    for record, check in checked_records(store):
        if record.path.name in runs:
            exams = pd.DataFrame(check["exams"])
            exams = exams[exams["subset"].isin(SUBSETS)].set_index(["exam", "sequence", "subset"])
            columns[record.path.name] = exams["dice"]
    return pd.DataFrame(columns)[[r for r in runs if r in columns]].reset_index()


def by_position(store, runs: list[str]) -> pd.DataFrame:
    """Body Dice and false-vertebra pixels per slice, by distance from the mid-line (bands of
    :data:`POSITION_BINS_MM`), over the validation and test exams, per run: ``run, band, dice,
    false_pixels, slices``. A slice with neither bodies nor false vertebra scores Dice 1."""
    frames = []
    for record, check in checked_records(store):
        if record.path.name not in runs:
            continue
        exams = {row["exam"] for row in check["exams"] if row["subset"] in SUBSETS}
        slices = pd.DataFrame(check["slices"])
        slices = slices[slices["exam"].isin(exams)]
        band = pd.cut(slices["offset_mm"].abs(), POSITION_BINS_MM, right=False)
        grouped = slices.groupby(band, observed=True).agg(dice=("dice", "mean"), false_pixels=("false_pixels", "mean"),
                                                          slices=("dice", "size"))
        frames.append(grouped.reset_index(names="band").assign(run=record.path.name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def overlay_models(store, table: pd.DataFrame, previous: str, shipped: str | None) -> dict:
    """The models an overlay compares, by label: the run shipped before, the partial-label run of
    ``table`` (:func:`runs_table`) with the best validation-exam body Dice and the run shipped now,
    each where its model file is here (:func:`run_model`)."""
    partial = table[table["trained"].str.contains("bodies")] if len(table) else table
    best = partial.loc[partial["body_dice_val"].idxmax(), "run"] if len(partial) else None
    labels = {}
    for run, label in ((previous, "shipped before"), (best, "best partial-label"), (shipped, "shipped now")):
        # one run may be several of these: its labels join
        if run is not None:
            labels[run] = f"{labels[run]}, {label}" if run in labels else f"{label} {run}"
    models = {label: run_model(store, run) for run, label in labels.items()}
    return {label: model for label, model in models.items() if model is not None}


def shipped_run_ids(weights: Path) -> dict[str, str]:
    """The run id each shipped model comes from, by task (from the cards)."""
    return {path.stem: read_json(path)["run_id"] for path in sorted(Path(weights).glob("*.json"))}


def run_model(store, run_id: str):
    """A recorded run's model (:func:`spine.training.engine.init_model_path`: its record's file, else
    the shipped file whose card names the run), or None where neither is here."""
    from spine import inference
    from spine.training.engine import init_model_path

    try:
        path = init_model_path(store, run_id)
    except DataError:  # no model file of the run here
        return None
    return inference.load_model(path)


def runs_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`runs_table` as a page shows it: by run, each body Dice with its interval in words."""
    view = table.copy()
    for subset in SUBSETS:
        view[f"body_dice_{subset}"] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, (lo, hi)
                                       in zip(view[f"body_dice_{subset}"], view.pop(f"body_dice_{subset}_ci95"))]
    return view.set_index("run")


def best_validation(store, run_id: str) -> float | None:
    """The best T2-SPACE validation Dice among the finished seed-0 runs of fold 0 with the task, data
    and profile of ``run_id`` (the export rule's reference); None where ``run_id`` is not in ``store``."""
    from spine.training.export import validation_score

    if not is_finished(Path(store) / run_id):
        return None
    from spine.training.engine import exam_fold

    reference = load_record(Path(store) / run_id).config
    same = [r for r in records(store)
            if (r.config.task, r.config.data_id, r.config.profile, r.config.fold, r.config.seed, exam_fold(r.config))
            == (reference.task, reference.data_id, reference.profile, 0, 0, 0)]
    return max(validation_score(r) for r in same)


def finding(table: pd.DataFrame, previous: str, task: str, best_validation: float | None = None,
            shipped: str | None = None) -> str:
    """The sentence on one task's :func:`runs_table`: the ``previous`` shipped run against the
    partial-label run with the best validation-exam body Dice (among the checks of the current
    reference: a binary one's, :data:`spine.transfer.BINARY_REFERENCE`), whether that run is within the
    export rule's tolerance of ``best_validation`` (the best fold-0 T2-SPACE validation Dice) if given,
    and the ``shipped`` run's figures where it is another."""
    from spine.training.export import VALIDATION_TOLERANCE

    table = table.set_index("run") if len(table) else table
    current = transfer.body_reference(task)
    partial = table[table["trained"].str.contains("bodies") & (table["scored on"] == current)] if len(table) else table
    if previous not in table.index or partial.empty:
        return f"*No {task} partial-label run is recorded yet: nothing to compare.*"
    before, after = table.loc[previous], partial.loc[partial["body_dice_val"].idxmax()]
    if before["scored on"] != current:  # a check of another reference, and no model file to check again
        sentence = (f"The run shipped before ({previous}) was checked on {before['scored on']} alone, which does not "
                    f"compare, and its model file is not here to check it again. The best partial-label run on the "
                    f"validation exams is {after.name}: body Dice **{after['body_dice_val']:.3f}** there and "
                    f"{after['body_dice_test']:.3f} on the test exams; T2-SPACE validation Dice "
                    f"{after['t2space_val_dice']:.3f}, test (per-patient mean) {after['t2space_test_dice']:.3f}; "
                    f"{after['image_steps']:,.0f} image-steps and {after['wall_min']:.0f} min.")
    else:
        sentence = (f"On the validation exams, the body Dice went from **{before['body_dice_val']:.3f}** ({previous}, "
                    f"shipped before) to **{after['body_dice_val']:.3f}** ({after.name}, the best partial-label run there), "
                    f"and on the test exams from {before['body_dice_test']:.3f} to {after['body_dice_test']:.3f}; "
                    f"T2-SPACE validation Dice {before['t2space_val_dice']:.3f} against {after['t2space_val_dice']:.3f}, "
                    f"test (per-patient mean) {before['t2space_test_dice']:.3f} against {after['t2space_test_dice']:.3f}. "
                    f"Training took {after['image_steps']:,.0f} image-steps and {after['wall_min']:.0f} min against "
                    f"{before['image_steps']:,.0f} and {before['wall_min']:.0f} min (each on the machine that made it).")
    if best_validation is not None:
        close = after["t2space_val_dice"] >= best_validation - VALIDATION_TOLERANCE
        sentence += (f" Its T2-SPACE validation Dice is {'within' if close else 'more than'} {VALIDATION_TOLERANCE} "
                     f"{'of' if close else 'below'} the best fold-0 run's ({best_validation:.3f}), "
                     f"{'so the export rule may choose it' if close else 'so the export rule cannot ship it'}.")
    if shipped not in (None, previous, after.name) and shipped in table.index:
        now = table.loc[shipped]
        sentence += (f" The export rule ships **{shipped}**: body Dice {now['body_dice_val']:.3f} on the validation "
                     f"exams and {now['body_dice_test']:.3f} on the test exams; T2-SPACE validation Dice "
                     f"{now['t2space_val_dice']:.3f}, test {now['t2space_test_dice']:.3f}.")
    return sentence


def readme_lines(store, previous: dict[str, str] = SHIPPED_BEFORE, shipped: dict[str, str] | None = None) -> list[str]:
    """The README's section on the body check: every checked run of both tasks, then each task's
    :func:`finding` against the run it ``previous`` names, and the run ``shipped`` names now (by
    task; default: the shipped cards')."""
    if shipped is None:
        from spine.inference import WEIGHTS

        shipped = shipped_run_ids(WEIGHTS)
    header = ("| run | task | trained | T2-SPACE validation Dice | T2-SPACE test Dice | body Dice, validation exams "
              "(95 % CI) | body Dice, test exams (95 % CI) | `--levels` on the validation exams: right of found / "
              "found | image-steps | minutes |")
    lines = ["#### Real T1/T2/TIRM volumes: the body check (generated from `results/*/bodies.json`)", "",
             "Body Dice in the anterior column (`spine.transfer.body_scores`, every sagittal slice of each "
             "exam pooled, intervals over patients) on the fold-0 validation and test exams of "
             "`vertebral-bodies-t1t2` (Zukić et al. 2014; Chu et al. 2015); see chapter 11. `--levels`: each "
             "validation volume through `spine predict --levels` (4-class), the neighbouring bodies' pairs both "
             "found, and of those the share numbered one apart (pooled over the exams; – where not measured).", "",
             header, "|" + "---|" * (header.count("|") - 1)]
    tables = {task: runs_table(store, task) for task in ("binary", "multiclass")}
    for task in tables:
        for _, row in tables[task].iterrows():
            intervals = [f"{row[f'body_dice_{s}']:.3f} ({row[f'body_dice_{s}_ci95'][0]:.3f}–"
                         f"{row[f'body_dice_{s}_ci95'][1]:.3f}; {row[f'patients_{s}']} patients)" for s in SUBSETS]
            lines.append(f"| `{row['run']}` | {task} | {row['trained']} | {row['t2space_val_dice']:.3f} | "
                         f"{row['t2space_test_dice']:.3f} | {' | '.join(intervals)} | {_levels(row)} | {row['image_steps']:,} | "
                         f"{row['wall_min']:.0f} |")
    for task in ("multiclass", "binary"):
        lines += ["", finding(tables[task], previous[task], task, best_validation(store, previous[task]),
                              shipped.get(task))]
    for task, name, goal in (("multiclass", "4-class", 0.80), ("binary", "Binary", None)):
        crossed = cross_validation_table(store, task)
        if len(crossed):
            lines += ["", f"{name}, `--set partial_fold=K`: " + cross_validation_finding(crossed, goal)]
    return lines


def _levels(row) -> str:
    """A runs_table row's level order in words; "–" where its check has none (binary, or checked before)."""
    if np.isnan(row["levels_right_val"]) and np.isnan(row["levels_found_val"]):
        return "–"
    right = "no pair found" if np.isnan(row["levels_right_val"]) else f"{row['levels_right_val']:.2f}"
    return f"{right} / {row['levels_found_val']:.2f}"


def cross_validation_table(store, task: str) -> pd.DataFrame:
    """One row per recipe of ``task`` cross-validated over every fold of the exams
    (:func:`spine.training.export.cross_validated`): what it trained on, its folds' mean validation
    body Dice (what the export rule chooses on), share of vertebra voxels far behind the spine on those
    exams (NaN where a check predates it) and T2-SPACE validation Dice, and the test exams of
    every fold pooled (each scored by the run that never saw it) with a 95 % interval over patients; for
    a 4-class recipe, the level order of its folds' validation exams pooled, with its interval over
    patients."""
    from spine.training.export import cross_validated, cross_validated_bodies

    rows = []
    runs = [record for record, _ in checked_records(store, task, every_fold=True)]
    for folds in cross_validated(runs).values():
        check = cross_validated_bodies(folds)
        test = check["test"]
        rows.append({"run of fold 0": folds[0].path.name, "trained": describe(folds[0]), "folds": len(folds),
                     "t2space_val_dice": float(np.mean([r.metrics["val"]["per_image"]["dice"] for r in folds])),
                     "body_dice_val": check["val_dice"], "behind_val": check.get("val_behind", np.nan),
                     "levels_right_val": check.get("val_level_order", {}).get("right", np.nan),
                     "levels_right_val_ci95": check.get("val_level_order", {}).get("right_ci95", [np.nan, np.nan]),
                     "body_dice_test": test["dice"]["mean"],
                     "body_dice_test_ci95": test["dice"]["ci95"], "recall_test": test["recall"]["mean"],
                     "exams_test": test["exams"], "patients_test": test["patients"],
                     "exams": pd.DataFrame(check["exams"])})
    return pd.DataFrame(rows)


def cross_validation_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`cross_validation_table` as a page shows it (the pooled interval in words, no exam lists)."""
    view = table.drop(columns="exams").copy()
    for column, digits in (("body_dice_test", 3), ("levels_right_val", 2)):
        view[column] = ["–" if np.isnan(m) else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                        for m, (lo, hi) in zip(view[column], view.pop(f"{column}_ci95"))]
    return view.set_index("run of fold 0")


def cross_validation_exams(table: pd.DataFrame) -> pd.DataFrame:
    """Per exam (rows), each cross-validated recipe's body Dice (columns, by its run of fold 0), with
    the fold that held the exam out."""
    columns = {row["run of fold 0"]: row["exams"].set_index(["exam", "sequence", "fold"])["dice"]
               for _, row in table.iterrows()}
    return pd.DataFrame(columns).reset_index() if columns else pd.DataFrame()


def cross_validation_finding(table: pd.DataFrame, goal: float | None = 0.80) -> str:
    """The sentence on :func:`cross_validation_table`: each recipe's pooled test figure against
    ``goal`` (issue 22's body Dice on exams of other patients; None: no goal, as for a binary model,
    whose foreground also holds the discs in the column)."""
    if table.empty:
        return "*No recipe is cross-validated over every fold of the exams in this store yet.*"
    parts = [f"{row['trained']} (fold-0 run {row['run of fold 0']}): **{row['body_dice_test']:.3f}** "
             f"[{row['body_dice_test_ci95'][0]:.3f}, {row['body_dice_test_ci95'][1]:.3f}] over "
             f"{row['patients_test']} patients ({row['exams_test']} exams), validation exams {row['body_dice_val']:.3f}"
             + _level_order_words(row) + _behind_words(row) for _, row in table.iterrows()]
    opening = ("Cross-validated over the exams (each exam scored once, by the run of the fold that held it out), "
               "the body Dice of the test exams pooled: " + "; ".join(parts) + ".")
    if goal is None:
        return opening
    best = table.loc[table["body_dice_test"].idxmax()]
    low, high = best["body_dice_test_ci95"]
    if low >= goal:
        verdict = f"The best, {best['run of fold 0']}, reaches the goal of {goal:g} with its whole interval."
    elif best["body_dice_test"] >= goal:
        verdict = f"The best, {best['run of fold 0']}, reaches the goal of {goal:g} in its mean, not in its interval."
    else:
        inside = "inside" if high >= goal else "above"
        verdict = f"None reaches the goal of {goal:g} (it lies {inside} the best one's interval)."
    return f"{opening} {verdict}"


def _behind_words(row) -> str:
    """A cross-validated recipe's share of vertebra voxels far behind the spine on its folds'
    validation exams (:func:`spine.data.bodies.far_behind`; "" where its checks predate the figure)."""
    if np.isnan(row["behind_val"]):
        return ""
    return f", with {100 * row['behind_val']:.1f} % of its vertebra voxels there far behind the spine (back muscles)"


def _level_order_words(row) -> str:
    """A cross-validated recipe's level order on its folds' validation exams, with its interval over
    patients ("" for a binary recipe, which numbers no levels)."""
    if np.isnan(row["levels_right_val"]):
        return ""
    low, high = row["levels_right_val_ci95"]
    return (f" (`--levels` numbers {row['levels_right_val']:.2f} [{low:.2f}, {high:.2f}] of the neighbouring body "
            "pairs it finds there right)")


def level_order_table(store, runs: dict[str, str]) -> pd.DataFrame:
    """``spine predict --levels`` on the real T1/T2 slices (the level-order figures of each run's
    stored transfer check, :func:`spine.transfer.level_order_scores`, which way up it read the
    slices, :data:`spine.transfer.T1T2_CHECK_VERSION`, and the version of the level rules that
    numbered them, :data:`spine.levels.RULES_VERSION`), one row per ``{role: run}``; a run without
    them is left out."""
    rows = []
    for role, run in runs.items():
        path = Path(store) / run / "transfer.json"
        check = read_json(path) if path.is_file() else {}
        order = check.get("t1t2_level_order")
        if order:
            right, found = order["right"], order["found"]
            rows.append({"model": role, "run": run,
                         "slices": "head up" if transfer.scored_head_up(check) else "as stored (feet up)",
                         "level rules": transfer.level_rules_version(order),
                         "pairs": order["pairs"], "found": found["mean"],
                         "right of found": right["mean"],
                         "right, 95 % CI": f"{right['ci95'][0]:.3f}–{right['ci95'][1]:.3f}",
                         "series": right["series"]})
    return pd.DataFrame(rows)


def input_size_sentence(path) -> str:
    """What a perfect prediction at each input size scores once brought back to the real masks, as a
    label map (nearest neighbour) and as ``spine predict`` brings it back (``benchmarks/input_size.py``),
    in words; a note where the table is not there."""
    path = Path(path)
    if not path.is_file():
        return f"*`{path.name}` is not in `{path.parent}`: run `python benchmarks/input_size.py`.*"
    rows = pd.read_csv(path)
    if "resize_back" not in rows:
        return f"*`{path.name}` predates the way back: run `python benchmarks/input_size.py` again.*"
    ways = {"nearest": "its label map resized back nearest-neighbour",
            "linear": "each class's share of every pixel resized back bilinearly (as `spine predict` brings back its "
                      "probabilities)"}
    sizes = "; ".join(f"at {size} x {size}, " + ", ".join(
        f"{ways[row.resize_back]} binary Dice {row.binary:.3f} and 4-class {row.multiclass:.3f}"
        for row in group.itertuples()) for size, group in rows.groupby("size"))
    return (f"A perfect prediction brought back to the real masks of `{rows['data'].iloc[0]}` scores: {sizes}. "
            "That ceiling is what a larger input could recover, at about four times the cost per slice for twice "
            "the side; the models trained here reach well below it.")


def resize_back_sentence(path) -> str:
    """How ``spine predict`` brings labels back, and what the validation figures said
    (``benchmarks/resize_back.py``), in words; a note where the table is not there."""
    path = Path(path)
    if not path.is_file():
        return f"*`{path.name}` is not in `{path.parent}`: run `python benchmarks/resize_back.py`.*"
    table = pd.read_csv(path)
    flipped = table[table["flip_averaged"]]
    rows = table[~table["flip_averaged"]].set_index(["task", "figure", "resize_back"])
    names = {"binary": "binary", "multiclass": "4-class"}
    figures = {"selection dice": "T2-SPACE validation patients at full size",
               "body dice": "body Dice of the validation exams",
               "vertebra dice (series)": "vertebra Dice on the real T1/T2 slices (a check, not chosen on)"}
    parts = []
    for (task, figure), group in rows.groupby(level=["task", "figure"], sort=False):
        nearest, linear = group.xs("nearest", level="resize_back").iloc[0], group.xs("linear", level="resize_back").iloc[0]
        parts.append(f"{names[task]} `{linear.run_id}`, {figures[figure]}: {nearest['mean']:.3f} nearest, "
                     f"{linear['mean']:.3f} bilinear")
    return ("`spine predict` brings the class probabilities back to the image's size bilinearly and takes the most "
            "probable class, where it used to resize the label map (nearest neighbour): chosen on the shipped "
            f"models' validation patients and exams (`benchmarks/resize_back.py`): {'; '.join(parts)}. The stored "
            "checks (body check, T1/T2 slices) are still made nearest-neighbour, as every recorded check was, so "
            "that the runs they compare stay comparable; they understate what `spine predict` now gives by the "
            "differences above." + _flip_clause(flipped, rows, names))


def _flip_clause(flipped: pd.DataFrame, rows: pd.DataFrame, names: dict) -> str:
    """What averaging each slice with its mirror image did on the T2-SPACE validation patients, in words."""
    if flipped.empty:
        return ""
    parts = [f"{names[row.task]} {row.mean:.3f} against {rows.loc[(row.task, row.figure, row.resize_back), 'mean']:.3f}"
             for row in flipped.itertuples()]
    return (" Averaging each slice's probabilities with those of its mirror image (anterior and posterior swapped; "
            f"flip averaging) scores, on the same T2-SPACE validation patients, {'; '.join(parts)} without: the "
            "models never saw a mirrored spine, so `spine predict` does not average flips.")
