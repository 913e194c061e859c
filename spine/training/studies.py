"""The study's experiment grids, one per table, and their tidy result tables.

Each grid is a list of cells (model, loss, task, seed, augmentation). :func:`run_study` trains
the cells the store lacks (in parallel processes with ``jobs``, or one slice of the grid with
``shard`` so that several machines can share it and merge through the store);
:func:`study_table` reads the records, without training, into a table with the study's
figures alongside (columns ``study_<metric>``).
"""

from __future__ import annotations

import os
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spine import paper, stats
from spine.errors import ConfigError
from spine.losses import LOSS_NAMES
from spine.models import BASELINE_NAMES
from spine.training import store as results
from spine.training.config import RunConfig

STABILITY_SEEDS = tuple(range(1, 11))  # the study's runs 1-10


@dataclass(frozen=True)
class Cell:
    model: str
    loss: str
    task: str = "binary"
    seed: int = 0
    augment: bool = False

    @property
    def label(self) -> str:
        """The row name the study uses for this cell."""
        return f"{self.model} + data augmentation" if self.augment else self.model


def _pairs(table: str) -> list[Cell]:
    return [Cell(row.model, row.loss) for row in paper.table(table).itertuples()]


STUDIES = {
    "loss": lambda: [Cell(m, loss) for m in BASELINE_NAMES for loss in LOSS_NAMES["binary"]],
    "ablation": lambda: _pairs("ablation"),
    "attention": lambda: _pairs("attention"),
    "augmentation": lambda: [Cell("Proposed", "Dice"), Cell("Proposed", "Dice", augment=True)],
    "comparison": lambda: [Cell(m, "Dice") for m in BASELINE_NAMES],
    "stability": lambda: [Cell("Proposed", "Dice", seed=s) for s in STABILITY_SEEDS],
    "multiclass": lambda: [Cell(m, loss, task="multiclass") for m in BASELINE_NAMES
                           for loss in LOSS_NAMES["multiclass"]],
}
# Columns shown beside the study's (ours -> the study's column of the same meaning).
STUDY_COLUMNS = {"fg_iou": "mIoU", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
                 "f1": "f1", "hd": "hd_px", "assd": "assd_px"}


def cells(name: str) -> list[Cell]:
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; valid: {', '.join(STUDIES)}")
    return STUDIES[name]()


