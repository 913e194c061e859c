"""What chapter 10 states from the benchmark tables (spine.benchmark_tables), on hand-made tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spine import benchmark_tables


def test_read_tables_leaves_out_what_was_not_measured(tmp_path):
    pd.DataFrame({"machine": ["box"], "matmul_gflop_per_s": [80.0]}).to_csv(tmp_path / "machine.csv", index=False)
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "other.csv", index=False)
    tables = benchmark_tables.read_tables(tmp_path)
    assert list(tables) == ["machine"]
    assert benchmark_tables.machine(tables) == ("box", 80.0)
    name, peak = benchmark_tables.machine({})
    assert name == "unknown" and math.isnan(peak)


def test_width_speedup_per_model_and_seconds_per_100_images():
    training = pd.DataFrame({"model": ["A", "B", "A", "B"], "width": [64, 64, 16, 16], "batch": [2, 2, 8, 8],
                             "train_img_per_s": [1.0, 0.5, 12.0, 8.0]})
    s = benchmark_tables.width_speedup(training)
    assert (s["study_width"], s["study_batch"], s["reduced_width"], s["reduced_batch"]) == (64, 2, 16, 8)
    assert s["speedup_min"] == pytest.approx(12.0) and s["speedup_max"] == pytest.approx(16.0)  # A 12x, B 16x
    assert s["seconds_per_100_min"] == pytest.approx(100.0) and s["seconds_per_100_max"] == pytest.approx(200.0)


def test_inference_verdict_needs_every_task_at_the_target():
    inference = pd.DataFrame({"task": ["binary", "multiclass"], "slices_per_s_b1": [21.0, 38.0],
                              "slices_per_s_b16": [29.0, 43.0]})
    best, verdict = benchmark_tables.inference_verdict(inference, 25)
    assert best.to_dict() == {"binary": 29.0, "multiclass": 43.0} and verdict == "meet"
    assert benchmark_tables.inference_verdict(inference, 30)[1] == "miss"


def test_stall_summary_separates_the_epochs_that_waited():
    stalls = pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "wall_s": [40.0, 20.5, 10.2, 10.3, 20.6],
                           "cpu_per_wall": [0.6, 0.45, 0.9, 0.92, 0.43], "median_step_s": [0.9, 0.5, 0.45, 0.47, 0.52]})
    summary = benchmark_tables.stall_summary(stalls)
    assert summary["epochs"] == 4 and summary["slow_epochs"] == 2  # the first (tracing) is left out
    assert summary["slow_wall_s"] == pytest.approx(20.55) and summary["fast_wall_s"] == pytest.approx(10.25)
    assert summary["slow_cpu_per_wall"] == pytest.approx(0.44) and summary["median_step_s"] == pytest.approx(0.485)


def test_recipe_summary_compares_at_the_highest_target_both_reached():
    recipe = pd.DataFrame({
        "recipe": ["recorded", "cpu", "recorded", "cpu"], "target_val_dice": [0.90, 0.90, 0.89, 0.89],
        "seconds_to_target": [None, 100.0, 200.0, 50.0], "image_steps_to_target": [None, 800, 1600, 400],
        "fit_seconds_per_image_step": [0.04, 0.03, 0.04, 0.03], "best_val_dice": [0.898, 0.905, 0.898, 0.905]})
    text = benchmark_tables.recipe_summary(recipe)
    assert "`recorded` 0.898, `cpu` 0.905" in text
    assert "At validation Dice 0.89, the highest both reached, `cpu` took 50 s against 200 s: 0.25x the time" in text
    assert "0.25x the image-steps at 0.75x the seconds per image-step" in text
    assert "cannot be compared" in benchmark_tables.recipe_summary(recipe[recipe["target_val_dice"] == 0.90])
