"""Vertebral-body volumes (spine.data.bodies): reader, partial labels, the body check, the partial-label
losses and the split. Hand cases with known answers; the real exams where they are present."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import tensorflow as tf

from spine import losses, stats, transfer
from spine.data import bodies, io, load_dataset, make_split, phantom
from spine.data.labels import BACKGROUND, DISC, UNKNOWN, VERTEBRA, spider_to_classes, structures_to_classes
from spine.errors import ConfigError, DataError
from spine.training import make_config
from spine.training.engine import partial_split

from conftest import SHARED_DATA, _require

BODIES = SHARED_DATA / "vertebral-bodies-t1t2"
SPACING = (1.0, 1.0, 1.0)  # (slice, row, column) mm


def write_exam(folder, name="vb9_01_t2-tse", shape=(9, 40, 30), mask_spacing=(1.0, 1.0, 1.0)):
    """An image and a body mask in the folder's geometry: array axes (left-right, S-I, A-P), direction
    x posterior, y inferior, z left."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.integers(0, 255, shape).astype(np.uint8))
    labels = np.zeros(shape, np.uint8)
    labels[2:7, 10:18, 5:15] = 1
    mask = sitk.GetImageFromArray(labels)
    for volume, spacing in ((image, (1.0, 1.0, 1.0)), (mask, mask_spacing)):
        volume.SetSpacing(spacing)
        volume.SetDirection((0, 0, 1, 1, 0, 0, 0, -1, 0))
    sitk.WriteImage(image, str(folder / f"{name}.nii.gz"))
    sitk.WriteImage(mask, str(folder / f"{name}_bodies.nii.gz"))


def test_reader_finds_the_exams_and_their_sagittal_slices(tmp_path):
    write_exam(tmp_path)
    [exam] = bodies.find_exams(tmp_path)
    assert (exam.exam, exam.sequence, exam.patient) == ("vb9_01", "t2-tse", "vb9_01")
    image, mask = bodies.read_exam(exam)
    slices, spacing = bodies.sagittal_arrays(mask)
    assert slices.shape == (9, 40, 30) and spacing == SPACING  # every left-right position is a slice
    assert np.count_nonzero(slices) == 5 * 8 * 10


def test_image_and_mask_that_disagree_name_both_files(tmp_path):
    write_exam(tmp_path, mask_spacing=(1.0, 1.0, 2.0))
    with pytest.raises(DataError, match=r"vb9_01_t2-tse_bodies\.nii\.gz: does not match its image vb9_01_t2-tse"
                                         r"\.nii\.gz: spacing"):
        bodies.read_exam(bodies.find_exams(tmp_path)[0])


def test_an_image_without_its_mask_is_an_error(tmp_path):
    write_exam(tmp_path)
    (tmp_path / "vb9_01_t2-tse_bodies.nii.gz").rename(tmp_path / "vb9_02_t1-fse_bodies.nii.gz")
    with pytest.raises(DataError, match="without its image"):
        bodies.find_exams(tmp_path)


def _column_case():
    """Three slices (left-right) of 30 rows x 20 columns: two bodies in the middle slice (rows 5-9 and
    15-19, columns 5-9), one smaller body in slice 1's upper level."""
    truth = np.zeros((7, 30, 20), bool)
    truth[3, 5:10, 5:10] = truth[3, 15:20, 5:10] = True
    truth[2, 5:10, 6:9] = True
    return truth


def test_partial_structures_know_bodies_anterior_and_lateral_background_only():
    truth = _column_case()  # bodies near the volume's front and sides: only what lies in front of them is known
    known = bodies.partial_structures(truth, SPACING)
    in_front = np.zeros_like(truth)
    in_front[3, 5:10, :4] = in_front[3, 15:20, :4] = in_front[2, 5:10, :5] = True  # > 1 mm before each body's row
    assert (known[truth] == VERTEBRA).all() and (known[in_front] == BACKGROUND).all()
    assert (known[~truth & ~in_front] == UNKNOWN).all()
    wide = np.zeros((15, 50, 30), bool)
    wide[7, 20:30, 15:25] = True
    known = bodies.partial_structures(wide, SPACING)
    assert (known[7, 22, :14] == BACKGROUND).all() and known[7, 22, 14] == UNKNOWN  # > 1 mm before column 15
    assert (known[7, 19, :10] == BACKGROUND).all() and known[7, 19, 10] == UNKNOWN  # no body in row 19: > 5 mm
    assert (known[6, 22, 10:] == UNKNOWN).all()  # the next slice holds no body: its row's front is not known
    assert (known[0, 22, :22] == BACKGROUND).all()  # slice 0 is 7 mm lateral: the column up to 3 mm short of edge 24
    assert (known[0, 22, 22:] == UNKNOWN).all()  # posterior elements may lie there
    assert (known[3, 22, 10:] == UNKNOWN).all()  # 4 mm lateral: a body may still be near
    assert (known[0, 9] == UNKNOWN).all()  # 11 rows above the bodies: no edge, nothing known
    assert (known[0, 10, :22] == BACKGROUND).all()  # 10 rows above: the nearest edge


