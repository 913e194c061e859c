"""Bootstrap intervals and paired tests."""

from __future__ import annotations

import itertools
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


# --------------------------------------------------------------------------- sign-flip test, Holm, family verdicts


def brute_force_sign_flip(diff):
    """Every one of the 2**n sign patterns, one by one: the share at least as extreme as observed."""
    import itertools

    observed = abs(np.sum(diff))
    means = [abs(np.dot(signs, diff)) for signs in itertools.product((1, -1), repeat=len(diff))]
    return np.mean(np.asarray(means) >= observed - 1e-12)


@pytest.mark.parametrize("n", [2, 5, 7, 10])
def test_sign_flip_test_equals_brute_force_and_scipy(n):
    from scipy import stats as sps

    a, b = dice_like(n, seed=n), dice_like(n, seed=100 + n)
    exact = stats.sign_flip_test(a - b)
    assert exact == pytest.approx(brute_force_sign_flip(a - b), abs=1e-12)
    reference = sps.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                     permutation_type="samples", n_resamples=np.inf, alternative="two-sided")
    assert exact == pytest.approx(reference.pvalue, abs=1e-12)


def test_sign_flip_test_with_ties_zeros_and_its_floor():
    diff = np.array([1.0, 1.0, 2.0, -1.0, 0.0, 3.0])  # ties and a zero: exact counts still hold
    assert stats.sign_flip_test(diff) == pytest.approx(brute_force_sign_flip(diff))
    assert stats.sign_flip_test(np.full(7, 0.01)) == pytest.approx(2 / 2 ** 7) == stats.smallest_p(7)
    assert stats.smallest_p(7) == pytest.approx(0.015625) and stats.smallest_p(0) == 1.0
    assert stats.sign_flip_test(np.zeros(4)) == 1.0 and math.isnan(stats.sign_flip_test([np.nan]))
    assert stats.sign_flip_test([0.1, -0.1]) == 1.0  # mean exactly 0: every pattern is as extreme


def test_sign_flip_test_at_n_31_is_exact_and_beyond_the_limit_monte_carlo():
    """Exact at 31 pairs (the comparison's patients): SciPy's exact enumeration of 2**31 patterns is
    too slow, so compare with the normal approximation; beyond EXACT_PAIRS the seeded Monte-Carlo
    p agrees with the exact one within its sampling error and repeats itself."""
    diff = dice_like(31, seed=11, mean=0.004, sd=0.02)
    exact = stats.sign_flip_test(diff)
    z = abs(diff.sum()) / np.sqrt((diff ** 2).sum())  # the sign-flip null: sum has variance sum d**2
    from scipy.stats import norm

    assert exact == pytest.approx(2 * norm.sf(z), abs=0.02)
    many = dice_like(stats.EXACT_PAIRS + 2, seed=12, mean=0.004, sd=0.02)
    monte_carlo = stats.sign_flip_test(many, n_resamples=20_000, seed=3)
    assert monte_carlo == stats.sign_flip_test(many, n_resamples=20_000, seed=3)
    z = abs(many.sum()) / np.sqrt((many ** 2).sum())
    assert monte_carlo == pytest.approx(2 * norm.sf(z), abs=0.02)


