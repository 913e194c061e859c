"""The sanity checks of Grad-CAM maps in spine.explain: maps of a model and of its randomised copy,
and the checks in numbers."""

import math

import numpy as np
import pytest

from spine import explain


def test_gradcam_sanity_on_known_maps():
    regions = np.zeros((2, 8, 8), bool)
    regions[:, 2:4, 2:6] = True  # area fraction 8 / 64
    on_target = regions.astype(np.float32)
    uniform = np.ones((2, 8, 8), np.float32)
    maps = {"trained": {"bottleneck": on_target, "fine": np.zeros((2, 8, 8), np.float32)},
            "randomised": {"bottleneck": uniform, "fine": on_target}}
    table = explain.gradcam_sanity(maps, regions).set_index("layer")
    row = table.loc["bottleneck"]
    assert row["concentration"] == 1.0 and row["chance"] == pytest.approx(0.125)
    assert row["concentration / chance"] == pytest.approx(8.0) and row["empty maps"] == 0
    assert row["concentration (randomised)"] == pytest.approx(0.125)  # a uniform map scores chance
    assert row["Spearman ρ trained vs randomised"] == 0.0  # a constant map has no ranks in common
    fine = table.loc["fine"]
    assert fine["empty maps"] == 2 and math.isnan(fine["concentration"])
    assert explain._rank_correlation(on_target, on_target) == pytest.approx(1.0)


def test_gradcam_maps_of_a_model_and_its_randomised_copy():
    import keras

    from spine.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("U-Net", input_shape=(32, 32, 1), width=4)
    images = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    maps = explain.gradcam_maps(model, images, ["bottleneck", "dec3_block_2_relu"], class_index=1)
    assert set(maps) == {"trained", "randomised"}
    for kind in maps.values():
        assert set(kind) == {"bottleneck", "dec3_block_2_relu"}
        for cams in kind.values():
            assert cams.shape == (2, 32, 32) and cams.min() >= 0 and cams.max() <= 1