def test_far_behind_the_spine_is_background_beside_the_mid_line_and_beyond_the_spinous_processes():
    truth = np.zeros((41, 40, 110), bool)
    truth[20, 15:26, 10:30] = True  # one body on the mid-line slice; its back at column 29, 1 mm columns
    known = bodies.partial_structures(truth, SPACING)
    back, row = 29, 20
    assert known[33, row, back + 31] == BACKGROUND  # 13 mm beside the mid-line, 31 mm behind: back muscles
    assert known[31, row, back + 31] == UNKNOWN  # 11 mm beside: a lamina or facet may lie there
    assert known[33, row, back + 29] == UNKNOWN  # 29 mm behind
    assert known[20, row, back + 61] == BACKGROUND  # on the mid-line, beyond a spinous process's tip
    assert known[20, row, back + 59] == UNKNOWN  # a spinous process may reach this far
    assert (known[:, 2] == UNKNOWN).all()  # 13 rows above the bodies: their back is not known there


@pytest.mark.real
def test_spider_vertebrae_almost_never_lie_where_the_rules_say_background_behind_the_spine(masks_3d):
    """Independent evidence for the region: SPIDER's own vertebra labels, posterior elements included,
    with the canal's front edge standing for the bodies' back and its mean slice for the mid-line."""
    for path in sorted(masks_3d.glob("*.mha")):
        labels, spacing = bodies.sagittal_arrays(io.read_volume(path))
        canal, vertebra = labels == 100, (labels > 0) & (labels < 100)
        seen = canal.any(axis=0)
        front = np.where(seen.any(axis=1), seen.argmax(axis=1), np.nan)
        midline = np.average(np.arange(len(labels)), weights=canal.sum(axis=(1, 2)))
        region = bodies.behind_the_spine(front, midline, labels.shape, spacing)
        assert region.sum() > 0.1 * region.size, path.name  # the region is not empty
        assert (vertebra & region).sum() <= 0.005 * vertebra.sum(), path.name


def test_binary_classes_keep_unknown_pixels_unknown():
    structures = np.array([[0, 1, 2, 3, UNKNOWN]], np.uint8)
    assert structures_to_classes(structures, "binary").tolist() == [[0, 1, 1, 1, UNKNOWN]]
    assert structures_to_classes(structures, "multiclass").tolist() == structures.tolist()


def test_the_check_scores_the_anterior_column_only():
    truth = _column_case()
    posterior = np.zeros_like(truth)
    posterior[3, 5:10, 14:19] = True  # posterior elements, 5-9 mm behind the edge (column 9): not scored
    assert transfer.score_bodies(truth | posterior, truth, SPACING)[0]["dice"] == 1.0
    lateral = np.zeros_like(truth)
    lateral[0, 15:20, 5:10] = True  # a false body on a lateral slice, inside the column: counted
    scores, slices = transfer.score_bodies(truth | lateral, truth, SPACING)
    assert scores["recall"] == 1.0 and scores["precision"] == pytest.approx(truth.sum() / (truth.sum() + 25))
    assert scores["dice"] == pytest.approx(2 * truth.sum() / (2 * truth.sum() + 25))
    row = slices[0]
    assert row["false_pixels"] == 25 and row["dice"] == 0.0 and row["offset_mm"] == -2.8
    edge = np.zeros_like(truth)
    edge[3, 5:10, 12] = True  # exactly 3 mm behind the edge: inside the column, counted
    edge[3, 5:10, 13] = True  # 4 mm: outside
    assert transfer.score_bodies(truth | edge, truth, SPACING)[0]["precision"] == pytest.approx(
        truth.sum() / (truth.sum() + 5))


