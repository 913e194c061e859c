"""The robust augmentations (``augment="robust"`` and ``"robust-half"``): models that transfer across
MRI sequences and fields of view, trained on T2-SPACE labels alone.

Only T2-SPACE slices are labelled, yet ``spine predict`` meets T1 and T2 (TSE) series of 320-800
pixels with wider fields of view. Two things stand in for the sequences and geometries never
seen (the approach of domain-randomised training, e.g. SynthSeg):

- **Randomised batches** (:func:`augment_batch`, on the fly, per batch): intensity, a random
  lookup curve (monotonic or not: tissue contrasts reorder between sequences), inversion, gamma;
  geometry, a zoom (out: a wider field of view, padded black as real series' rotated and cropped
  borders are; in: a crop), an aspect change (every input is resized to a square), a rotation and
  a shift; then acquisition, a smooth multiplicative bias field, blur and Gaussian noise; last,
  the min-max rescaling every input gets. Masks follow the geometry with nearest-neighbour
  sampling (labels stay labels) and are padded as background. ``robust`` randomises every image;
  ``robust-half`` a random half of them, the others passing as they are (the training sequence
  stays half of what the model sees); ``robust-lateral`` as ``robust-half``, with lateral phantom
  slices (below). Every draw is a stateless random op keyed by (seed, epoch,
  batch), so a run draws the same on any resume.
- **Phantom T1 and T2 slices** (:func:`with_phantom`): a fraction :data:`PHANTOM_FRACTION` of the
  real training images is added as phantom central slices rendered with T1 and T2 contrast (half
  each), drawn by the run's seed from the phantom patients lent to training
  (:data:`spine.data.PHANTOM_MIX_PATIENTS`); their labels map to classes as the real ones do.
  ``robust-lateral`` draws them from every sagittal position instead: the real training slices lie
  near the mid-line, so only the phantom shows a model what lateral slices (pedicles, facets, soft
  tissue, little vertebral body) look like.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from spine.data import PHANTOM_MIX_PATIENTS, SliceSet, concat, phantom_slices

# The share of images each mode randomises (all mix the phantom in).
RANDOMISED_FRACTION = {"robust": 1.0, "robust-half": 0.5, "robust-lateral": 0.5}
# Modes whose phantom slices come from every sagittal position, not only the central one: models
# trained on mid-line slices alone mark soft tissue as vertebra on lateral slices (phantom and real
# T1/T2 alike), which a volume has many of.
EVERY_PHANTOM_SLICE = frozenset({"robust-lateral"})
PHANTOM_FRACTION = 0.25  # phantom images added, as a fraction of the real training images
PHANTOM_SEQUENCES = ("t1", "t2")
# Intensity: probabilities per image, and ranges.
CURVE_PROBABILITY = 0.6  # a random lookup curve ...
MONOTONIC_PROBABILITY = 0.5  # ... which is monotonic (else any order of the control points)
CURVE_POINTS = 6  # control points of the curve, evenly spaced over [0, 1]
INVERT_PROBABILITY = 0.2
GAMMA_LOG_SD = 0.35  # gamma = exp(N(0, sd))
# Geometry: zoom of the content (log-uniform; < 1: wider field of view), aspect (log-uniform),
# rotation (uniform, degrees), shift (uniform, fraction of the side).
ZOOM_RANGE = (0.55, 1.2)
ASPECT_RANGE = (0.75, 1.33)
ROTATION_DEGREES = 10.0
SHIFT_FRACTION = 0.12
# Acquisition: bias field (log-normal on a coarse grid, smoothly interpolated), blur (a blend of the
# image and its Gaussian blur with sigma BLUR_SIGMA px, weight uniform), noise (sd uniform).
BIAS_GRID = 4
BIAS_LOG_SD = 0.2
BLUR_PROBABILITY = 0.5
BLUR_SIGMA = 1.5
NOISE_MAX_SD = 0.05
_DRAWS = 16  # independent random streams per batch


def batch_seed(seed: int, epoch: int, batch) -> tf.Tensor:
    """The stateless seed of one batch: a function of (run seed, epoch, batch index) only."""
    run = int(np.random.default_rng([seed, epoch, 2]).integers(2**31))
    return tf.stack([tf.constant(run, tf.int64), tf.cast(batch, tf.int64)])


def augment_batch(images: tf.Tensor, masks: tf.Tensor, seed: tf.Tensor,
                  fraction: float = 1.0) -> tuple[tf.Tensor, tf.Tensor]:
    """Randomise a batch: ``images`` (B, H, W, 1) in [0, 1], ``masks`` (B, H, W, 1) class indices
    (float); ``seed`` a stateless seed of shape (2,); ``fraction`` the chance that an image is
    randomised (else it is returned as it is). Returns images in [0, 1] and masks with only the
    input's class values."""
    originals = images, masks
    keys = iter(tf.unstack(tf.random.experimental.stateless_split(seed, _DRAWS)))
    count = tf.shape(images)[0]

    def uniform(key, low=0.0, high=1.0, shape=(1, 1, 1)):
        return tf.random.stateless_uniform(tf.concat([[count], shape], 0), key, low, high)

    def chance(probability):
        return uniform(next(keys)) < probability  # (B, 1, 1, 1)

    images = tf.where(chance(CURVE_PROBABILITY), _random_curve(images, next(keys), next(keys)), images)
    images = tf.where(chance(INVERT_PROBABILITY), 1.0 - images, images)
    images = images ** tf.exp(GAMMA_LOG_SD * tf.random.stateless_normal([count, 1, 1, 1], next(keys)))
    transform = _affine(count, tf.shape(images)[1], tf.shape(images)[2], next(keys))
    images = keras.ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")
    masks = keras.ops.image.affine_transform(masks, transform, interpolation="nearest", fill_mode="constant")
    bias = tf.random.stateless_normal([count, BIAS_GRID, BIAS_GRID, 1], next(keys), stddev=BIAS_LOG_SD)
    images = images * tf.exp(tf.image.resize(bias, tf.shape(images)[1:3], method="bicubic"))
    weight = tf.where(chance(BLUR_PROBABILITY), uniform(next(keys)), 0.0)
    images = (1.0 - weight) * images + weight * _gaussian_blur(images, BLUR_SIGMA)
    images = images + uniform(next(keys), 0.0, NOISE_MAX_SD) * tf.random.stateless_normal(tf.shape(images), next(keys))
    images = _rescale(images)
    if fraction < 1:
        randomised = chance(fraction)
        images, masks = (tf.where(randomised, new, old) for new, old in zip((images, masks), originals))
    return images, masks


