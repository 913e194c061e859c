"""Time to accuracy of training recipes, side by side in one run on one machine.

    python benchmarks/recipe.py [--data ../shared/data/spider-t2space-slices] [--targets 0.90 0.89]
                                [--recipe NAME KEY=VALUE,KEY=VALUE ...] [--summarise-only]

Each recipe trains the proposed network (Dice loss, binary, seed 0) on fold 0 of the ``cpu``
profile's cross-validation, in a fresh process and a scratch store, and is scored on fold 0's
**validation** patients only (never its test patients): the per-patient mean validation Dice
after each epoch, as the engine selects. ``recorded`` is the recipe the first real-data study
used (7 slices per training patient, constant Adam 1e-3, float32, a checkpoint every epoch),
``cpu`` the ``cpu`` profile as it stands; more with ``--recipe``.

Written atomically to ``benchmarks/results/``:

- ``recipe.csv``: per recipe and target, its overrides and precision, training images, the epoch,
  image-steps and wall seconds (fit + validation + checkpoints, first-epoch tracing included)
  until the validation Dice first reached the target, the best validation Dice, seconds per
  image-step of the fit alone, and the time to target as a fraction of the ``recorded`` recipe's
  (empty where either never reached it);
- ``recipe_history.csv``: every epoch of every recipe (fit, validation and checkpoint seconds);
- ``recipe_machine.csv``: the CPU model and flags, and the float32 and bfloat16 matmul peaks of
  this machine measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402

OUT = Path(__file__).parent / "results"
RECIPES = {
    "recorded": {"train_slices_per_patient": 7, "epochs": 30, "learning_rate": 1e-3, "lr_schedule": "constant",
                 "warmup_epochs": 0.0, "precision": "float32", "checkpoint_every": 1},
    "cpu": {},
}


def matmul_peaks(n: int = 2048, repeats: int = 6) -> dict:
    import tensorflow as tf

    peaks = {}
    for dtype in (tf.float32, tf.bfloat16):
        a, b = tf.cast(tf.random.normal((n, n)), dtype), tf.cast(tf.random.normal((n, n)), dtype)
        (a @ b).numpy()
        best = min(_seconds(lambda: (a @ b).numpy()) for _ in range(repeats))
        peaks[f"matmul_{dtype.name}_gflop_per_s"] = round(2 * n**3 / best / 1e9, 1)
    return peaks


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def cpu_facts() -> dict:
    from spine.training import device

    return {"cpu_model": device.cpu_model(), "cpu_count": os.cpu_count(), "simd_flags": device.simd_flags()}


def run_recipe(name: str, overrides: dict, data: str) -> list[dict]:
    """Train one recipe in a scratch store; its per-epoch history with the recipe's facts."""
    from spine.training import engine

    config = engine.make_config("Proposed", "Dice", "binary", data, "cpu", seed=0, overrides=overrides, fold=0)
    with tempfile.TemporaryDirectory() as store:
        started = time.perf_counter()
        record = engine.train(config, store, verbose=False)
        wall = time.perf_counter() - started
        history = record.history()
        images = record.metrics["subsets"]["train"]["images"]
        precision = record.metrics["precision"]
    return [dict(row, recipe=name, precision=precision, train_images=images, process_wall_s=round(wall, 1))
            for row in history.to_dict("records")]


def summarise(history: pd.DataFrame, targets) -> pd.DataFrame:
    return pd.concat([_summarise(history, target) for target in targets], ignore_index=True)


def _summarise(history: pd.DataFrame, target: float) -> pd.DataFrame:
    rows = []
    for name, runs in history.groupby("recipe", sort=False):
        runs = runs.reset_index(drop=True)
        reached = runs.index[runs["val_dice"] >= target]
        first = reached[0] if len(reached) else None
        images = int(runs["train_images"].iloc[0])
        rows.append({"recipe": name, "overrides": _describe(RECIPES.get(name, {})), "precision": runs["precision"].iloc[0],
                     "train_images": images, "epochs": len(runs), "target_val_dice": target,
                     "epoch_reached": None if first is None else int(runs["epoch"][first]),
                     "image_steps_to_target": None if first is None else images * (first + 1),
                     "seconds_to_target": None if first is None else round(runs["seconds"][:first + 1].sum(), 1),
                     "best_val_dice": round(runs["val_dice"].max(), 4),
                     "fit_seconds_per_image_step": round(runs["fit_seconds"].sum() / (images * len(runs)), 4),
                     "total_seconds": round(runs["seconds"].sum(), 1)})
    table = pd.DataFrame(rows)
    base = table.loc[table["recipe"] == "recorded", "seconds_to_target"]
    table["time_vs_recorded"] = (table["seconds_to_target"] / base.iloc[0]).round(3) if len(base) and pd.notna(base.iloc[0]) else None
    return table


def _describe(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(the cpu profile)"


def _write(table: pd.DataFrame, name: str) -> None:
    from spine.data.io import atomic_path

    with atomic_path(OUT / name) as tmp:
        table.to_csv(tmp, index=False)
    print(f"\n{name}\n{table.to_string(index=False)}", flush=True)


def _in_child(function, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def _parse(pairs: str) -> dict:
    from spine.training.config import parse_overrides

    return parse_overrides(pairs.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/spider-t2space-slices")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.89, 0.88])
    parser.add_argument("--summarise-only", action="store_true", help="re-read recipe_history.csv, train nothing")
    parser.add_argument("--recipe", nargs=2, action="append", metavar=("NAME", "OVERRIDES"), default=[],
                        help="another recipe: a name and KEY=VALUE,KEY=VALUE overrides of the cpu profile")
    parser.add_argument("--only", nargs="+", help="run only these recipes (by name)")
    parser.add_argument("--append", action="store_true",
                        help="keep the other recipes' rows of recipe_history.csv (each row names its invocation)")
    args = parser.parse_args()
    RECIPES.update({name: _parse(pairs) for name, pairs in args.recipe})
    if args.summarise_only:
        _write(summarise(pd.read_csv(OUT / "recipe_history.csv"), args.targets), "recipe.csv")
        return
    names = args.only or list(RECIPES)
    invocation = time.strftime("%Y-%m-%dT%H:%M:%S")
    machine = pd.DataFrame([{"invocation": invocation} | cpu_facts() | _in_child(matmul_peaks)])
    kept = pd.DataFrame()
    if args.append and (OUT / "recipe_history.csv").is_file():
        kept = pd.read_csv(OUT / "recipe_history.csv")
        kept = kept[~kept["recipe"].isin(names)]
        machine = pd.concat([pd.read_csv(OUT / "recipe_machine.csv"), machine], ignore_index=True)
    _write(machine, "recipe_machine.csv")
    rows = kept.to_dict("records")
    for name in names:
        rows += [dict(row, invocation=invocation)
                 for row in _in_child(run_recipe, name, RECIPES[name], str(Path(args.data).resolve()))]
        history = pd.DataFrame(rows)
        _write(history, "recipe_history.csv")
        _write(summarise(history, args.targets), "recipe.csv")


if __name__ == "__main__":
    main()
