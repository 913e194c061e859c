"""The data pipeline against real SPIDER masks, real slices and hand-made bad inputs."""


import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from spine.data import geometry, labels, load_dataset, make_split, preprocess, spider, splits
from spine.data.io import read_volume, write_volume
from spine.errors import DataError


def world_coordinates(image: sitk.Image) -> np.ndarray:
    """LPS coordinates of every voxel centre, shape (z, y, x, 3), from the geometry alone."""
    size = image.GetSize()
    index = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), axis=-1)  # (x, y, z, 3)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    world = np.asarray(image.GetOrigin()) + (index * np.asarray(image.GetSpacing())) @ direction.T
    return np.transpose(world, (2, 1, 0, 3))


def coordinate_image(mask: sitk.Image, axis: int) -> sitk.Image:
    """A synthetic image on the mask's grid whose value is the voxel's world coordinate ``axis``
    in hundredths of a millimetre (int32 compresses much faster than float)."""
    image = sitk.GetImageFromArray(np.round(world_coordinates(mask)[..., axis] * 100).astype(np.int32))
    image.CopyInformation(mask)
    return image


def real_mask_paths(masks_3d):
    return sorted(masks_3d.glob("*.mha"))


# --- SPIDER reader on the 48 real masks ---------------------------------------------------

def test_real_masks_central_slice_labels_and_canal(masks_3d):
    paths = real_mask_paths(masks_3d)
    assert len(paths) == 48
    for path in paths:
        mask = read_volume(path)
        central, spacing = geometry.central_sagittal_slice(mask)
        values = set(np.unique(central).tolist())
        structures = labels.spider_structures(central)
        assert (structures >= 0).all(), f"{path.name}: unknown values {values}"
        assert 100 in values, f"{path.name}: no canal in the central slice"
        assert values & set(range(1, 26)), f"{path.name}: no vertebra in the central slice"
        assert min(spacing) < 1.5, f"{path.name}: in-plane spacing {spacing} looks like the slice thickness"


def test_real_masks_anatomy_is_upright_and_canal_posterior(masks_3d):
    """In the sagittal view the canal lies behind the bodies and numbering runs along the column."""
    for path in real_mask_paths(masks_3d):
        central, _ = geometry.central_sagittal_slice(read_volume(path))
        rows, cols = np.nonzero(central == 100)
        vrows, vcols = np.nonzero((central >= 1) & (central <= 25))
        assert cols.mean() > np.median(vcols) - 5, f"{path.name}: canal not posterior to the vertebrae"
        # Vertebra k+1 lies above vertebra k in bottom-up numbering (1-...), below it in 17-24.
        ids = sorted(v for v in np.unique(central) if 1 <= v <= 25)
        heights = [np.nonzero(central == v)[0].mean() for v in ids]
        bottom_up = ids[0] < 17
        assert np.all(np.diff(heights) < 0) if bottom_up else np.all(np.diff(heights) > 0), path.name


@pytest.mark.parametrize("name,expected_axis", [("100_t2", 0), ("104_t1", 0), ("18_t2_SPACE", 2),
                                                ("166_t2", 2), ("18_t2", 2)])
def test_sagittal_axis_from_the_direction_matrix(masks_3d, name, expected_axis):
    assert geometry.sagittal_axis(read_volume(masks_3d / f"{name}.mha")) == expected_axis


