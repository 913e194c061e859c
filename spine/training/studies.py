"""The study's experiment grids, one per table, running them, and their tidy result tables.

Each grid is a list of cells (model, loss, task, seed, augmentation); under a profile with
cross-validation (``folds`` >= 2) every cell is run once per fold, and its figures are the
per-patient values of every recorded fold pooled (each patient is tested in exactly one fold).
:func:`run_study` trains the cells the store lacks (in parallel processes with ``jobs``, or one slice of the grid with
``shard`` so that several machines can share it and merge through the store);
:func:`study_record` finds (or trains) a single cell; :func:`study_table` reads the records,
without training, into a table with the study's figures alongside (columns ``study_<metric>``).
:data:`PLAN` is the real-data study's order of grids, :func:`run_plan` runs it.
What the store holds of the plan and how its runs were made: :mod:`spine.training.provenance`;
rows tested against each other patient by patient: :mod:`spine.training.comparisons`; the chapters'
other analyses of these tables: :mod:`spine.training.analysis`.
"""

from __future__ import annotations

import logging
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
from spine.training.store import DEFAULT_STORE, Record, check_writable, find_record, is_finished
from spine.training.config import RunConfig

log = logging.getLogger(__name__)

STABILITY_SEEDS = tuple(range(1, 11))  # the study's runs 1-10
COMPARISON_SEEDS = (0, 1, 2)  # the comparison grid's seeds in every fold: its verdicts over patients and seeds


@dataclass(frozen=True)
class Cell:
    model: str
    loss: str
    task: str = "binary"
    seed: int = 0
    augment: bool | str = False  # see spine.training.config.AUGMENT_MODES

    @property
    def label(self) -> str:
        """The row name the study uses for this cell."""
        if isinstance(self.augment, str):
            return f"{self.model} + {self.augment} augmentation"
        return f"{self.model} + data augmentation" if self.augment else self.model


def _pairs(table: str) -> list[Cell]:
    return [Cell(row.model, row.loss) for row in paper.table(table).itertuples()]


STUDIES = {
    "loss": lambda: [Cell(m, loss) for m in BASELINE_NAMES for loss in LOSS_NAMES["binary"]],
    "ablation": lambda: _pairs("ablation"),
    "attention": lambda: _pairs("attention"),
    "augmentation": lambda: [Cell("Proposed", "Dice"), Cell("Proposed", "Dice", augment=True)],
    "comparison": lambda: [Cell(m, "Dice") for m in BASELINE_NAMES],
    "comparison-seeds": lambda: [Cell(m, "Dice", seed=s) for s in COMPARISON_SEEDS for m in BASELINE_NAMES],
    "stability": lambda: [Cell("Proposed", "Dice", seed=s) for s in STABILITY_SEEDS],
    "multiclass": lambda: [Cell(m, loss, task="multiclass") for m in BASELINE_NAMES
                           for loss in LOSS_NAMES["multiclass"]],
}
# The real-data study's order: the study's central claims (comparison, ablation) in every fold,
# then the other grids in fold 0, then the comparison's seeds in every fold (None: every fold of the profile).
PLAN = (("comparison", None), ("ablation", None), ("multiclass", (0,)), ("augmentation", (0,)),
        ("loss", (0,)), ("attention", (0,)), ("stability", (0,)), ("comparison-seeds", None))
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


def fold_numbers(profile: str, overrides: dict | None = None, folds=None) -> tuple[int, ...]:
    """The folds a grid runs in: ``folds`` if given (checked), else every fold of the profile (0 alone
    when it has none)."""
    from spine.training.config import resolve_profile

    available = range(max(resolve_profile(profile, overrides)["folds"], 1))
    chosen = tuple(available) if folds is None else tuple(int(k) for k in folds)
    if not set(chosen) <= set(available):
        raise ConfigError(f"folds {chosen} do not exist at profile {profile!r}: folds are 0..{len(available) - 1}")
    return chosen


def cell_configs(name: str, data, profile: str, overrides: dict | None = None, folds=None) -> list[tuple[Cell, list]]:
    """Each cell of a grid with its runs' configurations, one per fold."""
    from spine.training.engine import make_config

    numbers = fold_numbers(profile, overrides, folds)
    return [(c, [make_config(c.model, c.loss, c.task, data, profile, c.seed, c.augment, overrides, fold=k)
                 for k in numbers]) for c in cells(name)]


def configs(name: str, data, profile: str, overrides: dict | None = None, folds=None) -> list[RunConfig]:
    """Every run of a grid, fold by fold (all cells of fold 0 first: the grid's first answer)."""
    per_cell = cell_configs(name, data, profile, overrides, folds)
    return [runs[k] for k in range(len(per_cell[0][1])) for _, runs in per_cell]


