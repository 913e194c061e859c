"""Metrics against hand-computed values, an independent brute-force surface distance, medpy,
and properties (symmetry, identity, translation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from medpy.metric import binary as medpy  # a test dependency: without it the reference check must fail, not skip
from scipy import ndimage
from scipy.spatial.distance import cdist

from spine import metrics


def square(shape, top, left, size, value=1):
    out = np.zeros(shape, np.uint8)
    out[top:top + size, left:left + size] = value
    return out


def blobs(seed, shape, sigma=2.0, threshold=0.6):
    """Random smooth blobs: smoothed noise above a quantile."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return (noise > np.quantile(noise, threshold)).astype(np.uint8)


def brute_force_distances(a, b, spacing):
    """Independent reference: boundary by explicit face-neighbour test, distances by cdist."""
    def boundary_points(mask):
        mask = np.asarray(mask, bool)
        padded = np.pad(mask, 1, constant_values=False)
        inner = np.ones_like(mask)
        for axis in range(mask.ndim):
            for step in (-1, 1):
                shifted = np.roll(padded, step, axis=axis)
                inner &= shifted[tuple(slice(1, -1) for _ in range(mask.ndim))]
        return np.argwhere(mask & ~inner) * np.asarray(spacing, float)

    pa, pb = boundary_points(a), boundary_points(b)
    pairwise = cdist(pa, pb)
    union = np.concatenate([pairwise.min(axis=1), pairwise.min(axis=0)])
    return {"hd": union.max(), "hd95": np.percentile(union, 95), "assd": union.mean()}


# --------------------------------------------------------------------------- hand-computed

def test_shifted_squares_overlap_and_distance_by_hand():
    true = square((20, 20), 2, 2, 10)
    pred = square((20, 20), 2, 5, 10)  # shifted 3 px along x: overlap 10 x 7 = 70 px
    values = metrics.image_metrics(true, pred, 2)
    assert values["dice"] == pytest.approx(2 * 70 / (100 + 100))
    assert values["f1"] == values["dice"]
    assert values["iou"] == pytest.approx(70 / 130)
    assert values["fg_iou"] == values["iou"]
    assert values["precision"] == pytest.approx(0.7)
    assert values["recall"] == pytest.approx(0.7)
    assert values["accuracy"] == pytest.approx((400 - 60) / 400)
    background_iou = (400 - 130) / (400 - 70)  # TP: 270 px background in both; union 330
    assert values["miou"] == pytest.approx((background_iou + 70 / 130) / 2)
    assert values["hd"] == pytest.approx(3.0)
    assert values["hd95"] == pytest.approx(3.0)
    assert "hd_mm" not in values


def test_anisotropic_spacing_in_mm():
    true = square((30, 30), 5, 5, 10)
    along_x = square((30, 30), 5, 9, 10)  # 4 px along x
    along_y = square((30, 30), 9, 5, 10)  # 4 px along y
    spacing = (2.0, 0.5)  # (sy, sx) in mm
    assert metrics.image_metrics(true, along_x, 2, spacing)["hd_mm"] == pytest.approx(4 * 0.5)
    values = metrics.image_metrics(true, along_y, 2, spacing)
    assert values["hd_mm"] == pytest.approx(4 * 2.0)
    assert values["hd"] == pytest.approx(4.0)  # pixel figures stay in pixels


def test_single_pixels_give_exact_distances():
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    a[0, 0], b[3, 4] = 1, 1
    for key in ("hd", "hd95", "assd"):
        assert metrics.distance_metrics(a, b)[key] == pytest.approx(5.0)
        assert metrics.distance_metrics(a, b, spacing=(2.0, 0.5))[key] == pytest.approx(math.hypot(6, 2))


def test_nested_squares_hausdorff_is_the_corner_distance():
    outer = square((30, 30), 5, 5, 20)
    inner = square((30, 30), 8, 8, 14)  # inset 3 px on every side
    values = metrics.distance_metrics(outer, inner)
    assert values["hd"] == pytest.approx(3 * math.sqrt(2))  # outer corner to inner corner
    assert metrics.dice(outer, inner) == pytest.approx(2 * 196 / (400 + 196))


def test_surface_is_face_connected_boundary():
    mask = square((7, 7), 1, 1, 5)
    boundary = metrics.surface(mask)
    expected = mask.astype(bool).copy()
    expected[2:5, 2:5] = False
    np.testing.assert_array_equal(boundary, expected)
    # A mask touching the image edge has its boundary there (the border counts as outside).
    assert metrics.surface(np.ones((4, 4))).sum() == 12


