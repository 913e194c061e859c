"""Reading the measurements of ``benchmarks/performance.py`` (its CSV tables) and the figures
chapter 10 states from them: the speed-up from the study's width to the ``cpu`` profile's, and
whether the shipped models meet the inference target."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

TABLES = ("machine", "training", "engine", "engine_before", "inference", "recipe", "recipe_machine", "epoch_stalls",
          "epoch_stalls_before", "book_speed")


def read_tables(folder) -> dict[str, pd.DataFrame]:
    """The benchmark tables found in ``folder``, by name (a table not measured is left out)."""
    folder = Path(folder)
    return {name: pd.read_csv(folder / f"{name}.csv") for name in TABLES if (folder / f"{name}.csv").is_file()}


def machine(tables: dict) -> tuple[str, float]:
    """The machine the tables were measured on and its float32 matmul peak (GFLOP/s; NaN if unknown)."""
    if "machine" not in tables:
        return "unknown", math.nan
    row = tables["machine"].iloc[0]
    return str(row["machine"]), float(row["matmul_gflop_per_s"])


def width_speedup(training: pd.DataFrame) -> dict:
    """Training at the narrowest measured width against the widest (the study's), per model.

    Returns the two settings (``study_width``, ``study_batch``, ``reduced_width``,
    ``reduced_batch``), the smallest and largest speed-up over the models
    (``speedup_min``, ``speedup_max``: images/s narrow over wide) and, at the study's setting,
    the seconds 100 training images take for the fastest and the slowest model
    (``seconds_per_100_min``, ``seconds_per_100_max``).
    """
    if "precision" in training:  # the comparison of widths is at one precision
        training = training[training["precision"] == "float32"]
    study, reduced = (training[training["width"] == w].set_index("model")
                      for w in (training["width"].max(), training["width"].min()))
    speedup = reduced["train_img_per_s"] / study["train_img_per_s"]
    return {"study_width": int(study["width"].iloc[0]), "study_batch": int(study["batch"].iloc[0]),
            "reduced_width": int(reduced["width"].iloc[0]), "reduced_batch": int(reduced["batch"].iloc[0]),
            "speedup_min": float(speedup.min()), "speedup_max": float(speedup.max()),
            "seconds_per_100_min": 100 / float(study["train_img_per_s"].max()),
            "seconds_per_100_max": 100 / float(study["train_img_per_s"].min())}


def inference_verdict(inference: pd.DataFrame, target: float) -> tuple[pd.Series, str]:
    """Each task's best rate (slices/s, one slice or 16 per call) and ``"meet"`` if every task's
    best reaches ``target``, else ``"miss"``."""
    best = inference.set_index("task")[["slices_per_s_b1", "slices_per_s_b16"]].max(axis=1)
    return best, "meet" if (best >= target).all() else "miss"


def stall_summary(stalls: pd.DataFrame) -> dict:
    """Slow and fast epochs of ``epoch_stalls.csv`` (the first, which traces the graph, left out):
    an epoch is slow when it takes over 1.5x the fastest; their mean wall seconds and cores used
    (CPU seconds per wall second), and the median step over all epochs."""
    epochs = stalls[stalls["epoch"] > 1]
    slow = epochs["wall_s"] > 1.5 * epochs["wall_s"].min()
    return {"epochs": len(epochs), "slow_epochs": int(slow.sum()), "median_step_s": float(epochs["median_step_s"].median()),
            "slow_wall_s": float(epochs.loc[slow, "wall_s"].mean()), "fast_wall_s": float(epochs.loc[~slow, "wall_s"].mean()),
            "slow_cpu_per_wall": float(epochs.loc[slow, "cpu_per_wall"].mean()),
            "fast_cpu_per_wall": float(epochs.loc[~slow, "cpu_per_wall"].mean())}


def recipe_summary(recipe: pd.DataFrame, base: str = "recorded", new: str = "cpu") -> str:
    """What ``recipe.csv`` says of the ``new`` recipe against the ``base`` one, in a sentence or two:
    at the highest target both reached, the time, image-steps and seconds per image-step of each."""
    rows = recipe[recipe["recipe"].isin([base, new])]
    both = rows.groupby("target_val_dice")["seconds_to_target"].apply(lambda s: s.notna().sum() == 2)
    reached = both[both].index
    best = {name: part["best_val_dice"].iloc[0] for name, part in rows.groupby("recipe")}
    text = (f"Best validation Dice: `{base}` {best.get(base, math.nan):.3f}, `{new}` {best.get(new, math.nan):.3f}. ")
    if not len(reached):
        return text + "No target was reached by both recipes, so their times cannot be compared."
    target = float(max(reached))
    pair = rows[rows["target_val_dice"] == target].set_index("recipe")
    ratio = pair.loc[new, "seconds_to_target"] / pair.loc[base, "seconds_to_target"]
    steps = pair.loc[new, "image_steps_to_target"] / pair.loc[base, "image_steps_to_target"]
    speed = pair.loc[new, "fit_seconds_per_image_step"] / pair.loc[base, "fit_seconds_per_image_step"]
    return text + (f"At validation Dice {target:.2f}, the highest both reached, `{new}` took "
                   f"{pair.loc[new, 'seconds_to_target']:.0f} s against {pair.loc[base, 'seconds_to_target']:.0f} s: "
                   f"{ratio:.2f}x the time, from {steps:.2f}x the image-steps at {speed:.2f}x the seconds per image-step.")


def book_speed_line(speed: pd.DataFrame | None) -> str:
    """The main command's wall time against the older commit's (``benchmarks/book_speed.py``), in
    words, or the sentence that says it is not measured yet."""
    if speed is None or not len(speed):
        return ("The main command's wall time against commit 6c3cc35's is not measured yet "
                "(`python benchmarks/book_speed.py` writes `benchmarks/results/book_speed.csv`).")
    old, new = (speed[speed["role"] == role].iloc[0] for role in ("old", "new"))
    failed = [f"{row['commit'][:7]} exited {int(row['exit_status'])}" for row in (old, new) if row["exit_status"] != 0]
    return (f"The main command (`{new['command'].strip()}`) from a fresh clone took {new['wall_s']:.0f} s at commit "
            f"{new['commit'][:7]} against {old['wall_s']:.0f} s at {old['commit'][:7]}: "
            f"{new['wall_s'] / old['wall_s']:.2f}x the time, measured one after the other on {new['cpu_model']} "
            f"x{new['cpu_count']} (`benchmarks/book_speed.py`)" + (f"; {', '.join(failed)}." if failed else "."))
