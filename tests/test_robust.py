"""The robust augmentation mode: randomised batches, phantom T1/T2 mixing, and run ids that stay."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from spine.data import SliceSet, concat, load_dataset
from spine.errors import ConfigError
from spine.training import engine, robust
from spine.training.config import RunConfig, augment_mode

ROOT = Path(__file__).resolve().parents[1]


def batch(count=6, size=64):
    """Images with a gradient and a bright square, masks with classes 0-3 (the square is class 1)."""
    images = np.tile(np.linspace(0, 1, size, dtype=np.float32), (count, size, 1))[..., None]
    masks = np.zeros((count, size, size, 1), np.float32)
    masks[:, 16:48, 20:44] = 1
    masks[:, 20:24, 20:44] = 2
    masks[:, 30:34, 40:44] = 3
    images[masks > 0] = 0.9
    return tf.constant(images), tf.constant(masks)


def test_labels_stay_labels_and_images_stay_in_unit_range():
    images, masks = batch()
    for index in range(5):
        out_images, out_masks = robust.augment_batch(images, masks, robust.batch_seed(0, 1, index))
        assert out_images.shape == images.shape and out_masks.shape == masks.shape
        assert set(np.unique(out_masks)) <= {0.0, 1.0, 2.0, 3.0}
        values = out_images.numpy()
        assert np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0
        assert values.max() == pytest.approx(1.0)  # rescaled min-max, as prepared inputs are


def test_same_seed_same_draw_and_batches_differ():
    images, masks = batch()
    first = robust.augment_batch(images, masks, robust.batch_seed(3, 2, 0))
    again = robust.augment_batch(images, masks, robust.batch_seed(3, 2, 0))
    other = robust.augment_batch(images, masks, robust.batch_seed(3, 2, 1))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])


def test_robust_half_randomises_about_half_the_images_and_passes_the_others():
    images, masks = batch(count=32)
    out_images, out_masks = robust.augment_batch(images, masks, robust.batch_seed(0, 0, 0), fraction=0.5)
    kept = [np.array_equal(out_images[i], images[i]) and np.array_equal(out_masks[i], masks[i]) for i in range(32)]
    assert 8 <= sum(kept) <= 24
    full = robust.augment_batch(images, masks, robust.batch_seed(0, 0, 0))
    changed = [i for i in range(32) if not kept[i]]  # the randomised ones are the full mode's draws
    np.testing.assert_array_equal(tf.gather(out_images, changed), tf.gather(full[0], changed))


def test_a_zoom_out_shrinks_the_mask(monkeypatch):
    monkeypatch.setattr(robust, "ZOOM_RANGE", (0.5, 0.5))
    monkeypatch.setattr(robust, "ASPECT_RANGE", (1.0, 1.0))
    monkeypatch.setattr(robust, "ROTATION_DEGREES", 0.0)
    monkeypatch.setattr(robust, "SHIFT_FRACTION", 0.0)
    images, masks = batch()
    _, out = robust.augment_batch(images, masks, robust.batch_seed(0, 0, 0))
    before = np.count_nonzero(masks.numpy(), axis=(1, 2, 3))
    after = np.count_nonzero(out.numpy(), axis=(1, 2, 3))
    np.testing.assert_allclose(after / before, 0.25, atol=0.03)


def test_every_intensity_curve_keeps_the_image_informative():
    """A curve is drawn for most images: the output is no longer the input's gradient, yet not flat."""
    images, masks = batch(count=32)
    out, _ = robust.augment_batch(images, masks, robust.batch_seed(1, 0, 0))
    spread = out.numpy().reshape(32, -1).std(axis=1)
    assert (spread > 0.02).all()


def test_epoch_batches_are_fixed_by_seed_and_epoch():
    size, count = 64, 10
    images, masks = batch(count, size)
    subset = SliceSet(images=images.numpy(), structures=masks.numpy()[..., 0].astype(np.uint8),
                      instances=masks.numpy()[..., 0].astype(np.int16), spacing=np.ones((count, 2)),
                      case_ids=np.arange(count).astype(str), patients=np.arange(count).astype(str),
                      slice_index=np.zeros(count, int))

    def draw(epoch):
        return [x.numpy() for x, _ in engine.epoch_dataset(subset, "multiclass", 4, 0, epoch, "robust", False)]

    first, again, later = draw(0), draw(0), draw(1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], later[0])


