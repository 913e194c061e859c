"""Uncertainty of test-set figures: bootstrap intervals, paired tests and the verdict of a family of them.

The unit of resampling is the test patient (one value per patient, the mean over its slices):
pixels of one image are not independent, nor are the slices of one patient, patients are. Records
of the first format, without per-patient tables, resample their test images instead.

Conventions (quoted by the book):

- :func:`bootstrap_ci`: NaN values (undefined metrics) are dropped first; the interval is the
  bias-corrected and accelerated (**BCa**) bootstrap interval of ``scipy.stats.bootstrap``
  (``method="BCa"``; ``"percentile"`` and ``"basic"`` are accepted), 2000 resamples, seeded, so
  the result is reproducible. Degenerate cases: fewer than two values -> (estimate, NaN, NaN);
  all values equal -> (value, value, value). :func:`cluster_bootstrap_ci` is the same interval of
  a mean over values that come in clusters (the slices of one series), resampling whole clusters.
- :func:`paired_test`: pairs with a NaN on either side are dropped; the mean difference ``a - b``
  with its BCa interval; the two-sided **sign-flip permutation test** of that mean
  (:func:`sign_flip_test`: the test of the interval's own estimand, exact up to
  ``EXACT_PAIRS`` pairs); and, beside it, the two-sided Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, zero differences dropped: ``zero_method="wilcox"``; when every
  difference is zero there is no evidence of a difference and ``p = 1.0``, where SciPy gives NaN).
  Neither p can fall below :func:`smallest_p` (``2 / 2 ** n`` with n pairs: 0.016 at n = 7).
- :func:`compare_family`: a family of paired comparisons (a chapter's), their sign-flip p-values
  Holm-adjusted (:func:`holm`), every patient left out in turn, and one verdict per comparison:
  ``"ahead"`` or ``"behind"`` only when the Holm-adjusted p < ``alpha``, the interval excludes 0
  and no single patient left out changes either; ``"not distinguishable"`` otherwise.
- :func:`seed_bootstrap`: two models each trained with several seeds in every fold; each patient's
  value is the mean over a model's seeds, and the interval is a two-level percentile bootstrap
  (the seeds of each fold and model, then the patients), so it holds the variation between training
  runs as well as between patients. :func:`compare_family_over_seeds` keeps a verdict of
  :func:`compare_family` (of the seed means) only where that interval excludes 0 too.
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
EXACT_PAIRS = 40  # sign-flip tests enumerate all 2**n sign patterns up to this many pairs
MONTE_CARLO_RESAMPLES = 100_000  # random sign patterns (seeded) beyond it
VERDICTS = ("ahead", "behind", "not distinguishable")
# The metrics given a bootstrap interval over patients, in a record and in a grid's table.
INTERVAL_KEYS = ("dice", "iou", "miou", "hd95", "assd", "hd95_mm", "assd_mm")


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


def _check(method: str, confidence: float) -> None:
    if method not in BOOTSTRAP_METHODS:
        raise ConfigError(f"unknown bootstrap method {method!r}; valid: {', '.join(BOOTSTRAP_METHODS)}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence}")


def _interval(data: tuple, statistic, n_resamples, confidence, seed, method, **options) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        result = sps.bootstrap(data, statistic, n_resamples=int(n_resamples), confidence_level=confidence,
                               method=method, rng=np.random.default_rng(seed), **options)
    low, high = result.confidence_interval
    return float(low), float(high)


def bootstrap_ci(values, statistic=np.nanmean, n_resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0, method: str = "BCa") -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic`` of the values and its bootstrap confidence interval.

    ``values``: one number per unit, a test patient (NaNs are dropped). ``method``: ``"BCa"``
    (default), ``"percentile"`` or ``"basic"``, as in ``scipy.stats.bootstrap``; ``seed`` fixes the
    resamples.
    """
    _check(method, confidence)
    values = _finite(values)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    estimate = float(statistic(values))
    if values.size < 2:
        return estimate, math.nan, math.nan
    if np.all(values == values[0]):
        return estimate, estimate, estimate
    return (estimate, *_interval((values,), statistic, n_resamples, confidence, seed, method,
                                 vectorized=_takes_axis(statistic)))


