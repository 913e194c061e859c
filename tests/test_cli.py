"""The command line end to end on the phantom (smoke profile), and its answers to bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from spine.cli import main
from spine.data import phantom
from spine.data.io import write_volume

pytestmark = pytest.mark.slow
DATA = "phantom:12"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke-profile multiclass run trained through the command line."""
    store = tmp_path_factory.mktemp("store")
    code = main(["train", "--model", "U-Net", "--loss", "CCE-Dice", "--task", "multiclass", "--data", DATA,
                 "--profile", "smoke", "--set", "epochs=2", "--out", str(store), "--quiet"])
    assert code == 0
    (run_dir,) = [p for p in store.iterdir() if p.is_dir()]
    return run_dir


def test_train_prints_the_record_and_evaluate_agrees(trained, capsys):
    recorded = json.loads((trained / "metrics.json").read_text())["test"]["per_image"]
    code, out, _ = run(capsys, "evaluate", str(trained))
    assert code == 0
    assert json.loads(out)["dice"] == pytest.approx(recorded["dice"])


def test_predict_png_keeps_size_and_writes_class_indices(trained, tmp_path, capsys):
    image, _ = phantom.make_slice(seed=3, size=200)
    rect = np.kron(image, np.ones((1, 1)))[:, :150]  # non-square, not the model's size
    source = tmp_path / "scan.png"
    Image.fromarray((255 * (rect - rect.min()) / np.ptp(rect)).astype(np.uint8)).save(source)
    code, out, _ = run(capsys, "predict", str(source), "--model", str(trained / "model.keras"),
                       "--out", str(tmp_path / "out"))
    assert code == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "scan.png"))
    assert mask.shape == rect.shape
    assert set(np.unique(mask)) <= {0, 1, 2, 3}


