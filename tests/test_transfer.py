"""The transfer check (spine.transfer): real T1/T2 vertebra slices and held-out phantom T1/T2 cases."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from spine import inference, stats, transfer
from spine.data import PHANTOM_CHECK_PATIENTS, PHANTOM_MIX_PATIENTS, phantom_slices

from conftest import SHARED_DATA, _require

T1T2 = SHARED_DATA / "spider-t1t2-vertebrae"


@pytest.fixture(scope="module")
def t1t2():
    return _require(T1T2)


def test_any_non_black_colour_is_vertebra(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 2] = (128, 80, 0)
    rgb[3, 4] = (0, 0, 1)
    Image.fromarray(rgb[::-1]).save(tmp_path / "mask.png")  # the folder stores its slices feet up
    found = transfer.read_vertebra_mask(tmp_path / "mask.png")
    assert found.dtype == bool and found.sum() == 3 and found[0, 0] and found[1, 2] and found[3, 4]


def test_the_slices_reach_the_model_head_up_with_their_masks(tmp_path, monkeypatch):
    """A hand slice stored feet up: bright in its top row, reference in its top two rows. The model
    sees it head up (bright at the bottom) and is scored against the reference turned with it."""
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    image = np.zeros((6, 4), np.uint8)
    image[0] = 255
    Image.fromarray(image).save(tmp_path / "images" / "a_1.png")
    rgb = np.zeros((6, 4, 3), np.uint8)
    rgb[0:2] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "masks" / "a_1.png")
    seen = []

    def model_marks_the_bright_rows(model, images, resize_back):
        seen.extend(images)
        return [np.where(i > 0, transfer.VERTEBRA, 0) for i in images]

    monkeypatch.setattr(transfer, "segment_slices", model_marks_the_bright_rows)
    row = transfer.t1t2_scores(object(), tmp_path).iloc[0]
    assert seen[0][-1].min() > 0 and seen[0][:-1].max() == 0
    assert (row["precision"], row["recall"]) == (1.0, 0.5)  # the bright row is the reference's lower row


def test_a_stored_check_says_it_turned_the_slices_and_older_ones_did_not(monkeypatch):
    hand = pd.DataFrame({"image": ["a_1.png", "b_1.png"], "reference_fraction": [0.1, 0.2], "dice": [0.5, 0.7]})
    monkeypatch.setattr(transfer, "phantom_scores", lambda model, every_slice=False: pd.DataFrame(
        {"sequence": ["t1"], "case": ["a"], "dice": [0.5]}))
    monkeypatch.setattr(transfer, "t1t2_scores", lambda model, folder: hand)
    monkeypatch.setattr(transfer, "output_classes", lambda model: 2)
    check = transfer.transfer_check(object(), "folder")
    assert transfer.t1t2_check_version(check) == transfer.T1T2_CHECK_VERSION == 2
    assert transfer.t1t2_check_version({"t1t2_vertebrae": {"dice": {}}}) == 1


def _size_trend(levels: list[np.ndarray]) -> float:
    """Spearman correlation of a slice's vertebrae's centre rows with their areas (NaN under 4)."""
    from scipy.stats import spearmanr

    if len(levels) < 4:
        return np.nan
    return spearmanr([np.flatnonzero(m.any(axis=1)).mean() for m in levels], [m.sum() for m in levels]).statistic


@pytest.mark.real
def test_the_t1_t2_slices_are_stored_feet_up(t1t2):
    """Lumbar vertebrae grow larger downwards: over a head-up slice's levels the area rises with the
    row. It does on SPIDER's 3D masks, oriented by their geometry (mid-line slice); the folder's
    slices as stored fall, and read by the check they rise (transfer.T1T2_FEET_UP)."""
    from spine.data import geometry, io

    masks = sorted(_require(SHARED_DATA / "spider-masks-3d").glob("*.mha"))
    spider = []
    for path in masks:
        slices, _ = geometry.sagittal_slices(io.read_volume(path))
        middle = slices[len(slices) // 2]
        spider.append(_size_trend([middle == label for label in np.unique(middle) if 1 <= label <= 25]))
    turned = np.array([_size_trend(transfer.reference_vertebrae(p)) for p in sorted((t1t2 / "masks").glob("*.png"))])
    stored = np.array([_size_trend([m[::-1] for m in transfer.reference_vertebrae(p)])
                       for p in sorted((t1t2 / "masks").glob("*.png"))])
    from scipy.stats import binomtest

    def rising_share_p(trends):  # a sign test: rising against falling slices
        trends = np.asarray(trends)
        return binomtest(int(np.sum(trends > 0)), int(np.sum(trends != 0) - np.sum(np.isnan(trends)))).pvalue

    spider = np.array(spider)
    assert len(masks) == 48 and np.sum(spider > 0) >= 40 and rising_share_p(spider) < 1e-6
    assert np.sum(stored < 0) >= 25 and np.sum(stored > 0) <= 4 and rising_share_p(stored) < 1e-4
    assert np.array_equal(turned, -stored, equal_nan=True)


def test_summary_keeps_the_slices_with_enough_reference():
    per_slice = pd.DataFrame({"image": list("abcd"), "reference_fraction": [0.0, 0.005, 0.01, 0.2],
                              "dice": [0.0, 0.1, 0.6, 0.8], "recall": [0.0, 0.2, 0.7, 0.9],
                              "precision": [0.0, 0.1, 0.5, 0.7]})
    summary = transfer.summarize(per_slice)
    assert (summary["slices"], summary["of"]) == (2, 4)
    assert summary["dice"]["mean"] == pytest.approx(0.7)
    low, high = summary["dice"]["ci95"]
    assert low <= 0.7 <= high


def test_the_check_holds_out_phantom_patients_never_mixed_into_training():
    assert not set(PHANTOM_CHECK_PATIENTS) & set(PHANTOM_MIX_PATIENTS)


@pytest.mark.real
@pytest.mark.slow
def test_the_shipped_4_class_model_on_the_real_t1_t2_slices(t1t2):
    per_slice = transfer.t1t2_scores(inference.load_model(task="multiclass"), t1t2)
    assert len(per_slice) == 36
    summary = transfer.summarize(per_slice)
    assert summary["slices"] == 22  # reference >= 1 % of the image
    assert 0 <= summary["dice"]["ci95"][0] <= summary["dice"]["mean"] <= summary["dice"]["ci95"][1] <= 1
    card = inference.model_card("multiclass")
    if "transfer" in card:  # the card's figure is this check's, on this file
        assert summary["dice"]["mean"] == pytest.approx(card["transfer"]["t1t2_vertebrae"]["dice"]["mean"], abs=1e-6)


@pytest.mark.slow
def test_phantom_scores_cover_each_sequence_of_the_held_out_cases():
    model = inference.load_model(task="multiclass")
    scores = transfer.phantom_scores(model, patients=range(1, 4))
    assert list(scores.groupby("sequence").size().items()) == [("t1", 3), ("t2", 3)]
    assert scores["case"].str.startswith("phantom-").all()
    assert scores[["dice", "vertebra_dice"]].apply(lambda c: c.between(0, 1)).all().all()


def test_the_check_names_the_phantom_patients_it_used(monkeypatch):
    hand = pd.DataFrame({"sequence": ["t1", "t2", "t2"], "case": ["a", "b", "c"], "dice": [0.9, 0.5, 0.7]})
    monkeypatch.setattr(transfer, "phantom_scores", lambda model, every_slice=False: hand.assign(dice=hand.dice - every_slice / 10))
    check = transfer.transfer_check(object())
    assert check["phantom_patients"] == [PHANTOM_CHECK_PATIENTS.start, PHANTOM_CHECK_PATIENTS[-1]]
    assert check["phantom"] == {"t1": {"cases": 1, "dice": 0.9}, "t2": {"cases": 2, "dice": pytest.approx(0.6)}}
    assert check["phantom_every_slice"]["t1"] == {"cases": 1, "dice": pytest.approx(0.8)}


def test_every_slice_pools_a_case_s_sagittal_slices_lateral_ones_too():
    central = phantom_slices("t2", range(1, 3))
    every = phantom_slices("t2", range(1, 3), every_slice=True)
    assert list(dict.fromkeys(every.patients)) == list(central.patients) == ["phantom-1", "phantom-2"]
    for patient, image in zip(central.patients, central.images):
        mine = every.patients == patient
        assert mine.sum() >= 9  # the phantom's series have 9 or more sagittal slices
        assert any(np.array_equal(image, other) for other in every.images[mine])  # the central slice is one of them
    vertebra = (every.structures == 1).mean(axis=(1, 2))
    assert vertebra.min() < 0.5 * vertebra.max()  # lateral slices hold far less vertebral body


def test_dice_within_the_rows_the_reference_spans(tmp_path, monkeypatch):
    """A hand slice: reference vertebra in rows 2-3, the model's in rows 0-3 (same columns); overall
    Dice 2 * 4 / (4 + 8) = 2/3, within rows 2-3 it is 1."""
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    Image.fromarray(np.zeros((6, 4), np.uint8)).save(tmp_path / "images" / "a.png")
    rgb = np.zeros((6, 4, 3), np.uint8)
    rgb[2:4, 1:3] = (255, 0, 0)
    Image.fromarray(rgb[::-1]).save(tmp_path / "masks" / "a.png")
    predicted = np.zeros((6, 4), np.int64)
    predicted[0:4, 1:3] = transfer.VERTEBRA
    monkeypatch.setattr(transfer, "segment_slices", lambda model, images, resize_back: [predicted])
    row = transfer.t1t2_scores(object(), tmp_path).iloc[0]
    assert row["dice"] == pytest.approx(2 / 3) and row["dice_in_reference_rows"] == pytest.approx(1.0)
    assert (row["recall"], row["precision"]) == (1.0, 0.5)


def _mask_volume(path, vertebra_slices, size=(6, 5, 4), spacing=(0.5, 0.7, 2.0)):
    """A SPIDER-style mask whose sagittal (left-right) axis is index z: vertebra 3 on the z-slices
    ``vertebra_slices``, the canal (100) on every slice; saved with a non-identity direction."""
    array = np.zeros(size[::-1], np.int16)  # [z, y, x]
    array[:, 1, 1] = 100
    for k in vertebra_slices:
        array[k, 2:4, 2:4] = 3
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetDirection((0, 0, 1, 0, 1, 0, 1, 0, 0))  # index z runs along world x, left-right
    sitk.WriteImage(image, str(path))


def test_lateral_coverage_against_hand_counts(tmp_path):
    """Training slices 3-7 of one patient and 10-11 of another, 2 mm apart (the T2-SPACE mask's
    sagittal spacing): 10 and 4 mm wide. Vertebra on 2 of the T1 mask's 4 sagittal slices: 4 mm."""
    for folder in ("images", "masks"):
        (tmp_path / "slices" / folder).mkdir(parents=True)
        for name in [f"7_t2_SPACE_slice{k}.png" for k in range(3, 8)] + ["8_t2_SPACE_slice10.png", "8_t2_SPACE_slice11.png"]:
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "slices" / folder / name)
    (tmp_path / "masks").mkdir()
    _mask_volume(tmp_path / "masks" / "1_t2_SPACE.mha", range(4))
    _mask_volume(tmp_path / "masks" / "1_t1.mha", [1, 2])
    coverage = transfer.lateral_coverage(tmp_path / "slices", tmp_path / "masks")
    assert coverage["slice_spacing_mm"] == 2.0
    assert coverage["training_mm"] == [4.0, 7.0, 10.0]
    assert coverage["vertebra_mm"] == {"t1": [4.0, 4.0, 4.0], "t2_SPACE": [8.0, 8.0, 8.0]}


