"""The figures and tables of chapters 1-4 (data, architectures, losses, ablations) in spine.plots."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from spine import plots  # noqa: E402
from spine.data import SliceSet  # noqa: E402
from spine.training.config import RunConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def slice_set(patients, size=32, seed=0) -> SliceSet:
    """A small SliceSet: a vertebra, a disc and a canal band on noise, one row per entry of ``patients``."""
    rng = np.random.default_rng(seed)
    n = len(patients)
    structures = np.zeros((n, size, size), dtype=np.uint8)
    structures[:, 4:12, 8:20] = 1
    structures[:, 12:16, 8:20] = 2
    structures[:, :, 22:25] = 3
    return SliceSet(images=rng.random((n, size, size, 1)).astype(np.float32), structures=structures,
                    instances=structures.astype(np.int16), spacing=np.ones((n, 2)),
                    case_ids=np.array([f"{p}_t1_{i}" for i, p in enumerate(patients)]),
                    patients=np.array(patients), slice_index=np.arange(n))


# ------------------------------------------------------------------ chapter 1: data

def test_label_mapping_table_maps_every_value_group():
    table = plots.label_mapping_table().set_index(["source", "values"])
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
    case = plots.raw_case(tmp_path)
    assert case["layout"] == "slices" and case["case_id"] == "7_t2_SPACE_slice4"
    assert case["image"].shape == (40, 48) and set(np.unique(case["mask"])) == {0, 29, 76, 150}
    assert set(np.unique(case["structures"])) == {0, 1, 2, 3} and np.isnan(case["spacing"]).all()
    assert plots.raw_case(tmp_path, patient=1)["case_id"] == "9_t2_SPACE_slice1"


def test_raw_case_from_the_phantom_has_spider_values_and_spacing():
    case = plots.raw_case("phantom:3")
    assert case["layout"] == "phantom" and case["case_id"] == "1_t1"
    assert case["image"].shape == case["mask"].shape == case["structures"].shape
    values = set(np.unique(case["mask"]).tolist())
    assert 100 in values and any(201 <= v <= 225 for v in values)
    assert all(s > 0 for s in case["spacing"])
    assert set(np.unique(case["structures"])) <= {0, 1, 2, 3}


def test_label_and_preprocessing_figures():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 1200, size=(60, 50)).astype(np.int16)
    mask = np.zeros((60, 50), dtype=np.int16)
    mask[5:20, 5:30], mask[20:24, 5:30], mask[30:45, 5:30], mask[:, 35:40] = 3, 203, 2, 100
    from spine.data.labels import spider_structures

    structures = spider_structures(mask).astype(np.uint8)
    fig = plots.instance_figure(image, mask, structures)
    written = {t.get_text() for t in fig.axes[1].texts}
    assert written == {"2", "3", "100", "203"}
    fig = plots.preprocessing_steps(image, structures, size=32)
    titles = [ax.get_title() for ax in fig.axes]
    assert "60×50\nint16" in titles[0] and "[0, 255]" in titles[1] and "32×32" in titles[2]
    assert fig.axes[2].images[0].get_array().shape == (32, 32)


@pytest.mark.parametrize("task, count", [("binary", 2), ("multiclass", 4)])
def test_target_panels_show_one_hot_and_auxiliary_grid(task, count):
    structures = slice_set(["1"]).structures[0]
    fig = plots.target_panels(structures, task)
    grids = [ax for ax in fig.axes if ax.images and ax.get_title().startswith("auxiliary")]
    assert len(grids) == count
    assert grids[0].images[0].get_array().shape == (2, 2)  # 32 / 16
    total = sum(ax.images[0].get_array() for ax in grids)
    assert np.allclose(total, 1.0)  # the fractions of a cell add up to 1


def test_class_balance_counts_shares_and_absences():
    maps = np.zeros((2, 10, 10), dtype=np.uint8)
    maps[0, :5] = 1  # 50 % vertebra in slice 0
    maps[1, :1] = 3  # 10 % canal in slice 1
    table = plots.class_balance({"toy": maps}).set_index("structure")
    assert table.loc["vertebra", "share of pixels (%)"] == pytest.approx(25.0)
    assert table.loc["vertebra", "largest in a slice (%)"] == pytest.approx(50.0)
    assert table.loc["canal", "smallest in a slice (%)"] == pytest.approx(0.0)
    assert table.loc["vertebra", "slices without it"] == 1
    assert table.loc["disc", "slices without it"] == 2
    assert table.loc["foreground", "share of pixels (%)"] == pytest.approx(30.0)
    assert table.loc["background", "share of pixels (%)"] == pytest.approx(70.0)
    ax = plots.class_balance_plot(plots.class_balance({"a": maps, "b": maps[:1]}))
    assert len(ax.patches) == 2 * 4  # foreground + 3 structures, per dataset


def test_sample_figure_one_pair_of_rows_per_dataset():
    fig = plots.sample_figure({"phantom": slice_set(list("abcde")), "real": slice_set(list("xyz"))}, count=4)
    assert len(fig.axes) == 4 * 4
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 2 * 4 + 2 * 3  # the smaller set fills 3 columns


def test_split_overview_counts_the_engines_split():
    from spine.training import engine

    config = engine.make_config("U-Net", "Dice", "binary", "phantom:5", "smoke")
    table = plots.split_overview(config).set_index("subset")
    assert list(table.index) == ["train", "val", "test", "all"]
    assert table.loc["all", "patients"] == 5 and table.loc["all", "share of patients (%)"] == pytest.approx(100.0)
    assert (table.loc[["train", "val", "test"], "patients"] >= 1).all()
    used = engine.split_data(config)
    assert table.loc["test", "slices a run uses"] == len(used["test"])
    assert table.loc["all", "slices in the data"] == 5  # the phantom: one central slice per patient


def test_shared_patients():
    subsets = {"train": slice_set(["1", "1", "2"]), "val": slice_set(["3"]), "test": slice_set(["4", "5"])}
    assert plots.shared_patients(subsets) == []
    assert plots.shared_patients({**subsets, "extra": slice_set(["2", "5"])}) == ["2", "5"]


# ------------------------------------------------------------------ chapter 2: architectures

@pytest.fixture(scope="module")
def outlines():
    return plots.outline_table(["U-Net", "Proposed", "TransUNet"], width=4, input_shape=(32, 32, 1))


def test_architecture_outline_adds_up_and_is_in_order():
    from spine.models import build_model

    model = build_model("Proposed", input_shape=(32, 32, 1), width=4)
    table = plots.architecture_outline(model)
    assert table["params"].sum() == model.count_params()
    assert table["layers"].sum() == len(model.layers)
    assert list(table["block"]) == ["input", "inception", "enc1", "enc2", "enc3", "enc4", "bottleneck",
                                    "dec4", "dec3", "dec2", "dec1", "aux", "mask"]
    rows = table.set_index("block")
    assert rows.loc["aux", "output"] == "2×2×2" and rows.loc["mask", "output"] == "32×32×2"
    assert rows.loc["inception", "conv"] == 6 and rows.loc["inception", "batchnorm"] == 6


def test_outline_table_wide_view_and_breakdown(outlines):
    assert set(outlines["model"]) == {"U-Net", "Proposed", "TransUNet"}
    assert "transformer" in set(outlines.loc[outlines["model"] == "TransUNet", "block"])
    wide = plots.outline_wide(outlines).set_index("block")
    assert wide.loc["inception", "U-Net"] == "–" and wide.loc["inception", "Proposed"] != "–"
    assert wide.loc["transformer", "TransUNet"].startswith("2×2×")
    ax = plots.parameter_breakdown_plot(outlines)
    widths = {}
    for patch in ax.patches:
        widths[round(patch.get_y() + patch.get_height() / 2)] = widths.get(round(patch.get_y() + patch.get_height() / 2), 0) + patch.get_width()
    totals = outlines.groupby("model", sort=False)["params"].sum() / 1e6
    assert [widths[i] for i in range(3)] == pytest.approx(list(totals))


def test_counts_table_and_format_counts():
    counts = {"U-Net": {"total": 31050114, "trainable": 31040386, "non_trainable": 9728},
              "U-Net + SAM": {"total": 31050214, "trainable": 31040486, "non_trainable": 9728},
              "TransUNet": {"total": 24018818, "trainable": 24009090, "non_trainable": 9728}}
    table = plots.counts_table(counts).set_index("model")
    assert table.loc["U-Net + SAM", "added"] == 100 and table.loc["U-Net + SAM", "base"] == "U-Net"
    assert pd.isna(table.loc["U-Net", "added"])
    frame = pd.DataFrame([{"model": m, **c} for m, c in counts.items()])
    assert plots.counts_table(frame).equals(plots.counts_table(counts))
    assert list(plots.counts_table(frame, variants_only=True)["model"]) == ["U-Net + SAM"]
    assert "added" not in plots.counts_table({"U-Net": counts["U-Net"]})  # no variant, no empty columns
    html = plots.format_counts(table.reset_index().assign(study_total=31050114, pct=0.17, p=1.0)).to_html()
    assert "31,050,114" in html and "0.17" in html and "1.00" in html and "–" in html
    assert ">100<" in html  # the added parameters, an integer column with gaps


# ------------------------------------------------------------------ chapters 3-4: losses, ablations

def test_beside_study_difference_and_interval_text():
    table = pd.DataFrame({"model": ["A", "B"], "loss": ["Dice", "BCE"], "f1": [0.90, np.nan],
                          "study_f1": [0.94, 0.93], "dice_ci": [(0.88, 0.92), np.nan]})
    out = plots.beside_study(table, metrics=(("f1", "study_f1", "dice_ci"), ("fg_iou", "study_mIoU", "iou_ci")))
    assert out.loc[0, "Δ f1"] == pytest.approx(-0.04)
    assert out.loc[0, "f1 95% CI"] == "0.880–0.920" and out.loc[1, "f1 95% CI"] == "–"
    assert np.isnan(out.loc[1, "Δ f1"]) and out["fg_iou"].isna().all()


def fake_store(tmp_path, cells):
    """A results store holding finished records (config, metrics, history) and the study table over it."""
    rows = []
    for i, (model, loss, trained, val, test, history) in enumerate(cells):
        config = RunConfig(model=model, loss=loss, task="binary", data="phantom", data_id="toy", profile="smoke",
                           settings={"width": 4}, seed=0)
        run_id = config.run_id
        if trained:
            folder = tmp_path / run_id
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(config.to_dict()))
            (folder / "metrics.json").write_text(json.dumps({"val": {"per_image": {"dice": val}},
                                                             "test": {"per_image": {"dice": test}}}))
            pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
        rows.append({"model": model, "loss": loss, "trained": trained, "run_id": run_id, "f1": test if trained else np.nan,
                     "study_f1": 0.9 + 0.01 * i})
    return pd.DataFrame(rows)


def test_selection_table_picks_on_validation_and_on_test(tmp_path):
    history = {"epoch": [1, 2], "loss": [0.5, 0.3], "val_dice": [0.6, 0.7]}
    table = fake_store(tmp_path, [("U-Net", "BCE", True, 0.80, 0.70, history),
                                  ("U-Net", "Dice", True, 0.75, 0.72, history),
                                  ("Proposed", "BCE", False, 0, 0, history),
                                  ("Proposed", "Dice", True, 0.9, 0.8, history)])
    out = plots.selection_table(table, tmp_path).set_index("model")
    assert out.loc["U-Net", "picked on validation"] == "BCE" and out.loc["U-Net", "best on test"] == "Dice"
    assert out.loc["U-Net", "same pick"] == "no" and out.loc["U-Net", "its test dice"] == pytest.approx(0.70)
    assert out.loc["U-Net", "study's pick (on test)"] == "Dice"  # study_f1 grows with the row
    assert out.loc["Proposed", "trained"] == 1 and out.loc["Proposed", "same pick"] == "–"


def test_history_grid_lines_per_model_and_none_when_untrained(tmp_path):
    single = {"epoch": [1, 2, 3], "loss": [0.5, 0.4, 0.3], "val_dice": [0.5, 0.6, 0.7]}
    dual = {**single, "mask_loss": [0.3, 0.2, 0.1], "aux_loss": [0.2, 0.2, 0.2]}
    table = fake_store(tmp_path, [("U-Net", "BCE", True, 0.8, 0.7, single), ("Proposed", "BCE", True, 0.9, 0.8, dual),
                                  ("U-Net", "Dice", False, 0, 0, single)])
    fig = plots.history_grid(table, tmp_path)
    assert len(fig.axes) == 2  # one loss trained x two columns
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].lines}
    assert list(lines["Proposed"]) == [0.3, 0.2, 0.1]  # the main head's loss, not the total
    assert list(lines["U-Net"]) == [0.5, 0.4, 0.3]
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in fig.axes[-1].get_xticks() if 0.5 <= t <= 3.5)  # whole epochs
    assert plots.history_grid(table.assign(trained=False), tmp_path) is None


def test_loss_heatmaps_mark_untrained_cells():
    table = pd.DataFrame({"model": ["A", "A", "B", "B"], "loss": ["BCE", "Dice"] * 2,
                          "f1": [0.5, 0.6, np.nan, np.nan], "study_f1": [0.93, 0.94, 0.92, 0.91]})
    fig = plots.loss_heatmaps(table)
    ours = [t.get_text() for t in fig.axes[0].texts]
    assert ours == ["0.5000", "0.6000", "–", "–"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["0.9300", "0.9400", "0.9200", "0.9100"]


def test_augmentation_examples_keep_labels_and_shapes():
    data = slice_set(["1"])
    fig = plots.augmentation_examples(data.images[0], data.structures[0], seeds=(1, 2))
    assert len(fig.axes) == 3
    for ax in fig.axes:
        picture, mask = ax.images[0].get_array(), ax.images[1].get_array()
        assert picture.shape == (32, 32)
        assert set(np.unique(mask.compressed())) <= {1, 2, 3}  # nearest neighbour: no new label values
