"""The synthetic phantom: determinism, SPIDER labels and geometry, contrast, the archive writer."""

import functools
import hashlib

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spine.data import phantom
from spine.errors import ConfigError

SPIDER_VALUES = {0, 100} | set(range(1, 26)) | set(range(101, 126)) | set(range(201, 226))


@functools.lru_cache(maxsize=None)
def case(seed, sequence="t1", permuted=False, numbering="bottom_up"):
    return phantom.make_case(seed, sequence, permuted=permuted, numbering=numbering)


def array(image):
    return sitk.GetArrayFromImage(image)


def centroids(mask):
    """Physical centroid (x, y, z) of every label of a mask."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    return {label: np.array(stats.GetCentroid(label)) for label in stats.GetLabels()}


def vertebra_number(value, numbering):
    """Bottom-up anatomical position (1 = lowest) of a SPIDER vertebra or disc value."""
    value = value % 100 if value < 200 else value - 200
    return value if numbering == "bottom_up" else 25 - value


# --- determinism --------------------------------------------------------------------------------

def test_same_seed_gives_identical_volumes():
    first, second = phantom.make_case(7, "t2"), case(7, "t2")
    for a, b in zip(first, second):
        np.testing.assert_array_equal(array(a), array(b))
        assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
        assert a.GetDirection() == b.GetDirection() and a.GetPixelID() == b.GetPixelID()


def test_different_seeds_give_different_volumes():
    (image_a, mask_a), (image_b, mask_b) = case(7), case(8)
    assert image_a.GetSize() != image_b.GetSize() or not np.array_equal(array(image_a), array(image_b))
    assert mask_a.GetSize() != mask_b.GetSize() or not np.array_equal(array(mask_a), array(mask_b))


def test_sequences_of_one_seed_share_anatomy_not_contrast():
    (t1, mask_t1), (t2, mask_t2) = case(3, "t1"), case(3, "t2")
    np.testing.assert_array_equal(array(mask_t1), array(mask_t2))
    assert t1.GetSize() == t2.GetSize() and not np.array_equal(array(t1), array(t2))


# --- labels -------------------------------------------------------------------------------------

@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), numbering=st.sampled_from(phantom.NUMBERINGS))
def test_labels_are_spider_values_with_canal_and_five_vertebrae(seed, numbering):
    image, mask = phantom.make_case(seed, "t1", numbering=numbering)
    values = set(np.unique(array(mask)).tolist())
    assert values <= SPIDER_VALUES
    assert 100 in values
    full = [v for v in values if 1 <= v <= 25]
    assert 5 <= len(full) <= 9
    assert len([v for v in values if 1 <= v <= 25 or 101 <= v <= 125]) <= 11
    assert mask.GetPixelID() == sitk.sitkInt16 and image.GetPixelID() == sitk.sitkInt16
    pixels = array(image)
    assert pixels.min() >= 0 and 200 < np.percentile(pixels, 99) < 6000


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("numbering", phantom.NUMBERINGS)
def test_each_disc_lies_between_its_vertebra_and_the_one_below(seed, numbering):
    _, mask = case(seed, "t1", numbering=numbering)
    centre = centroids(mask)
    full = {vertebra_number(v, numbering): c for v, c in centre.items() if 1 <= v <= 25}
    discs = {vertebra_number(v, numbering): c for v, c in centre.items() if v >= 200}
    checked = 0
    for k, disc in discs.items():
        if k in full:
            assert disc[2] < full[k][2], f"disc below vertebra {k} is not below it"
            checked += 1
        if k - 1 in full:
            assert disc[2] > full[k - 1][2], f"disc below vertebra {k} is not above vertebra {k - 1}"
    assert checked >= 4
    # Vertebrae are numbered in order: bottom-up position grows with height.
    order = sorted(full, key=lambda k: full[k][2])
    assert order == sorted(full)


def test_numberings_are_the_same_mask_relabelled():
    bottom_up = array(case(4, "t1")[1])
    top_down = array(case(4, "t1", numbering="top_down")[1])
    expected = bottom_up.copy()
    vertebra = (bottom_up >= 1) & (bottom_up <= 25)
    partial = (bottom_up >= 101) & (bottom_up <= 125)
    disc = bottom_up >= 201
    expected[vertebra] = 25 - bottom_up[vertebra]
    expected[partial] = 100 + 25 - (bottom_up[partial] - 100)
    expected[disc] = 200 + 25 - (bottom_up[disc] - 200)
    np.testing.assert_array_equal(top_down, expected)
    assert array(case(4, "t1", numbering="top_down")[1]).max() == 224  # the disc below L5


def test_partly_visible_vertebrae_are_cut_by_the_field_of_view():
    seen = 0
    for seed in range(6):
        mask = array(case(seed)[1])  # cached by the tests above
        for value in set(np.unique(mask).tolist()) & set(range(101, 126)):
            rows = np.flatnonzero((mask == value).any(axis=(1, 2)))
            assert rows[0] == 0 or rows[-1] == mask.shape[0] - 1, f"seed {seed}: {value} is not at an edge"
            seen += 1
    assert seen >= 2  # the phantom does produce 101-125 labels


# --- geometry -----------------------------------------------------------------------------------

def test_identity_case_has_the_sagittal_axis_first_with_the_thickest_spacing():
    image, mask = case(5)
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    spacing = np.array(image.GetSpacing())
    assert np.argmax(spacing) == 0 and 3.3 <= spacing[0] <= 4.8
    nx, ny, nz = image.GetSize()
    assert nx % 2 == 1 and 9 <= nx <= 15 and 160 <= ny <= 256 and 160 <= nz <= 320
    assert mask.GetSize() == image.GetSize() and mask.GetOrigin() == image.GetOrigin()
    # Anatomy: the canal is posterior (larger y) to the vertebral bodies, discs are in the midline.
    centre = centroids(mask)
    bodies = [c for v, c in centre.items() if 1 <= v <= 25]
    assert centre[100][1] > np.mean([c[1] for c in bodies]) - 10
    labels = array(mask)
    central = labels[:, :, nx // 2]
    assert (central == 100).any() and ((central >= 201) & (central <= 225)).any()


def test_permuted_case_is_the_same_physical_volume():
    image, mask = case(2)
    p_image, p_mask = case(2, permuted=True)
    direction = np.array(p_image.GetDirection()).reshape(3, 3)
    np.testing.assert_array_equal(direction, np.array(phantom.PERMUTED_DIRECTION).reshape(3, 3))
    assert int(np.argmax(np.abs(direction[0, :]))) == 2  # left-right runs along the third index axis
    nx, ny, nz = image.GetSize()
    assert p_image.GetSize() == (ny, nz, nx)
    assert np.isclose(p_image.GetSpacing()[2], image.GetSpacing()[0])
    # Same labels at the same physical places.
    a, b = centroids(mask), centroids(p_mask)
    assert a.keys() == b.keys()
    voxel = min(image.GetSpacing())
    for label in a:
        assert np.linalg.norm(a[label] - b[label]) < voxel, label
    # Voxel for voxel: resampling the permuted volume onto the identity grid gives it back.
    for permuted, plain in ((p_image, image), (p_mask, mask)):
        back = sitk.Resample(permuted, plain, sitk.Transform(), sitk.sitkNearestNeighbor)
        np.testing.assert_array_equal(array(back), array(plain))


def test_t2_space_has_thinner_sagittal_slices():
    image, mask = phantom.make_case(1, "t2_SPACE", permuted=True)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    lr_axis = int(np.argmax(np.abs(direction[0, :])))
    assert lr_axis == 2 and 1.5 <= image.GetSpacing()[lr_axis] <= 2.5 and image.GetSize()[lr_axis] >= 21
    assert 100 in np.unique(array(mask))


# --- intensities --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_t2_discs_are_brighter_relative_to_vertebrae_than_on_t1(seed):
    ratios = {}
    means = {}
    for sequence in ("t1", "t2"):
        image, mask = case(seed, sequence)
        pixels, labels = array(image).astype(float), array(mask)
        vertebra = pixels[(labels >= 1) & (labels <= 25)].mean()
        disc = pixels[labels >= 201].mean()
        csf = pixels[labels == 100].mean()
        ratios[sequence] = disc / vertebra
        means[sequence] = (vertebra, disc, csf)
    assert ratios["t2"] > 1.3 * ratios["t1"]
    assert ratios["t1"] < 1.0  # T1: discs darker than marrow
    vertebra, _, csf = means["t1"]
    assert csf < vertebra  # T1: CSF dark
    vertebra, _, csf = means["t2"]
    assert csf > vertebra  # T2: CSF bright


def test_make_slice_is_a_radiological_sagittal_view():
    image, mask = phantom.make_slice(5, "t1", size=128)
    assert image.shape == mask.shape == (128, 128)
    assert image.dtype == np.float32 and mask.dtype == np.int16
    rows, cols = np.indices(mask.shape)
    bodies = (mask >= 1) & (mask <= 25)
    assert cols[mask == 100].mean() > cols[bodies].mean()  # canal posterior (right) of the bodies
    # Superior up: the lowest vertebra (1) is lower in the picture than vertebra 2.
    assert rows[mask == 1].mean() > rows[mask == 2].mean()


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="sequence"):
        phantom.make_case(0, "flair")
    with pytest.raises(ConfigError, match="numbering"):
        phantom.make_case(0, "t1", numbering="sideways")
    with pytest.raises(ConfigError, match="seed"):
        phantom.make_case(-1)


# --- archive ------------------------------------------------------------------------------------

def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_archive_links_the_cases_an_archive_of_another_size_made(tmp_path, monkeypatch):
    """Patient p is the same case in every archive of one seed: the 3-patient archive links the two
    cases the 2-patient one made, makes the third, and holds the bytes a fresh archive holds."""
    from spine.data import dataset

    monkeypatch.setattr(dataset, "cache_dir", lambda: tmp_path / "cache")
    dataset.phantom_archive(2, seed=3, sequence="t1")
    made, make_case = [], phantom.make_case
    monkeypatch.setattr(phantom, "make_case", lambda seed, *args, **kwargs: made.append(seed) or make_case(seed, *args, **kwargs))
    larger = dataset.phantom_archive(3, seed=3, sequence="t1")
    assert made == [phantom.case_seed(3, 3)]
    fresh = phantom.write_archive(tmp_path / "fresh", n_patients=3, seed=3, sequences=("t1",))
    assert {k: v for k, v in digest(larger).items() if k != ".complete"} == digest(fresh)


def test_write_archive_spider_layout_idempotent(tmp_path):
    root = tmp_path / "phantom"
    assert phantom.write_archive(root, n_patients=1, seed=11, permuted_fraction=0.5) == root
    assert sorted(p.name for p in (root / "images").iterdir()) == ["1_t1.mha", "1_t2.mha"]
    assert sorted(p.name for p in (root / "masks").iterdir()) == ["1_t1.mha", "1_t2.mha"]
    first = digest(root)
    phantom.write_archive(root, n_patients=1, seed=11, permuted_fraction=0.5)
    assert digest(root) == first
    # The files hold make_case's volumes, as the plan says.
    item = phantom.archive_plan(1, 11, permuted_fraction=0.5)[-1]
    assert (item["patient"], item["sequence"]) == (1, "t2") and item["seed"] == phantom.case_seed(11, 1)
    image = sitk.ReadImage(str(root / "images" / "1_t2.mha"))
    mask = sitk.ReadImage(str(root / "masks" / "1_t2.mha"))
    direct_image, direct_mask = phantom.make_case(item["seed"], "t2", permuted=item["permuted"],
                                                  numbering=item["numbering"])
    for read, made in ((image, direct_image), (mask, direct_mask)):
        np.testing.assert_array_equal(array(read), array(made))
        assert read.GetPixelID() == made.GetPixelID() == sitk.sitkInt16
        assert read.GetOrigin() == pytest.approx(made.GetOrigin())
        assert read.GetSpacing() == pytest.approx(made.GetSpacing())
        assert read.GetDirection() == pytest.approx(made.GetDirection())


def test_archive_plan_mixes_orientations_and_numberings():
    plan = phantom.archive_plan(40, 0)
    assert len(plan) == 80 and len({item["seed"] for item in plan}) == 40
    assert 0 < sum(item["permuted"] for item in plan) < 30
    assert 5 < sum(item["numbering"] == "top_down" for item in plan) < 50
    assert phantom.archive_plan(40, 0) == plan and phantom.archive_plan(40, 1) != plan


def test_archive_reads_back_through_the_spider_reader(tmp_path):
    spider = pytest.importorskip("spine.data.spider")
    root = phantom.write_archive(tmp_path / "phantom", n_patients=3, seed=5, sequences=("t1",),
                                 permuted_fraction=0.5)
    plan = phantom.archive_plan(3, 5, ("t1",), permuted_fraction=0.5)
    assert any(item["permuted"] for item in plan) and not all(item["permuted"] for item in plan)
    assert {item["numbering"] for item in plan} == set(phantom.NUMBERINGS)
    series = spider.find_series(root, "t1")
    assert [s.patient for s in series] == ["1", "2", "3"]
    for item, found in zip(plan, series):
        image, mask, spacing = spider.read_series(found)
        assert image.shape == mask.shape and len(spacing) == 2
        assert set(np.unique(mask).tolist()) <= SPIDER_VALUES and 100 in mask
        rows, cols = np.indices(mask.shape)
        bodies = ((mask >= 1) & (mask <= 25)) | ((mask >= 201) & (mask <= 225))
        assert cols[mask == 100].mean() > cols[bodies].mean()  # anterior left, canal right
        # Whatever the stored direction, the reader's central slice is the phantom's central slice.
        plain = array(phantom.make_case(item["seed"], "t1")[0])
        np.testing.assert_array_equal(image, plain[::-1, :, plain.shape[2] // 2])
