"""Keras 3 losses of the study, binary and multiclass, for single- and dual-output models.

Every loss takes one-hot targets ``y_true`` and softmax predictions ``y_pred`` of shape
``(B, H, W, C)`` (``C = 2`` for the binary task, ``4`` for the multiclass one; the models keep a
softmax head with ``C`` channels even for the binary task). Targets may be soft (values in
[0, 1], e.g. area-downsampled masks for the auxiliary head): every formula below accepts them.
The losses use ``keras.ops`` only, so they run on any Keras backend, in ``model.compile`` and in
a custom training loop; they are ``keras.losses.Loss`` subclasses registered under the package
name ``"spine"``, so a saved model reloads with them.

Conventions (quoted by the book):

- **Binary losses act on the foreground channel.** ``p = y_pred[..., 1]`` and ``y = y_true[..., 1]``
  (the last channel: a single-channel sigmoid head works too). With a 2-channel softmax,
  ``p0 = 1 - p1`` and one-hot targets ``y0 = 1 - y1``, so the binary cross-entropy on channel 1,
  ``-(y log p + (1 - y) log(1 - p))``, *is* the categorical cross-entropy over the two channels,
  ``-(y0 log p0 + y1 log p1)``: the choice of channel loses nothing.
- **BCE / CCE**: the mean over pixels of the per-pixel cross-entropy; probabilities are clipped
  to ``[eps, 1 - eps]`` with ``eps = keras.config.epsilon()`` (1e-7), as Keras does.
- **Soft Dice** (the study's formula, smoothed): ``1 - (2 sum(y p) + s) / (sum y + sum p + s)``
  with ``smooth = s = 1.0``. The smoothing keeps the loss defined when both the target and the
  prediction are empty (0/0 otherwise; with it an empty target predicted empty costs 0, and an
  empty target with predicted pixels costs ``1 - 1/(sum p + 1)``) and keeps the gradient finite.
- **Dice per image, then the batch mean** (``per_image=True``, the default): the sums run over
  the pixels of each image, so each slice weighs the same whatever its foreground area, the
  usual choice for 2D segmentation. ``per_image=False`` gives the study's literal formula with
  the sums over the whole batch (every sample then carries that same batch value).
- **Multiclass Dice** is the mean over classes of the per-class soft Dice loss (each per image
  with the same smoothing). ``include_background=True`` by default: it matches the mean IoU over
  all classes that the study reports, and it keeps the loss informative on slices where some
  structures are absent. ``include_background=False`` averages over classes 1..C-1 only
  (on a 2-channel map this equals the binary Dice loss).
- **Focal**: ``FL = -alpha y (1 - p)^gamma log p - (1 - alpha)(1 - y) p^gamma log(1 - p)``, the
  mean over pixels, with ``alpha = 0.5, gamma = 2.0``. With ``gamma = 0`` it is ``alpha * BCE``
  (``0.5 * BCE`` by default). It equals ``keras.losses.BinaryFocalCrossentropy`` with
  ``apply_class_balancing=True``. The multiclass focal loss is
  ``-sum_c alpha_c y_c (1 - p_c)^gamma log p_c`` (``alpha`` a number or one per class); with a
  scalar ``alpha = 0.5`` on two channels it equals the binary focal loss, and with ``gamma = 0``
  it is ``alpha * CCE``.
- **BCE-Dice / CCE-Dice**: ``bce_weight * CE + dice_weight * Dice``, weights 1 and 1.
- **Partial labels**: a pixel whose one-hot target is all zero is unknown and ignored (its
  prediction is masked out before any formula above): the Dice sums, cross-entropy and focal terms
  see only the known pixels (the pixel means still divide by every pixel).
- **Dual output**: :func:`dual_output_losses` puts the same loss on the ``"mask"`` head (full
  resolution) and the ``"aux"`` head (8x8 for a 128x128 input; its targets are the masks
  downsampled to that size, one-hot or area-averaged), weighted 1 and ``aux_weight`` (default
  1.0: the study trains both heads jointly with equal weight).
"""

from __future__ import annotations

import keras
from keras import ops

from spine.errors import ConfigError

LOSS_NAMES = {"binary": ("BCE", "Dice", "Focal", "BCE-Dice"),
              "multiclass": ("CCE", "Dice", "Focal", "CCE-Dice")}
DEFAULT_SMOOTH = 1.0
_SPATIAL_AXES = (1, 2)  # (B, H, W, C)