@pytest.mark.real
def test_real_training_slices_reach_a_fraction_of_the_vertebrae_s_width(t2space_slices, masks_3d):
    """The published T2-SPACE slices are 14-30 per patient around the mid-line, 0.9 mm apart; SPIDER's
    T1 vertebrae span far wider (most T1 series are 3.3 or 4.8 mm slices, 15-32 of them)."""
    coverage = transfer.lateral_coverage(t2space_slices, masks_3d)
    assert coverage["slice_spacing_mm"] == pytest.approx(0.9, abs=0.01)
    assert coverage["training_mm"] == pytest.approx([14 * 0.9, 21 * 0.9, 30 * 0.9], abs=0.01)
    assert coverage["vertebra_mm"]["t1"][0] > 2 * coverage["training_mm"][2]


def test_summary_resamples_whole_series():
    """Two slices of each of five series: the interval resamples series (spine.stats.cluster_bootstrap_ci),
    the mean stays the mean over slices."""
    dice = [0.2, 0.3, 0.5, 0.5, 0.6, 0.7, 0.8, 0.8, 0.9, 0.95]
    per_slice = pd.DataFrame({"image": [f"{10000 + k // 2}_{k}.png" for k in range(10)], "reference_fraction": 0.1,
                              "dice": dice})
    summary = transfer.summarize(per_slice)
    assert (summary["slices"], summary["series"]) == (10, 5)
    assert summary["dice"]["mean"] == pytest.approx(np.mean(dice))
    assert summary["dice"]["ci95"] == pytest.approx(list(stats.cluster_bootstrap_ci(dice, per_slice["image"].str[:5])[1:]))