def test_orientation_through_the_reader_with_synthetic_images(masks_3d, tmp_path):
    """Pair each real mask with images whose values are world coordinates, read the archive.

    The central slice must lie in a sagittal plane (world x nearly constant: SPIDER series are
    acquired up to a few degrees oblique, so x may drift by a small fraction of a pixel per
    pixel, never by a whole one as it would on a wrong axis), run superior ->
    inferior down the rows (world z falling) and anterior -> posterior along the columns
    (world y rising, LPS), for identity and permuted direction matrices alike.
    """
    names = ["100_t2", "18_t2_SPACE", "166_t2", "50_t2_SPACE", "104_t1"]
    checked_permuted = 0
    for name in names:
        # Shrinking keeps the direction matrix and the anatomy, and makes the test 8x faster.
        mask = sitk.Shrink(read_volume(masks_3d / f"{name}.mha"), [2, 2, 2])
        checked_permuted += geometry.sagittal_axis(mask) != 0
        for axis, prefix in ((0, "x"), (1, "y"), (2, "z")):
            archive = tmp_path / f"{prefix}-{name}"
            patient, sequence = name.split("_", 1)
            write_volume(coordinate_image(mask, axis), archive / "images" / f"{name}.mha")
            write_volume(mask, archive / "masks" / f"{name}.mha")
            (series,) = spider.find_series(archive, sequence)
            image, instances, spacing = spider.read_series(series)
            image = image / 100.0
            assert series.patient == patient
            assert 100 in instances
            if axis == 0:
                drift = max(np.abs(np.diff(image, axis=0)).max() / spacing[0],
                            np.abs(np.diff(image, axis=1)).max() / spacing[1])
                assert drift < 0.1, f"{name}: slice not sagittal (x changes {drift:.2f} mm per mm)"
            elif axis == 1:
                assert np.all(np.diff(image, axis=1) > 0), f"{name}: columns not anterior -> posterior"
            else:
                assert np.all(np.diff(image, axis=0) < 0), f"{name}: rows not superior -> inferior"
    assert checked_permuted >= 3


# --- the slice reader on the real T2-SPACE pairs ---------------------------------------------

def test_real_slices_shapes_patients_and_class_fractions(t2space_slices):
    data = load_dataset(t2space_slices, size=128)
    assert data.images.shape == (651, 128, 128, 1)
    assert data.images.dtype == np.float32 and data.images.min() >= 0 and data.images.max() <= 1
    assert data.structures.shape == (651, 128, 128)
    assert len(set(data.patients)) == 31
    # Independent evidence: class fractions counted on the raw PNG grey values.
    raw = np.concatenate([np.asarray(Image.open(p)).ravel()
                          for p in sorted((t2space_slices / "masks").glob("*.png"))[::20]])
    prepared = data.structures[::20].ravel()
    for value, structure in labels.SLICE_VALUE_TABLE.items():
        assert abs((raw == value).mean() - (prepared == structure).mean()) < 0.005
    assert 0.80 < (prepared == 0).mean() < 0.90


def test_real_slices_central_selection(t2space_slices):
    data = load_dataset(t2space_slices).central(per_patient=3)
    assert len(data) == 93
    for patient in set(data.patients):
        index = data.slice_index[data.patients == patient]
        assert np.ptp(index) <= 3


# --- preprocessing ----------------------------------------------------------------------------

def test_to_uint8_spans_full_range():
    out = preprocess.to_uint8(np.array([[10.0, 20.0], [30.0, 50.0]]))
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 64], [128, 255]]


def test_resize_labels_keeps_values_and_aux_target_hand_case():
    labels_map = np.zeros((32, 32), dtype=np.uint8)
    labels_map[:16, :16] = 3
    labels_map[0, 0] = 2
    resized = preprocess.resize_labels(labels_map, 16)
    assert set(np.unique(resized)) <= {0, 2, 3}
    aux = preprocess.aux_target(labels_map[None], 4)
    assert aux.shape == (1, 2, 2, 4)
    np.testing.assert_allclose(aux.sum(-1), 1.0)
    assert aux[0, 0, 0, 3] == pytest.approx(255 / 256)
    assert aux[0, 0, 0, 2] == pytest.approx(1 / 256)
    assert aux[0, 1, 1, 0] == 1.0


