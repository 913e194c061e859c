"""Orientation of 3D images: the sagittal view that the SPIDER reader, inference and the figures share.

The sagittal axis is the index axis whose direction is closest to the patient's left-right axis
(LPS x) in the image's direction matrix. Slices come out in the radiological sagittal view: rows
superior -> inferior, columns anterior -> posterior, with the pixel spacing (row, column) in
millimetres.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

# The view the rest of the package expects, as a DICOM orientation code for SimpleITK:
# index x toward Left, y toward Posterior, z toward Inferior.
SAGITTAL_VIEW = "LPI"


def sagittal_axis(image: sitk.Image) -> int:
    """The index axis (0, 1, 2 in SimpleITK x, y, z order) that runs left-right in the patient."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    # Column j is the world direction of index axis j; LPS world x is left-right.
    return int(np.argmax(np.abs(direction[0, :])))


def sagittal_view(image: sitk.Image) -> sitk.Image:
    """Reorient so that x is left-right, and each x-slice is superior-up, anterior-left."""
    return sitk.DICOMOrient(image, SAGITTAL_VIEW)


def sagittal_slices(image: sitk.Image) -> tuple[np.ndarray, tuple[float, float]]:
    """Every sagittal slice, right to left, as an array [slice, rows S -> I, columns A -> P], and the
    slices' (row, col) spacing."""
    oriented = sagittal_view(image)
    spacing_x, spacing_y, spacing_z = oriented.GetSpacing()
    return np.moveaxis(sitk.GetArrayFromImage(oriented), 2, 0), (spacing_z, spacing_y)  # [z, y, x] -> [x, z, y]


def central_sagittal_slice(image: sitk.Image) -> tuple[np.ndarray, tuple[float, float]]:
    """The central sagittal slice as a 2D array (rows S -> I, columns A -> P) and its (row, col) spacing."""
    slices, spacing = sagittal_slices(image)
    return np.array(slices[len(slices) // 2]), spacing