def _level_folder(tmp_path, rows_of_colours, shape=(24, 12)):
    """A one-slice ``spider-t1t2-vertebrae``-like folder: each colour fills its rows (head up) and
    columns (by default 3-8); stored feet up, as the folder stores them."""
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "images" / "s_1.png")
    rgb = np.zeros((*shape, 3), np.uint8)
    for colour, rows, *columns in rows_of_colours:
        rgb[rows, columns[0] if columns else slice(3, 9)] = colour
    Image.fromarray(rgb[::-1]).save(tmp_path / "masks" / "s_1.png")
    return tmp_path


def _stacked_spine(shape=(24, 12)):
    """Three vertebrae (rows 2-5, 8-11, 14-17) with discs between them, columns 3-8."""
    classes = np.zeros(shape, np.int64)
    for rows in (slice(2, 6), slice(8, 12), slice(14, 18)):
        classes[rows, 3:9] = transfer.VERTEBRA
    for rows in (slice(6, 8), slice(12, 14)):
        classes[rows, 3:9] = 2  # disc
    return classes


THREE_LEVELS = [((255, 0, 0), slice(2, 6)), ((0, 255, 0), slice(8, 12)), ((0, 0, 255), slice(14, 18))]


def test_neighbouring_vertebrae_numbered_one_apart_upper_higher_are_right(tmp_path, monkeypatch):
    folder = _level_folder(tmp_path, THREE_LEVELS + [((255, 255, 0), slice(20, 21), slice(3, 5))])  # a sliver: left out
    monkeypatch.setattr(transfer, "segment_slices", lambda model, images, resize_back: [_stacked_spine()])
    pairs = transfer.level_order_scores(object(), folder)
    assert pairs[["upper", "lower"]].values.tolist() == [[3, 2], [2, 1]]  # spine.levels numbers from the lowest up
    assert pairs["found"].all() and pairs["right"].all()


