"""Bootstrap intervals and paired tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spine import stats
from spine.errors import ConfigError


def dice_like(n, seed=0, mean=0.9, sd=0.05):
    return np.clip(np.random.default_rng(seed).normal(mean, sd, size=n), 0, 1)


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_bootstrap_ci_contains_mean_and_narrows_with_n(method):
    small, large = dice_like(20), dice_like(500, seed=1)
    est_s, low_s, high_s = stats.bootstrap_ci(small, method=method)
    est_l, low_l, high_l = stats.bootstrap_ci(large, method=method)
    assert est_s == pytest.approx(small.mean())
    assert low_s < est_s < high_s and low_l < est_l < high_l
    assert (high_l - low_l) < 0.5 * (high_s - low_s)  # width ~ 1/sqrt(n): ratio ~ 0.2
    # the 95% interval of 500 draws around a known mean of 0.9 contains it
    assert low_l < 0.9 < high_l
    # width near the normal-theory value 2 * 1.96 * sd / sqrt(n)
    assert (high_l - low_l) == pytest.approx(2 * 1.96 * large.std(ddof=1) / math.sqrt(500), rel=0.2)


def test_bootstrap_ci_is_reproducible_and_drops_nan():
    values = dice_like(30, seed=2)
    with_nan = np.concatenate([values, [np.nan, np.nan]])
    assert stats.bootstrap_ci(values, seed=3) == stats.bootstrap_ci(values, seed=3)
    assert stats.bootstrap_ci(with_nan, seed=3) == pytest.approx(stats.bootstrap_ci(values, seed=3))


def test_bootstrap_ci_other_statistic_and_degenerate_cases():
    values = dice_like(40, seed=4)
    estimate, low, high = stats.bootstrap_ci(values, statistic=np.median)
    assert estimate == pytest.approx(np.median(values)) and low <= estimate <= high
    estimate, low, high = stats.bootstrap_ci(values, statistic=lambda v: float(np.percentile(v, 10)))
    assert low <= estimate <= high
    assert stats.bootstrap_ci([0.8, 0.8, 0.8]) == pytest.approx((0.8, 0.8, 0.8))
    estimate, low, high = stats.bootstrap_ci([0.7])
    assert estimate == 0.7 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([np.nan]))
    with pytest.raises(ConfigError):
        stats.bootstrap_ci(values, method="studentized")


def test_paired_test_detects_a_clear_shift():
    a = dice_like(40, seed=5)
    b = a - 0.02 + np.random.default_rng(6).normal(0, 0.005, size=40)
    result = stats.paired_test(a, b)
    assert result["n"] == 40 and result["p_value"] < 0.01
    assert result["ci_low"] < 0.02 < result["ci_high"]
    assert result["mean_diff"] == pytest.approx(np.mean(a - b))
    assert stats.paired_test(b, a)["mean_diff"] == pytest.approx(-result["mean_diff"])


def test_paired_test_null_shift_is_not_significant():
    a = dice_like(40, seed=7)
    noise = np.random.default_rng(8).normal(0, 0.01, size=20)
    b = a + np.concatenate([noise, -noise])  # differences symmetric about zero
    result = stats.paired_test(a, b)
    assert result["p_value"] > 0.2
    assert result["ci_low"] < 0 < result["ci_high"]


def test_paired_test_all_zero_differences_and_nan_pairs():
    a = dice_like(10, seed=9)
    result = stats.paired_test(a, a.copy())
    assert result["p_value"] == 1.0 and result["mean_diff"] == 0.0 and result["n"] == 10
    b = a + 0.1
    a_nan = a.copy()
    a_nan[0] = np.nan
    result = stats.paired_test(a_nan, b)
    assert result["n"] == 9 and result["n_dropped"] == 1
    assert result["mean_diff"] == pytest.approx(-0.1)
    assert result["p_value"] < 0.01  # 9 identical-sign differences: exact p = 2 / 2**9
    empty = stats.paired_test([np.nan], [0.5])
    assert empty["n"] == 0 and math.isnan(empty["p_value"])
    with pytest.raises(ValueError):
        stats.paired_test([1, 2], [1])


def test_per_patient_means_by_hand():
    per_image = pd.DataFrame({"image": ["a1", "a2", "a3", "b1", "c1", "c2"],
                              "patient": ["7", "7", "7", "12", "3", "3"],
                              "central": [False, True, False, True, True, False],
                              "dice": [0.9, 0.6, 0.9, 0.5, np.nan, 0.7],
                              "hd": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    table = stats.per_patient_means(per_image)
    assert list(table.columns) == ["patient", "images", "dice", "hd"]  # booleans and names are not averaged
    assert list(table["patient"]) == ["7", "12", "3"]  # first-seen order
    assert list(table["images"]) == [3, 1, 2]
    np.testing.assert_allclose(table["dice"], [0.8, 0.5, 0.7])  # a NaN slice is skipped, not a zero
    np.testing.assert_allclose(table["hd"], [2.0, 4.0, 5.5])