def test_holm_by_hand():
    # m = 4: sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5; NaN kept, not counted
    np.testing.assert_allclose(stats.holm([0.03, 0.01, np.nan, 0.5, 0.02]), [0.06, 0.04, np.nan, 0.5, 0.06])
    np.testing.assert_allclose(stats.holm([0.04]), [0.04])
    np.testing.assert_allclose(stats.holm([0.3, 0.4]), [0.6, 0.6])
    np.testing.assert_allclose(stats.holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1
    assert stats.holm([]).size == 0


def test_paired_test_reports_the_sign_flip_p_beside_wilcoxon():
    a = dice_like(9, seed=13)
    result = stats.paired_test(a, a - np.linspace(0.01, 0.05, 9))
    assert result["sign_flip_p"] == pytest.approx(2 / 2 ** 9) and result["p_value"] == pytest.approx(2 / 2 ** 9)
    assert result["smallest_p"] == pytest.approx(2 / 2 ** 9)


def _units(values):
    return pd.Series(values, index=[str(k) for k in range(1, len(values) + 1)], dtype=float)


def test_compare_family_gives_a_verdict_only_when_every_check_agrees():
    shift = _units([0.02, 0.03, 0.025, 0.015, 0.02, 0.03, 0.02, 0.025, 0.03, 0.02, 0.015, 0.02])
    tied = _units([0.01, -0.01, 0.02, -0.02, 0.005, -0.005, 0.01, -0.01, 0.0, 0.003, -0.003, 0.001])
    family = stats.compare_family({"A - B": shift, "A - C": -shift, "A - D": tied})
    assert family.loc["A - B", "verdict"] == "ahead" and family.loc["A - C", "verdict"] == "behind"
    assert family.loc["A - D", "verdict"] == "not distinguishable"
    assert (family["family"] == 3).all()
    # the 12 differences of one sign: exact p = 2 / 2**12, times 3 (and 2) by Holm
    assert family.loc["A - B", "sign_flip_p"] == pytest.approx(2 / 2 ** 12)
    assert family.loc["A - B", "holm_p"] == pytest.approx(3 * 2 / 2 ** 12)
    assert family.loc["A - B", "influential"] == "" and family.loc["A - B", "without"] is None
    # leave-one-out means by hand: (sum - d_k) / (n - 1)
    assert family.loc["A - B", "loo_min"] == pytest.approx((shift.sum() - 0.03) / 11)
    assert family.loc["A - B", "loo_max"] == pytest.approx((shift.sum() - 0.015) / 11)


def test_compare_family_names_the_one_patient_an_interval_rests_on():
    """Fourteen patients with no difference to speak of and one far behind: the interval excludes 0
    only because of that one (the sign-flip test is not fooled), so it is named."""
    diff = _units([-0.004, 0.003, -0.002, 0.002, -0.003, 0.001, -0.001, -0.002, 0.002, -0.003, 0.001, -0.002, 0.002,
                   -0.001, -0.05])
    row = stats.compare_family({"A - B": diff}).loc["A - B"]
    assert row["ci_high"] < 0 and row["holm_p"] > 0.05
    assert row["influential"] == "15" and row["verdict"] == "not distinguishable"
    mean, low, high, _ = row["without"]
    assert mean == pytest.approx(diff.drop("15").mean()) and low < 0 < high
    assert row["loo_max"] == pytest.approx(mean)


def test_compare_family_withholds_a_verdict_that_one_patient_overturns():
    """Six patients, all ahead: p = 2 / 2**6 < 0.05 and the interval excludes 0, but without any one
    of them five are left, whose smallest possible p (0.0625) is not below 0.05: every patient
    overturns it, and the one that moves the mean most (the largest difference) is named."""
    diff = _units([0.02, 0.03, 0.025, 0.015, 0.02, 0.06])
    row = stats.compare_family({"A - B": diff}).loc["A - B"]
    assert row["holm_p"] == pytest.approx(2 / 2 ** 6) and row["ci_low"] > 0
    assert row["influential"] == "6" and row["verdict"] == "not distinguishable"
    assert row["without"][3] == pytest.approx(2 / 2 ** 5)


def test_compare_family_floor_says_when_no_verdict_is_possible():
    diff = _units([0.02, 0.03, 0.025, 0.015, 0.02, 0.03])  # 6 patients, all one sign
    family = stats.compare_family({"A - B": diff, "A - C": diff + 0.01})
    assert family["smallest_holm_p"].tolist() == pytest.approx([2 * 2 / 2 ** 6] * 2)  # 0.0625 >= 0.05
    assert (family["verdict"] == "not distinguishable").all()
    assert stats.compare_family({}).empty


# --------------------------------------------------------------------------- clusters


def test_cluster_bootstrap_resamples_whole_clusters():
    values = dice_like(15, seed=14)
    # each value repeated 3 times as one cluster: the same interval as the 15 values alone
    repeated, clusters = np.repeat(values, 3), np.repeat(np.arange(15), 3)
    assert stats.cluster_bootstrap_ci(repeated, clusters) == pytest.approx(stats.bootstrap_ci(values, np.mean), rel=1e-9)
    # treating the 45 values as independent makes the interval too narrow
    _, low, high = stats.bootstrap_ci(repeated)
    _, c_low, c_high = stats.cluster_bootstrap_ci(repeated, clusters)
    assert (high - low) < 0.75 * (c_high - c_low)
    # the estimate weighs every value the same: clusters of unequal size
    assert stats.cluster_bootstrap_ci([1.0, 1.0, 0.0, np.nan], ["a", "a", "b", "b"], method="percentile")[0] == \
        pytest.approx(2 / 3)
    assert stats.cluster_bootstrap_ci([0.5, 0.7], ["a", "a"])[1:] == pytest.approx((math.nan, math.nan), nan_ok=True)
    assert stats.cluster_bootstrap_ci([0.5, 0.5, 0.5], ["a", "b", "c"]) == (0.5, 0.5, 0.5)


# --------------------------------------------------------------------------- patients and training seeds


def _seeds(values, seeds=3, spread=0.0, seed=0):
    """One row per patient ("1", "2", ...), ``seeds`` columns: each value plus a seed effect shared
    by all patients (one trained model serves them all), drawn with SD ``spread``."""
    effects = np.random.default_rng(seed).normal(0, spread, size=seeds)
    return pd.DataFrame(np.add.outer(np.asarray(values, dtype=float), effects), index=_units(values).index)


def test_seed_bootstrap_without_seed_variation_is_the_patient_bootstrap():
    """Every seed gives the same value: the interval is the percentile bootstrap over patients
    (scipy.stats.bootstrap, up to Monte Carlo error)."""
    from scipy.stats import bootstrap

    a, b = dice_like(20, seed=15), dice_like(20, seed=16)
    folds = pd.Series(np.arange(20) % 5, index=_units(a).index)
    result = stats.seed_bootstrap(_seeds(a), _seeds(b, seeds=2), folds, n_resamples=20_000)
    reference = bootstrap((a - b,), np.mean, n_resamples=20_000, method="percentile",
                          rng=np.random.default_rng(1)).confidence_interval
    width = reference.high - reference.low
    assert result["mean_diff"] == pytest.approx(np.mean(a - b))
    assert (result["n"], result["seeds_a"], result["seeds_b"]) == (20, 3, 2)
    assert result["ci_low"] == pytest.approx(reference.low, abs=0.03 * width)
    assert result["ci_high"] == pytest.approx(reference.high, abs=0.03 * width)


def _exact_moments(a, b, fold_of):
    """Mean and variance of the two-level bootstrap's mean difference, by enumerating every draw:
    each ordered draw of the patients, and per fold and model each ordered draw of its seeds."""
    n, folds = len(a), max(fold_of) + 1

    def seed_means(table):  # every way of drawing the seeds of every fold: per-patient seed means
        draws = itertools.product(itertools.product(range(table.shape[1]), repeat=table.shape[1]), repeat=folds)
        return [np.array([table[p, list(draw[fold_of[p]])].mean() for p in range(n)]) for draw in draws]

    outcomes = [(va - vb)[list(chosen)].mean() for va in seed_means(a) for vb in seed_means(b)
                for chosen in itertools.product(range(n), repeat=n)]
    return np.mean(outcomes), np.var(outcomes)


def test_seed_bootstrap_matches_the_enumerated_two_level_bootstrap():
    """Three patients in two folds, two seeds per model: the resampled differences have the mean and
    variance of the exact two-level bootstrap (every draw enumerated, 6912 equally likely ones), which
    a seed draw per patient instead of per fold would not give (its variance is far smaller here)."""
    a = np.array([[0.90, 0.78], [0.86, 0.74], [0.80, 0.78]])  # seed 1 worse on both patients of fold 0
    b = np.array([[0.82, 0.83], [0.80, 0.81], [0.78, 0.74]])
    fold_of = [0, 0, 1]
    mean, variance = _exact_moments(a, b, fold_of)
    draws = stats.seed_resamples(pd.DataFrame(a), pd.DataFrame(b), pd.Series(fold_of), n_resamples=200_000)
    assert draws.mean() == pytest.approx(mean, abs=3 * math.sqrt(variance / draws.size))
    assert draws.var() == pytest.approx(variance, rel=0.02)
    _, per_patient = _exact_moments(a, b, [0, 1, 2])  # each patient its own draw
    assert abs(per_patient - variance) > 0.2 * variance


def test_seed_bootstrap_widens_where_the_seeds_disagree():
    """Every patient's seed means differ by 0.01: over patients alone the interval is 0.01 to 0.01,
    but the seeds move every patient's value together by far more, so the interval over patients and
    seeds is wide and holds 0; and the seeds' spread adds to a patient spread."""
    base = dice_like(25, seed=17)
    folds = pd.Series(np.arange(25) % 5, index=_units(base).index)
    a, b = _seeds(base + 0.01, spread=0.1, seed=1), _seeds(base, spread=0.1, seed=2)
    a -= a.mean(axis=1).to_numpy()[:, None] - (base + 0.01)[:, None]  # the seed effects average to 0
    b -= b.mean(axis=1).to_numpy()[:, None] - base[:, None]
    assert stats.bootstrap_ci(stats.seed_means_difference(a, b)) == pytest.approx((0.01, 0.01, 0.01))
    result = stats.seed_bootstrap(a, b, folds)
    assert result["mean_diff"] == pytest.approx(0.01)
    assert result["ci_low"] < 0 < result["ci_high"] and result["ci_high"] - result["ci_low"] > 0.03
    noisy = dice_like(25, seed=18, sd=0.02)
    alone = stats.seed_bootstrap(_seeds(base + noisy), _seeds(base), folds)
    both = stats.seed_bootstrap(_seeds(base + noisy, spread=0.02), _seeds(base, spread=0.02, seed=3), folds)
    assert both["ci_high"] - both["ci_low"] > 1.2 * (alone["ci_high"] - alone["ci_low"])


def test_seed_bootstrap_drops_incomplete_patients_and_needs_their_folds():
    a, b = _seeds([0.9, 0.8, 0.85]), _seeds([0.85, 0.8, 0.8])
    a.iloc[1, 2] = np.nan
    result = stats.seed_bootstrap(a, b, pd.Series([0, 1, 1], index=a.index))
    assert result["n"] == 2 and result["mean_diff"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="no fold"):
        stats.seed_bootstrap(a, b, pd.Series([0], index=["1"]))


def test_compare_family_over_seeds_keeps_a_verdict_only_where_the_seeds_agree():
    """Twelve patients 0.02 ahead of B and of C in their seed means: over patients alone both are
    ahead; B's seeds agree, C's seeds swing by 0.1, so only the verdict against B stands."""
    base = dice_like(12, seed=19)
    folds = pd.Series(np.arange(12) % 3, index=_units(base).index)
    shift = _units([0.02, 0.03, 0.025, 0.015, 0.02, 0.03, 0.02, 0.025, 0.03, 0.02, 0.015, 0.02]).to_numpy()
    reference = _seeds(base + shift)
    swinging = _seeds(base, spread=0.1, seed=4)
    swinging -= swinging.mean(axis=1).to_numpy()[:, None] - base[:, None]
    family = stats.compare_family_over_seeds({"A - B": (reference, _seeds(base)), "A - C": (reference, swinging)},
                                             folds)
    assert family["verdict_over_patients"].tolist() == ["ahead", "ahead"]
    assert family.loc["A - B", "verdict"] == "ahead" and family.loc["A - C", "verdict"] == "not distinguishable"
    assert family.loc["A - B", "seed_ci_low"] > 0 and family.loc["A - C", "seed_ci_low"] < 0
    assert family.loc["A - C", "mean_diff"] == pytest.approx(shift.mean()) and (family["seeds"] == 3).all()
    assert family.loc["A - B", "holm_p"] == pytest.approx(2 * 2 / 2 ** 12)
