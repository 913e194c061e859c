"""Losses: values against NumPy formulas and Keras' own losses, finite gradients on empty and
full masks, serialisation, and use in ``model.compile`` with a dual-output model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from spine import losses
from spine.errors import ConfigError

ALL = [(task, name) for task, names in losses.LOSS_NAMES.items() for name in names]
CHANNELS = {"binary": 2, "multiclass": 4}


def one_hot(labels, channels):
    return np.eye(channels, dtype=np.float32)[labels]


def random_softmax(shape, seed=0):
    logits = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_targets(batch, channels, seed=1, size=8):
    labels = np.random.default_rng(seed).integers(0, channels, size=(batch, size, size))
    return one_hot(labels, channels)


def value(loss, y, p):
    return float(keras.ops.convert_to_numpy(loss(y, p)))


# --------------------------------------------------------------------------- NumPy references

def np_bce(y, p, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def np_dice_per_image(y, p, smooth=1.0):
    axes = tuple(range(1, y.ndim))
    per_image = 1 - (2 * (y * p).sum(axis=axes) + smooth) / (y.sum(axis=axes) + p.sum(axis=axes) + smooth)
    return per_image  # shape (B,)


# --------------------------------------------------------------------------- finiteness

def _masks(task, kind):
    channels = CHANNELS[task]
    labels = np.zeros((2, 8, 8), np.int64)
    if kind == "full":
        labels[:] = channels - 1
    elif kind == "mixed":
        labels = np.random.default_rng(3).integers(0, channels, size=(2, 8, 8))
    return one_hot(labels, channels)


@pytest.mark.parametrize("task, name", ALL)
@pytest.mark.parametrize("kind", ["empty", "full", "mixed"])
def test_finite_values_and_gradients(task, name, kind):
    loss = losses.get_loss(name, task)
    y = tf.constant(_masks(task, kind))
    logits = tf.Variable(np.random.default_rng(0).normal(size=y.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        result = loss(y, tf.nn.softmax(logits))
    gradient = tape.gradient(result, logits)
    assert np.isfinite(result.numpy()) and result.numpy() >= 0
    assert np.all(np.isfinite(gradient.numpy()))
    # Saturated predictions (exact 0 and 1) also keep value and gradient finite.
    for p in (y, 1.0 - y):
        p = tf.Variable(p)
        with tf.GradientTape() as tape:
            result = loss(y, p)
        gradient = tape.gradient(result, p)
        assert np.isfinite(result.numpy())
        assert np.all(np.isfinite(gradient.numpy()))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("kind", ["empty", "full", "mixed"])
def test_dice_of_perfect_prediction_is_zero(task, kind):
    y = _masks(task, kind)
    assert value(losses.get_loss("Dice", task), y, y) == pytest.approx(0.0, abs=1e-6)
    wrong = 1.0 - y if task == "binary" else np.roll(y, 1, axis=-1)
    assert value(losses.get_loss("Dice", task), y, wrong) > 0.4


# --------------------------------------------------------------------------- binary values

def test_bce_equals_keras_bce_on_foreground_and_cce_on_two_channels():
    y, p = random_targets(3, 2), random_softmax((3, 8, 8, 2))
    ours = value(losses.get_loss("BCE", "binary"), y, p)
    assert ours == pytest.approx(np_bce(y[..., 1], p[..., 1]), rel=1e-5)
    assert ours == pytest.approx(value(keras.losses.BinaryCrossentropy(), y[..., 1:], p[..., 1:]), rel=1e-5)
    assert ours == pytest.approx(value(keras.losses.CategoricalCrossentropy(), y, p), rel=1e-5)
    assert ours == pytest.approx(value(losses.get_loss("CCE", "multiclass"), y, p), rel=1e-5)


@pytest.mark.parametrize("per_image", [True, False])
def test_binary_dice_formula(per_image):
    y, p = random_targets(4, 2, seed=5), random_softmax((4, 8, 8, 2), seed=6)
    y[0] = one_hot(np.zeros((8, 8), np.int64), 2)  # an image with an empty foreground
    loss = losses.BinaryDice(per_image=per_image)
    fg_y, fg_p = y[..., 1], p[..., 1]
    if per_image:
        expected = np_dice_per_image(fg_y, fg_p).mean()
    else:
        expected = 1 - (2 * (fg_y * fg_p).sum() + 1) / (fg_y.sum() + fg_p.sum() + 1)
    assert value(loss, y, p) == pytest.approx(expected, rel=1e-5)


def test_dice_smoothing_on_empty_masks():
    y = one_hot(np.zeros((1, 8, 8), np.int64), 2)
    p = y.copy()
    p[0, 0, 0] = [0.0, 1.0]  # one spurious foreground pixel
    assert value(losses.BinaryDice(), y, y) == 0.0
    assert value(losses.BinaryDice(), y, p) == pytest.approx(1 - 1 / 2)


def test_focal_gamma_zero_is_half_bce_and_matches_keras():
    y, p = random_targets(2, 2, seed=7), random_softmax((2, 8, 8, 2), seed=8)
    bce = value(losses.get_loss("BCE", "binary"), y, p)
    assert value(losses.BinaryFocal(alpha=0.5, gamma=0.0), y, p) == pytest.approx(0.5 * bce, rel=1e-5)
    keras_focal = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.5, gamma=2.0)
    assert value(losses.get_loss("Focal", "binary"), y, p) == pytest.approx(
        value(keras_focal, y[..., 1:], p[..., 1:]), rel=1e-5)
    # Focusing down-weights easy pixels: focal < 0.5 * BCE when gamma > 0.
    assert value(losses.get_loss("Focal", "binary"), y, p) < 0.5 * bce


def test_bce_dice_is_the_sum():
    y, p = random_targets(2, 2, seed=9), random_softmax((2, 8, 8, 2), seed=10)
    total = value(losses.get_loss("BCE-Dice", "binary"), y, p)
    assert total == pytest.approx(value(losses.BinaryCrossEntropy(), y, p) + value(losses.BinaryDice(), y, p), rel=1e-5)
    weighted = losses.BinaryCrossEntropyDice(bce_weight=2.0, dice_weight=0.5)
    assert value(weighted, y, p) == pytest.approx(
        2 * value(losses.BinaryCrossEntropy(), y, p) + 0.5 * value(losses.BinaryDice(), y, p), rel=1e-5)


# --------------------------------------------------------------------------- multiclass values

def test_cce_matches_keras():
    y, p = random_targets(2, 4, seed=11), random_softmax((2, 8, 8, 4), seed=12)
    assert value(losses.get_loss("CCE", "multiclass"), y, p) == pytest.approx(
        value(keras.losses.CategoricalCrossentropy(), y, p), rel=1e-5)


@pytest.mark.parametrize("include_background", [True, False])
def test_multiclass_dice_is_mean_of_per_class_dice(include_background):
    y, p = random_targets(3, 4, seed=13), random_softmax((3, 8, 8, 4), seed=14)
    y[1, ..., 3] = 0  # no canal in image 1
    y[1, ..., 0] = 1 - y[1, ..., 1:].sum(axis=-1)
    classes = range(0 if include_background else 1, 4)
    expected = np.mean([np_dice_per_image(y[..., c], p[..., c]) for c in classes], axis=0).mean()
    loss = losses.MulticlassDice(include_background=include_background)
    assert value(loss, y, p) == pytest.approx(expected, rel=1e-5)


def test_multiclass_dice_without_background_on_two_channels_is_binary_dice():
    y, p = random_targets(2, 2, seed=15), random_softmax((2, 8, 8, 2), seed=16)
    assert value(losses.MulticlassDice(include_background=False), y, p) == pytest.approx(
        value(losses.BinaryDice(), y, p), rel=1e-5)


def test_multiclass_focal_relations():
    y, p = random_targets(2, 4, seed=17), random_softmax((2, 8, 8, 4), seed=18)
    cce = value(losses.get_loss("CCE", "multiclass"), y, p)
    assert value(losses.MulticlassFocal(alpha=0.25, gamma=0.0), y, p) == pytest.approx(0.25 * cce, rel=1e-5)
    keras_focal = keras.losses.CategoricalFocalCrossentropy(alpha=0.5, gamma=2.0)
    assert value(losses.get_loss("Focal", "multiclass"), y, p) == pytest.approx(
        value(keras_focal, y, p), rel=1e-5)
    # per-class alpha
    alpha = [0.1, 0.2, 0.3, 0.4]
    p_clip = np.clip(p, 1e-7, 1 - 1e-7)
    expected = np.mean(-(np.array(alpha) * y * (1 - p_clip) ** 2 * np.log(p_clip)).sum(axis=-1))
    assert value(losses.MulticlassFocal(alpha=alpha), y, p) == pytest.approx(expected, rel=1e-5)
    # on two channels with alpha 0.5 it is the binary focal loss
    y2, p2 = random_targets(2, 2, seed=19), random_softmax((2, 8, 8, 2), seed=20)
    assert value(losses.MulticlassFocal(), y2, p2) == pytest.approx(value(losses.BinaryFocal(), y2, p2), rel=1e-5)


def test_cce_dice_is_the_sum():
    y, p = random_targets(2, 4, seed=21), random_softmax((2, 8, 8, 4), seed=22)
    assert value(losses.get_loss("CCE-Dice", "multiclass"), y, p) == pytest.approx(
        value(losses.CategoricalCrossEntropy(), y, p) + value(losses.MulticlassDice(), y, p), rel=1e-5)


# --------------------------------------------------------------------------- registry and serialisation

def test_registry_names_and_errors():
    assert losses.LOSS_NAMES == {"binary": ("BCE", "Dice", "Focal", "BCE-Dice"),
                                 "multiclass": ("CCE", "Dice", "Focal", "CCE-Dice")}
    assert isinstance(losses.get_loss("bce_dice", "binary"), losses.BinaryCrossEntropyDice)
    assert isinstance(losses.get_loss("Dice", "multiclass"), losses.MulticlassDice)
    with pytest.raises(ConfigError, match="BCE, Dice, Focal, BCE-Dice"):
        losses.get_loss("CCE", "binary")
    with pytest.raises(ConfigError, match="binary, multiclass"):
        losses.get_loss("Dice", "ternary")


@pytest.mark.parametrize("task, name", ALL)
def test_get_config_round_trip(task, name):
    loss = losses.get_loss(name, task)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    y = random_targets(2, CHANNELS[task], seed=23)
    p = random_softmax(y.shape, seed=24)
    assert value(restored, y, p) == pytest.approx(value(loss, y, p))


def test_config_keeps_parameters():
    loss = losses.MulticlassFocal(alpha=[0.1, 0.2, 0.3, 0.4], gamma=1.5)
    restored = losses.MulticlassFocal.from_config(loss.get_config())
    assert restored.alpha == [0.1, 0.2, 0.3, 0.4] and restored.gamma == 1.5
    dice = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
        losses.CategoricalCrossEntropyDice(include_background=False, smooth=0.5, per_image=False)))
    assert (dice.include_background, dice.smooth, dice.per_image) == (False, 0.5, False)


def test_dual_output_losses_weights():
    loss_dict, weights = losses.dual_output_losses("Focal", "multiclass", aux_weight=0.4)
    assert set(loss_dict) == {"mask", "aux"} and loss_dict["mask"] is not loss_dict["aux"]
    assert all(isinstance(v, losses.MulticlassFocal) for v in loss_dict.values())
    assert weights == {"mask": 1.0, "aux": 0.4}
    assert losses.dual_output_losses("BCE", "binary")[1] == {"mask": 1.0, "aux": 1.0}
    with pytest.raises(ConfigError):
        losses.dual_output_losses("BCE", "binary", aux_weight=-1)


def _tiny_dual_model(channels):
    inputs = keras.Input((16, 16, 1))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    mask = keras.layers.Conv2D(channels, 1, activation="softmax", name="mask")(features)
    pooled = keras.layers.AveragePooling2D(8)(features)
    aux = keras.layers.Conv2D(channels, 1, activation="softmax", name="aux")(pooled)
    return keras.Model(inputs, {"mask": mask, "aux": aux})


@pytest.mark.parametrize("task, name", [("binary", "BCE-Dice"), ("multiclass", "CCE-Dice"), ("binary", "Focal")])
def test_compile_and_train_dual_output_model(task, name, tmp_path):
    keras.utils.set_random_seed(0)
    channels = CHANNELS[task]
    model = _tiny_dual_model(channels)
    loss_dict, weights = losses.dual_output_losses(name, task, aux_weight=0.5)
    model.compile(optimizer="adam", loss=loss_dict, loss_weights=weights)
    rng = np.random.default_rng(0)
    x = rng.random((4, 16, 16, 1)).astype(np.float32)
    labels = (x[..., 0] > 0.5).astype(np.int64) * (channels - 1)
    y_mask = one_hot(labels, channels)
    y_aux = y_mask.reshape(4, 2, 8, 2, 8, channels).mean(axis=(2, 4))  # area-downsampled soft targets
    first = model.train_on_batch(x, {"mask": y_mask, "aux": y_aux}, return_dict=True)
    for _ in range(3):
        last = model.train_on_batch(x, {"mask": y_mask, "aux": y_aux}, return_dict=True)
    assert np.all(np.isfinite(list(first.values()))) and np.all(np.isfinite(list(last.values())))
    assert first["loss"] == pytest.approx(first["mask_loss"] + 0.5 * first["aux_loss"], rel=1e-4)
    assert last["loss"] < first["loss"]  # it learns
    # the total is mask loss + aux_weight * aux loss
    out = model.predict(x, verbose=0)
    expected = value(loss_dict["mask"], y_mask, out["mask"]) + 0.5 * value(loss_dict["aux"], y_aux, out["aux"])
    assert float(model.evaluate(x, {"mask": y_mask, "aux": y_aux}, verbose=0, return_dict=True)["loss"]) == pytest.approx(expected, rel=1e-4)
    if name == "BCE-Dice":  # a saved model reloads without custom_objects
        path = tmp_path / "model.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        assert isinstance(reloaded.loss["mask"], losses.BinaryCrossEntropyDice)