def _pooled_mean(sums, counts, axis=-1):
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def cluster_bootstrap_ci(values, clusters, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                         method: str = "BCa") -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` (each value weighs the same) and its bootstrap
    interval resampling whole ``clusters`` (one label per value, e.g. the series a slice comes
    from), so that values of one cluster, which are not independent, are never split. NaN values
    are dropped; degenerate cases as in :func:`bootstrap_ci`, with clusters as the units."""
    _check(method, confidence)
    frame = pd.DataFrame({"value": np.asarray(values, dtype=float).ravel(), "cluster": np.asarray(clusters).ravel()})
    frame = frame.dropna(subset=["value"])
    if frame.empty:
        return math.nan, math.nan, math.nan
    grouped = frame.groupby("cluster", sort=False)["value"]
    sums, counts = grouped.sum().to_numpy(), grouped.size().to_numpy(dtype=float)
    estimate = float(_pooled_mean(sums, counts))
    if sums.size < 2:
        return estimate, math.nan, math.nan
    if np.all(frame["value"] == frame["value"].iloc[0]):
        return estimate, estimate, estimate
    return (estimate, *_interval((sums, counts), _pooled_mean, n_resamples, confidence, seed, method,
                                 paired=True, vectorized=True))


# --------------------------------------------------------------------------- paired tests


def smallest_p(n: int) -> float:
    """The smallest two-sided p-value an exact sign-flip or Wilcoxon signed-rank test can give with
    ``n`` non-zero paired differences: ``2 / 2 ** n`` (every difference of one sign), e.g. 0.016 at n = 7."""
    return min(1.0, 2.0 / 2.0 ** n)


def _sign_sums(values: np.ndarray) -> np.ndarray:
    """The sum of ``values`` under each of the ``2 ** len(values)`` sign patterns."""
    sums = np.zeros(1)
    for value in values:
        sums = np.concatenate([sums + value, sums - value])
    return sums


def sign_flip_test(diff, n_resamples: int = MONTE_CARLO_RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of the mean difference.

    Under the null hypothesis that the two models are exchangeable on each unit, each difference is
    as likely to have either sign; p is the share of the ``2 ** n`` sign patterns whose mean is at least
    as far from 0 as the observed one (the observed pattern included). Exact up to ``EXACT_PAIRS``
    differences (the sums of two halves' patterns, matched by sorting), else from ``n_resamples``
    random patterns drawn with ``seed``, as ``(1 + hits) / (1 + n_resamples)``. NaNs are dropped;
    NaN with no difference. As ``scipy.stats.permutation_test(..., permutation_type="samples")``.
    """
    diff = _finite(diff)
    if diff.size == 0:
        return math.nan
    tolerance = 1e-9 * np.abs(diff).sum()
    observed = abs(diff.sum()) - tolerance
    if observed <= 0:
        return 1.0
    if diff.size > EXACT_PAIRS:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(int(n_resamples), diff.size))
        hits = np.count_nonzero(np.abs(signs @ diff) >= observed)
        return float((1 + hits) / (1 + n_resamples))
    half = diff.size // 2
    first, second = _sign_sums(diff[:half]), np.sort(_sign_sums(diff[half:]))
    above = second.size - np.searchsorted(second, observed - first, side="left")
    below = np.searchsorted(second, -observed - first, side="right")
    return float((above.sum() + below.sum()) / 2.0 ** diff.size)


def _difference(diff: np.ndarray, confidence: float, seed: int, n_resamples: int = 2000) -> dict:
    """The mean of paired differences with its BCa interval, its sign-flip p and that p's floor."""
    result = {"n": int(diff.size), "mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan,
              "sign_flip_p": math.nan, "smallest_p": smallest_p(np.count_nonzero(diff))}
    if diff.size:
        mean, low, high = bootstrap_ci(diff, np.mean, n_resamples, confidence, seed)
        result.update(mean_diff=mean, ci_low=low, ci_high=high, sign_flip_p=sign_flip_test(diff, seed=seed))
    return result


def paired_test(a, b, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Compare two models on the same units (``a[i]`` and ``b[i]`` from patient ``i``).

    Returns ``n`` (pairs used), ``n_dropped`` (pairs with a NaN), ``mean_diff`` (mean of ``a - b``)
    with ``ci_low``, ``ci_high`` (BCa bootstrap), ``sign_flip_p`` (:func:`sign_flip_test` of that
    mean), ``smallest_p`` (the floor of both p-values at this ``n``, :func:`smallest_p`),
    ``median_diff``, ``statistic`` and ``p_value`` of the two-sided Wilcoxon signed-rank test
    (``p_value = 1.0`` when all differences are zero; NaN with no pairs).
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} vs {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    result = {"n_dropped": int((~keep).sum()), **_difference(diff, confidence, seed, n_resamples),
              "median_diff": math.nan, "statistic": math.nan, "p_value": math.nan,
              "test": "wilcoxon signed-rank (two-sided)", "confidence": confidence}
    if diff.size == 0:
        return result
    result["median_diff"] = float(np.median(diff))
    if np.all(diff == 0):
        result.update(statistic=0.0, p_value=1.0)
        return result
    test = sps.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
    result.update(statistic=float(test.statistic), p_value=float(test.pvalue))
    return result


# --------------------------------------------------------------------------- a family of comparisons


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaNs kept, and not counted in the family):
    the k-th smallest of m becomes max over j <= k of (m - j + 1) * p_(j), capped at 1."""
    p = np.asarray(p_values, dtype=float).ravel()
    adjusted = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    steps = (order.size - np.arange(order.size)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps)) if order.size else steps
    return adjusted


def _family(diffs: dict[str, pd.Series], alpha: float, confidence: float, seed: int, test) -> pd.DataFrame:
    """Each comparison's ``test``, Holm-adjusted within the family, the side of 0 its interval
    lies on (``"ahead"``, ``"behind"``, ``""`` where it holds 0) and its evidence: that side where
    the adjusted p < ``alpha`` too, else ``""``."""
    rows = pd.DataFrame({name: test(d.to_numpy(), confidence, seed) for name, d in diffs.items()}).T
    rows["holm_p"] = holm(rows["sign_flip_p"].astype(float))
    rows["interval_side"] = ["ahead" if low > 0 else "behind" if high < 0 else ""
                             for low, high in zip(rows["ci_low"], rows["ci_high"])]
    rows["evidence"] = [side if p < alpha else "" for side, p in zip(rows["interval_side"], rows["holm_p"])]
    return rows


def _outcome(row) -> tuple:
    return row["evidence"], row["interval_side"]


def compare_family(diffs: dict[str, pd.Series], alpha: float = 0.05, confidence: float = 0.95,
                   seed: int = 0) -> pd.DataFrame:
    """The verdicts of a family of paired comparisons, one row per comparison (by name).

    ``diffs``: per comparison, the paired differences (reference minus other) by unit (patient;
    NaN where either value is missing). Columns: those of :func:`paired_test`, ``holm_p`` (the
    sign-flip p Holm-adjusted over the family), ``family`` (its size), ``smallest_holm_p`` (the
    floor of ``holm_p`` at this ``n``: ``family * smallest_p``, at least ``alpha`` means no verdict
    is possible), ``loo_min`` and ``loo_max`` (the mean difference with each unit left out in turn),
    ``influential`` (the unit whose removal, from every comparison of the family, changes whether the
    interval excludes 0 or whether the adjusted p < ``alpha``, the one that moves the mean most;
    ``""`` if no unit does), ``without`` (that comparison without it: ``(mean, low, high, holm_p)``)
    and ``verdict`` (``"ahead"``, ``"behind"`` or ``"not distinguishable"``: a verdict only where
    the evidence holds and no ``influential`` unit exists).
    """
    diffs = {name: d.dropna() for name, d in diffs.items()}
    if not diffs:
        return pd.DataFrame()
    full = _family(diffs, alpha, confidence, seed,
                   lambda d, c, s: paired_test(d, np.zeros_like(d), confidence=c, seed=s))
    units = list(dict.fromkeys(u for d in diffs.values() for u in d.index))
    without = {u: _family({k: d.drop(u, errors="ignore") for k, d in diffs.items()}, alpha, confidence, seed,
                          _difference) for u in units}
    rows = []
    for name, row in full.iterrows():
        d = diffs[name]
        loo = {u: float(without[u].loc[name, "mean_diff"]) for u in d.index}
        changed = [u for u in d.index if _outcome(without[u].loc[name]) != _outcome(row)]
        influential = max(changed, key=lambda u: abs(d[u] - row["mean_diff"])) if changed else None
        gone = without[influential].loc[name] if influential is not None else None
        rows.append({"loo_min": min(loo.values(), default=math.nan), "loo_max": max(loo.values(), default=math.nan),
                     "influential": "" if influential is None else influential,
                     "without": None if gone is None else
                     tuple(float(gone[k]) for k in ("mean_diff", "ci_low", "ci_high", "holm_p")),
                     "verdict": row["evidence"] if row["evidence"] and influential is None else VERDICTS[2]})
    out = pd.concat([full.drop(columns=["evidence", "interval_side"]),
                     pd.DataFrame(rows, index=full.index)], axis=1)
    out["family"] = len(full)
    out["smallest_holm_p"] = np.minimum(1.0, out["family"] * out["smallest_p"].astype(float))
    return out


# --------------------------------------------------------------------------- patients and training seeds


def _complete(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The patients both tables hold with a value for every seed, in the same order."""
    a, b = a.dropna(), b.dropna()
    patients = a.index.intersection(b.index, sort=False)
    return a.loc[patients], b.loc[patients]


def seed_means_difference(a: pd.DataFrame, b: pd.DataFrame) -> pd.Series:
    """Per patient, the mean of model a's seeds minus the mean of model b's (patients with every seed
    of both only)."""
    a, b = _complete(a, b)
    return a.mean(axis=1) - b.mean(axis=1)


def _seed_weights(rng, folds: int, seeds: int, n_resamples: int) -> np.ndarray:
    """``(n_resamples, folds, seeds)``: each seed's share of a draw of ``seeds`` seeds with replacement,
    drawn once per fold: one trained model serves every test patient of its fold."""
    draws = rng.integers(0, seeds, size=(n_resamples, folds, seeds))
    return (draws[..., None] == np.arange(seeds)).mean(axis=2)


def seed_resamples(a: pd.DataFrame, b: pd.DataFrame, folds: pd.Series, n_resamples: int = 10_000,
                   seed: int = 0) -> np.ndarray:
    """The mean paired difference of two models under ``n_resamples`` two-level bootstrap draws:
    for every fold and each model, as many of its seeds as it has, with replacement (a fold's
    patients share the draw: they share the trained model), then the patients, with replacement.
    Arguments as :func:`seed_bootstrap`'s (complete patients only)."""
    fold, names = pd.factorize(folds.reindex(a.index))
    if (fold < 0).any():
        raise ValueError(f"no fold for patients {list(a.index[fold < 0])}")
    rng = np.random.default_rng(seed)
    n = len(a)
    patients = rng.multinomial(n, np.full(n, 1 / n), size=int(n_resamples)) / n
    per_patient = [np.einsum("rps,ps->rp", _seed_weights(rng, len(names), t.shape[1], int(n_resamples))[:, fold],
                             t.to_numpy(dtype=float)) for t in (a, b)]
    return (patients * (per_patient[0] - per_patient[1])).sum(axis=1)


def seed_bootstrap(a: pd.DataFrame, b: pd.DataFrame, folds: pd.Series, n_resamples: int = 10_000,
                   confidence: float = 0.95, seed: int = 0) -> dict:
    """The mean paired difference of two models over test patients and training seeds, with a
    two-level bootstrap interval.

    ``a``, ``b``: one row per patient (index), one column per training seed of that model: the
    patient's value from the model trained with that seed in the patient's fold (the seeds of the two
    models need not match); ``folds``: each patient's fold. Patients without every seed of both
    models are dropped. The estimate is the mean over patients of (a's seed mean - b's seed mean);
    the interval the percentile interval of :func:`seed_resamples` (``seed`` fixes the draws). With
    the same value under every seed it is the percentile bootstrap over patients.
    Returns ``n`` (patients), ``seeds_a``, ``seeds_b``, ``mean_diff``, ``ci_low``, ``ci_high``.
    """
    _check("percentile", confidence)
    a, b = _complete(a, b)
    result = {"n": len(a), "seeds_a": a.shape[1], "seeds_b": b.shape[1], "mean_diff": math.nan,
              "ci_low": math.nan, "ci_high": math.nan}
    if len(a):
        tail = (1 - confidence) / 2
        low, high = np.quantile(seed_resamples(a, b, folds, n_resamples, seed), [tail, 1 - tail])
        result.update(mean_diff=float(seed_means_difference(a, b).mean()), ci_low=float(low), ci_high=float(high))
    return result


def compare_family_over_seeds(pairs: dict[str, tuple[pd.DataFrame, pd.DataFrame]], folds: pd.Series,
                              alpha: float = 0.05, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """:func:`compare_family` of each patient's seed-mean difference, with the variation between
    training seeds added to the verdict.

    ``pairs``: per comparison, the two models' values as :func:`seed_bootstrap` takes them (reference
    first); ``folds``: each patient's fold. Adds ``seeds`` (the smaller seed count of the two models),
    ``seed_ci_low`` and ``seed_ci_high`` (:func:`seed_bootstrap`'s interval over patients and seeds),
    ``verdict_over_patients`` (compare_family's) and sets ``verdict`` to it only where that interval
    excludes 0 on the same side, else ``"not distinguishable"``."""
    family = compare_family({name: seed_means_difference(a, b) for name, (a, b) in pairs.items()},
                            alpha, confidence, seed)
    if family.empty:
        return family
    over = pd.DataFrame({name: seed_bootstrap(a, b, folds, confidence=confidence, seed=seed)
                         for name, (a, b) in pairs.items()}).T.loc[family.index]
    family["seeds"] = np.minimum(over["seeds_a"], over["seeds_b"]).astype(int)
    family["seed_ci_low"], family["seed_ci_high"] = over["ci_low"].astype(float), over["ci_high"].astype(float)
    side = ["ahead" if low > 0 else "behind" if high < 0 else "" for low, high in
            zip(family["seed_ci_low"], family["seed_ci_high"])]
    family["verdict_over_patients"] = family["verdict"]
    family["verdict"] = [v if v == s else VERDICTS[2] for v, s in zip(family["verdict"], side)]
    return family