def _train_one(config: RunConfig, store: str, threads: int) -> str:
    import tensorflow as tf

    from spine.training.engine import train

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return str(train(config, store, verbose=False).path)


def run_study(name: str, data="phantom", profile: str = "cpu", store=DEFAULT_STORE, *,
              jobs: int = 1, shard: tuple[int, int] | None = None, overrides: dict | None = None,
              max_new_runs: int | None = None, verbose: bool = True, folds=None) -> pd.DataFrame:
    """Train the grid's missing runs in ``folds`` (default: all; this shard's; at most
    ``max_new_runs``), then :func:`study_table`."""
    check_writable(store)
    todo = missing_runs(name, data, profile, store, shard=shard, overrides=overrides, folds=folds)[:max_new_runs]
    if verbose:
        log.info("study %s: %d run(s) to train", name, len(todo))
    _train_all(todo, store, jobs, verbose)
    return study_table(name, data, profile, store, overrides)


def missing_runs(name: str, data, profile: str, store=DEFAULT_STORE, *,
                 shard: tuple[int, int] | None = None, overrides: dict | None = None, folds=None) -> list[RunConfig]:
    """The runs of a grid (this shard of it, in ``folds``) that the store lacks: what
    :func:`run_study` trains, in its order."""
    return [c for c in shard_cells(configs(name, data, profile, overrides, folds), shard)
            if find_record(store, c) is None]


def run_studies(names, data="phantom", profile: str = "cpu", store=DEFAULT_STORE, *,
                max_new_runs: int | None = None, verbose: bool = True) -> dict[str, pd.DataFrame]:
    """Several grids with one budget of ``max_new_runs`` between them (a run that two grids share
    is trained once), then each grid's :func:`study_table`."""
    check_writable(store)
    missing = {c.run_id: c for name in names for c in configs(name, data, profile)
               if find_record(store, c) is None}
    _train_all(list(missing.values())[:max_new_runs], store, 1, verbose)
    return {name: study_table(name, data, profile, store) for name in names}


def plan_configs(data, profile: str, plan=PLAN, overrides: dict | None = None, folds=None) -> list[tuple[str, RunConfig]]:
    """The plan's runs in order, each once (a run that an earlier grid of the plan has is not
    counted again), with the grid that first needs it; ``folds`` narrows every grid's folds."""
    seen, runs = set(), []
    for name, grid_folds in plan:
        chosen = folds if grid_folds is None else grid_folds if folds is None else [k for k in grid_folds if k in folds]
        for config in configs(name, data, profile, overrides, chosen):
            if config.run_id not in seen:
                seen.add(config.run_id)
                runs.append((name, config))
    return runs


def plan_runs(data, profile: str, plan=PLAN, overrides: dict | None = None, folds=None) -> pd.DataFrame:
    """:func:`plan_configs` as a table: one row per run."""
    return _plan_table(plan_configs(data, profile, plan, overrides, folds))


def _plan_table(runs: list[tuple[str, RunConfig]]) -> pd.DataFrame:
    return pd.DataFrame([{"grid": name, "fold": c.fold, "model": c.model, "loss": c.loss, "task": c.task,
                          "seed": c.seed, "augment": c.augment, "run_id": c.run_id} for name, c in runs])


def run_plan(data, profile: str, store=DEFAULT_STORE, *, plan=PLAN, jobs: int = 1,
             shard: tuple[int, int] | None = None, overrides: dict | None = None, folds=None,
             verbose: bool = True) -> pd.DataFrame:
    """Train the plan's missing runs in its order (resumable: finished runs are skipped), only this
    ``shard`` of them, in ``folds`` of each grid's; :func:`plan_runs` with a ``recorded`` column."""
    check_writable(store)
    runs = plan_configs(data, profile, plan, overrides, folds)
    todo = [c for c in shard_cells([c for _, c in runs], shard) if find_record(store, c) is None]
    if verbose:
        log.info("plan: %d run(s) to train", len(todo))
    _train_all(todo, store, jobs, verbose)
    table = _plan_table(runs)
    table["recorded"] = [is_finished(Path(store) / run) for run in table["run_id"]]
    return table


def _train_all(todo: list[RunConfig], store, jobs: int, verbose: bool) -> None:
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
                    log.info("  finished %s", path)


