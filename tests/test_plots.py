"""The book's figures (spine.plots) and tables in its look (spine.page), drawn from small made-up inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from spine import page, plots  # noqa: E402
from spine.models import report  # noqa: E402
from spine.data import SliceSet, phantom  # noqa: E402
from spine.data.labels import label_values_to_classes  # noqa: E402
from spine.data.overview import class_balance  # noqa: E402
from spine.training.analysis import STRUCTURES, loss_grid  # noqa: E402


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


# ------------------------------------------------------------------ shared: ours beside the study

def test_ours_vs_study_keeps_its_legend_clear_of_the_bars():
    table = pd.DataFrame({"model": ["A", "B"], "f1": [0.94, 0.93], "study_f1": [0.945, 0.935],
                          "dice_ci": [(0.92, 0.96), (0.91, 0.95)]})
    ax = plots.ours_vs_study(table, "f1", "study_f1", ci="dice_ci")
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ours", "the study"]
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # right of the axes


# ------------------------------------------------------------------ chapter 1: data

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


def test_class_balance_plot_bars_per_dataset():
    maps = np.zeros((2, 10, 10), dtype=np.uint8)
    maps[0, :5] = 1
    maps[1, :1] = 3
    ax = plots.class_balance_plot(class_balance({"a": maps, "b": maps[:1]}))
    bars = sorted(ax.patches, key=lambda bar: bar.get_y())  # per structure: a's bar above b's
    shares = {"a": [30, 25, 0, 5], "b": [50, 50, 0, 0]}  # foreground, vertebra, disc, canal (% of pixels)
    assert [bar.get_width() for bar in bars] == pytest.approx([v for pair in zip(*shares.values()) for v in pair])
    colours = [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars]
    assert colours == [plots.CLASS_COLOURS[s].lower() for s in ("foreground", "vertebra", "disc", "canal") for _ in "ab"]


def test_sample_figure_one_pair_of_rows_per_dataset():
    fig = plots.sample_figure({"phantom": slice_set(list("abcde")), "real": slice_set(list("xyz"))}, count=4)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 2 * 4 + 2 * 3  # the smaller set fills 3 columns


# ------------------------------------------------------------------ chapter 2: architectures

@pytest.fixture(scope="module")
def outlines():
    return report.outline_table(["U-Net", "Proposed", "TransUNet"], width=4, input_shape=(32, 32, 1))


def test_architecture_outline_adds_up_and_is_in_order():
    from spine.models import build_model

    model = build_model("Proposed", input_shape=(32, 32, 1), width=4)
    table = report.architecture_outline(model)
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
    wide = report.outline_wide(outlines).set_index("block")
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
    table = report.counts_table(counts).set_index("model")
    assert table.loc["U-Net + SAM", "added"] == 100 and table.loc["U-Net + SAM", "base"] == "U-Net"
    assert pd.isna(table.loc["U-Net", "added"])
    frame = pd.DataFrame([{"model": m, **c} for m, c in counts.items()])
    assert report.counts_table(frame).equals(report.counts_table(counts))
    assert list(report.counts_table(frame, variants_only=True)["model"]) == ["U-Net + SAM"]
    assert "added" not in report.counts_table({"U-Net": counts["U-Net"]})  # no variant, no empty columns
    html = page.format_counts(table.reset_index().assign(study_total=31050114, pct=0.17, p=1.0)).to_html()
    assert "31,050,114" in html and "0.17" in html and "1.00" in html and "–" in html
    assert ">100<" in html  # the added parameters, an integer column with gaps
    assert "study_<wbr>total" in html  # a snake_case header may wrap after its underscore


# ------------------------------------------------------------------ chapters 3-4: losses, ablations

def test_history_grid_lines_per_model_and_none_when_untrained():
    table = pd.DataFrame({"model": ["U-Net", "Proposed", "U-Net"], "loss": ["BCE", "BCE", "Dice"],
                          "trained": [True, True, False], "run_id": ["u", "p", "untrained"]})
    histories = {"u": pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.5, 0.4, 0.3], "mask_loss": [0.5, 0.4, 0.3],
                                    "val_dice": [0.5, 0.6, 0.7]}),
                 "p": pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.5, 0.4, 0.3], "mask_loss": [0.3, 0.2, 0.1],
                                    "aux_loss": [0.2, 0.2, 0.2], "val_dice": [0.5, 0.6, 0.7]})}
    fig = plots.history_grid(table, histories)
    assert len(fig.axes) == 2  # one loss trained x two columns
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].lines}
    assert list(lines["Proposed"]) == [0.3, 0.2, 0.1]  # the main head's loss, not the total
    assert list(lines["U-Net"]) == [0.5, 0.4, 0.3]
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in fig.axes[-1].get_xticks() if 0.5 <= t <= 3.5)  # whole epochs
    assert plots.history_grid(table.assign(trained=False), {}) is None


def test_loss_heatmaps_mark_untrained_cells():
    table = pd.DataFrame({"model": ["A", "A", "B", "B"], "loss": ["BCE", "Dice"] * 2,
                          "f1": [0.5, 0.6, np.nan, np.nan], "study_f1": [0.93, 0.94, 0.92, 0.91]})
    fig = plots.loss_heatmaps(loss_grid(table, "f1"), loss_grid(table, "study_f1"))
    ours = [t.get_text() for t in fig.axes[0].texts]
    assert ours == ["0.5000", "0.6000", "–", "–"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["0.9300", "0.9400", "0.9200", "0.9100"]


def test_augmentation_examples_show_the_original_then_each_draw():
    """Whether labels stay labels is a property of the data path (tests/test_targets.py); here, what
    the figure shows: the slice as given, then one transformed draw per seed."""
    data = slice_set(["1"])
    fig = plots.augmentation_examples(data.images[0], data.structures[0], seeds=(1, 2))
    assert [ax.get_title() for ax in fig.axes] == ["original", "seed 1", "seed 2"]
    pictures = [ax.images[0].get_array() for ax in fig.axes]
    np.testing.assert_array_equal(pictures[0], data.images[0, ..., 0])
    assert not np.array_equal(pictures[1], pictures[0]) and not np.array_equal(pictures[2], pictures[1])


# ------------------------------------------------------------------ chapters 6-9: stability, Grad-CAM, volumes

def test_seed_spread_draws_runs_and_headline():
    ax = plots.seed_spread([0.88, 0.89, 0.885, np.nan], headline=0.897)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "runs (3)" in labels and "single-run figure" in labels and "mean ± SD" in labels
    plt.close(ax.figure)
    empty = plots.seed_spread([], headline=None)
    assert empty.texts and empty.get_legend() is None
    plt.close(empty.figure)


def test_gradcam_grid_draws_each_map_over_its_image():
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32)).astype(np.float32)
    maps = {"bottleneck": rng.random((2, 32, 32)).astype(np.float32),
            "random": rng.random((2, 32, 32)).astype(np.float32)}
    fig = plots.gradcam_grid(images, maps, contours=images > 0.5, titles=["a", "b"])
    panels = fig.axes[:4]  # row by row: each source's map of each image, over that image
    for ax, (source, image) in zip(panels, [(s, i) for s in maps for i in range(2)]):
        np.testing.assert_array_equal(ax.images[0].get_array(), images[image])
        np.testing.assert_array_equal(ax.images[1].get_array(), maps[source][image])
    assert [ax.get_title() for ax in panels] == ["a", "b", "", ""]
    plt.close(fig)


def test_structure_bars():
    scores = pd.DataFrame({"model": ["U-Net", "Proposed"], "loss": ["CCE-Dice"] * 2, "trained": [True, False],
                           **{f"dice_{s}": [0.8, np.nan] for s in STRUCTURES},
                           **{f"dice_{s}_ci": [(0.7, 0.9), (np.nan, np.nan)] for s in STRUCTURES}})
    ax = plots.structure_bars(scores)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["U-Net"]  # the untrained row is left out
    assert [bar.get_height() for bar in ax.patches] == pytest.approx([0.8] * 3)
    assert [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in ax.patches] == \
        [plots.CLASS_COLOURS[s].lower() for s in STRUCTURES]
    whiskers = [segment[:, 1] for bars in ax.collections for segment in bars.get_segments()]
    assert np.allclose(whiskers, [0.7, 0.9])  # each bar's interval
    plt.close(ax.figure)
    empty = plots.structure_bars(scores.assign(trained=False))
    assert empty.texts
    plt.close(empty.figure)


def test_volume_slices_draw_labels_and_the_reference_outline():
    image, mask = phantom.make_case(7, permuted=True)
    classes = sitk.GetImageFromArray(label_values_to_classes(sitk.GetArrayFromImage(mask), "binary"))
    classes.CopyInformation(mask)
    fig = plots.volume_slices(image, classes, mask, count=3)
    assert len(fig.axes) == 3 and all(ax.images for ax in fig.axes)
    assert all(ax.collections for ax in fig.axes)  # the reference outline on every panel
    plt.close(fig)


# ------------------------------------------------------------------ one class palette

ODD_PALETTE = {"background": "none", "foreground": "#010203", "vertebra": "#040506", "disc": "#070809",
               "canal": "#0a0b0c"}


def _class_colours(fig, skip_titles=("mask values",)) -> set:
    """The colours a figure gives to classes: its label overlays' colour maps, its bars and its
    legend patches (an instance map, which colours values rather than classes, is skipped)."""
    found = set()
    for ax in fig.axes:
        if ax.get_title() in skip_titles:
            continue
        for image in ax.images:
            if isinstance(image.cmap, matplotlib.colors.ListedColormap):
                found |= {tuple(c) for c in matplotlib.colors.to_rgba_array(image.cmap.colors)}
        found |= {tuple(p.get_facecolor()) for p in ax.patches}
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        found |= {tuple(h.get_facecolor()) for h in legend.legend_handles if hasattr(h, "get_facecolor")}
    return found


def _class_figures():
    """Every figure of spine.plots that colours classes, drawn from small inputs."""
    data = slice_set(list("abcd"))
    image, mask = phantom.make_case(7, permuted=True)
    classes = sitk.GetImageFromArray(label_values_to_classes(sitk.GetArrayFromImage(mask), "multiclass"))
    classes.CopyInformation(mask)
    scores = pd.DataFrame({"model": ["U-Net"], "loss": ["Dice"], "trained": [True],
                           **{f"dice_{s}": [0.8] for s in STRUCTURES}})
    return {
        "overlay_grid binary": plots.overlay_grid(data.images, {"ref": data.labels("binary")}, "binary"),
        "overlay_grid multiclass": plots.overlay_grid(data.images, {"ref": data.structures}, "multiclass"),
        "instance_figure": plots.instance_figure(data.images[0, ..., 0], data.structures[0], data.structures[0]),
        "preprocessing_steps": plots.preprocessing_steps(data.images[0, ..., 0], data.structures[0], size=16),
        "sample_figure": plots.sample_figure({"a": data}, count=2),
        "augmentation_examples": plots.augmentation_examples(data.images[0], data.structures[0], seeds=(1,)),
        "volume_slices": plots.volume_slices(image, classes, mask, task="multiclass", count=1),
        "class_balance_plot": plots.class_balance_plot(class_balance({"a": data.structures})).figure,
        "structure_bars": plots.structure_bars(scores).figure,
    }


def test_every_figure_colours_classes_from_the_one_palette(monkeypatch):
    """With the palette swapped for odd colours, every class colour a figure shows is one of them:
    no figure keeps a colour of its own."""
    monkeypatch.setattr(plots, "CLASS_COLOURS", ODD_PALETTE)
    allowed = {tuple(matplotlib.colors.to_rgba(c)) for c in ODD_PALETTE.values()}
    for name, fig in _class_figures().items():
        found = _class_colours(fig)
        assert found, f"{name}: no class colour found"
        assert found <= allowed, f"{name}: colours outside the palette {found - allowed}"


def test_a_wide_table_turned_keeps_every_value_in_its_place():
    table = pd.DataFrame({"source": ["a", "b"], "runs": [10, 5], "mean": [0.88914, np.nan],
                          "ci": [(0.1, 0.25), (0.3, 0.4)], "run": ["seed 0", "seed 1"]})
    turned = page.format_turned(table, "source", digits=3).data
    assert list(turned.columns) == ["", "a", "b"] and list(turned[""]) == ["runs", "mean", "ci", "run"]
    assert list(turned["a"]) == ["10", "0.889", "(0.100, 0.250)", "seed 0"]
    assert list(turned["b"]) == ["5", "–", "(0.300, 0.400)", "seed 1"]
    exact = pd.DataFrame({"source": ["a", "b"], "p": [1.0, 0.25], "study_sd": [0.5, 0.1]})
    styled = page.format_turned(exact, "source", digits=2)
    assert list(styled.data.iloc[0]) == ["p", "1.00", "0.25"]  # a column of fractions keeps its decimals at 1
    assert "color: #666666" in styled.to_html() and list(styled.data[""]) == ["p", "study_sd"]