def test_multiclass_per_structure_values():
    true = np.zeros((40, 40), np.uint8)
    true[5:15, 5:15] = 1   # vertebra
    true[20:25, 5:15] = 2  # disc
    true[5:35, 25:30] = 3  # canal
    pred = true.copy()
    pred[pred == 2] = 0
    pred[22:27, 5:15] = 2  # disc shifted 2 px down
    values = metrics.image_metrics(true, pred, 4, spacing=(0.5, 0.5))
    assert values["dice_vertebra"] == 1.0 and values["dice_canal"] == 1.0
    assert values["dice_disc"] == pytest.approx(2 * 30 / 100)
    assert values["iou_disc"] == pytest.approx(30 / 70)
    assert values["hd_vertebra"] == 0.0 and values["hd_canal"] == 0.0
    assert values["hd_disc"] == pytest.approx(2.0)
    assert values["hd_mm_disc"] == pytest.approx(1.0)
    assert values["hd"] == pytest.approx(2.0 / 3)  # mean over the three structures
    assert values["dice"] == pytest.approx((1 + 0.6 + 1) / 3)  # macro over foreground classes
    ious = [values[f"iou_{name}"] for name in ("background", "vertebra", "disc", "canal")]
    assert values["miou"] == pytest.approx(np.mean(ious))
    assert values["fg_iou"] == pytest.approx(np.mean(ious[1:]))
    assert values["accuracy"] == pytest.approx(1 - 40 / 1600)  # 20 px missed + 20 px spurious


def test_structure_absent_from_both_is_perfect_overlap_and_nan_distance():
    true = square((20, 20), 2, 2, 6, value=1)
    true[10:14, 2:8] = 2  # no canal anywhere
    values = metrics.image_metrics(true, true.copy(), "multiclass")
    assert values["dice_canal"] == 1.0 and values["recall_canal"] == 1.0
    assert math.isnan(values["hd_canal"])
    assert values["hd"] == 0.0  # the mean skips the undefined canal


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        metrics.image_metrics(np.zeros((4, 4)), np.zeros((4, 5)), 2)
    with pytest.raises(ValueError, match="outside"):
        metrics.image_metrics(np.zeros((4, 4)), np.full((4, 4), 2), 2)
    with pytest.raises(ValueError, match="integers"):
        metrics.image_metrics(np.zeros((4, 4)), np.full((4, 4), 0.5), 2)


# --------------------------------------------------------------------------- empty masks

def test_both_empty():
    empty = np.zeros((16, 16), np.uint8)
    values = metrics.image_metrics(empty, empty, 2)
    for key in ("dice", "iou", "precision", "recall", "f1", "accuracy"):
        assert values[key] == 1.0, key
    for key in ("hd", "hd95", "assd"):
        assert math.isnan(values[key]), key


def test_one_empty():
    mask = square((16, 16), 4, 4, 5)
    empty = np.zeros_like(mask)
    missed = metrics.image_metrics(mask, empty, 2, spacing=(1.0, 1.0))  # nothing predicted
    assert missed["dice"] == 0.0 and missed["iou"] == 0.0 and missed["recall"] == 0.0
    assert math.isnan(missed["precision"])  # 0/0: undefined, not a silent 0
    assert all(math.isnan(missed[k]) for k in ("hd", "hd95", "assd", "hd_mm", "hd95_mm", "assd_mm"))
    spurious = metrics.image_metrics(empty, mask, 2)  # predicted where nothing is true
    assert spurious["dice"] == 0.0 and spurious["precision"] == 0.0
    assert math.isnan(spurious["recall"])


def test_empty_cases_are_counted_in_aggregates():
    mask = square((16, 16), 4, 4, 5)
    empty = np.zeros_like(mask)
    trues = [mask, mask, empty, empty]
    preds = [mask, empty, mask, empty]
    frame, summary = metrics.evaluate(trues, preds, 2)
    assert len(frame) == 4
    assert summary["empty"]["both_empty"]["foreground"] == 1
    assert summary["empty"]["one_empty"]["foreground"] == 2
    assert summary["nan_counts"]["hd"] == 3
    assert summary["nan_counts"]["precision"] == 1 and summary["nan_counts"]["recall"] == 1
    assert summary["per_image"]["hd"] == 0.0  # only the defined image
    assert summary["per_image"]["dice"] == pytest.approx((1 + 0 + 0 + 1) / 4)


def test_evaluate_all_distances_undefined_gives_nan_mean_without_crash():
    empty = np.zeros((2, 8, 8), np.uint8)
    frame, summary = metrics.evaluate(empty, empty, 2)
    assert math.isnan(summary["per_image"]["hd"]) and summary["nan_counts"]["hd"] == 2


# --------------------------------------------------------------------------- aggregation

