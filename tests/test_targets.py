"""The training targets, defined twice: in TensorFlow where the engine trains on them
(``engine.epoch_dataset``) and in NumPy where the book draws them (``preprocess.one_hot``,
``preprocess.aux_target``). Both against a hand case with known class areas, against each other
on the real masks, and the augmentation on a boundary where all four classes meet."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spine.data import SliceSet, load_dataset, preprocess
from spine.training import engine
from spine.training.augment import augmenter

SIZE = 64


def slice_set(structures: np.ndarray) -> SliceSet:
    """A SliceSet of the given structure maps on noise (distinct images, one patient each)."""
    n = len(structures)
    images = np.random.default_rng(0).random((n, *structures.shape[1:], 1)).astype(np.float32)
    return SliceSet(images=images, structures=structures, instances=structures.astype(np.int16),
                    spacing=np.ones((n, 2)), case_ids=np.array([f"case{i}" for i in range(n)]),
                    patients=np.array([str(i) for i in range(n)]), slice_index=np.arange(n))


def engine_targets(subset: SliceSet, task: str) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of the engine's targets (no augmentation), put back in the subset's order."""
    images, masks, auxes = [], [], []
    for x, y in engine.epoch_dataset(subset, task, 8, 0, 0, False, True):
        images.append(x.numpy()), masks.append(y["mask"].numpy()), auxes.append(y["aux"].numpy())
    images = np.concatenate(images)
    rows = [int(np.flatnonzero((subset.images == image).all(axis=(1, 2, 3)))[0]) for image in images]
    assert sorted(rows) == list(range(len(subset)))  # the epoch is a permutation of the subset
    back = np.argsort(rows)
    return np.concatenate(masks)[back], np.concatenate(auxes)[back]


def numpy_targets(subset: SliceSet, task: str) -> tuple[np.ndarray, np.ndarray]:
    targets = subset.targets(task)
    return targets["mask"], targets["aux"]


def hand_case() -> np.ndarray:
    """64 x 64: vertebra rows 0-15 x columns 0-31 (512 px), disc rows 16-31 x columns 0-15
    (256 px), canal rows 32-63 x columns 56-63 (256 px: half of each of two 16 x 16 cells)."""
    structures = np.zeros((1, SIZE, SIZE), np.uint8)
    structures[0, :16, :32] = 1
    structures[0, 16:32, :16] = 2
    structures[0, 32:, 56:] = 3
    return structures


@pytest.mark.parametrize("build", [engine_targets, numpy_targets], ids=["tensorflow", "numpy"])
def test_targets_of_a_hand_case_with_known_areas(build):
    subset = slice_set(hand_case())
    mask, aux = build(subset, "multiclass")
    np.testing.assert_array_equal(mask[0].sum(axis=(0, 1)), [4096 - 1024, 512, 256, 256])
    assert mask[0, 5, 5].tolist() == [0, 1, 0, 0] and mask[0, 40, 60].tolist() == [0, 0, 0, 1]
    expected = np.zeros((4, 4, 4))
    expected[..., 0] = 1.0
    expected[0, 0] = expected[0, 1] = [0, 1, 0, 0]
    expected[1, 0] = [0, 0, 1, 0]
    expected[2, 3] = expected[3, 3] = [0.5, 0, 0, 0.5]
    np.testing.assert_allclose(aux[0], expected, atol=1e-7)
    mask, aux = build(subset, "binary")
    np.testing.assert_array_equal(mask[0].sum(axis=(0, 1)), [4096 - 1024, 1024])
    np.testing.assert_allclose(aux[0, ..., 1], [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0.5], [0, 0, 0, 0.5]],
                               atol=1e-7)


@pytest.mark.real
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_tensorflow_and_numpy_targets_agree_on_real_masks(t2space_slices, task):
    subset = load_dataset(t2space_slices, size=128).central(1)  # one slice per patient
    assert len(np.unique(subset.structures)) == 4  # every structure occurs
    tf_mask, tf_aux = engine_targets(subset, task)
    np_mask, np_aux = numpy_targets(subset, task)
    np.testing.assert_array_equal(tf_mask, np_mask)
    np.testing.assert_allclose(tf_aux, np_aux, atol=1e-6)
    np.testing.assert_allclose(np_aux.sum(axis=(1, 2)) * preprocess.BOTTLENECK_FACTOR ** 2,
                               np_mask.sum(axis=(1, 2)), rtol=1e-5)  # the cells' fractions add up to the areas


def quadrants() -> np.ndarray:
    """Four classes meeting at the centre: 0 top left, 1 top right, 2 bottom left, 3 bottom right."""
    structures = np.zeros((SIZE, SIZE), np.uint8)
    structures[:SIZE // 2, SIZE // 2:] = 1
    structures[SIZE // 2:, :SIZE // 2] = 2
    structures[SIZE // 2:, SIZE // 2:] = 3
    return structures


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_augmentation_keeps_labels_labels_on_a_four_class_boundary(seed):
    """Nearest-neighbour masks: only the four label values, each class one connected region (an
    interpolated value between 0 and 3 would be a speck of 1 or 2 on the diagonal), and the image
    moved by the same draw (the image is the mask itself, resampled bilinearly)."""
    structures = quadrants()
    masks = structures[None, ..., None].astype(np.float32)
    out = augmenter(seed)({"images": masks / 3.0, "segmentation_masks": masks}, training=True)
    mask = np.asarray(out["segmentation_masks"])[0, ..., 0]
    image = np.asarray(out["images"])[0, ..., 0]
    assert not np.array_equal(mask, structures)  # the draw changed something
    assert set(np.unique(mask)) == {0.0, 1.0, 2.0, 3.0}
    for label in range(4):
        _, regions = ndimage.label(mask == label, structure=np.ones((3, 3)))
        assert regions == 1, f"class {label} in {regions} pieces"
    assert np.mean(np.rint(image * 3) == mask) > 0.95  # one draw for image and mask


def test_augmented_epoch_builds_the_auxiliary_target_from_the_augmented_mask():
    subset = slice_set(np.stack([quadrants(), hand_case()[0]]))
    _, targets = next(iter(engine.epoch_dataset(subset, "multiclass", 2, 0, 0, True, True)))
    mask, aux = targets["mask"].numpy(), targets["aux"].numpy()
    assert not any(np.array_equal(mask[i].argmax(-1), s) for i in range(2) for s in subset.structures)
    np.testing.assert_allclose(aux, mask.reshape(2, 4, 16, 4, 16, 4).mean(axis=(2, 4)), atol=1e-6)
