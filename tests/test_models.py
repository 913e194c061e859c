"""The model zoo: shapes, dual output, a training step, save/load in a fresh process, parameter counts."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from spine.errors import ConfigError
from spine.models import (
    ATTENTION_NAMES,
    BASELINE_NAMES,
    MODEL_NAMES,
    bottleneck_layer_name,
    build_attention_unet,
    build_model,
    build_proposed,
    build_resunet,
    build_transunet,
    build_unet,
    decoder_layer_name,
    has_dual_output,
    parameter_table,
)

ROOT = Path(__file__).resolve().parents[1]
DUAL_BY_NAME = {"Proposed", "U-Net + Dual-output mechanism", "Proposed + SAM", "Proposed + CBAM",
                "Proposed + SE block"}


@pytest.fixture(autouse=True, scope="module")
def _fresh_keras_session():
    """Once per file: ``clear_session`` collects garbage, about 0.8 s a call with this file's models."""
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


def _random_batch(size, num_classes, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    labels = rng.integers(0, num_classes, (batch, size, size))
    y = np.eye(num_classes, dtype=np.float32)[labels]
    return x, y


# --------------------------------------------------------------------------- save / load (part 1)
#
# Every baseline and every attention variant is saved to a .keras file first thing; one fresh
# Python process then reloads them all *in the background* while the other tests run (2 CPU
# cores: this hides most of the ~40 s of reloading). The round-trip tests at the end of the file
# wait for it and compare its predictions with the ones made before saving.

SAVE_NAMES = BASELINE_NAMES + ATTENTION_NAMES

_LOADER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    import spine.models, keras

    folder = Path(sys.argv[1])
    x = np.load(folder / "x.npy")
    results = {}
    for entry in json.loads((folder / "index.json").read_text()):
        try:
            keras.backend.clear_session()
            model = keras.saving.load_model(folder / entry["file"])
            out = model(x, training=False)
            np.savez(folder / entry["loaded"], **{k: keras.ops.convert_to_numpy(v) for k, v in out.items()})
            results[entry["name"]] = {"keys": sorted(out)}
        except Exception as error:  # reported per model by the test
            results[entry["name"]] = {"error": f"{type(error).__name__}: {error}"}
    (folder / "results.json").write_text(json.dumps(results))
""")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory, built_model):
    """Save the models, start reloading them in a fresh process; yield ``(folder, x, process)``."""
    folder = tmp_path_factory.mktemp("saved-models")
    x = np.random.default_rng(7).random((2, 64, 64, 1), dtype=np.float32)
    np.save(folder / "x.npy", x)
    index = []
    for number, name in enumerate(SAVE_NAMES):
        width, classes = SAVED_SHAPE
        model = built_model(name, 64, classes, width)
        model.save(folder / f"model{number}.keras")
        out = model(x, training=False)  # the reference, made by the model that was saved
        np.savez(folder / f"ref{number}.npz", **{k: keras.ops.convert_to_numpy(v) for k, v in out.items()})
        index.append({"name": name, "file": f"model{number}.keras", "reference": f"ref{number}.npz",
                      "loaded": f"loaded{number}.npz"})
    keras.backend.clear_session()
    (folder / "index.json").write_text(json.dumps(index))
    # One thread: the loader shares the 2 cores with the rest of the session.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
        process = subprocess.Popen([sys.executable, "-c", _LOADER, str(folder)], env=env, stdout=out, stderr=err,
                                   cwd=folder)
    yield folder, index, process
    if process.poll() is None:  # interrupted run: stop the loader we started
        process.kill()
        process.wait()


def test_models_save_to_keras_files(saved_models):
    folder, index, _ = saved_models
    for entry in index:
        with zipfile.ZipFile(folder / entry["file"]) as archive:
            assert {"config.json", "model.weights.h5"} <= set(archive.namelist())
            config = json.loads(archive.read("config.json"))
        custom = {layer.get("registered_name") for layer in config["config"]["layers"]
                  if layer.get("module") not in ("keras.layers", "keras")}
        assert custom <= {"spine>PositionalEmbedding", "spine>ChannelPool"}, custom
        if entry["name"] == "TransUNet":
            assert "spine>PositionalEmbedding" in custom
        assert not any(layer["class_name"] == "Lambda" for layer in config["config"]["layers"])


# --------------------------------------------------------------------------- registry


def test_model_names_cover_the_study():
    assert BASELINE_NAMES == ("U-Net", "ResUNet", "Attention U-Net", "TransUNet", "Proposed")
    assert set(BASELINE_NAMES) <= set(MODEL_NAMES)
    assert {"U-Net + Inception module", "U-Net + Dual-output mechanism"} <= set(MODEL_NAMES)
    study_variants = {"U-Net + SAM", "U-Net + CBAM", "ResUNet + SAM", "ResUNet + CBAM", "Proposed + SE block",
                      "Proposed + SAM", "Proposed + CBAM"}
    assert study_variants <= set(ATTENTION_NAMES)
    assert len(ATTENTION_NAMES) == 9 and len(set(MODEL_NAMES)) == len(MODEL_NAMES) == 16


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        build_model("V-Net", input_shape=(32, 32, 1), width=8)
    message = str(info.value)
    assert "V-Net" in message
    for name in MODEL_NAMES:
        assert name in message


@pytest.mark.parametrize("kwargs", [
    {"input_shape": (40, 40, 1)},
    {"input_shape": (32, 32)},
    {"num_classes": 1},
    {"skip_attention": "eca"},
    {"dropout": 1.5},
    {"not_a_setting": 3},
])
def test_invalid_settings_raise_config_error(kwargs):
    settings = {"input_shape": (32, 32, 1), "width": 8, **kwargs}
    with pytest.raises(ConfigError):
        build_model("U-Net", **settings)


def test_name_fixed_settings_cannot_be_contradicted():
    with pytest.raises(ConfigError, match="dual_output"):
        build_model("U-Net + Dual-output mechanism", input_shape=(32, 32, 1), width=8, dual_output=False)
    with pytest.raises(ConfigError, match="skip_attention"):
        build_model("U-Net + SAM", input_shape=(32, 32, 1), width=8, skip_attention="cbam")
    model = build_model("U-Net", input_shape=(32, 32, 1), width=8, dual_output=True)
    assert has_dual_output(model)


# --------------------------------------------------------------------------- shapes


# Binary and 4-class at widths 8 and 16: the full 2 x 2 grid for the five families, two opposite
# corners of it for the ablations and attention variants (same code paths). The fast tier checks
# every model at width 8 with 4 classes, the models saved above (built once); the rest is slow.
SAVED_SHAPE = (8, 4)
SHAPE_CASES = [(name, width, classes) for name in BASELINE_NAMES for width in (8, 16) for classes in (2, 4)] + [
    (name, width, classes) for name in MODEL_NAMES if name not in BASELINE_NAMES for width, classes in (SAVED_SHAPE, (16, 2))]


@pytest.mark.parametrize(("name", "width", "num_classes"), [
    case if case[1:] == SAVED_SHAPE else pytest.param(*case, marks=pytest.mark.slow) for case in SHAPE_CASES])
def test_output_shapes(built_model, name, width, num_classes):
    size = 64
    model = built_model(name, size, num_classes, width)
    dual = name in DUAL_BY_NAME
    assert has_dual_output(model) is dual
    expected = {"mask": (size, size, num_classes)}
    if dual:
        expected["aux"] = (size // 16, size // 16, num_classes)
    assert set(model.output_names) == set(expected)
    bottleneck = model.get_layer(bottleneck_layer_name(model))
    assert tuple(bottleneck.output.shape[1:3]) == (size // 16, size // 16)
    for stage in (1, 2, 3, 4):  # each stage's output is what the next stage (or the head) takes
        output = model.get_layer(decoder_layer_name(model, stage)).output
        assert tuple(output.shape[1:3]) == (size // 2 ** (stage - 1),) * 2
        assert model.get_layer(f"dec{stage - 1}_up" if stage > 1 else "mask").input is output
    x = np.random.default_rng(1).random((1, size, size, 1), dtype=np.float32)
    out = model(x, training=False)
    assert set(out) == set(expected)
    for key, shape in expected.items():
        values = keras.ops.convert_to_numpy(out[key])
        assert values.shape == (1, *shape)
        assert np.all(np.isfinite(values))
        np.testing.assert_allclose(values.sum(axis=-1), 1.0, atol=1e-5)  # softmax over the classes


@pytest.mark.parametrize("builder", [build_unet, build_resunet, build_attention_unet, build_transunet, build_proposed])
def test_every_builder_takes_the_dual_output_switch(builder):
    default = has_dual_output(builder(input_shape=(32, 32, 1), num_classes=3, width=8))
    assert default is (builder is build_proposed)  # only the proposed model is dual by default
    keras.backend.clear_session()
    model = builder(input_shape=(32, 32, 1), num_classes=3, width=8, dual_output=not default)
    assert has_dual_output(model) is (not default)
    if not default:
        assert tuple(model.get_layer("aux").output.shape[1:]) == (2, 2, 3)


def test_rectangular_input_and_transunet_token_grid():
    model = build_model("TransUNet", input_shape=(64, 32, 1), num_classes=2, width=8, dual_output=True)
    assert tuple(model.get_layer("pos_embed").embedding.shape) == (4 * 2, 64)
    out = model(np.zeros((1, 64, 32, 1), np.float32), training=False)
    assert tuple(out["mask"].shape) == (1, 64, 32, 2) and tuple(out["aux"].shape) == (1, 4, 2, 2)
    keras.backend.clear_session()
    model = build_model("TransUNet", input_shape=(128, 128, 1), num_classes=2, width=8)
    assert tuple(model.get_layer("pos_embed").embedding.shape) == (8 * 8, 64)


def test_inception_block_scales_with_width():
    for width in (8, 16):
        keras.backend.clear_session()
        model = build_model("U-Net + Inception module", input_shape=(32, 32, 1), width=width)
        assert model.get_layer("inception_concat").output.shape[-1] == 4 * width  # 256 at width 64
        assert model.get_layer("inception_b3_reduce_conv").filters == round(96 * width / 64)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_one_training_step_changes_weights(name):
    """Forward pass, one Adam step with ``bn_momentum=0.9``; loss finite, weights moved."""
    size, num_classes = 32, 2
    model = build_model(name, input_shape=(size, size, 1), num_classes=num_classes, width=8, bn_momentum=0.9)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == pytest.approx(0.9) for layer in norms)  # reaches every BN
    x, y = _random_batch(size, num_classes)
    targets = {"mask": y}
    losses = {"mask": "categorical_crossentropy"}
    if has_dual_output(model):
        targets["aux"] = y[:, ::16, ::16]
        losses["aux"] = "categorical_crossentropy"
    # One step eagerly: tracing the train function costs 10-20 s per model on 2 CPU cores.
    model.compile(optimizer="adam", loss=losses, run_eagerly=True)
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    logs = model.train_on_batch(x, targets, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    changed = [not np.array_equal(b, a) for b, a in zip(before, after)]
    # Conv biases just before a BatchNorm get no gradient; everything else moves.
    assert sum(changed) > len(changed) / 2
    mask_kernel = model.get_layer("mask").kernel
    index = next(i for i, w in enumerate(model.trainable_weights) if w is mask_kernel)
    assert changed[index]
    out = model(x, training=False)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out["mask"])))


# --------------------------------------------------------------------------- parameter counts


@pytest.fixture(scope="module")
def complexity():
    """Ours beside the study's Table 8 (builds the five full-size models once, no training)."""
    return parameter_table().set_index("model")


TOLERANCE_PCT = {"U-Net": 2.0, "ResUNet": 2.0, "Attention U-Net": 2.0, "Proposed": 2.0, "TransUNet": 5.0}


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_parameter_counts_match_the_study(complexity, name):
    row = complexity.loc[name]
    assert row["total"] == row["trainable"] + row["non_trainable"]
    assert abs(row["total_diff_pct"]) <= TOLERANCE_PCT[name]
    assert abs(row["total"] - row["study_total"]) / row["study_total"] * 100 == pytest.approx(
        abs(row["total_diff_pct"]))
    # The BatchNorm placement was reverse-engineered from the non-trainable counts: exact.
    assert row["non_trainable"] == row["study_non_trainable"]
    if name != "TransUNet":
        assert row["total"] == row["study_total"] and row["trainable"] == row["study_trainable"]


def test_parameter_table_rows_follow_the_study(complexity):
    assert list(complexity.index) == list(BASELINE_NAMES)


# --------------------------------------------------------------------------- save / load (part 2)


@pytest.fixture(scope="module")
def reloaded(saved_models):
    """Wait for the fresh process; ``{name: (reference outputs, reloaded outputs or error)}``."""
    folder, index, process = saved_models
    process.wait(timeout=900)
    stderr = (folder / "stderr.txt").read_text()
    assert process.returncode == 0, stderr[-3000:]
    results = json.loads((folder / "results.json").read_text())
    return folder, {entry["name"]: (entry, results[entry["name"]]) for entry in index}


@pytest.mark.parametrize("name", SAVE_NAMES)
def test_save_load_round_trip_in_a_fresh_process(reloaded, name):
    folder, by_name = reloaded
    entry, result = by_name[name]
    assert "error" not in result, result.get("error")
    expected_keys = ["aux", "mask"] if name in DUAL_BY_NAME else ["mask"]
    assert result["keys"] == expected_keys
    reference, loaded = np.load(folder / entry["reference"]), np.load(folder / entry["loaded"])
    assert sorted(reference.files) == sorted(loaded.files) == expected_keys
    for key in expected_keys:
        np.testing.assert_allclose(loaded[key], reference[key], rtol=0, atol=1e-6)


def test_decoder_layer_names_the_chapters_use(built_model):
    assert decoder_layer_name(built_model("Proposed")) == "dec3_block_2_relu"
    assert decoder_layer_name(built_model("ResUNet"), 2) == "dec2_block_relu"
    with pytest.raises(ConfigError, match="no decoder stage 5"):
        decoder_layer_name(built_model("U-Net"), 5)