def test_label_maps_from_spider_values():
    values = np.array([0, 1, 25, 100, 101, 125, 201, 225])
    np.testing.assert_array_equal(labels.spider_to_classes(values, "binary"), [0, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(labels.spider_to_classes(values, "multiclass"), [0, 1, 1, 3, 1, 1, 2, 2])


def test_targets_for_both_tasks():
    data = load_dataset("phantom:6")
    binary, multi = data.targets("binary"), data.targets("multiclass")
    assert binary["mask"].shape == (6, 128, 128, 2) and binary["aux"].shape == (6, 8, 8, 2)
    assert multi["mask"].shape == (6, 128, 128, 4) and multi["aux"].shape == (6, 8, 8, 4)
    np.testing.assert_array_equal(binary["mask"][..., 1], multi["mask"][..., 1:].sum(-1))


# --- splits -----------------------------------------------------------------------------------

def test_split_by_patient_is_seeded_and_disjoint(tmp_path):
    patients = [str(p) for p in range(40) for _ in range(5)]
    split = make_split(patients, seed=3)
    assert split["patient"].is_unique
    counts = split["subset"].value_counts()
    assert counts["test"] == 8 and counts["val"] == 6 and counts["train"] == 26
    pd.testing.assert_frame_equal(split, make_split(patients, seed=3))
    assert not split.equals(make_split(patients, seed=4))
    resampled = make_split(patients, seed=3, val_seed=9)
    assert set(resampled.query("subset == 'test'").patient) == set(split.query("subset == 'test'").patient)
    assert set(resampled.query("subset == 'val'").patient) != set(split.query("subset == 'val'").patient)
    path = splits.save_split(split, tmp_path / "split.csv")
    pd.testing.assert_frame_equal(splits.load_split(path), split)
    rows = splits.subset_mask(patients, split, "test")
    assert rows.sum() == 40 and len({p for p, r in zip(patients, rows) if r}) == 8


# --- bad input ----------------------------------------------------------------------------------

def _archive(tmp_path, image_array, mask_array, name="7_t1", spacing=(4.0, 0.7, 0.7)):
    for sub, array in (("images", image_array), ("masks", mask_array)):
        volume = sitk.GetImageFromArray(array)
        volume.SetSpacing(spacing)
        write_volume(volume, tmp_path / sub / f"{name}.mha")
    return tmp_path


def _good_pair(shape=(32, 32, 9)):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    mask = np.zeros(shape, dtype=np.int16)
    mask[10:20, 10:15, :] = 1
    mask[10:20, 18:20, :] = 100
    return image, mask


def _expect_error(source, pattern, **kwargs):
    with pytest.raises(DataError, match=pattern) as info:
        load_dataset(source, **kwargs)
    return str(info.value)


def test_corrupt_file(tmp_path):
    image, mask = _good_pair()
    root = _archive(tmp_path, image, mask)
    (root / "images" / "7_t1.mha").write_bytes(b"ObjectType = Image\nNDims = 3\ngarbage")
    message = _expect_error(root, "cannot be read")
    assert "7_t1.mha" in message


def test_truncated_file(tmp_path):
    image, mask = _good_pair()
    root = _archive(tmp_path, image, mask)
    path = root / "masks" / "7_t1.mha"
    path.write_bytes(path.read_bytes()[:-200])
    assert "masks/7_t1.mha" in _expect_error(root, "corrupt or truncated")


def test_size_mismatch(tmp_path):
    image, mask = _good_pair()
    root = _archive(tmp_path, image, mask[:, :30])
    assert "7_t1.mha" in _expect_error(root, "does not match")


def test_missing_mask(tmp_path):
    image, mask = _good_pair()
    root = _archive(tmp_path, image, mask)
    (root / "masks" / "7_t1.mha").unlink()
    assert "images/7_t1.mha" in _expect_error(root, "no mask")


def test_no_series_of_the_sequence(tmp_path):
    image, mask = _good_pair()
    root = _archive(tmp_path, image, mask, name="7_t2")
    _expect_error(root, r"no t1 series")


def test_unknown_label_values(tmp_path):
    image, mask = _good_pair()
    mask[0, 0, :] = 300
    root = _archive(tmp_path, image, mask)
    message = _expect_error(root, r"unknown SPIDER label values \[300\]")
    assert "masks/7_t1.mha" in message


@pytest.mark.parametrize("problem,pattern", [("nan", "NaN"), ("constant", "constant")])
def test_nan_or_constant_image(tmp_path, problem, pattern):
    image, mask = _good_pair()
    image = np.full_like(image, 5.0) if problem == "constant" else image
    if problem == "nan":
        image[0, 0, 4] = np.nan
    root = _archive(tmp_path, image, mask)
    assert "images/7_t1.mha" in _expect_error(root, pattern)


def test_skip_bad_cases_warns_and_records(tmp_path):
    image, mask = _good_pair()
    root = _archive(tmp_path, image, mask, name="7_t1")
    _archive(tmp_path, image, mask, name="8_t1")
    bad = mask.copy()
    bad[0, 0, :] = 300
    _archive(tmp_path, image, bad, name="9_t1")
    with pytest.warns(UserWarning, match="9_t1.mha"):
        data = load_dataset(root, on_error="skip")
    assert len(data) == 2 and list(data.patients) == ["7", "8"]
    assert len(data.skipped) == 1 and data.skipped[0][0].endswith("9_t1.mha")


def test_failed_preparation_writes_no_cache(tmp_path):
    from spine.data import cache_dir

    image, mask = _good_pair()
    mask[0, 0, :] = 300
    root = _archive(tmp_path, image, mask)
    before = set(cache_dir().glob("prepared-*")) if cache_dir().exists() else set()
    _expect_error(root, "unknown")
    after = set(cache_dir().glob("prepared-*")) if cache_dir().exists() else set()
    assert before == after
    assert not list(cache_dir().glob(".prepared-*")), "temporary file left behind"


def test_wrong_folder_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    _expect_error(tmp_path, "expected images/ and masks/")
    _expect_error(tmp_path / "nowhere", "not found")


def test_slice_folder_bad_mask_value_and_missing_mask(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image = (np.random.default_rng(1).random((40, 30)) * 255).astype(np.uint8)
    mask = np.zeros((40, 30), dtype=np.uint8)
    mask[5:10, 5:10] = 77
    Image.fromarray(image).save(tmp_path / "images" / "3_t2_SPACE_slice1.png")
    Image.fromarray(mask).save(tmp_path / "masks" / "3_t2_SPACE_slice1.png")
    assert "3_t2_SPACE_slice1.png" in _expect_error(tmp_path, r"unknown mask values \[77\]")
    Image.fromarray(image).save(tmp_path / "images" / "4_t2_SPACE_slice1.png")
    _expect_error(tmp_path, "no mask")


# --- file formats -----------------------------------------------------------------------------

def test_nifti_round_trip_agrees_with_simpleitk(masks_3d, tmp_path):
    """nibabel writes, SimpleITK reads (and vice versa): geometry and voxels agree."""
    original = read_volume(masks_3d / "18_t2_SPACE.mha")
    ours = write_volume(original, tmp_path / "ours.nii.gz")
    by_sitk = sitk.ReadImage(str(ours))
    np.testing.assert_allclose(by_sitk.GetDirection(), original.GetDirection(), atol=1e-5)
    np.testing.assert_allclose(by_sitk.GetOrigin(), original.GetOrigin(), atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_sitk), sitk.GetArrayFromImage(original))
    theirs = tmp_path / "theirs.nii.gz"
    sitk.WriteImage(original, str(theirs))
    back = read_volume(theirs)
    np.testing.assert_allclose(back.GetDirection(), original.GetDirection(), atol=1e-5)
    np.testing.assert_allclose(back.GetSpacing(), original.GetSpacing(), rtol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(original))


# --------------------------------------------------------------------------- pixel sizes of SPIDER's central slices

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


def test_the_data_id_names_files_and_sizes_the_digest_their_bytes(tmp_path):
    """A file rewritten with other pixels at the same size keeps the id (names and sizes) and changes
    the SHA-256 a record keeps beside it (hashlib on the files, independently)."""
    import hashlib

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image = np.zeros((40, 30), dtype=np.uint8)
    mask = np.zeros((40, 30), dtype=np.uint8)
    mask[5:10, 5:10] = 76  # a vertebra in the slices' grey values
    Image.fromarray(mask).save(tmp_path / "masks" / "3_t2_SPACE_slice1.png")
    raw = tmp_path / "images" / "3_t2_SPACE_slice1.png"

    def prepared(value):
        image[:, :15] = value  # a constant half: the PNG's size does not depend on the value
        Image.fromarray(image).save(raw)
        return load_dataset(tmp_path, size=16, use_cache=False), raw.stat().st_size

    (first, first_size), (second, second_size) = prepared(10), prepared(20)
    assert first_size == second_size and first.data_id == second.data_id
    assert first.data_sha256 != second.data_sha256
    files = [hashlib.sha256(p.read_bytes()).digest() for p in (raw, tmp_path / "masks" / raw.name)]
    assert second.data_sha256 == hashlib.sha256(b"".join(files)).hexdigest()
