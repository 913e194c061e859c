"""Helpers behind book chapters 6-9: stability, Grad-CAM sanity checks, multiclass, the study's open points."""

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from spine import paper, plots  # noqa: E402
from spine.data import phantom  # noqa: E402
from spine.data.labels import label_values_to_classes  # noqa: E402
from spine.errors import ConfigError  # noqa: E402
from spine.training import make_config, studies  # noqa: E402
from spine.training import store as results  # noqa: E402

DATA = "phantom:12"


# --------------------------------------------------------------------------- fake records


def _write_record(store, config, val: dict, test: dict, per_image: pd.DataFrame):
    """A finished run's files, with chosen figures (no training): what the helpers read."""
    folder = results.run_dir(store, config)
    folder.mkdir(parents=True)
    results.write_json(folder / "config.json", config.to_dict())
    results.write_json(folder / "metrics.json", {"selected_epoch": 1, "val": {"per_image": val},
                                                 "test": {"per_image": test}, "test_ci95": {},
                                                 "subsets": {"test": {"images": len(per_image)}}})
    results.write_json(folder / "environment.json", {"wall_seconds": 1.0})
    per_image.to_csv(folder / "per_image.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def loss_grid(tmp_path_factory):
    """The loss grid at the smoke profile with three recorded cells (U-Net with BCE and Dice,
    ResUNet with Dice), their figures chosen, no training."""
    store = tmp_path_factory.mktemp("loss-store")
    chosen = {("U-Net", "BCE"): (0.70, 0.80), ("U-Net", "Dice"): (0.75, 0.78), ("ResUNet", "Dice"): (0.60, 0.65)}
    for (model, loss), (val, test) in chosen.items():
        config = make_config(model, loss, "binary", DATA, "smoke")
        per_image = pd.DataFrame({"image": ["a", "b"], "dice": [test, test]})
        _write_record(store, config, {"dice": val}, {"dice": test, "hd": 4.0, "hd_mm": 6.0, "hd95": 3.0,
                                                     "hd95_mm": 4.5, "assd": 1.0, "assd_mm": None}, per_image)
    return store, studies.study_table("loss", DATA, "smoke", store)


# --------------------------------------------------------------------------- stability


def test_position_among():
    p = studies.position_among(5.0, [1.0, 2.0, 3.0, np.nan])
    assert p["runs"] == 3 and p["mean"] == 2.0 and p["sd"] == 1.0 and p["z"] == 3.0
    assert (p["runs_below"], p["runs_above"], p["min"], p["max"]) == (3, 0, 1.0, 3.0)
    # t prediction: (5 - 2) / (1 * sqrt(1 + 1/3)) = 2.598 with 2 degrees of freedom -> one-sided p 0.0608
    assert p["p_new"] == pytest.approx(0.0608, abs=5e-4)
    assert studies.position_among(-1.0, [1.0, 2.0, 3.0])["p_new"] == pytest.approx(p["p_new"])  # same distance below
    assert studies.position_among(2.0, [1.0, 2.0, 3.0])["p_new"] == pytest.approx(0.5)
    assert math.isnan(studies.position_among(1.0, [1.0])["z"])  # one run: no SD
    assert math.isnan(studies.position_among(1.0, [2.0, 2.0])["z"])  # SD 0
    assert studies.position_among(1.0, [])["runs"] == 0


def test_headline_vs_stability_from_the_study_tables_and_ours():
    study = studies.headline_vs_stability()
    assert len(study) == 1
    runs = paper.table("stability")["mIoU"]
    row = study.iloc[0]
    assert row["headline"] == paper.table("comparison").set_index("model").loc["Proposed", "mIoU"]
    assert row["runs mean"] == pytest.approx(runs.mean()) and row["runs SD"] == pytest.approx(runs.std(ddof=1))
    assert row["z"] > 5 and row["runs below"] == 10  # the headline lies above every stability run
    assert row["p (a new run this far out)"] < 1e-3

    stability = pd.DataFrame({"trained": [True, True, True, False], "seed": [1, 2, 3, 4],
                              "fg_iou": [0.5, 0.6, 0.7, np.nan]})
    comparison = pd.DataFrame({"model": ["U-Net", "Proposed"], "trained": [True, True], "seed": [0, 0],
                               "fg_iou": [0.1, 0.8]})
    ours = studies.headline_vs_stability(stability, comparison).iloc[1]
    assert ours["headline"] == 0.8 and ours["runs"] == 3 and ours["z"] == pytest.approx(2.0)
    assert ours["headline run"] == "seed 0"
    untrained = studies.headline_vs_stability(stability.assign(trained=False).drop(columns="fg_iou"),
                                              comparison.assign(trained=False)).iloc[1]
    assert math.isnan(untrained["headline"]) and untrained["runs"] == 0
    with pytest.raises(ConfigError):
        studies.headline_vs_stability(metric="dice_vertebra")


def test_stability_summary_ours_beside_the_study():
    table = pd.DataFrame({"trained": [True, True, False], "f1": [0.8, 0.9, np.nan],
                          "dice_ci": [(0.7, 0.9), (0.8, 1.0), np.nan], "study_f1": [0.94, 0.95, 0.96]})
    row = studies.stability_summary(table, metrics=("f1",)).iloc[0]
    assert row["seeds"] == 2 and row["mean"] == pytest.approx(0.85) and row["SD"] == pytest.approx(0.0707, abs=1e-4)
    assert row["one run's CI half-width"] == pytest.approx(0.1)
    assert row["study_mean"] == pytest.approx(0.95) and row["study_SD"] == pytest.approx(0.01)
    empty = studies.stability_summary(pd.DataFrame({"trained": [False]}), metrics=("f1", "fg_iou"))
    assert empty["seeds"].tolist() == [0, 0] and empty["mean"].isna().all()


# --------------------------------------------------------------------------- the loss grid, distances, structures


def test_distance_units_give_pixels_millimetres_and_the_pixel_size(loss_grid):
    store, table = loss_grid
    units = studies.distance_units(table, store)
    assert len(units) == 3 and set(units["model"]) == {"U-Net", "ResUNet"}
    assert (units["hd"] == 4.0).all() and (units["hd_mm"] == 6.0).all() and units["assd_mm"].isna().all()
    assert (units["mm per pixel (min)"] > 0).all()
    assert (units["mm per pixel (max)"] >= units["mm per pixel (min)"]).all()


def test_structure_scores_per_structure_with_intervals(tmp_path):
    config = make_config("U-Net", "CCE-Dice", "multiclass", DATA, "smoke")
    per_image = pd.DataFrame({"image": list("abc"), "dice_vertebra": [0.8, 0.9, 1.0], "iou_vertebra": [0.6, 0.7, 0.8],
                              "dice_disc": [0.5, np.nan, 0.7], "iou_disc": [0.3, np.nan, 0.5],
                              "dice_canal": [0.4, 0.4, 0.4], "iou_canal": [0.2, 0.2, 0.2]})
    _write_record(tmp_path, config, {}, {}, per_image)
    table = studies.study_table("multiclass", DATA, "smoke", tmp_path)
    scores = studies.structure_scores(table, tmp_path)
    assert len(scores) == len(table) and scores["trained"].sum() == 1
    row = scores[(scores["model"] == "U-Net") & (scores["loss"] == "CCE-Dice")].iloc[0]
    assert row["dice_vertebra"] == pytest.approx(0.9) and row["iou_vertebra"] == pytest.approx(0.7)
    assert row["dice_disc"] == pytest.approx(0.6) and row["dice_canal_ci"] == (0.4, 0.4)
    low, high = row["dice_vertebra_ci"]
    assert low <= 0.9 <= high
    assert scores[~scores["trained"]]["dice_vertebra"].isna().all()


# --------------------------------------------------------------------------- one record of a grid


@pytest.mark.slow
def test_study_record_trains_only_the_cell_asked_for(tmp_path):
    assert studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", train_missing=False) is None
    record = studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", "Dice")
    assert record is not None and record.config.model == "Proposed" and record.config.loss == "Dice"
    assert [r.config.model for r in results.records(tmp_path)] == ["Proposed"]  # the rest of the grid untouched
    again = studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", train_missing=False)
    assert again.path == record.path
    table = studies.study_table("comparison", DATA, "smoke", tmp_path)
    images = np.zeros((2, 64, 64, 1), np.float32)
    predicted = studies.predictions(table, tmp_path, images)
    assert list(predicted) == ["Proposed"] and predicted["Proposed"].shape == (2, 64, 64)
    assert list(studies.predictions(studies.study_table("multiclass", DATA, "smoke", tmp_path), tmp_path, images)) == []
    with pytest.raises(ConfigError):
        studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", "BCE")


# --------------------------------------------------------------------------- Grad-CAM sanity checks


def test_gradcam_sanity_on_known_maps():
    regions = np.zeros((2, 8, 8), bool)
    regions[:, 2:4, 2:6] = True  # area fraction 8 / 64
    on_target = regions.astype(np.float32)
    uniform = np.ones((2, 8, 8), np.float32)
    maps = {"trained": {"bottleneck": on_target, "fine": np.zeros((2, 8, 8), np.float32)},
            "randomised": {"bottleneck": uniform, "fine": on_target}}
    table = studies.gradcam_sanity(maps, regions).set_index("layer")
    row = table.loc["bottleneck"]
    assert row["concentration"] == 1.0 and row["chance"] == pytest.approx(0.125)
    assert row["concentration / chance"] == pytest.approx(8.0) and row["empty maps"] == 0
    assert row["concentration (randomised)"] == pytest.approx(0.125)  # a uniform map scores chance
    assert row["Spearman ρ trained vs randomised"] == 0.0  # a constant map has no ranks in common
    fine = table.loc["fine"]
    assert fine["empty maps"] == 2 and math.isnan(fine["concentration"])
    assert studies._rank_correlation(on_target, on_target) == pytest.approx(1.0)


def test_gradcam_maps_of_a_model_and_its_randomised_copy():
    import keras

    from spine.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("U-Net", input_shape=(32, 32, 1), width=4)
    images = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    maps = studies.gradcam_maps(model, images, ["bottleneck", "dec3_block_2_relu"], class_index=1)
    assert set(maps) == {"trained", "randomised"}
    for kind in maps.values():
        assert set(kind) == {"bottleneck", "dec3_block_2_relu"}
        for cams in kind.values():
            assert cams.shape == (2, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    fig = plots.gradcam_grid(images[..., 0], {"bottleneck": maps["trained"]["bottleneck"],
                                              "random": maps["randomised"]["bottleneck"]},
                             contours=images[..., 0] > 0.5, titles=["a", "b"])
    assert len(fig.axes) == 5  # 2 x 2 panels and the colour bar
    plt.close(fig)


# --------------------------------------------------------------------------- volumes


@pytest.fixture(scope="module")
def case():
    return phantom.make_case(7, permuted=True)


def test_volume_scores_geometry_and_slices(case):
    image, mask = case
    classes = sitk.GetImageFromArray(label_values_to_classes(sitk.GetArrayFromImage(mask), "binary"))
    classes.CopyInformation(mask)
    perfect = studies.volume_scores(classes, mask)
    assert perfect["dice"] == 1.0 and perfect["hd_mm"] == 0.0
    assert perfect["voxels_predicted"] == perfect["voxels_reference"]
    eroded = sitk.BinaryErode(classes, [1, 1, 1])
    worse = studies.volume_scores(eroded, mask)
    assert 0 < worse["dice"] < 1 and worse["hd_mm"] > 0 and worse["hd"] >= 1
    with pytest.raises(ConfigError):
        studies.volume_scores(classes[:, :, :-1], mask)

    geometry = plots.geometry_table({"input": image, "output": classes})
    assert list(geometry["property"]) == ["size", "spacing (mm)", "origin (mm)", "direction"]
    assert geometry["same"].all()
    moved = sitk.Image(classes)
    moved.SetOrigin(tuple(o + 1.0 for o in classes.GetOrigin()))
    same = plots.geometry_table({"a": image, "b": moved}).set_index("property")["same"]
    assert same.tolist() == [True, True, False, True]

    fig = plots.volume_slices(image, classes, mask, count=3)
    assert len(fig.axes) == 3 and all(ax.images for ax in fig.axes)
    assert all(ax.collections for ax in fig.axes)  # the reference outline on every panel
    plt.close(fig)


def test_seed_spread_draws_runs_and_headline():
    ax = plots.seed_spread([0.88, 0.89, 0.885, np.nan], headline=0.897)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "runs (3)" in labels and "single-run figure" in labels and "mean ± SD" in labels
    plt.close(ax.figure)
    empty = plots.seed_spread([], headline=None)
    assert empty.texts and empty.get_legend() is None
    plt.close(empty.figure)


def test_fake_records_read_back(loss_grid):
    store, table = loss_grid
    assert table["trained"].sum() == 3
    record = results.load_record(store / table[table["trained"]].iloc[0]["run_id"])
    assert json.loads((record.path / "metrics.json").read_text())["test"]["per_image"]["assd_mm"] is None


def test_seed_vs_model_spread():
    study = studies.seed_vs_model_spread().iloc[0]
    table6 = paper.table("comparison")["mIoU"].sort_values(ascending=False).to_numpy()
    assert study["models"] == 5 and study["model range"] == pytest.approx(table6[0] - table6[-1])
    assert study["best - second, in seed SDs"] == pytest.approx((table6[0] - table6[1]) / study["seed SD"])
    stability = pd.DataFrame({"trained": [True, True, True], "fg_iou": [0.5, 0.6, 0.7]})
    comparison = pd.DataFrame({"trained": [True, True, False], "fg_iou": [0.9, 0.7, np.nan]})
    fair = studies.seed_vs_model_spread().iloc[1]  # the proposed model at its stability mean
    runs = paper.table("stability")["mIoU"]
    others = paper.table("comparison").query("model != 'Proposed'")["mIoU"].sort_values(ascending=False).to_numpy()
    assert fair["best - second"] == pytest.approx(runs.mean() - others[0])
    assert fair["best - second, in seed SDs"] < study["best - second, in seed SDs"]
    ours = studies.seed_vs_model_spread(stability, comparison).iloc[2]
    assert (ours["seeds"], ours["models"]) == (3, 2) and ours["best - second, in seed SDs"] == pytest.approx(2.0)
    nothing = studies.seed_vs_model_spread(pd.DataFrame({"trained": [False]}), pd.DataFrame({"trained": [False]}))
    assert nothing.iloc[2]["models"] == 0 and math.isnan(nothing.iloc[2]["best - second"])


def test_loss_grid_keeps_the_grid_order_and_marks_missing_cells(loss_grid):
    _, table = loss_grid
    grid = studies.loss_grid(table, "f1").set_index("model")
    assert list(grid.index) == list(dict.fromkeys(table["model"]))
    assert list(grid.columns) == ["BCE", "Dice", "Focal", "BCE-Dice"]
    assert grid.isna().all().all()  # the fake records carry no f1
    dice = studies.loss_grid(table.assign(f1=np.where(table["trained"], 0.5, np.nan)), "f1").set_index("model")
    assert dice.loc["U-Net", "BCE"] == 0.5 and np.isnan(dice.loc["TransUNet", "Dice"])
    without = table.drop(columns=[c for c in table if c == "f1"])
    assert studies.loss_grid(without, "f1").shape == grid.reset_index().shape


def test_pixel_sizes_of_spider_series(masks_3d):
    sizes = studies.spider_pixel_sizes(masks_3d, size=128, sequence="t1")
    assert len(sizes) == 20 and sizes["series"].str.endswith("_t1").all()
    expected = sizes["rows"] * sizes["row spacing (mm)"] / 128
    assert np.allclose(sizes["mm per pixel (rows)"], expected)
    assert sizes["mm per pixel (rows)"].between(0.5, 5).all()
    in_mm = studies.pixels_in_mm({"HD": 2.0}, sizes).iloc[0]
    both = sizes[["mm per pixel (rows)", "mm per pixel (columns)"]].to_numpy()
    assert in_mm["mm (smallest pixel)"] == pytest.approx(2 * both.min())
    assert in_mm["mm (largest pixel)"] == pytest.approx(2 * both.max())


def test_pixels_in_mm_on_a_small_table():
    sizes = pd.DataFrame({"mm per pixel (rows)": [1.0, 2.0], "mm per pixel (columns)": [1.5, 3.0]})
    row = studies.pixels_in_mm({"HD": 4.0}, sizes).iloc[0]
    assert (row["mm (smallest pixel)"], row["mm (median pixel)"], row["mm (largest pixel)"]) == (4.0, 7.0, 12.0)
    assert studies.pixels_in_mm({"HD": 4.0}, sizes.iloc[0:0])["mm (median pixel)"].isna().all()


def test_structure_bars():
    scores = pd.DataFrame({"model": ["U-Net", "Proposed"], "loss": ["CCE-Dice"] * 2, "trained": [True, False],
                           **{f"dice_{s}": [0.8, np.nan] for s in studies.STRUCTURES},
                           **{f"dice_{s}_ci": [(0.7, 0.9), (np.nan, np.nan)] for s in studies.STRUCTURES}})
    ax = plots.structure_bars(scores)
    assert len(ax.patches) == 3 and [t.get_text() for t in ax.get_xticklabels()] == ["U-Net"]
    plt.close(ax.figure)
    empty = plots.structure_bars(scores.assign(trained=False))
    assert empty.texts
    plt.close(empty.figure)
