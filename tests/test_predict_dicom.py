"""``spine predict`` on DICOM series (written here from a phantom volume) and with ``--levels``."""

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from spine.cli import main
from spine.data import phantom

UID = "1.2.826.0.1.3680043.2.1125.1"


def write_series(volume: sitk.Image, folder, uid: str = UID, prefix: str = "") -> None:
    """One DICOM file per slice of ``volume`` with its geometry (SimpleITK's "DICOM series from array")."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    d = volume.GetDirection()
    orientation = "\\".join(str(v) for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    for k in range(volume.GetDepth()):
        image = volume[:, :, k]
        tags = {"0008|0060": "MR", "0020|000d": uid + ".0", "0020|000e": uid, "0020|0037": orientation,
                "0020|0032": "\\".join(str(v) for v in volume.TransformIndexToPhysicalPoint((0, 0, k))),
                "0020|0013": str(k + 1), "0008|0018": f"{uid}.{k + 1}"}
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        writer.Execute(image)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 4-class model that needs no training (the geometry, not the segmentation, is under test)."""
    import keras

    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="softmax")])
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def volume():
    image, _ = phantom.make_case(seed=4, permuted=True)  # a non-identity direction
    assert not np.allclose(np.reshape(image.GetDirection(), (3, 3)), np.eye(3))
    return image


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_same_grid(path, volume):
    result = sitk.ReadImage(str(path))
    assert result.GetSize() == volume.GetSize()
    np.testing.assert_allclose(result.GetSpacing(), volume.GetSpacing(), rtol=1e-5)
    np.testing.assert_allclose(result.GetOrigin(), volume.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(result.GetDirection(), volume.GetDirection(), atol=1e-6)
    return sitk.GetArrayFromImage(result)


def test_a_dicom_folder_is_segmented_on_the_series_grid(tiny_model, volume, tmp_path, capsys):
    write_series(volume, tmp_path / "study")
    code, out, err = run(capsys, "predict", str(tmp_path / "study"), "--model", tiny_model, "--out",
                         str(tmp_path / "out"), "--levels")
    assert code == 0, err
    assert out.strip() == str(tmp_path / "out" / "study.nii.gz")
    assert set(np.unique(assert_same_grid(tmp_path / "out" / "study.nii.gz", volume))) <= {0, 1, 2, 3}
    assert_same_grid(tmp_path / "out" / "study_levels.nii.gz", volume)
    assert (tmp_path / "out" / "study_levels.csv").read_text().startswith("label,structure,level,area,")


def test_several_series_need_a_choice(tiny_model, volume, tmp_path, capsys):
    write_series(volume, tmp_path / "mixed")
    other, _ = phantom.make_case(seed=5)  # another grid
    write_series(other, tmp_path / "mixed", uid=UID + "2", prefix="b")
    code, _, err = run(capsys, "predict", str(tmp_path / "mixed"), "--model", tiny_model, "--out", str(tmp_path / "o"))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "2 DICOM series" in err and UID in err and UID + "2" in err and "--series" in err
    assert not (tmp_path / "o").exists()
    code, _, err = run(capsys, "predict", str(tmp_path / "mixed"), "--series", UID + "2", "--model", tiny_model,
                       "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert_same_grid(tmp_path / "o" / "mixed.nii.gz", other)
    code, _, err = run(capsys, "predict", str(tmp_path / "mixed"), "--series", "1.2.3", "--model", tiny_model,
                       "--out", str(tmp_path / "o2"))
    assert code == 1 and "no DICOM series '1.2.3'" in err


@pytest.mark.parametrize("damage", ["truncated", "not DICOM"])
def test_a_broken_file_is_named(tiny_model, volume, tmp_path, capsys, damage):
    write_series(volume, tmp_path / "study")
    broken = tmp_path / "study" / "005.dcm"
    broken.write_bytes(broken.read_bytes()[:1000] if damage == "truncated" else b"not an image" * 50)
    code, _, err = run(capsys, "predict", str(tmp_path / "study"), "--model", tiny_model, "--out", str(tmp_path / "o"))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert str(broken) in err and "cannot be read as DICOM" in err
    assert not (tmp_path / "o").exists()


def test_a_missing_slice_is_refused(tiny_model, volume, tmp_path, capsys):
    write_series(volume, tmp_path / "study")
    (tmp_path / "study" / "006.dcm").unlink()
    code, _, err = run(capsys, "predict", str(tmp_path / "study"), "--model", tiny_model, "--out", str(tmp_path / "o"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "unevenly spaced" in err


def test_a_binary_model_gets_levels_from_the_shipped_4_class_model():
    import keras

    from spine import inference

    binary = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(2, 1, activation="softmax")])
    assert inference.levels_model(binary).output_shape[-1] == 4
    four = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 1, activation="softmax")])
    assert inference.levels_model(four) is four


def test_a_folder_without_dicom(tiny_model, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here")
    code, _, err = run(capsys, "predict", str(tmp_path / "notes"), "--model", tiny_model, "--out", str(tmp_path / "o"))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'notes'}: no DICOM series" in err


def test_levels_of_a_png_without_spine(tiny_model, tmp_path, capsys):
    """A blank-looking slice: an empty level map, a table with its header only, and a warning."""
    source = tmp_path / "flat.png"
    Image.fromarray(np.tile(np.arange(32, dtype=np.uint8), (32, 1))).save(source)
    with pytest.warns(UserWarning, match="no vertebra or disc"):
        # a constant-output model stands in for "no spine found"
        code, _, err = run(capsys, "predict", str(source), "--model", _constant_model(tmp_path), "--out",
                           str(tmp_path / "o"), "--levels")
    assert code == 0, err
    assert not np.asarray(Image.open(tmp_path / "o" / "flat_levels.png")).any()
    assert (tmp_path / "o" / "flat_levels.csv").read_text().strip().splitlines() == [
        "label,structure,level,area,height,canal_ap_diameter,centroid_row,centroid_col,unit"]


def _constant_model(folder) -> str:
    """A 4-class model that always answers background."""
    import keras

    inputs = keras.Input((32, 32, 1))
    logits = keras.layers.Conv2D(4, 1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(
        [5.0, 0.0, 0.0, 0.0]))(inputs)
    path = folder / "background.keras"
    keras.Model(inputs, keras.layers.Softmax()(logits)).save(path)
    return str(path)
