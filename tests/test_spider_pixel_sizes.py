"""Pixel sizes of SPIDER's central sagittal slices at the model's grid (spine.data.spider), and
distances in pixels read as millimetres over them."""

import numpy as np
import pandas as pd
import pytest

from spine.data import spider


def test_pixel_sizes_of_spider_series(masks_3d):
    sizes = spider.spider_pixel_sizes(masks_3d, size=128, sequence="t1")
    assert len(sizes) == 20 and sizes["series"].str.endswith("_t1").all()
    expected = sizes["rows"] * sizes["row spacing (mm)"] / 128
    assert np.allclose(sizes["mm per pixel (rows)"], expected)
    assert sizes["mm per pixel (rows)"].between(0.5, 5).all()
    in_mm = spider.pixels_in_mm({"HD": 2.0}, sizes).iloc[0]
    both = sizes[["mm per pixel (rows)", "mm per pixel (columns)"]].to_numpy()
    assert in_mm["mm (smallest pixel)"] == pytest.approx(2 * both.min())
    assert in_mm["mm (largest pixel)"] == pytest.approx(2 * both.max())


def test_pixels_in_mm_on_a_small_table():
    sizes = pd.DataFrame({"mm per pixel (rows)": [1.0, 2.0], "mm per pixel (columns)": [1.5, 3.0]})
    row = spider.pixels_in_mm({"HD": 4.0}, sizes).iloc[0]
    assert (row["mm (smallest pixel)"], row["mm (median pixel)"], row["mm (largest pixel)"]) == (4.0, 7.0, 12.0)
    assert spider.pixels_in_mm({"HD": 4.0}, sizes.iloc[0:0])["mm (median pixel)"].isna().all()