def _random_curve(images: tf.Tensor, key_points: tf.Tensor, key_order: tf.Tensor) -> tf.Tensor:
    """A piecewise-linear lookup through CURVE_POINTS random levels in [0, 1], sorted (monotonic)
    for half the images."""
    count = tf.shape(images)[0]
    points = tf.random.stateless_uniform([count, CURVE_POINTS], key_points)
    monotonic = tf.random.stateless_uniform([count, 1], key_order) < MONOTONIC_PROBABILITY
    points = tf.where(monotonic, tf.sort(points, axis=1), points)
    flat = tf.reshape(tf.clip_by_value(images, 0.0, 1.0), [count, -1]) * (CURVE_POINTS - 1)
    index = tf.clip_by_value(tf.cast(tf.floor(flat), tf.int32), 0, CURVE_POINTS - 2)
    low, high = tf.gather(points, index, batch_dims=1), tf.gather(points, index + 1, batch_dims=1)
    curved = low + (flat - tf.cast(index, flat.dtype)) * (high - low)
    return tf.reshape(curved, tf.shape(images))


def _affine(count, height, width, key) -> tf.Tensor:
    """Per-image projective transforms (B, 8) mapping output to input pixels: a zoom about the
    centre with an aspect change, a rotation and a shift."""
    keys = tf.unstack(tf.random.experimental.stateless_split(key, 5))
    draw = lambda k, low, high: tf.random.stateless_uniform([count], k, low, high)  # noqa: E731
    zoom = tf.exp(draw(keys[0], math.log(ZOOM_RANGE[0]), math.log(ZOOM_RANGE[1])))
    aspect = tf.sqrt(tf.exp(draw(keys[1], math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1]))))
    angle = draw(keys[2], -ROTATION_DEGREES, ROTATION_DEGREES) * (math.pi / 180)
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    shift_x = draw(keys[3], -SHIFT_FRACTION, SHIFT_FRACTION) * width
    shift_y = draw(keys[4], -SHIFT_FRACTION, SHIFT_FRACTION) * height
    scale_x, scale_y = zoom * aspect, zoom / aspect
    cos, sin = tf.cos(angle), tf.sin(angle)
    # input = M (output - centre - shift) + centre, M = rotation(-angle) @ diag(1/scale_x, 1/scale_y)
    m00, m01, m10, m11 = cos / scale_x, sin / scale_y, -sin / scale_x, cos / scale_y
    cx, cy = (width - 1) / 2, (height - 1) / 2
    ox, oy = cx + shift_x, cy + shift_y
    zero = tf.zeros_like(zoom)
    return tf.stack([m00, m01, cx - m00 * ox - m01 * oy, m10, m11, cy - m10 * ox - m11 * oy, zero, zero], axis=1)


def _gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """A separable Gaussian blur (edges padded by reflection, so borders keep their level)."""
    radius = int(math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = tf.constant(taps / taps.sum(), tf.float32)
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    rows = tf.nn.conv2d(padded, tf.reshape(kernel, [-1, 1, 1, 1]), 1, "VALID")
    return tf.nn.conv2d(rows, tf.reshape(kernel, [1, -1, 1, 1]), 1, "VALID")


def _rescale(images: tf.Tensor) -> tf.Tensor:
    """Min-max to [0, 1] per image, as every input of a model is prepared (a constant image -> 0)."""
    low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value(tf.math.divide_no_nan(images - low, high - low), 0.0, 1.0)


def with_phantom(train: SliceSet, seed: int, fraction: float = PHANTOM_FRACTION,
                 patients: range = PHANTOM_MIX_PATIENTS, *, every_slice: bool = False) -> SliceSet:
    """``train`` with ``fraction`` of its size in phantom T1 and T2 slices appended (half each
    sequence, drawn by ``seed``): central slices of distinct patients, or with ``every_slice``
    slices from any sagittal position of the patients."""
    wanted = round(fraction * len(train))
    added = []
    for k, sequence in enumerate(PHANTOM_SEQUENCES):
        draw = np.random.default_rng([seed, 3, k])
        share = wanted // len(PHANTOM_SEQUENCES) + (k < wanted % len(PHANTOM_SEQUENCES))
        if every_slice:
            slices = phantom_slices(sequence, patients, train.size, every_slice=True)
            rows = draw.choice(len(slices), min(share, len(slices)), replace=False)
            added.append(slices.select(np.sort(rows)))
        else:  # one central slice per patient, in their order: draw the patients, and make only theirs
            rows = np.sort(draw.choice(len(patients), min(share, len(patients)), replace=False))
            added.append(phantom_slices(sequence, [patients[row] for row in rows], train.size))
    return concat(train, *added)