def study_record(name: str, data, profile: str, store, model: str, loss: str | None = None, *,
                 train_missing: bool = True, overrides: dict | None = None) -> Record | None:
    """The record of one cell of a grid (the row labelled ``model``, with ``loss`` if given).

    Trains just that cell when it is missing and ``train_missing`` holds; otherwise returns
    ``None`` for a missing record. A chapter that needs one model (e.g. Grad-CAM of the proposed
    model) calls this instead of training the whole grid.
    """
    for cell, config in zip(cells(name), configs(name, data, profile, overrides)):
        if cell.label == model and (loss is None or cell.loss == loss):
            record = find_record(store, config)
            if record is None and train_missing:
                from spine.training.engine import train

                record = train(config, check_writable(store), verbose=False)
            return record
    raise ConfigError(f"study {name!r} has no row {model!r}" + (f" with loss {loss!r}" if loss else ""))


SUMMARY_KEYS = ("miou", "fg_iou", "accuracy", "precision", "recall", "f1", "dice", "hd", "hd95", "assd",
                "hd_mm", "assd_mm")


def study_table(name: str, data="phantom", profile: str = "cpu", store=DEFAULT_STORE,
                overrides: dict | None = None, folds=None) -> pd.DataFrame:
    """One row per cell: our test figures, 95 % intervals, and the study's.

    Without folds, the figures are one run's per-image means and its intervals. With folds, they
    are means over the test patients of every recorded fold (each patient's value the mean over
    its central slices), with BCa intervals over those patients, plus the study's view (the
    central slice alone, ``dice_central``); ``run_ids`` lists the recorded folds' runs."""
    rows = []
    for cell, runs in cell_configs(name, data, profile, overrides, folds):
        done = [r for r in (find_record(store, c) for c in runs) if r is not None]
        row = {"model": cell.label, "loss": cell.loss, "task": cell.task, "seed": cell.seed,
               "trained": bool(done), "run_id": done[0].path.name if done else runs[0].run_id, "data_id": runs[0].data_id,
               "profile": runs[0].profile, "folds": len(runs),
               "run_ids": [r.path.name for r in done]}
        if done:
            row |= _pooled_figures(done, cell.task) if runs[0].settings["folds"] >= 2 else _run_figures(done[0], cell.task)
        rows.append(row)
    table = pd.DataFrame(rows)
    return _with_study_figures(name, table)


def _run_figures(record: Record, task: str) -> dict:
    means = record.metrics["test"]["per_image"]
    row = {key: means.get(key, np.nan) for key in SUMMARY_KEYS}
    row |= {f"{key}_ci": (ci["low"], ci["high"]) for key, ci in record.metrics["test_ci95"].items()}
    row |= {k: v for k, v in means.items() if k.startswith("dice_") and task == "multiclass"}
    row["selected_epoch"] = record.metrics["selected_epoch"]
    row["test_images"] = record.metrics["subsets"]["test"]["images"]
    return row


def pooled_per_patient(records: list[Record]) -> pd.DataFrame:
    """The per-patient test values of several folds' records, one row per patient, with its fold."""
    return pd.concat([r.per_patient().assign(fold=r.config.fold) for r in records], ignore_index=True)


def pooled_central(records: list[Record]) -> pd.DataFrame:
    """The central-slice rows of several folds' per-image test tables (the study's view)."""
    frames = [r.per_image() for r in records]
    return pd.concat([f[f["central"]] for f in frames], ignore_index=True)


def _pooled_figures(records: list[Record], task: str) -> dict:
    patients = pooled_per_patient(records)
    row = {key: patients[key].mean() for key in SUMMARY_KEYS if key in patients}
    row |= {f"{key}_ci": tuple(stats.bootstrap_ci(patients[key].to_numpy(), seed=0)[1:])
            for key in stats.INTERVAL_KEYS if key in patients}
    if task == "multiclass":
        row |= {k: patients[k].mean() for k in patients.columns if k.startswith("dice_")}
    row["dice_central"] = pooled_central(records)["dice"].mean()
    row["selected_epoch"] = "/".join(str(r.metrics["selected_epoch"]) for r in records)
    row["test_images"] = int(patients["images"].sum())
    row["test_patients"] = len(patients)
    return row


def _with_study_figures(name: str, table: pd.DataFrame) -> pd.DataFrame:
    table_name = {"comparison-seeds": "comparison"}.get(name, name)  # the study's table of the grid
    study = paper.table(table_name if table_name in paper.TABLES else "loss")
    if name == "stability":
        study = study.assign(seed=study["run"]).drop(columns="run")
        keys = ["seed"]
    else:
        keys = ["model", "loss"]
    study = study.rename(columns={v: f"study_{v}" for v in STUDY_COLUMNS.values()})
    keep = keys + [c for c in study.columns if c.startswith("study_")]
    return table.merge(study[keep], on=keys, how="left")