def shard_cells(all_cells: list[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    """Shard ``(i, n)``, 1-based: every n-th cell starting at the i-th."""
    if shard is None:
        return all_cells
    index, count = shard
    if not 1 <= index <= count:
        raise ConfigError(f"shard {index}/{count}: need 1 <= I <= N")
    return all_cells[index - 1::count]


def configs(name: str, data, profile: str, overrides: dict | None = None) -> list[RunConfig]:
    from spine.training.engine import make_config

    return [make_config(c.model, c.loss, c.task, data, profile, c.seed, c.augment, overrides) for c in cells(name)]


def _train_one(config: RunConfig, store: str, threads: int) -> str:
    import tensorflow as tf

    from spine.training.engine import train

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return str(train(config, store, verbose=False).path)


def run_study(name: str, data="phantom", profile: str = "cpu", store=results.DEFAULT_STORE, *,
              jobs: int = 1, shard: tuple[int, int] | None = None, overrides: dict | None = None,
              max_new_runs: int | None = None, verbose: bool = True) -> pd.DataFrame:
    """Train the grid's missing cells (this shard's; at most ``max_new_runs``), then :func:`study_table`."""
    results.check_writable(store)
    todo = [c for c in shard_cells(configs(name, data, profile, overrides), shard)
            if results.find_record(store, c) is None][:max_new_runs]
    if verbose:
        print(f"study {name}: {len(todo)} run(s) to train", flush=True)
    if jobs <= 1:
        from spine.training.engine import train

        for config in todo:
            train(config, store, verbose=verbose)
    elif todo:
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for path in pool.map(_train_one, todo, [str(store)] * len(todo), [threads] * len(todo)):
                if verbose:
                    print(f"  finished {path}", flush=True)
    return study_table(name, data, profile, store, overrides)


def study_table(name: str, data="phantom", profile: str = "cpu", store=results.DEFAULT_STORE,
                overrides: dict | None = None) -> pd.DataFrame:
    """One row per cell: our test figures (per-image means), 95 % intervals, and the study's."""
    rows = []
    for cell, config in zip(cells(name), configs(name, data, profile, overrides)):
        record = results.find_record(store, config)
        row = {"model": cell.label, "loss": cell.loss, "task": cell.task, "seed": cell.seed,
               "trained": record is not None, "run_id": config.run_id, "data_id": config.data_id,
               "profile": config.profile}
        if record is not None:
            means = record.metrics["test"]["per_image"]
            row |= {key: means.get(key, np.nan) for key in ("miou", "fg_iou", "accuracy", "precision", "recall",
                                                             "f1", "hd", "hd95", "assd", "hd_mm", "assd_mm")}
            row |= {f"{key}_ci": (ci["low"], ci["high"]) for key, ci in record.metrics["test_ci95"].items()}
            row |= {k: v for k, v in means.items() if k.startswith("dice_") and cell.task == "multiclass"}
            row["selected_epoch"] = record.metrics["selected_epoch"]
            row["test_images"] = record.metrics["subsets"]["test"]["images"]
        rows.append(row)
    table = pd.DataFrame(rows)
    return _with_study_figures(name, table)


def provenance(table: pd.DataFrame, store=results.DEFAULT_STORE) -> pd.DataFrame:
    """How a table's runs were made: data, profile and its settings, seeds, runs, wall time."""
    done = [results.load_record(Path(store) / run) for run in table.loc[table["trained"], "run_id"]]
    if not done:
        return pd.DataFrame()
    first = done[0].config
    minutes = sum(results.read_json(r.path / "environment.json")["wall_seconds"] for r in done) / 60
    facts = {"data": first.data_id, "profile": first.profile, **first.settings,
             "seeds": ", ".join(sorted({str(r.config.seed) for r in done})),
             "runs": f"{len(done)} of {len(table)}", "CPU minutes (all runs)": round(minutes, 1)}
    return pd.DataFrame({"setting": list(facts), "value": [str(v) for v in facts.values()]})


def _with_study_figures(name: str, table: pd.DataFrame) -> pd.DataFrame:
    table_name = {"stability": "stability", "comparison": "comparison"}.get(name, name)
    study = paper.table(table_name if table_name in paper.TABLES else "loss")
    if name == "stability":
        study = study.assign(seed=study["run"]).drop(columns="run")
        keys = ["seed"]
    else:
        keys = ["model", "loss"]
    study = study.rename(columns={v: f"study_{v}" for v in STUDY_COLUMNS.values()})
    keep = keys + [c for c in study.columns if c.startswith("study_")]
    return table.merge(study[keep], on=keys, how="left")


def paired_comparisons(table: pd.DataFrame, store=results.DEFAULT_STORE, reference: str = "Proposed",
                       metric: str = "dice") -> pd.DataFrame:
    """``reference`` against every other trained row of a table, image by image on the same test set:
    the mean difference of ``metric`` with its 95 % bootstrap interval and the Wilcoxon p-value."""
    done = table[table["trained"]]
    per_image = {row.model: results.load_record(Path(store) / row.run_id).per_image().set_index("image")[metric]
                 for row in done.itertuples()}
    if reference not in per_image:
        return pd.DataFrame()
    rows = []
    for name, values in per_image.items():
        if name == reference:
            continue
        ours, theirs = per_image[reference].align(values, join="inner")
        test = stats.paired_test(ours.to_numpy(), theirs.to_numpy())
        rows.append({"comparison": f"{reference} - {name}", "images": test["n"], f"mean Δ{metric}": test["mean_diff"],
                     "95% CI": (round(test["ci_low"], 4), round(test["ci_high"], 4)), "Wilcoxon p": test["p_value"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- chapters 6-9: stability, Grad-CAM,
# multiclass and the study's open points (helpers that turn records into the tables the book shows)

# Our metric -> the per-run 95 % interval (over test images) that the record keeps for it.
CI_OF = {"f1": "dice_ci", "fg_iou": "iou_ci", "miou": "miou_ci", "hd95": "hd95_ci", "assd": "assd_ci"}


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
    interval over its test images (where the record keeps one: how much a single run's figure
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


def study_record(name: str, data, profile: str, store, model: str, loss: str | None = None, *,
                 train_missing: bool = True, overrides: dict | None = None) -> results.Record | None:
    """The record of one cell of a grid (the row labelled ``model``, with ``loss`` if given).

    Trains just that cell when it is missing and ``train_missing`` holds; otherwise returns
    ``None`` for a missing record. A chapter that needs one model (e.g. Grad-CAM of the proposed
    model) calls this instead of training the whole grid.
    """
    for cell, config in zip(cells(name), configs(name, data, profile, overrides)):
        if cell.label == model and (loss is None or cell.loss == loss):
            record = results.find_record(store, config)
            if record is None and train_missing:
                from spine.training.engine import train

                record = train(config, results.check_writable(store), verbose=False)
            return record
    raise ConfigError(f"study {name!r} has no row {model!r}" + (f" with loss {loss!r}" if loss else ""))


def gradcam_maps(model, images, layers, class_index: int = 1, seed: int = 0) -> dict:
    """Seg-Grad-CAM maps of ``model`` and of a randomised copy (same architecture, fresh weights).

    Returns ``{"trained": {layer: maps}, "randomised": {layer: maps}}`` with maps ``(N, H, W)``
    in [0, 1] (``spine.explain.grad_cam_batch``; region: each image's predicted ``class_index``).
    ``layers``: layer names, ``None`` meaning the bottleneck.
    """
    from spine import explain

    random = explain.randomized_copy(model, seed=seed)
    return {kind: {layer: explain.grad_cam_batch(net, images, class_index, layer=layer) for layer in layers}
            for kind, net in (("trained", model), ("randomised", random))}


def _rank_correlation(a, b) -> float:
    """Spearman's rho of two maps; 0 when either is constant (nothing in common to rank)."""
    from scipy import stats as sps

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(sps.spearmanr(a, b)[0])


def gradcam_sanity(maps: dict, regions) -> pd.DataFrame:
    """The two sanity checks of a Grad-CAM map, one row per layer of :func:`gradcam_maps`' output.

    ``regions``: boolean ``(N, H, W)``, the structure each map should point at (e.g. the reference
    foreground). Columns: ``concentration`` (mean over images of the fraction of the map's mass
    inside the region, ``spine.explain.concentration``; images whose map is all zero are left
    out and counted in ``empty maps``), ``chance`` (the mean area fraction of the region: what a
    uniform map scores), their ratio, the same concentration for the randomised model, and the
    mean Spearman rank correlation between the trained and the randomised model's maps (near 1:
    the map ignores the weights and explains nothing; near 0: it depends on what was learned).
    """
    from spine import explain

    regions = np.asarray(regions).astype(bool)
    chance = float(regions.mean(axis=(1, 2)).mean())
    rows = []
    for layer, trained in maps["trained"].items():
        random = maps["randomised"][layer]
        mine = np.array([explain.concentration(c, r) for c, r in zip(trained, regions)])
        theirs = np.array([explain.concentration(c, r) for c, r in zip(random, regions)])
        rho = np.array([_rank_correlation(a, b) for a, b in zip(trained, random)])
        mean = float(np.nanmean(mine)) if np.isfinite(mine).any() else np.nan
        rows.append({"layer": layer or "bottleneck", "images": len(regions), "empty maps": int(np.isnan(mine).sum()),
                     "concentration": mean, "chance": chance,
                     "concentration / chance": mean / chance if chance else np.nan,
                     "concentration (randomised)": float(np.nanmean(theirs)) if np.isfinite(theirs).any() else np.nan,
                     "Spearman ρ trained vs randomised": float(rho.mean()) if rho.size else np.nan})
    return pd.DataFrame(rows)


STRUCTURES = ("vertebra", "disc", "canal")


def structure_scores(table: pd.DataFrame, store=results.DEFAULT_STORE, structures=STRUCTURES) -> pd.DataFrame:
    """Per-structure Dice and IoU (per-image means) of every row of a multiclass table.

    Columns: model, loss, trained, then for each structure ``dice_<s>``, ``dice_<s>_ci`` (95 %
    bootstrap interval over test images) and ``iou_<s>``; NaN for untrained rows.
    """
    rows = []
    for row in table.itertuples():
        out = {"model": row.model, "loss": row.loss, "trained": bool(row.trained)}
        per_image = results.load_record(Path(store) / row.run_id).per_image() if row.trained else None
        for name in structures:
            for kind in ("dice", "iou"):
                column = f"{kind}_{name}"
                values = per_image[column].to_numpy(dtype=float) if per_image is not None and column in per_image \
                    else np.array([])
                out[column] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
                if kind == "dice":
                    _, low, high = stats.bootstrap_ci(values) if values.size else (np.nan, np.nan, np.nan)
                    out[f"{column}_ci"] = (round(low, 4), round(high, 4))
        rows.append(out)
    return pd.DataFrame(rows)


def distance_units(table: pd.DataFrame, store=results.DEFAULT_STORE) -> pd.DataFrame:
    """Boundary errors in pixels and in millimetres, with the pixel size behind the conversion.

    Per trained row: HD, HD95 and ASSD in pixels of the model's grid and in mm (NaN where the data
    has no spacing), and the smallest and largest pixel size (mm, mean of rows and columns) over
    its test images: one pixel of error means that many millimetres, different for each image.
    """
    from spine.training.engine import split_data

    rows = []
    for row in table[table["trained"]].itertuples():
        record = results.load_record(Path(store) / row.run_id)
        spacing = split_data(record.config)["test"].spacing.astype(float).mean(axis=1)
        means = record.metrics["test"]["per_image"]
        finite = spacing[np.isfinite(spacing)]
        rows.append({"model": row.model, "loss": row.loss,
                     **{key: _number(means.get(key)) for key in ("hd", "hd95", "assd", "hd_mm", "hd95_mm", "assd_mm")},
                     "mm per pixel (min)": float(finite.min()) if finite.size else np.nan,
                     "mm per pixel (max)": float(finite.max()) if finite.size else np.nan})
    return pd.DataFrame(rows)


def _number(value) -> float:
    """A stored figure as a float (JSON null, i.e. an undefined value, as NaN)."""
    return np.nan if value is None else float(value)


def volume_scores(prediction, reference, task: str = "binary") -> dict:
    """3D figures of a predicted volume against a reference mask (SimpleITK images, same grid).

    ``reference`` may hold SPIDER values or class indices (``spine.data.labels.label_values_to_classes``).
    Returns ``spine.metrics.image_metrics`` computed on the whole volume with its spacing (so the
    distances come in voxels and in mm), plus the voxel counts of the two foregrounds.
    """
    import SimpleITK as sitk

    from spine import metrics
    from spine.data.labels import label_values_to_classes, num_classes

    if prediction.GetSize() != reference.GetSize():
        raise ConfigError(f"prediction {prediction.GetSize()} and reference {reference.GetSize()} differ in size")
    pred = sitk.GetArrayFromImage(prediction).astype(np.uint8)
    true = label_values_to_classes(sitk.GetArrayFromImage(reference), task)
    spacing = tuple(reversed(reference.GetSpacing()))  # NumPy order (z, y, x)
    out = metrics.image_metrics(true, pred, num_classes(task), spacing=spacing)
    out.update(voxels_predicted=int((pred > 0).sum()), voxels_reference=int((true > 0).sum()))
    return out


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


def loss_grid(table: pd.DataFrame, metric: str = "f1") -> pd.DataFrame:
    """A grid table as models (rows, in the grid's order) x losses (columns) of one metric; NaN
    where a cell is untrained (or the metric is absent)."""
    values = table[metric] if metric in table else pd.Series(np.nan, index=table.index)
    frame = table.assign(value=pd.to_numeric(values, errors="coerce"))
    grid = frame.pivot_table(index="model", columns="loss", values="value", aggfunc="first", dropna=False, sort=False)
    grid = grid.reindex(index=list(dict.fromkeys(table["model"])), columns=list(dict.fromkeys(table["loss"])))
    grid.columns.name = None
    return grid.reset_index()


def predictions(table: pd.DataFrame, store, images) -> dict:
    """Label maps of every trained row's model on ``images``: ``{row label: (N, H, W) uint8}``.

    The label is the model's name, with the loss in brackets when the table holds several
    losses. A record without its model file is retrained first (``engine.record_model``).
    """
    from spine.training.engine import predict_labels, record_model

    several = table["loss"].nunique() > 1
    out = {}
    for row in table[table["trained"]].itertuples():
        model = record_model(results.load_record(Path(store) / row.run_id))
        out[f"{row.model} ({row.loss})" if several else row.model] = predict_labels(model, images)
    return out


def spider_pixel_sizes(folder, size: int = 128, sequence: str = "t1") -> pd.DataFrame:
    """The pixel size, in mm, of SPIDER's central sagittal slices once resized to ``size`` x ``size``.

    ``folder``: SPIDER volumes (``<patient>_<sequence>.mha``, images or masks: only the geometry
    is read). Per series: the slice's rows and columns, its spacing, and the size of one pixel of
    the resized slice along the rows and the columns (the study resizes the whole slice, so a
    pixel is ``extent / size`` mm, different per series and, for a non-square field of view, per
    axis). A distance in pixels of the study's 128 x 128 grid is that many of these.
    """
    import SimpleITK as sitk

    from spine.data.spider import central_sagittal_slice

    rows = []
    for path in sorted(Path(folder).glob(f"*_{sequence}.mha")):
        if path.name[: -len(".mha")].split("_", 1)[1].lower() != sequence.lower():
            continue
        array, (row_mm, col_mm) = central_sagittal_slice(sitk.ReadImage(str(path)))
        rows.append({"series": path.name[: -len(".mha")], "rows": array.shape[0], "columns": array.shape[1],
                     "row spacing (mm)": row_mm, "column spacing (mm)": col_mm,
                     "mm per pixel (rows)": array.shape[0] * row_mm / size,
                     "mm per pixel (columns)": array.shape[1] * col_mm / size})
    return pd.DataFrame(rows)


def pixels_in_mm(distances: dict, sizes: pd.DataFrame) -> pd.DataFrame:
    """Distances in pixels (``{name: px}``) as millimetres over the pixel sizes of
    :func:`spider_pixel_sizes`: the smallest, median and largest value a pixel could stand for."""
    per_pixel = sizes[["mm per pixel (rows)", "mm per pixel (columns)"]].to_numpy(dtype=float)
    low, mid, high = (per_pixel.min(), np.median(per_pixel), per_pixel.max()) if per_pixel.size else (np.nan,) * 3
    return pd.DataFrame([{"figure": name, "pixels": float(px), "mm (smallest pixel)": float(px) * low,
                          "mm (median pixel)": float(px) * mid, "mm (largest pixel)": float(px) * high}
                         for name, px in distances.items()])
