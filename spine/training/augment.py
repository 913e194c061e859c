"""The study's augmentation: rotation, width/height shift, zoom, horizontal flip, nearest fill.

Keras' augmentation layers transform an image and its segmentation mask with one random draw
(the mask with nearest-neighbour interpolation, so labels stay labels). The ranges are the
usual Keras ``ImageDataGenerator`` settings of U-Net tutorials; the study names the kinds of
transform but not their ranges.
"""

from __future__ import annotations

import keras

ROTATION_DEGREES = 10
SHIFT_FRACTION = 0.1
ZOOM_FRACTION = 0.1


def augmenter(seed: int) -> keras.Sequential:
    """A pipeline called as ``augmenter(seed)({"images": x, "segmentation_masks": m}, training=True)``."""
    return keras.Sequential([
        keras.layers.RandomRotation(ROTATION_DEGREES / 360, fill_mode="nearest", seed=seed),
        keras.layers.RandomTranslation(SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomZoom(ZOOM_FRACTION, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomFlip("horizontal", seed=seed + 3),
    ], name="augment")