def test_a_swapped_or_missed_vertebra_is_not_right(tmp_path, monkeypatch):
    folder = _level_folder(tmp_path, THREE_LEVELS)
    instances = np.zeros((24, 12), np.uint8)
    instances[2:6, 3:9], instances[8:12, 3:9] = 1, 2  # upper and middle the wrong way round, lowest missed
    monkeypatch.setattr(transfer, "segment_slices", lambda model, images, resize_back: [_stacked_spine()])
    monkeypatch.setattr(transfer.levels, "label_slice", lambda classes: instances)
    pairs = transfer.level_order_scores(object(), folder)
    assert pairs[["upper", "lower", "found", "right"]].values.tolist() == [[1, 2, True, False], [2, 0, False, False]]


def test_level_order_is_right_over_the_found_pairs_and_found_over_all():
    pairs = pd.DataFrame({"image": ["a_1.png"] * 3 + ["b_1.png"] * 2, "upper": [3, 2, 1, 5, 4],
                          "lower": [2, 1, 0, 4, 2], "found": [True, True, False, True, True],
                          "right": [True, True, False, True, False]})
    summary = transfer.summarize_level_order(pairs)
    assert summary["found"]["mean"] == pytest.approx(4 / 5) and summary["found"]["pairs"] == 5
    assert summary["right"]["mean"] == pytest.approx(3 / 4) and summary["right"]["pairs"] == 4
    assert (summary["pairs"], summary["slices"], summary["right"]["series"]) == (5, 2, 2)


@pytest.mark.real
@pytest.mark.slow
def test_the_shipped_4_class_model_numbers_real_t1_t2_levels(t1t2):
    pairs = transfer.level_order_scores(inference.load_model(task="multiclass"), t1t2)
    summary = transfer.summarize_level_order(pairs)
    assert summary["slices"] == 22 and summary["found"]["pairs"] > 100
    card = inference.model_card("multiclass")
    if "t1t2_level_order" in card.get("transfer", {}):  # the card's figure is this check's, on this file
        assert summary["right"]["mean"] == pytest.approx(card["transfer"]["t1t2_level_order"]["right"]["mean"])


