"""Analyses of the study grids' records: selection, stability, per-structure scores.

Each function turns the tidy table of a grid (:func:`spine.training.studies.study_table`), and
where it needs them the records in the store, into a table the book shows:

- **beside the study**: :func:`beside_study` (ours, the study's, the difference, our interval)
  and :func:`loss_grid` (one metric as models x losses); :func:`target_check` (ours against
  the project's real-data targets);
- **selection**: :func:`selection_table` (the loss a clean protocol picks on validation against
  the one the test set would pick);
- **stability**: :func:`position_among`, :func:`headline_vs_stability`,
  :func:`stability_summary` and :func:`seed_vs_model_spread` (single runs against repeated ones);
- **per structure, per unit**: :func:`structure_scores` (multiclass Dice and IoU per structure)
  and :func:`distance_units` (boundary errors in pixels and millimetres);
- **what the runs produced**: :func:`run_summaries` (single runs side by side) and
  :func:`histories` (training curves).

Nothing here trains: grids are ``spine.training.studies``'s. The split of a run and the folds
as tables are :mod:`spine.training.folds`'s. Label maps of the grids' models are
:mod:`spine.training.predictions`'s, the shipped models' cards :mod:`spine.training.shipped`'s,
and the figures of these tables are in ``spine.plots``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spine import paper, stats
from spine.data.labels import foreground_classes
from spine.errors import ConfigError
from spine.training.engine import split_data
from spine.training.store import DEFAULT_STORE, Record, load_record, read_json, recorded_inputs
from spine.training.studies import STUDY_COLUMNS, pooled_per_patient

# Our metric -> a table row's 95 % interval (over test patients; test images for first-format records).
CI_OF = {"f1": "dice_ci", "fg_iou": "iou_ci", "miou": "miou_ci", "hd95": "hd95_ci", "assd": "assd_ci"}
STRUCTURES = foreground_classes("multiclass")


# --------------------------------------------------------------------------- beside the study


def beside_study(table: pd.DataFrame, metrics=(("f1", "study_f1", "dice_ci"), ("fg_iou", "study_mIoU", "iou_ci")),
                 keys=("model", "loss")) -> pd.DataFrame:
    """Per row of a study table: for each ``(ours, study's, interval)``, our figure, the study's, the
    difference (ours - the study's) and our 95 % interval as text ("–" where not trained)."""
    out = table[list(keys)].copy()
    for ours, theirs, ci in metrics:
        mine = table[ours].astype(float) if ours in table else pd.Series(np.nan, index=table.index)
        study = table[theirs].astype(float) if theirs in table else pd.Series(np.nan, index=table.index)
        out[ours], out[theirs], out[f"Δ {ours}"] = mine, study, mine - study
        bounds = table[ci] if ci in table else pd.Series([None] * len(table), index=table.index)
        out[f"{ours} 95% CI"] = [f"{b[0]:.3f}–{b[1]:.3f}" if isinstance(b, (tuple, list)) and np.all(np.isfinite(b))
                                 else "–" for b in bounds]
    return out.reset_index(drop=True)


def loss_grid(table: pd.DataFrame, metric: str = "f1", rows: str = "model", cols: str = "loss") -> pd.DataFrame:
    """A grid table as ``rows`` (models, in the grid's order; the first column) x ``cols`` (losses)
    of one metric; NaN where a cell is untrained (or the metric is absent)."""
    values = table[metric] if metric in table else pd.Series(np.nan, index=table.index)
    frame = table.assign(value=pd.to_numeric(values, errors="coerce"))
    grid = frame.pivot_table(index=rows, columns=cols, values="value", aggfunc="first", dropna=False, sort=False)
    grid = grid.reindex(index=list(dict.fromkeys(table[rows])), columns=list(dict.fromkeys(table[cols])))
    grid.columns.name = None
    return grid.reset_index()


#: The real-data targets of the project (issue 7): (task, our column, its interval, threshold, meaning).
TARGETS = (("binary", "f1", "dice_ci", 0.90, "foreground Dice"),
           ("binary", "fg_iou", "iou_ci", 0.89, "foreground IoU (the study's mIoU)"),
           ("multiclass", "f1", "dice_ci", 0.85, "mean Dice over vertebrae, discs and canal"))


def target_check(tables: dict[str, pd.DataFrame], model: str = "Proposed", loss: dict | None = None,
                 targets=TARGETS) -> pd.DataFrame:
    """Per target: ``model``'s test figure (from ``tables[task]``, the row of ``loss[task]`` if
    given), its 95 % interval, the threshold, and whether the figure reaches it ("–" untrained)."""
    rows = []
    for task, column, ci, threshold, meaning in targets:
        table = tables.get(task, pd.DataFrame(columns=["model", "loss", "trained"]))
        chosen = table[(table["model"] == model) & table["trained"].astype(bool)]
        if loss and task in loss:
            chosen = chosen[chosen["loss"] == loss[task]]
        if len(chosen) > 1:
            raise ConfigError(f"{task}: {len(chosen)} trained rows of {model}; name the loss (loss={{task: ...}})")
        value = float(chosen[column].iloc[0]) if len(chosen) else np.nan
        bounds = chosen[ci].iloc[0] if len(chosen) and ci in chosen else None
        shown = isinstance(bounds, (tuple, list)) and bool(np.all(np.isfinite(bounds)))
        rows.append({"task": task, "target": meaning, "threshold": threshold, "ours": value,
                     "95% CI": f"{bounds[0]:.3f}–{bounds[1]:.3f}" if shown else "–",
                     "reached": "–" if np.isnan(value) else ("yes" if value >= threshold else "no")})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- selection


def selection_table(table: pd.DataFrame, store, group: str = "model", choice: str = "loss",
                    metric: str = "dice", study_metric: str = "study_f1") -> pd.DataFrame:
    """For each ``group`` (model): the ``choice`` (loss) that a clean protocol picks (best mean
    validation ``metric``) and the one that wins on the test set, with their test figures; and the
    study's pick (its best ``study_metric``, a test-set figure). Only trained rows compete; "same
    pick" is "–" where fewer than two are trained (there is no choice to make)."""
    rows = []
    for name, part in table.groupby(group, sort=False):
        row = {group: name, "trained": int(part["trained"].sum())}  # runs of this group in the store
        done = part[part["trained"]]
        if len(done):
            scores = []
            for r in done.itertuples():
                metrics = load_record(Path(store) / r.run_id).metrics
                val, test = metrics["val"]["per_image"][metric], metrics["test"]["per_image"][metric]
                scores.append((getattr(r, choice), np.nan if val is None else val, np.nan if test is None else test))
            by_val = max(scores, key=lambda s: -np.inf if np.isnan(s[1]) else s[1])
            by_test = max(scores, key=lambda s: -np.inf if np.isnan(s[2]) else s[2])
            row |= {"picked on validation": by_val[0], f"its validation {metric}": by_val[1],
                    f"its test {metric}": by_val[2], "best on test": by_test[0], f"best test {metric}": by_test[2],
                    "same pick": ("yes" if by_val[0] == by_test[0] else "no") if len(done) > 1 else "–"}
        if study_metric in part and part[study_metric].notna().any():
            row["study's pick (on test)"] = part.loc[part[study_metric].idxmax(), choice]
        rows.append(row)
    columns = [group, "trained", "picked on validation", f"its validation {metric}", f"its test {metric}",
               "best on test", f"best test {metric}", "same pick", "study's pick (on test)"]
    return pd.DataFrame(rows).reindex(columns=columns)


# --------------------------------------------------------------------------- stability


def position_among(value: float, runs) -> dict:
    """Where one figure lies among repeated runs of the same setting.

    ``runs``: the repeated runs' values (NaNs dropped). Returns ``value``, ``runs`` (count), the
    runs' ``mean``, ``sd`` (sample SD, ddof=1), ``min``, ``max``, the z-score
    ``z = (value - mean) / sd`` (NaN with fewer than two runs or SD 0), how many runs lie
    strictly below and above ``value``, and ``p_new``: the probability that one more run of the
    same setting lands at least as far from the mean on the same side, from the Student-t
    prediction distribution of a new run (``n - 1`` degrees of freedom, scale
    ``sd * sqrt(1 + 1/n)``; it allows for the mean and SD being estimated from few runs).
    """
    values = np.asarray(runs, dtype=float).ravel()
    values = values[~np.isnan(values)]
    count = int(values.size)
    mean = float(values.mean()) if count else np.nan
    sd = float(values.std(ddof=1)) if count > 1 else np.nan
    z = (float(value) - mean) / sd if count > 1 and sd > 0 else np.nan
    p_new = np.nan
    if np.isfinite(z):
        from scipy import stats as sps

        p_new = float(sps.t.sf(abs(z) / np.sqrt(1 + 1 / count), count - 1))
    return {"value": float(value), "runs": count, "mean": mean, "sd": sd,
            "min": float(values.min()) if count else np.nan, "max": float(values.max()) if count else np.nan,
            "z": z, "runs_below": int((values < value).sum()), "runs_above": int((values > value).sum()),
            "p_new": p_new}


def headline_vs_stability(stability: pd.DataFrame | None = None, comparison: pd.DataFrame | None = None,
                          metric: str = "fg_iou", model: str = "Proposed") -> pd.DataFrame:
    """The single-run figure of a model beside the repeated runs of the stability study.

    First row, the study: Table 6's figure for ``model`` against Table 7's ten runs (from the
    study's CSV files; ``metric`` is ours, mapped to the study's column by ``STUDY_COLUMNS``).
    Second row, ours (when both tables are given): the comparison grid's ``model`` row against the
    trained rows of the stability grid. Columns: source, headline, headline run, runs, runs mean,
    runs SD, z, runs below, runs above, and ``p (a new run this far out)`` (``p_new`` of
    :func:`position_among`); NaN where a figure is missing.
    """
    study_metric = STUDY_COLUMNS.get(metric)
    if study_metric is None:
        raise ConfigError(f"the study reports no {metric!r}; valid: {', '.join(STUDY_COLUMNS)}")
    rows = []
    headline = paper.table("comparison").set_index("model")
    runs = paper.table("stability")
    if study_metric in runs:
        rows.append(("the study (Table 6 vs Table 7)", "Table 6 (seed not stated)",
                     position_among(headline.loc[model, study_metric], runs[study_metric])))
    if stability is not None and comparison is not None:
        ours = comparison[(comparison["model"] == model) & comparison["trained"]]
        done = stability[stability["trained"]] if "trained" in stability else stability.iloc[0:0]
        value = float(ours.iloc[0][metric]) if len(ours) else np.nan
        seed = f"seed {int(ours.iloc[0]['seed'])}" if len(ours) else "not trained"
        rows.append(("ours (comparison run vs stability seeds)", seed,
                     position_among(value, done[metric] if metric in done else [])))
    return pd.DataFrame([{"source": source, "headline": p["value"], "headline run": run, "runs": p["runs"],
                          "runs mean": p["mean"], "runs SD": p["sd"], "z": p["z"], "runs below": p["runs_below"],
                          "runs above": p["runs_above"], "p (a new run this far out)": p["p_new"]}
                         for source, run, p in rows])


def stability_summary(table: pd.DataFrame, metrics=("fg_iou", "f1", "precision", "recall", "accuracy")) -> pd.DataFrame:
    """Mean, SD and range over the seeds of a stability table, ours beside the study's.

    Per metric: the number of trained seeds; our mean, SD (ddof=1), min and max; a 95 %
    bootstrap interval of the mean over seeds; the mean half-width of one run's own 95 %
    interval over its test patients (where the record keeps one: how much a single run's figure
    is uncertain because of the small test set, to set beside the seed-to-seed SD); and the
    study's mean, SD, min and max over its ten runs.
    """
    done = table[table["trained"]]
    rows = []
    for metric in metrics:
        values = done[metric].to_numpy(dtype=float) if metric in done else np.array([])
        mine = position_among(np.nan, values)
        _, low, high = stats.bootstrap_ci(values) if values.size else (np.nan, np.nan, np.nan)
        ci = CI_OF.get(metric)
        widths = [(c[1] - c[0]) / 2 for c in done[ci] if isinstance(c, (tuple, list))] if ci in done else []
        study = table[f"study_{STUDY_COLUMNS[metric]}"].dropna().to_numpy(dtype=float) \
            if metric in STUDY_COLUMNS and f"study_{STUDY_COLUMNS[metric]}" in table else np.array([])
        theirs = position_among(np.nan, study)
        rows.append({"metric": metric, "seeds": mine["runs"], "mean": mine["mean"], "SD": mine["sd"],
                     "min": mine["min"], "max": mine["max"], "mean 95% CI": (round(low, 4), round(high, 4)),
                     "one run's CI half-width": float(np.mean(widths)) if widths else np.nan,
                     "study_mean": theirs["mean"], "study_SD": theirs["sd"], "study_min": theirs["min"],
                     "study_max": theirs["max"]})
    return pd.DataFrame(rows)


def seed_vs_model_spread(stability: pd.DataFrame | None = None, comparison: pd.DataFrame | None = None,
                         metric: str = "fg_iou") -> pd.DataFrame:
    """How far apart the models of the comparison are, measured in seed-to-seed SDs.

    Rows: the study (Table 7's runs, Table 6's five models), the study again with its proposed
    model at the mean of its stability runs instead of its Table 6 figure (the figure a fair
    comparison of single runs would use), and ours (the trained rows of the two tables, when
    given). Columns: seeds, seed SD, seed range (max - min), models, model range (best - worst of
    the comparison), the gap between the best and the second-best model, and that gap in seed
    SDs (below about 2: a different seed could reorder the two).
    """
    study_metric = STUDY_COLUMNS[metric]
    runs, table6 = paper.table("stability")[study_metric], paper.table("comparison")
    at_mean = table6[study_metric].where(table6["model"] != "Proposed", runs.mean())
    sources = [("the study", runs, table6[study_metric]),
               ("the study, Proposed at its stability mean", runs, at_mean)]
    if stability is not None and comparison is not None:
        seeds = stability.loc[stability["trained"], metric] if metric in stability else []
        models = comparison.loc[comparison["trained"], metric] if metric in comparison else []
        sources.append(("ours", seeds, models))
    rows = []
    for source, seeds, models in sources:
        seeds = position_among(np.nan, seeds)
        models = np.sort(np.asarray(models, dtype=float)[np.isfinite(np.asarray(models, dtype=float))])[::-1]
        gap = float(models[0] - models[1]) if models.size > 1 else np.nan
        rows.append({"source": source, "seeds": seeds["runs"], "seed SD": seeds["sd"],
                     "seed range": seeds["max"] - seeds["min"], "models": int(models.size),
                     "model range": float(models[0] - models[-1]) if models.size > 1 else np.nan,
                     "best - second": gap,
                     "best - second, in seed SDs": gap / seeds["sd"] if seeds["sd"] > 0 else np.nan})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- per structure, per unit


def structure_scores(table: pd.DataFrame, store=DEFAULT_STORE, structures=STRUCTURES) -> pd.DataFrame:
    """Per-structure Dice and IoU of every row of a multiclass table.

    Columns: model, loss, trained, then for each structure ``dice_<s>``, ``dice_<s>_ci`` (95 %
    bootstrap interval) and ``iou_<s>``; NaN for untrained rows. Means and intervals are over test
    patients (pooled over the row's folds) for records that have per-patient tables, over test
    images for records of the first format.
    """
    rows = []
    for row in table.itertuples():
        out = {"model": row.model, "loss": row.loss, "trained": bool(row.trained)}
        units = _test_units(row.run_ids, store) if row.trained else None
        for name in structures:
            for kind in ("dice", "iou"):
                column = f"{kind}_{name}"
                values = units[column].to_numpy(dtype=float) if units is not None and column in units \
                    else np.array([])
                out[column] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
                if kind == "dice":
                    _, low, high = stats.bootstrap_ci(values) if values.size else (np.nan, np.nan, np.nan)
                    out[f"{column}_ci"] = (round(low, 4), round(high, 4))
        rows.append(out)
    return pd.DataFrame(rows)


def _test_units(run_ids, store) -> pd.DataFrame:
    """The test values of a table row's records: one row per patient where the records have
    per-patient tables (the protocol's unit), else one per image."""
    records = [load_record(Path(store) / run) for run in run_ids]
    if all((r.path / "per_patient.csv").is_file() for r in records):
        return pooled_per_patient(records)
    return pd.concat([r.per_image() for r in records], ignore_index=True)


def distance_units(table: pd.DataFrame, store=DEFAULT_STORE) -> pd.DataFrame:
    """Boundary errors in pixels and in millimetres, with the pixel size behind the conversion.

    Per trained row: HD, HD95 and ASSD in pixels of the model's grid and in mm (NaN where the data
    has no spacing), and the smallest and largest pixel size (mm, mean of rows and columns) over
    its test images: one pixel of error means that many millimetres, different for each image.
    """
    rows = []
    for row in table[table["trained"]].itertuples():
        run_ids = getattr(row, "run_ids", None) or [row.run_id]
        records = [load_record(Path(store) / run) for run in run_ids]
        spacing = np.concatenate([_test_spacing(r, store) for r in records]).astype(float).mean(axis=1)
        record = records[0]
        means = row._asdict() if len(records) > 1 else record.metrics["test"]["per_image"]
        finite = spacing[np.isfinite(spacing)]
        rows.append({"model": row.model, "loss": row.loss,
                     **{key: _number(means.get(key)) for key in ("hd", "hd95", "assd", "hd_mm", "hd95_mm", "assd_mm")},
                     "mm per pixel (min)": float(finite.min()) if finite.size else np.nan,
                     "mm per pixel (max)": float(finite.max()) if finite.size else np.nan})
    return pd.DataFrame(rows)


def _test_spacing(record: Record, store) -> np.ndarray:
    """The (row, column) pixel sizes of a record's test images: from the store's inputs where it
    keeps them, else from its data (loaded and split again)."""
    inputs = recorded_inputs(record.config, store)
    if inputs is not None:
        return inputs.spacing
    return split_data(record.config)["test"].spacing


def _number(value) -> float:
    """A stored figure as a float (JSON null, i.e. an undefined value, as NaN)."""
    return np.nan if value is None else float(value)


# --------------------------------------------------------------------------- what the runs produced


def run_summaries(runs: dict[str, Record]) -> pd.DataFrame:
    """One row per named record: what it is (model, loss, task, epochs, seed), how it was selected
    (epoch, validation Dice) and its test figures with the Dice interval, and its wall minutes."""
    rows = []
    for name, record in runs.items():
        test, ci = record.metrics["test"]["per_image"], record.metrics["test_ci95"].get("dice", {})
        wall = read_json(record.path / "environment.json")["wall_seconds"]
        rows.append({"run": name, "model": record.config.model, "loss": record.config.loss,
                     "task": record.config.task, "epochs": record.config.settings["epochs"],
                     "seed": record.config.seed, "selected epoch": record.metrics["selected_epoch"],
                     "val dice": record.metrics["val"]["per_image"]["dice"], "test dice": test["dice"],
                     "test dice 95% CI": f"{ci['low']:.3f}–{ci['high']:.3f}" if ci else "–",
                     "test fg_iou": test["fg_iou"], "test images": record.metrics["test"]["n_images"],
                     "minutes": round(wall / 60, 1)})
    return pd.DataFrame(rows)


def histories(table: pd.DataFrame, store) -> dict[str, pd.DataFrame]:
    """The training history (one row per epoch) of every trained row of a table, by run id.

    ``mask_loss`` is the main head's loss: dual-output models record it beside the total
    ``loss``; single-output models record only ``loss``, which is the same thing, so it is
    copied to ``mask_loss`` for them.
    """
    out = {}
    for run_id in table.loc[table["trained"], "run_id"]:
        history = load_record(Path(store) / run_id).history()
        out[run_id] = history if "mask_loss" in history else history.assign(mask_loss=history["loss"])
    return out