def test_augment_modes_keep_the_ids_of_existing_records():
    for run in ("741c5ece049b", "9a97954a1fda"):  # committed records, made before the named modes
        stored = json.loads((ROOT / "results" / run / "config.json").read_text())
        assert RunConfig.from_dict(stored).run_id == run
    stored = json.loads((ROOT / "results" / "741c5ece049b" / "config.json").read_text())
    config = RunConfig.from_dict(stored)
    assert dataclasses.replace(config, augment=True).run_id == "7ca7e8dcebca"  # the study's augmentation
    robust_id = dataclasses.replace(config, augment="robust").run_id
    assert robust_id not in {"741c5ece049b", "7ca7e8dcebca"}
    assert [augment_mode(v) for v in ("none", "study", "robust", "robust-half", False, True)] == [
        False, True, "robust", "robust-half", False, True]
    with pytest.raises(ConfigError, match="valid: none, study, robust, robust-half, robust-lateral"):
        augment_mode("strong")


@pytest.mark.slow
def test_phantom_slices_are_mixed_in_by_seed():
    train = load_dataset("phantom:6", size=64)
    mixed = robust.with_phantom(train, seed=0, fraction=1.0, patients=range(2, 6))
    again = robust.with_phantom(train, seed=0, fraction=1.0, patients=range(2, 6))
    other = robust.with_phantom(train, seed=1, fraction=1.0, patients=range(2, 6))
    assert len(mixed) == 2 * len(train)  # 3 of each sequence
    assert len(robust.with_phantom(train, seed=0, fraction=2.0, patients=range(2, 6))) == len(train) + 8  # 4 at most
    added = mixed.case_ids[len(train):]
    assert all(case.startswith("phantom-") for case in added)
    assert {case.split("_")[-1] for case in added} == {"t1", "t2"}
    assert {int(case.split("-")[1].split("_")[0]) for case in added} <= {2, 3, 4, 5}
    np.testing.assert_array_equal(mixed.images, again.images)
    assert list(other.case_ids) != list(mixed.case_ids)
    np.testing.assert_array_equal(mixed.structures[:len(train)], train.structures)
    assert set(np.unique(mixed.structures)) <= {0, 1, 2, 3}
    assert len(concat(train, train)) == 2 * len(train)


@pytest.mark.slow
def test_the_mixed_in_patients_are_drawn_first_and_only_their_cases_made(tmp_path, monkeypatch):
    """The draw the robust records were made with: rows of the central slices of every patient
    in the range, which were all made; now the same rows name the patients, and only theirs are
    made (patients 8-12 cross a digit, where an order by name would differ)."""
    from spine.data import dataset, phantom

    monkeypatch.setattr(dataset, "cache_dir", lambda: tmp_path / "cache")
    train = load_dataset("phantom:2", size=64)
    made, make_case = [], phantom.make_case
    monkeypatch.setattr(phantom, "make_case", lambda seed, *a, **k: made.append(seed) or make_case(seed, *a, **k))
    patients = range(8, 13)
    mixed = robust.with_phantom(train, seed=2, fraction=2.0, patients=patients)
    assert len(made) == len(mixed) - len(train) == 4
    expected = []
    for k, sequence in enumerate(robust.PHANTOM_SEQUENCES):
        every = load_dataset("phantom:12", sequence=sequence, size=64)
        every = every.select(np.isin(every.patients.astype(int), list(patients)))
        expected.append(every.select(np.sort(np.random.default_rng([2, 3, k]).choice(len(every), 2, replace=False))))
    np.testing.assert_array_equal(mixed.case_ids[len(train):],
                                  ["phantom-" + case for part in expected for case in part.case_ids])
    np.testing.assert_array_equal(mixed.images[len(train):], np.concatenate([part.images for part in expected]))
    np.testing.assert_array_equal(mixed.structures[len(train):], np.concatenate([part.structures for part in expected]))


@pytest.mark.slow
def test_robust_lateral_mixes_in_phantom_slices_from_any_sagittal_position():
    train = load_dataset("phantom:6", size=64)
    mixed = robust.with_phantom(train, seed=0, fraction=4.0, patients=range(2, 6), every_slice=True)
    added = mixed.case_ids[len(train):]
    assert len(added) == 4 * len(train)  # more than one slice per patient and sequence
    assert all(case.startswith("phantom-") and "_x" in case for case in added)
    positions = mixed.slice_index[len(train):]
    assert positions.min() <= 1 and positions.max() >= 7  # lateral slices on both sides, not only the middle
    assert robust.EVERY_PHANTOM_SLICE <= set(robust.RANDOMISED_FRACTION)