@pytest.mark.parametrize("permuted,suffix", [(False, ".mha"), (True, ".mha"), (True, ".nii.gz")])
def test_predict_volume_keeps_geometry(trained, tmp_path, capsys, permuted, suffix):
    volume, _ = phantom.make_case(seed=4, permuted=permuted)
    source = write_volume(volume, tmp_path / f"case{suffix}")
    code, _, _ = run(capsys, "predict", str(source), "--model", str(trained / "model.keras"),
                     "--out", str(tmp_path / "out"))
    assert code == 0
    original = sitk.ReadImage(str(source))
    result = sitk.ReadImage(str(tmp_path / "out" / f"case{suffix}"))
    assert result.GetSize() == original.GetSize()
    np.testing.assert_allclose(result.GetSpacing(), original.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(result.GetOrigin(), original.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(result.GetDirection(), original.GetDirection(), atol=1e-6)
    assert set(np.unique(sitk.GetArrayFromImage(result))) <= {0, 1, 2, 3}


def test_predict_refuses_to_overwrite(trained, tmp_path, capsys):
    source = tmp_path / "scan.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(source)
    before = source.read_bytes()
    code, _, err = run(capsys, "predict", str(source), "--model", str(trained / "model.keras"), "--out", str(tmp_path))
    assert code == 2 and "overwrite the input" in err and source.read_bytes() == before
    assert run(capsys, "predict", str(source), "--model", str(trained / "model.keras"), "--out",
               str(tmp_path / "o"))[0] == 0
    code, _, err = run(capsys, "predict", str(source), "--model", str(trained / "model.keras"), "--out",
                       str(tmp_path / "o"))
    assert code == 2 and "--overwrite" in err


def one_line_error(capsys, *argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    return err


def test_bad_model_files(tmp_path, capsys):
    image = tmp_path / "scan.png"
    Image.fromarray(np.eye(32, dtype=np.uint8) * 255).save(image)
    one_line_error(capsys, "predict", str(image), "--model", str(tmp_path / "none.keras"), "--out",
                   str(tmp_path / "o"), expected="model file not found")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    one_line_error(capsys, "predict", str(image), "--model", str(broken), "--out", str(tmp_path / "o"),
                   expected="cannot be loaded as a Keras model")
    assert not (tmp_path / "o" / "scan.png").exists()


def test_wrong_dimensionality_input(trained, tmp_path, capsys):
    flat = sitk.GetImageFromArray(np.zeros((2, 8, 8, 8), dtype=np.float32), isVector=False)
    path = tmp_path / "four_d.nii.gz"
    sitk.WriteImage(flat, str(path))
    one_line_error(capsys, "predict", str(path), "--model", str(trained / "model.keras"), "--out",
                   str(tmp_path / "o"), expected="3D")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    one_line_error(capsys, "predict", str(text), "--model", str(trained / "model.keras"), "--out",
                   str(tmp_path / "o"), expected="unsupported input")


def test_bad_names_layouts_and_stores(tmp_path, capsys):
    one_line_error(capsys, "train", "--model", "V-Net", "--loss", "Dice", "--data", DATA, "--profile", "smoke",
                   "--out", str(tmp_path), expected="valid: U-Net")
    one_line_error(capsys, "train", "--model", "U-Net", "--loss", "Hinge", "--data", DATA, "--profile", "smoke",
                   "--out", str(tmp_path), expected="valid")
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, "train", "--model", "U-Net", "--loss", "Dice", "--data", str(tmp_path / "empty"),
                   "--profile", "smoke", "--out", str(tmp_path), expected="expected images/ and masks/")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    one_line_error(capsys, "train", "--model", "U-Net", "--loss", "Dice", "--data", DATA, "--profile", "smoke",
                   "--out", str(blocker / "store"), expected="cannot create the results folder")


def test_no_shipped_model_is_said_plainly(tmp_path, capsys, monkeypatch):
    from spine import inference

    monkeypatch.setitem(inference.DEFAULT_MODELS, "binary", "absent.keras")
    image = tmp_path / "scan.png"
    Image.fromarray(np.eye(32, dtype=np.uint8) * 255).save(image)
    one_line_error(capsys, "predict", str(image), "--out", str(tmp_path / "o"), expected="no default binary model")



def test_export_writes_the_run_and_its_card_and_refuses_to_overwrite(trained, tmp_path, capsys):
    out = tmp_path / "weights"
    code, printed, _ = run(capsys, "export", "multiclass", "--data", DATA, "--profile", "smoke",
                           "--store", str(trained.parent), "--out", str(out))
    assert code == 0 and json.loads(printed)["model"] == str(out / "multiclass.keras")
    assert json.loads((out / "multiclass.json").read_text())["run_id"] == trained.name
    one_line_error(capsys, "export", "multiclass", "--data", DATA, "--profile", "smoke",
                   "--store", str(trained.parent), "--out", str(out), expected="exists")
    one_line_error(capsys, "export", "binary", "--data", DATA, "--profile", "smoke",
                   "--store", str(trained.parent), "--out", str(out), expected="no finished seed-0 binary run")

def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "spine.cli", "models", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--table" in result.stdout


def test_metrics_command_on_mask_folders(tmp_path, capsys):
    """0/255 predictions against SPIDER-style grey references, hand-computable Dice."""
    (tmp_path / "pred").mkdir()
    (tmp_path / "true").mkdir()
    reference = np.zeros((20, 20), dtype=np.uint8)
    reference[5:15, 5:15] = 76  # a vertebra, grey value of the slice folders
    predicted = np.zeros((20, 20), dtype=np.uint8)
    predicted[5:15, 8:18] = 255  # shifted by 3 columns: overlap 10 x 7
    for name in ("a.png", "b.png"):
        Image.fromarray(reference).save(tmp_path / "true" / name)
        Image.fromarray(predicted).save(tmp_path / "pred" / name)
    code, out, _ = run(capsys, "metrics", "--pred", str(tmp_path / "pred"), "--true", str(tmp_path / "true"),
                       "--spacing", "0.5", "0.5", "--json")
    result = json.loads(out)
    assert code == 0 and len(result["per_image"]) == 2
    assert result["dice"] == pytest.approx(2 * 70 / 200)
    assert result["hd"] == pytest.approx(3.0) and result["hd_mm"] == pytest.approx(1.5)