def _slice_folder(root, slices: dict) -> None:
    """A T2-SPACE-style slice folder: ``{name: (image, vertebra mask)}``, masks in the folder's grey values."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(exist_ok=True)
    for name, (image, vertebra) in slices.items():
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray(np.where(vertebra, 76, 0).astype(np.uint8)).save(root / "masks" / f"{name}.png")


class _BinaryModel:
    output_shape = (None, 8, 8, 2)


def test_the_full_size_check_scores_each_patient_s_central_slices_at_their_own_size(tmp_path, monkeypatch):
    """Patient p1 has 7 slices; its 5 central ones (2-6) are scored, and the model misses slice 4 only;
    patient p2's one slice is found whole. Per patient: 0.8 and 1.0."""
    vertebra = np.zeros((10, 12), bool)
    vertebra[3:7, 4:9] = True
    slices = {f"p1_t2_SPACE_slice{k}": (np.where(vertebra, 200, 0) * (k != 4), vertebra) for k in range(1, 8)}
    slices["p2_t2_SPACE_slice1"] = (np.where(vertebra, 200, 0), vertebra)
    _slice_folder(tmp_path, slices)
    seen = []

    def model_marks_the_bright_pixels(model, images, resize_back):
        seen.append(resize_back)
        return [(image > 0).astype(np.uint8) for image in images]

    monkeypatch.setattr(transfer, "segment_slices", model_marks_the_bright_pixels)
    per_slice = transfer.full_size_scores(_BinaryModel(), tmp_path, ["p1", "p2"], per_patient=5)
    assert sorted(per_slice.loc[per_slice["patient"] == "p1", "case"]) == [f"p1_t2_SPACE_slice{k}" for k in range(2, 7)]
    assert per_slice.groupby("patient")["dice"].mean().to_dict() == {"p1": 0.8, "p2": 1.0}
    split = pd.DataFrame({"patient": ["p1", "p2", "p3"], "subset": ["val", "test", "train"]})
    check = transfer.full_size_check(_BinaryModel(), tmp_path, split, per_patient=5)
    assert (check["val"]["dice"]["mean"], check["test"]["dice"]["mean"]) == (0.8, 1.0)
    assert check["resize_back"] == inference.RESIZE_BACK == seen[-1] and check["slices_per_patient"] == 5


def test_a_perfect_map_brought_back_linearly_keeps_an_edge_inside_a_coarse_pixel(tmp_path):
    """Vertebra in columns 2-4 of an 8 x 8 mask; at 4 x 4 the column pairs hold shares 0, 1, 0.5, 0.
    Nearest neighbour keeps the label map's columns 2-3 (Dice 2*2/(3+2) = 0.8); the shares brought
    back bilinearly cross 0.5 between columns 4 and 5, so the edge comes back where it was (Dice 1)."""
    vertebra = np.zeros((8, 8), bool)
    vertebra[:, 2:5] = True
    _slice_folder(tmp_path, {"p1_t2_SPACE_slice1": (np.where(vertebra, 200, 0), vertebra)})
    ceiling = transfer.input_size_ceiling(tmp_path, sizes=(4,))
    assert ceiling[4, "nearest"]["binary"] == pytest.approx(0.8)
    assert ceiling[4, "nearest"]["multiclass"] == pytest.approx((0.8 + 1 + 1) / 3)  # disc and canal absent: 1 each
    assert ceiling[4, "linear"] == {"binary": 1.0, "multiclass": 1.0}


def test_stored_checks_bring_labels_back_as_every_recorded_check_did(monkeypatch):
    """The body check the export rule compares is made one way for every record (nearest neighbour),
    whatever spine predict's own default, and says so."""
    asked = []

    def body_scores(model, folder, exams, resize_back):
        asked.append(resize_back)
        return pd.DataFrame({"exam": ["e1"], "patient": ["p1"], "sequence": ["t1"], "dice": [0.5]}), pd.DataFrame()

    monkeypatch.setattr(transfer, "body_scores", body_scores)
    monkeypatch.setattr(transfer, "find_exams", lambda folder: [SimpleNamespace(exam="e1", patient="p1")])
    monkeypatch.setattr(transfer, "_model", lambda model: model)
    monkeypatch.setattr(transfer, "output_classes", lambda model: 4)
    check = transfer.body_check("unused", "vertebral-bodies-t1t2", pd.DataFrame({"patient": ["p1"], "subset": ["val"]}))
    assert asked == ["nearest"] == [check["resize_back"]] and transfer.CHECK_RESIZE_BACK != inference.RESIZE_BACK