def test_pooled_and_per_image_differ_on_hand_case():
    small = np.zeros((10, 10), np.uint8)
    small[0:2, 0:2] = 1  # 4 px, predicted exactly: dice 1
    large = np.zeros((10, 10), np.uint8)
    large[0:8, 0:12] = 1  # 80 px (clipped to 8 x 10)
    large_pred = large.copy()
    large_pred[4:8] = 0  # 40 of the 80 px found, no false positives: dice 80/120
    frame, summary = metrics.evaluate([small, large], [small.copy(), large_pred], 2, names=["a", "b"])
    assert list(frame["image"]) == ["a", "b"]
    assert frame["dice"].tolist() == pytest.approx([1.0, 2 / 3])
    assert summary["per_image"]["dice"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["per_image"]["recall"] == pytest.approx((1 + 0.5) / 2)
    # pooled: TP = 44, FP = 0, FN = 40
    assert summary["pooled"]["dice"] == pytest.approx(88 / 128)
    assert summary["pooled"]["recall"] == pytest.approx(44 / 84)
    assert summary["pooled"]["precision"] == 1.0
    assert summary["pooled"]["accuracy"] == pytest.approx(160 / 200)


def test_evaluate_spacings_one_or_per_image():
    a = square((20, 20), 2, 2, 8)
    b = square((20, 20), 4, 2, 8)
    _, one = metrics.evaluate([a, a], [b, b], 2, spacings=(0.5, 1.0))
    assert one["per_image"]["hd_mm"] == pytest.approx(1.0)
    _, each = metrics.evaluate([a, a], [b, b], 2, spacings=[(0.5, 1.0), (1.5, 1.0)])
    assert each["per_image"]["hd_mm"] == pytest.approx((1.0 + 3.0) / 2)


def test_labels_from_probabilities():
    probabilities = np.zeros((1, 2, 2, 4))
    probabilities[..., 3] = 0.7
    probabilities[..., 0] = 0.3
    np.testing.assert_array_equal(metrics.labels_from_probabilities(probabilities), np.full((1, 2, 2), 3))


# --------------------------------------------------------------------------- independent implementations

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.9)])
def test_distances_match_brute_force(seed, spacing):
    a, b = blobs(seed, (40, 40)), blobs(seed + 100, (40, 40))
    ours = metrics.distance_metrics(a, b, spacing)
    reference = brute_force_distances(a, b, spacing)
    for key in ("hd", "hd95", "assd"):
        assert ours[key] == pytest.approx(reference[key], rel=1e-9), key


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape, spacing", [((48, 48), (1.0, 1.0)), ((48, 40), (0.6, 1.4)),
                                            ((10, 24, 24), (3.0, 0.8, 0.8))])
def test_matches_medpy_on_random_blobs(seed, shape, spacing):
    true = blobs(seed, shape)
    pred = blobs(seed + 1000, shape, threshold=0.55)
    pred[tuple(slice(2, 8) for _ in shape)] |= true[tuple(slice(2, 8) for _ in shape)]
    ours = metrics.image_metrics(true, pred, 2, spacing)
    assert ours["dice"] == pytest.approx(medpy.dc(pred, true))
    assert ours["precision"] == pytest.approx(medpy.precision(pred, true))
    assert ours["recall"] == pytest.approx(medpy.recall(pred, true))
    assert ours["iou"] == pytest.approx(medpy.jc(pred, true))
    for key, function in (("hd", medpy.hd), ("hd95", medpy.hd95), ("assd", medpy.assd)):
        assert ours[key] == pytest.approx(function(pred, true, connectivity=1)), key
        assert ours[f"{key}_mm"] == pytest.approx(function(pred, true, voxelspacing=spacing, connectivity=1)), key


# --------------------------------------------------------------------------- properties

mask_arrays = arrays(np.uint8, (12, 12), elements=st.integers(0, 1))


def _same(x, y):
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y)


@settings(max_examples=60, deadline=None, database=None)
@given(a=mask_arrays, b=mask_arrays)
def test_metrics_are_symmetric(a, b):
    ab = metrics.image_metrics(a, b, 2, spacing=(1.3, 0.6))
    ba = metrics.image_metrics(b, a, 2, spacing=(1.3, 0.6))
    for key in ("dice", "iou", "miou", "accuracy", "hd", "hd95", "assd", "hd_mm", "hd95_mm", "assd_mm"):
        assert _same(ab[key], ba[key]), key
    # precision and recall swap roles
    assert _same(ab["precision"], ba["recall"])


@settings(max_examples=40, deadline=None, database=None)
@given(a=arrays(np.uint8, (10, 11), elements=st.integers(0, 3)))
def test_identity_is_perfect(a):
    values = metrics.image_metrics(a, a.copy(), 4)
    assert values["accuracy"] == 1.0 and values["dice"] == 1.0 and values["miou"] == 1.0
    for label, name in enumerate(("vertebra", "disc", "canal"), start=1):
        assert values[f"dice_{name}"] == 1.0 and values[f"iou_{name}"] == 1.0
        if (a == label).any():
            assert values[f"hd_{name}"] == 0.0 and values[f"assd_{name}"] == 0.0
        else:
            assert math.isnan(values[f"hd_{name}"])


@settings(max_examples=60, deadline=None, database=None)
@given(height=st.integers(1, 8), width=st.integers(1, 8), top=st.integers(0, 6), left=st.integers(0, 6),
       d=st.integers(1, 10), axis=st.integers(0, 1), sy=st.floats(0.2, 3.0), sx=st.floats(0.2, 3.0))
def test_translated_rectangle_hausdorff_is_the_shift(height, width, top, left, d, axis, sy, sx):
    shape = (30, 30)
    a = np.zeros(shape, np.uint8)
    a[top:top + height, left:left + width] = 1
    b = np.roll(a, d, axis=axis)  # stays inside: top + height + d <= 24 < 30
    values = metrics.image_metrics(a, b, 2, spacing=(sy, sx))
    assert values["hd"] == pytest.approx(d)
    assert values["hd_mm"] == pytest.approx(d * (sy, sx)[axis])
