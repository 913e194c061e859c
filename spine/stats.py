"""Uncertainty of test-set figures: bootstrap confidence intervals and paired model comparisons.

The unit of resampling is the test image (one value per image, e.g. its Dice): pixels of one
image are not independent, images are (to a first approximation; slices of one patient are
not, so resample patients when the values are per-patient means).

Conventions (quoted by the book):

- :func:`bootstrap_ci`: NaN values (undefined metrics) are dropped first; the interval is the
  bias-corrected and accelerated (**BCa**) bootstrap interval of ``scipy.stats.bootstrap``
  (``method="BCa"``; ``"percentile"`` and ``"basic"`` are accepted), 2000 resamples, seeded, so
  the result is reproducible. Degenerate cases: fewer than two values -> (estimate, NaN, NaN);
  all values equal -> (value, value, value).
- :func:`paired_test`: pairs with a NaN on either side are dropped; the two-sided Wilcoxon
  signed-rank test (``scipy.stats.wilcoxon``, zero differences dropped: ``zero_method="wilcox"``)
  of the paired differences ``a - b``; when every difference is zero there is no evidence of a
  difference and ``p_value = 1.0`` (SciPy would return NaN). The mean difference comes with a
  bootstrap CI as above.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from spine.errors import ConfigError

BOOTSTRAP_METHODS = ("BCa", "percentile", "basic")


def per_patient_means(per_image: pd.DataFrame, patient: str = "patient") -> pd.DataFrame:
    """One row per patient: the NaN-skipping mean of every numeric column over that patient's
    images, and ``images``, how many there were. Slices of one patient are near-duplicates, so the
    patient, not the image, is the unit of intervals and paired tests."""
    numeric = per_image.select_dtypes("number").columns.drop(patient, errors="ignore")
    grouped = per_image.groupby(per_image[patient].astype(str), sort=False)
    means = grouped[numeric].mean()
    means.insert(0, "images", grouped.size())
    return means.rename_axis(patient).reset_index()


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[~np.isnan(values)]


def _takes_axis(statistic) -> bool:
    try:
        return "axis" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):
        return False


def bootstrap_ci(values, statistic=np.nanmean, n_resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0, method: str = "BCa") -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic`` of the values and its bootstrap confidence interval.

    ``values``: one number per test image (NaNs are dropped). ``method``: ``"BCa"`` (default),
    ``"percentile"`` or ``"basic"``, as in ``scipy.stats.bootstrap``; ``seed`` fixes the resamples.
    """
    if method not in BOOTSTRAP_METHODS:
        raise ConfigError(f"unknown bootstrap method {method!r}; valid: {', '.join(BOOTSTRAP_METHODS)}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence}")
    values = _finite(values)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    estimate = float(statistic(values))
    if values.size < 2:
        return estimate, math.nan, math.nan
    if np.all(values == values[0]):
        return estimate, estimate, estimate
    vectorized = _takes_axis(statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        result = sps.bootstrap((values,), statistic, n_resamples=int(n_resamples),
                               confidence_level=confidence, method=method,
                               vectorized=vectorized, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return estimate, float(low), float(high)


def paired_test(a, b, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Compare two models on the same images (``a[i]`` and ``b[i]`` from image ``i``).

    Returns ``n`` (pairs used), ``n_dropped`` (pairs with a NaN), ``mean_diff`` (mean of ``a - b``)
    with ``ci_low``, ``ci_high`` (BCa bootstrap), ``median_diff``, ``statistic`` and ``p_value``
    of the two-sided Wilcoxon signed-rank test (``p_value = 1.0`` when all differences are zero;
    NaN with no pairs).
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} vs {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    n = int(diff.size)
    result = {"n": n, "n_dropped": int((~keep).sum()), "mean_diff": math.nan, "ci_low": math.nan,
              "ci_high": math.nan, "median_diff": math.nan, "statistic": math.nan, "p_value": math.nan,
              "test": "wilcoxon signed-rank (two-sided)", "confidence": confidence}
    if n == 0:
        return result
    mean, low, high = bootstrap_ci(diff, np.mean, n_resamples, confidence, seed)
    result.update(mean_diff=mean, ci_low=low, ci_high=high, median_diff=float(np.median(diff)))
    if np.all(diff == 0):
        result.update(statistic=0.0, p_value=1.0)
        return result
    test = sps.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
    result.update(statistic=float(test.statistic), p_value=float(test.pvalue))
    return result