def test_a_binary_foreground_is_scored_against_the_bodies_and_the_discs_between_them():
    numbered = np.zeros((5, 40, 20), np.uint8)
    for number, top in ((3, 4), (2, 16), (1, 28)):  # 4-row gaps: a disc two rows tall in each
        numbered[1:4, top:top + 8, 4:12] = number
    truth = numbered > 0
    discs = bodies.disc_spaces(numbered, SPACING)
    assert discs.sum() == 2 * 2 * 3 * 8  # two discs, 2 rows x 3 slices x 8 columns each
    marked = truth | discs  # a binary model's foreground: vertebra and disc
    on_bodies = transfer.score_bodies(marked, truth, SPACING)[0]
    assert on_bodies["precision"] == pytest.approx(truth.sum() / marked.sum())  # every disc an error
    scores, slices = transfer.score_bodies(marked, truth, SPACING, truth | discs)
    assert scores["dice"] == 1.0 and sum(row["false_pixels"] for row in slices) == 0
    missed = transfer.score_bodies(truth, truth, SPACING, truth | discs)[0]  # the discs missed
    assert missed["recall"] == pytest.approx(truth.sum() / (truth | discs).sum()) and missed["precision"] == 1.0


def test_the_check_counts_the_vertebra_marked_far_behind_the_spine():
    truth = np.zeros((41, 40, 110), bool)
    truth[20, 15:26, 10:30] = True  # the body's back at column 29
    muscle, spinous = np.zeros_like(truth), np.zeros_like(truth)
    muscle[34, 18:22, 62:67] = True  # 14 mm beside the mid-line, 33-37 mm behind: back muscle called bone
    spinous[20, 18:22, 62:67] = True  # on the mid-line, as far behind: a spinous process may be there
    scores = transfer.score_bodies(truth | muscle | spinous, truth, SPACING)[0]
    assert scores["dice"] == 1.0  # the column does not see either
    assert scores["behind"] == pytest.approx(muscle.sum() / (truth | muscle | spinous).sum())
    assert transfer.score_bodies(truth, truth, SPACING)[0]["behind"] == 0.0


def _three_bodies() -> np.ndarray:
    """Bodies 1 (lowest) to 3 in a small volume, rows counted from the top."""
    numbered = np.zeros((5, 40, 20), np.uint8)
    for number, top in ((3, 4), (2, 14), (1, 24)):
        numbered[1:4, top:top + 8, 4:12] = number
    return numbered


def test_neighbouring_bodies_are_right_only_when_numbered_one_apart():
    """A level map that numbers the three bodies 4, 5, 6 (from the lowest up): both pairs right; one
    that gives the upper two one number (fused): found, not right; a body a quarter covered: found,
    under a quarter: not found."""
    numbered = _three_bodies()
    pairs = transfer.body_level_pairs(numbered + 3 * (numbered > 0), numbered)
    assert pairs[["lower", "upper"]].values.tolist() == [[4, 5], [5, 6]] and pairs["right"].all()
    fused = np.where(numbered == 3, 2, numbered)
    pairs = transfer.body_level_pairs(fused, numbered)
    assert pairs["found"].all() and pairs["right"].tolist() == [True, False]
    partial = np.where(numbered == 3, 0, numbered)
    partial[numbered == 3] = 0
    partial[1, 4:6, 4:12] = 3  # 16 of the 192 pixels of body 3 carry its number: not found
    pairs = transfer.body_level_pairs(partial, numbered)
    assert pairs["found"].tolist() == [True, False] and pairs["right"].tolist() == [True, False]
    assert transfer.count_level_pairs(pairs) == {"level_pairs": 2, "level_found": 1, "level_right": 1}


def test_level_order_is_the_share_of_found_pairs_numbered_right_pooled_over_exams():
    exams = pd.DataFrame({"level_pairs": [6, 4], "level_found": [6, 2], "level_right": [3, 2]})
    assert transfer.level_order_share(exams) == {"pairs": 10, "found": 0.8, "right": 0.625}
    assert transfer.level_order_share(pd.DataFrame({"dice": [0.5]})) is None  # a binary model's check


