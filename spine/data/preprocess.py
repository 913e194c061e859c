"""The study's preprocessing, step by step.

1. Rescale the slice to [0, 255] (min-max) and store it as 8-bit.
2. Resize to ``size`` x ``size`` (128 in the study): bilinear for images, nearest neighbour for
   label maps, so that no label value is ever invented.
3. Image intensities to [0, 1] (divide by 255).
4. Targets one-hot over the task's classes.
5. The auxiliary (bottleneck) target: the one-hot mask averaged over ``size/8 x size/8`` blocks
   (16 x 16 at 128), i.e. the fraction of each class in each cell of the 8 x 8 bottleneck grid.
   The study says only "downsampled to 8 x 8"; area averaging is the downsampling that keeps
   every pixel's vote, where nearest neighbour would keep one pixel in 256.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from spine.errors import DataError

STUDY_SIZE = 128
BOTTLENECK_FACTOR = 16  # four 2x2 poolings


def check_finite(image: np.ndarray, source="image") -> None:
    """:class:`DataError` if any value is NaN or infinite (such an image has no intensity scale)."""
    bad = np.size(image) - np.count_nonzero(np.isfinite(image))
    if bad:
        raise DataError(source, f"image contains NaN or infinite values ({bad} of {np.size(image)})")


def to_uint8(image: np.ndarray, source="image") -> np.ndarray:
    """Min-max rescale to [0, 255] as uint8; NaN/inf or constant images raise :class:`DataError`."""
    image = np.asarray(image, dtype=np.float64)
    check_finite(image, source)
    low, high = image.min(), image.max()
    if high <= low:
        raise DataError(source, f"image is constant (every pixel {low:g}); nothing to segment")
    return np.round((image - low) * (255.0 / (high - low))).astype(np.uint8)


def resize_image(image: np.ndarray, size: int = STUDY_SIZE) -> np.ndarray:
    """Bilinear resize of a uint8 image to ``size`` x ``size``."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def resize_labels(labels: np.ndarray, size: int = STUDY_SIZE) -> np.ndarray:
    """Nearest-neighbour resize of an integer label map to ``size`` x ``size`` (values preserved)."""
    labels = np.asarray(labels)
    resized = Image.fromarray(labels.astype(np.int32)).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(resized).astype(labels.dtype)


def prepare_image(image: np.ndarray, size: int = STUDY_SIZE, source="image") -> np.ndarray:
    """Steps 1-3: a raw 2D slice -> float32 ``(size, size)`` in [0, 1]."""
    return resize_image(to_uint8(image, source), size).astype(np.float32) / 255.0


def check_pair(image: np.ndarray, mask: np.ndarray, source) -> None:
    """An image and its mask must share one grid."""
    if np.shape(image) != np.shape(mask):
        raise DataError(source, f"mask shape {np.shape(mask)} does not match image shape {np.shape(image)}")


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer label maps ``(..., H, W)`` -> float32 one-hot ``(..., H, W, C)``."""
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]


def aux_target(labels: np.ndarray, num_classes: int, factor: int = BOTTLENECK_FACTOR) -> np.ndarray:
    """Class fractions in each ``factor`` x ``factor`` block: ``(N, H, W)`` -> ``(N, H/f, W/f, C)``."""
    hot = one_hot(labels, num_classes)
    n, height, width, classes = hot.shape
    if height % factor or width % factor:
        raise ValueError(f"size {height}x{width} is not a multiple of the bottleneck factor {factor}")
    blocks = hot.reshape(n, height // factor, factor, width // factor, factor, classes)
    return blocks.mean(axis=(2, 4))
