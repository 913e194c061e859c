"""What chapter 10 states from the benchmark tables (spine.performance), on hand-made tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spine import performance


def test_read_tables_leaves_out_what_was_not_measured(tmp_path):
    pd.DataFrame({"machine": ["box"], "matmul_gflop_per_s": [80.0]}).to_csv(tmp_path / "machine.csv", index=False)
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "other.csv", index=False)
    tables = performance.read_tables(tmp_path)
    assert list(tables) == ["machine"]
    assert performance.machine(tables) == ("box", 80.0)
    name, peak = performance.machine({})
    assert name == "unknown" and math.isnan(peak)


def test_width_speedup_per_model_and_seconds_per_100_images():
    training = pd.DataFrame({"model": ["A", "B", "A", "B"], "width": [64, 64, 16, 16], "batch": [2, 2, 8, 8],
                             "train_img_per_s": [1.0, 0.5, 12.0, 8.0]})
    s = performance.width_speedup(training)
    assert (s["study_width"], s["study_batch"], s["reduced_width"], s["reduced_batch"]) == (64, 2, 16, 8)
    assert s["speedup_min"] == pytest.approx(12.0) and s["speedup_max"] == pytest.approx(16.0)  # A 12x, B 16x
    assert s["seconds_per_100_min"] == pytest.approx(100.0) and s["seconds_per_100_max"] == pytest.approx(200.0)


def test_inference_verdict_needs_every_task_at_the_target():
    inference = pd.DataFrame({"task": ["binary", "multiclass"], "slices_per_s_b1": [21.0, 38.0],
                              "slices_per_s_b16": [29.0, 43.0]})
    best, verdict = performance.inference_verdict(inference, 25)
    assert best.to_dict() == {"binary": 29.0, "multiclass": 43.0} and verdict == "meet"
    assert performance.inference_verdict(inference, 30)[1] == "miss"