def test_level_order_intervals_resample_patients_not_pairs():
    exams = pd.DataFrame({"patient": ["a", "a", "b", "c"], "level_pairs": [4, 4, 4, 4],
                          "level_found": [4, 4, 4, 2], "level_right": [4, 4, 2, 2]})
    share = transfer.level_order_share(exams)
    assert share["found"] == pytest.approx(14 / 16) and share["right"] == pytest.approx(12 / 14)
    assert share["patients"] == 3
    pairs = np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1])  # the found pairs, right or not, a then b then c
    by_patient = stats.cluster_bootstrap_ci(pairs, list("aaaaaaaabbbbcc"))
    by_pair = stats.cluster_bootstrap_ci(pairs, np.arange(14))
    assert share["right_ci95"] == pytest.approx(list(by_patient[1:]))
    assert share["right_ci95"] != pytest.approx(list(by_pair[1:]))  # 14 pairs are not 14 independent units
    same = pd.DataFrame({"patient": ["a", "b"], "level_pairs": [5, 5], "level_found": [5, 5], "level_right": [5, 5]})
    assert transfer.level_order_share(same)["right_ci95"] == [1.0, 1.0]
    one = transfer.level_order_share(same.iloc[:1])
    assert np.isnan(one["right_ci95"]).all()  # one patient: no interval


def test_the_body_check_numbers_a_four_class_volume_through_the_levels_path(tmp_path, monkeypatch):
    """A phantom case as an exam (its vertebrae as the numbered bodies) and its own 4-class map as the
    model's: every neighbouring pair found and right; the same map with one disc called bone fuses two
    vertebrae, and the pairs around them are no longer right."""
    image, mask = phantom.make_case(seed=0)
    spider = sitk.GetArrayFromImage(mask).astype(int)
    spider[(spider > 100) & (spider < 126)] -= 100
    numbered = np.where((spider > 0) & (spider < 100), spider, 0).astype(np.uint8)
    for array, name in ((sitk.GetArrayFromImage(image).astype(np.uint8), "vb9_01_t2-tse"), (numbered, "vb9_01_t2-tse_bodies")):
        volume = sitk.GetImageFromArray(array)
        volume.CopyInformation(mask)
        sitk.WriteImage(volume, str(tmp_path / f"{name}.nii.gz"))
    classes = spider_to_classes(spider, "multiclass")

    def check(class_array):
        volume = sitk.GetImageFromArray(class_array)
        volume.CopyInformation(mask)
        monkeypatch.setattr(transfer, "segment_volume", lambda model, image, resize_back: volume)
        return transfer.body_scores("unused", tmp_path)[0].iloc[0]

    monkeypatch.setattr(transfer, "_model", lambda model: model)
    monkeypatch.setattr(transfer, "output_classes", lambda model: 4)
    exam = check(classes)
    pairs = len(np.unique(numbered)) - 2
    assert exam["level_pairs"] == exam["level_found"] == exam["level_right"] == pairs > 2
    fused = classes.copy()
    fused[spider == 203] = VERTEBRA  # the disc below vertebra 3 (numbered from the lowest up)
    assert check(fused)["level_right"] < pairs


@pytest.mark.parametrize("name, task", [("Dice", "multiclass"), ("CCE", "multiclass"), ("CCE-Dice", "multiclass"),
                                        ("Focal", "multiclass"), ("BCE", "binary"), ("Dice", "binary"),
                                        ("Focal", "binary")])
def test_unknown_pixels_change_neither_the_loss_nor_its_gradient(name, task):
    count = 4 if task == "multiclass" else 2
    rng = np.random.default_rng(1)
    classes = rng.integers(0, count, (2, 6, 6))
    unknown = np.zeros((2, 6, 6), bool)
    unknown[:, :3] = True
    target = tf.one_hot(np.where(unknown, 255, classes), count)  # index 255: an all-zero target
    logits = tf.Variable(rng.normal(size=(2, 6, 6, count)).astype(np.float32))
    loss = losses.get_loss(name, task)
    with tf.GradientTape() as tape:
        value = loss(target, tf.nn.softmax(logits))
    gradient = tape.gradient(value, logits).numpy()
    assert np.abs(gradient[unknown]).max() == 0.0
    assert np.abs(gradient[~unknown]).max() > 0.0
    other = logits.numpy()
    other[unknown] = rng.normal(size=(unknown.sum(), count)) * 5
    assert float(loss(target, tf.nn.softmax(other))) == pytest.approx(float(value), abs=1e-6)


def test_fully_labelled_targets_give_the_loss_they_gave_before():
    target = tf.one_hot(np.array([[[0, 1], [2, 3]]]), 4)
    prediction = tf.nn.softmax(tf.constant(np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4) / 7))
    per_class = [1 - (2 * float(tf.reduce_sum(target[..., c] * prediction[..., c])) + 1)
                 / (float(tf.reduce_sum(target[..., c]) + tf.reduce_sum(prediction[..., c])) + 1) for c in range(4)]
    assert float(losses.get_loss("Dice", "multiclass")(target, prediction)) == pytest.approx(np.mean(per_class))


