"""Summaries of a dataset for people (spine.data.overview): label tables, class balance, patients shared between subsets."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from spine.data import overview, phantom
from spine.data.labels import label_values_to_classes


def test_label_mapping_table_maps_every_value_group():
    table = overview.label_mapping_table().set_index(["source", "values"])
    assert table.loc[("SPIDER .mha", "0"), "binary class"] == "0 background"
    assert table.loc[("SPIDER .mha", "1–25"), "4-class class"] == "1 vertebra"
    assert table.loc[("SPIDER .mha", "101–125"), "4-class class"] == "1 vertebra"
    assert table.loc[("SPIDER .mha", "100"), "4-class class"] == "3 canal"
    assert table.loc[("SPIDER .mha", "201–225"), "4-class class"] == "2 disc"
    assert table.loc[("SPIDER .mha", "201–225"), "binary class"] == "1 foreground"
    assert table.loc[("PNG slices", "76"), "4-class class"] == "1 vertebra"
    assert table.loc[("PNG slices", "29"), "4-class class"] == "2 disc"
    assert table.loc[("PNG slices", "150"), "4-class class"] == "3 canal"


def test_raw_case_from_a_slice_folder_takes_the_middle_slice(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    mask = np.zeros((40, 48), dtype=np.uint8)
    mask[5:15, 10:30], mask[15:18, 10:30], mask[:, 35:38] = 76, 29, 150
    for patient, indices in (("7", (3, 4, 5)), ("9", (1,))):
        for k in indices:
            name = f"{patient}_t2_SPACE_slice{k}.png"
            Image.fromarray((np.arange(40 * 48) % 251).reshape(40, 48).astype(np.uint8)).save(tmp_path / "images" / name)
            Image.fromarray(mask).save(tmp_path / "masks" / name)
    case = overview.raw_case(tmp_path)
    assert case["layout"] == "slices" and case["case_id"] == "7_t2_SPACE_slice4"
    assert case["image"].shape == (40, 48) and set(np.unique(case["mask"])) == {0, 29, 76, 150}
    assert set(np.unique(case["structures"])) == {0, 1, 2, 3} and np.isnan(case["spacing"]).all()
    assert overview.raw_case(tmp_path, patient=1)["case_id"] == "9_t2_SPACE_slice1"


def test_raw_case_from_the_phantom_has_spider_values_and_spacing():
    case = overview.raw_case("phantom:3")
    assert case["layout"] == "phantom" and case["case_id"] == "1_t1"
    assert case["image"].shape == case["mask"].shape == case["structures"].shape
    values = set(np.unique(case["mask"]).tolist())
    assert 100 in values and any(201 <= v <= 225 for v in values)
    assert all(s > 0 for s in case["spacing"])
    assert set(np.unique(case["structures"])) <= {0, 1, 2, 3}


def test_class_balance_counts_shares_and_absences():
    maps = np.zeros((2, 10, 10), dtype=np.uint8)
    maps[0, :5] = 1  # 50 % vertebra in slice 0
    maps[1, :1] = 3  # 10 % canal in slice 1
    table = overview.class_balance({"toy": maps}).set_index("structure")
    assert table.loc["vertebra", "share of pixels (%)"] == pytest.approx(25.0)
    assert table.loc["vertebra", "largest in a slice (%)"] == pytest.approx(50.0)
    assert table.loc["canal", "smallest in a slice (%)"] == pytest.approx(0.0)
    assert table.loc["vertebra", "slices without it"] == 1
    assert table.loc["disc", "slices without it"] == 2
    assert table.loc["foreground", "share of pixels (%)"] == pytest.approx(30.0)
    assert table.loc["background", "share of pixels (%)"] == pytest.approx(70.0)


def test_shared_patients():
    def subset(patients):
        return SimpleNamespace(patients=np.array(patients))

    subsets = {"train": subset(["1", "1", "2"]), "val": subset(["3"]), "test": subset(["4", "5"])}
    assert overview.shared_patients(subsets) == []
    assert overview.shared_patients({**subsets, "extra": subset(["2", "5"])}) == ["2", "5"]


def test_geometry_table_compares_volumes():
    image, mask = phantom.make_case(7, permuted=True)
    classes = sitk.GetImageFromArray(label_values_to_classes(sitk.GetArrayFromImage(mask), "binary"))
    classes.CopyInformation(mask)
    geometry = overview.geometry_table({"input": image, "output": classes})
    assert list(geometry["property"]) == ["size", "spacing (mm)", "origin (mm)", "direction"]
    assert geometry["same"].all()
    moved = sitk.Image(classes)
    moved.SetOrigin(tuple(o + 1.0 for o in classes.GetOrigin()))
    same = overview.geometry_table({"a": image, "b": moved}).set_index("property")["same"]
    assert same.tolist() == [True, True, False, True]
