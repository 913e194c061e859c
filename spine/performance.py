"""Reading the measurements of ``benchmarks/performance.py`` (its CSV tables) and the figures
chapter 10 states from them: the speed-up from the study's width to the ``cpu`` profile's, and
whether the shipped models meet the inference target."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

TABLES = ("machine", "training", "engine", "engine_before", "inference", "time_to_accuracy")


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