def _prepare(y_true, y_pred):
    """Targets in the predictions' dtype, and the predictions with unknown pixels masked out.

    A pixel whose target is all zero over two or more channels has no class (partial labels,
    :data:`spine.data.labels.UNKNOWN`): its prediction is set to 0, so it adds nothing that depends
    on the prediction to any loss below, and gets no gradient. Fully labelled targets are unchanged."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    if y_true.shape[-1] is not None and y_true.shape[-1] > 1:
        y_pred = y_pred * ops.cast(ops.sum(y_true, axis=-1, keepdims=True) > 0, y_pred.dtype)
    return y_true, y_pred


def _clip(p):
    eps = keras.config.epsilon()
    return ops.clip(p, eps, 1.0 - eps)


def _spatial_axes(x):
    """Every axis except the batch axis (0)."""
    return tuple(range(1, len(x.shape)))


def _soft_dice_loss(y, p, smooth, per_image):
    """Soft Dice loss of maps ``y``, ``p`` of shape (B, ...spatial) -> shape (B,).

    ``per_image``: sums over each image's pixels; otherwise over the whole batch (the one value
    broadcast to every sample, so the batch mean is that value).
    """
    if per_image:
        axes = _spatial_axes(y)
        intersection = ops.sum(y * p, axis=axes)
        total = ops.sum(y, axis=axes) + ops.sum(p, axis=axes)
        return 1.0 - (2.0 * intersection + smooth) / (total + smooth)
    intersection = ops.sum(y * p)
    total = ops.sum(y) + ops.sum(p)
    value = 1.0 - (2.0 * intersection + smooth) / (total + smooth)
    return 0.0 * ops.mean(y, axis=_spatial_axes(y)) + value  # shape (B,), each the batch value


def _mean_per_sample(x):
    """Mean over every non-batch axis -> shape (B,)."""
    return ops.mean(x, axis=_spatial_axes(x))


def _binary_cross_entropy(y, p):
    p = _clip(p)
    return -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))


def _binary_focal(y, p, alpha, gamma):
    p = _clip(p)
    return -(alpha * y * ops.power(1.0 - p, gamma) * ops.log(p)
             + (1.0 - alpha) * (1.0 - y) * ops.power(p, gamma) * ops.log(1.0 - p))


def _foreground(y_true, y_pred):
    """The foreground channel (channel 1 of a 2-channel softmax; the last channel in general)."""
    return y_true[..., -1], y_pred[..., -1]


class _SpineLoss(keras.losses.Loss):
    """Base class: keeps the keyword parameters for :meth:`get_config`."""

    _params: tuple[str, ...] = ()

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self._params})
        return config


@keras.saving.register_keras_serializable(package="spine")
class BinaryCrossEntropy(_SpineLoss):
    """BCE on the foreground channel (= CCE over the two softmax channels), mean over pixels."""

    def __init__(self, name="bce", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y, p = _foreground(*_prepare(y_true, y_pred))
        return _mean_per_sample(_binary_cross_entropy(y, p))


@keras.saving.register_keras_serializable(package="spine")
class BinaryDice(_SpineLoss):
    """Soft Dice loss on the foreground channel: ``1 - (2 sum(yp) + s) / (sum y + sum p + s)``."""

    _params = ("smooth", "per_image")

    def __init__(self, smooth=DEFAULT_SMOOTH, per_image=True, name="dice",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.smooth = float(smooth)
        self.per_image = bool(per_image)

    def call(self, y_true, y_pred):
        y, p = _foreground(*_prepare(y_true, y_pred))
        return _soft_dice_loss(y, p, self.smooth, self.per_image)


@keras.saving.register_keras_serializable(package="spine")
class BinaryFocal(_SpineLoss):
    """Binary focal loss on the foreground channel (alpha 0.5, gamma 2.0), mean over pixels."""

    _params = ("alpha", "gamma")

    def __init__(self, alpha=0.5, gamma=2.0, name="focal", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y, p = _foreground(*_prepare(y_true, y_pred))
        return _mean_per_sample(_binary_focal(y, p, self.alpha, self.gamma))


@keras.saving.register_keras_serializable(package="spine")
class BinaryCrossEntropyDice(_SpineLoss):
    """``bce_weight * BCE + dice_weight * Dice`` on the foreground channel (weights 1 and 1)."""

    _params = ("bce_weight", "dice_weight", "smooth", "per_image")

    def __init__(self, bce_weight=1.0, dice_weight=1.0, smooth=DEFAULT_SMOOTH, per_image=True,
                 name="bce_dice", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)
        self.per_image = bool(per_image)

    def call(self, y_true, y_pred):
        y, p = _foreground(*_prepare(y_true, y_pred))
        bce = _mean_per_sample(_binary_cross_entropy(y, p))
        dice = _soft_dice_loss(y, p, self.smooth, self.per_image)
        return self.bce_weight * bce + self.dice_weight * dice


def _categorical_cross_entropy(y, p):
    """Per-pixel CCE, shape (B, H, W)."""
    return -ops.sum(y * ops.log(_clip(p)), axis=-1)


def _multiclass_dice(y, p, smooth, per_image, include_background):
    """Mean over classes of the per-class soft Dice loss -> shape (B,)."""
    first = 0 if include_background else 1
    channels = y.shape[-1]
    if channels is None or channels - first < 1:
        raise ConfigError(f"multiclass Dice needs at least {first + 1} channels, got {channels}")
    losses = [_soft_dice_loss(y[..., c], p[..., c], smooth, per_image) for c in range(first, channels)]
    return ops.mean(ops.stack(losses, axis=-1), axis=-1)


def _categorical_focal(y, p, alpha, gamma):
    """Per-pixel multiclass focal loss, shape (B, H, W)."""
    p = _clip(p)
    alpha = ops.cast(ops.convert_to_tensor(alpha), p.dtype)
    return -ops.sum(alpha * y * ops.power(1.0 - p, gamma) * ops.log(p), axis=-1)


@keras.saving.register_keras_serializable(package="spine")
class CategoricalCrossEntropy(_SpineLoss):
    """CCE over the C softmax channels, mean over pixels."""

    def __init__(self, name="cce", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y, p = _prepare(y_true, y_pred)
        return _mean_per_sample(_categorical_cross_entropy(y, p))


@keras.saving.register_keras_serializable(package="spine")
class MulticlassDice(_SpineLoss):
    """Mean over classes of per-class soft Dice (background included unless told otherwise)."""

    _params = ("smooth", "per_image", "include_background")

    def __init__(self, smooth=DEFAULT_SMOOTH, per_image=True, include_background=True,
                 name="multiclass_dice", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.smooth = float(smooth)
        self.per_image = bool(per_image)
        self.include_background = bool(include_background)

    def call(self, y_true, y_pred):
        y, p = _prepare(y_true, y_pred)
        return _multiclass_dice(y, p, self.smooth, self.per_image, self.include_background)


def _alpha_config(alpha):
    return [float(a) for a in alpha] if isinstance(alpha, (list, tuple)) else float(alpha)


@keras.saving.register_keras_serializable(package="spine")
class MulticlassFocal(_SpineLoss):
    """Multiclass focal loss ``-sum_c alpha_c y_c (1-p_c)^gamma log p_c``, mean over pixels."""

    _params = ("alpha", "gamma")

    def __init__(self, alpha=0.5, gamma=2.0, name="multiclass_focal",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = _alpha_config(alpha)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y, p = _prepare(y_true, y_pred)
        return _mean_per_sample(_categorical_focal(y, p, self.alpha, self.gamma))


@keras.saving.register_keras_serializable(package="spine")
class CategoricalCrossEntropyDice(_SpineLoss):
    """``cce_weight * CCE + dice_weight * multiclass Dice`` (weights 1 and 1)."""

    _params = ("cce_weight", "dice_weight", "smooth", "per_image", "include_background")

    def __init__(self, cce_weight=1.0, dice_weight=1.0, smooth=DEFAULT_SMOOTH, per_image=True,
                 include_background=True, name="cce_dice", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.cce_weight = float(cce_weight)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)
        self.per_image = bool(per_image)
        self.include_background = bool(include_background)

    def call(self, y_true, y_pred):
        y, p = _prepare(y_true, y_pred)
        cce = _mean_per_sample(_categorical_cross_entropy(y, p))
        dice = _multiclass_dice(y, p, self.smooth, self.per_image, self.include_background)
        return self.cce_weight * cce + self.dice_weight * dice


_REGISTRY = {
    "binary": {"BCE": BinaryCrossEntropy, "Dice": BinaryDice, "Focal": BinaryFocal,
               "BCE-Dice": BinaryCrossEntropyDice},
    "multiclass": {"CCE": CategoricalCrossEntropy, "Dice": MulticlassDice, "Focal": MulticlassFocal,
                   "CCE-Dice": CategoricalCrossEntropyDice},
}


def canonical_loss_name(name: str, task: str) -> str:
    """The registry spelling of ``name`` for ``task`` (matching ignores case, ``_`` for ``-``)."""
    if task not in LOSS_NAMES:
        raise ConfigError(f"unknown task {task!r}; valid: {', '.join(LOSS_NAMES)}")
    key = str(name).strip().lower().replace("_", "-")
    for valid in LOSS_NAMES[task]:
        if valid.lower() == key:
            return valid
    raise ConfigError(f"unknown {task} loss {name!r}; valid: {', '.join(LOSS_NAMES[task])}")


def get_loss(name: str, task: str, **kwargs) -> keras.losses.Loss:
    """A new loss instance by its study name (``LOSS_NAMES[task]``); ``kwargs`` go to its class.

    Unknown names or tasks raise :class:`ConfigError` listing the valid ones.
    """
    canonical = canonical_loss_name(name, task)
    return _REGISTRY[task][canonical](**kwargs)


def dual_output_losses(name: str, task: str, aux_weight: float = 1.0, **kwargs):
    """Losses and weights for a dual-output model (outputs ``{"mask": ..., "aux": ...}``).

    The same loss (a separate instance for each head) on the full-resolution ``"mask"`` head and
    the low-resolution ``"aux"`` head; weights ``{"mask": 1.0, "aux": aux_weight}``. The default
    ``aux_weight = 1.0`` is the study's joint training (total loss = mask loss + aux loss). Use as
    ``model.compile(loss=losses, loss_weights=weights)``.
    """
    aux_weight = float(aux_weight)
    if aux_weight < 0:
        raise ConfigError(f"aux_weight must be >= 0, got {aux_weight}")
    losses = {"mask": get_loss(name, task, **kwargs), "aux": get_loss(name, task, **kwargs)}
    return losses, {"mask": 1.0, "aux": aux_weight}