def test_exams_of_one_patient_stay_together_in_every_split():
    patients = [bodies.Exam(None, None, exam, "t2").patient for exam in ("vb1_02", "vb1_03", "vb1_12", "vb2_06",
                                                                         "vb2_07", "vb2_09", "vb2_12")]
    assert patients[0] == patients[1] == "vb1_02"
    for fold in range(3):
        split = make_split(patients, seed=0, folds=3, fold=fold)
        assert split["patient"].tolist().count("vb1_02") == 1  # one row: one subset for both exams


@pytest.mark.real
def test_the_shared_exams_read_as_a_source():
    folder = _require(BODIES)
    exams = bodies.find_exams(folder)
    assert len(exams) == 15 and len({e.patient for e in exams}) == 14
    dataset = load_dataset(folder, size=64)
    assert set(np.unique(dataset.structures)) == {BACKGROUND, VERTEBRA, DISC, UNKNOWN}
    assert set(dataset.patients) == {e.patient for e in exams}
    # every slice of the exams that is not blank: lateral ones included
    assert len(dataset) > 1000 and (dataset.structures == VERTEBRA).any(axis=(1, 2)).mean() < 0.95


@pytest.mark.real
def test_s1_is_unknown_for_training_where_an_exam_labels_it():
    folder = _require(BODIES)
    exams = {e.exam: e for e in bodies.find_exams(folder)}
    assert exams["vb1_17"].s1_labelled and not exams["vb2_06"].s1_labelled
    [(exam, k, _, structures, labels, _)] = [item for item in bodies.exam_slices([exams["vb1_17"]]) if item[1] == 30]
    assert (labels == 1).any() and (structures[labels == 1] == UNKNOWN).all()
    assert (structures[labels == 2] == VERTEBRA).all()


def test_the_gap_between_adjacent_bodies_is_disc_and_a_missing_body_is_not():
    labels = np.zeros((1, 40, 10), np.uint8)
    labels[0, 2:8, 2:8] = 3
    labels[0, 12:18, 2:8] = 2  # a 4-row gap under body 3
    labels[0, 36:40, 2:8] = 1  # an 18-row gap under body 2: more than DISC_MAX_MM at 1.2 mm a row
    spacing = (1.0, 1.2, 1.0)
    discs = bodies.disc_spaces(labels, spacing)
    assert discs[0, 9:11, 2:8].all() and discs.sum() == 2 * 6  # rows 8 and 11 touch a body
    assert not discs[0, 19:36].any()
    known = bodies.partial_structures(labels, spacing)
    assert (known[discs] == 2).all() and (known[labels > 0] == VERTEBRA).all()


@pytest.mark.real
@pytest.mark.parametrize("size", [128, 256])
def test_the_records_name_the_current_rules_by_the_data_id_they_give_the_shared_folder(size):
    data_id = load_dataset(_require(BODIES), size=size).data_id
    assert bodies.RULES_OF_DATA_ID[data_id] == bodies.PARTIAL_LABELS_VERSION


def test_partial_fold_holds_out_another_fold_of_the_exams_under_one_split_of_the_data(tmp_path):
    folder = tmp_path / "bodies"
    patients = [f"vb9_{k:02d}" for k in range(1, 11)]  # two per fold of the cpu profile's five
    for patient in patients:
        write_exam(folder, name=f"{patient}_t2-tse")
    request = dict(model="U-Net", loss="Dice", task="binary", data="phantom:12", profile="cpu", partial=folder)
    own = make_config(**request)
    assert make_config(**request, overrides={"partial_fold": 0}).run_id == own.run_id  # the default is not stored
    moved = make_config(**request, overrides={"partial_fold": 3})
    assert moved.run_id != own.run_id and moved.fold == own.fold == 0
    expected = make_split(patients, seed=0, val_seed=0, folds=5, fold=3)
    held_out = partial_split(moved, folder)
    assert held_out.set_index("patient")["subset"].to_dict() == expected.set_index("patient")["subset"].to_dict()
    assert held_out.query("subset == 'test'")["patient"].tolist() != \
        partial_split(own, folder).query("subset == 'test'")["patient"].tolist()
    with pytest.raises(ConfigError, match="partial_fold=5"):
        make_config(**request, overrides={"partial_fold": 5})
