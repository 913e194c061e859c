"""The SPIDER archive: ``images/<patient>_<seq>.mha`` beside ``masks/<patient>_<seq>.mha``.

The study's protocol takes the central sagittal slice of each series, found from the image's
direction matrix (``spine.data.geometry``): several SPIDER series store the sagittal axis on
another array axis, so it is never assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine.data.geometry import central_sagittal_slice, sagittal_slices
from spine.data.io import VOLUME_SUFFIXES, read_volume, suffix
from spine.errors import DataError

SEQUENCES = ("t1", "t2", "t2_SPACE")
_NAME = re.compile(r"^(?P<patient>[^_]+)_(?P<sequence>t1|t2|t2_SPACE)$", re.IGNORECASE)


@dataclass(frozen=True)
class Series:
    """One image/mask pair of an archive."""

    patient: str
    sequence: str
    image: Path
    mask: Path

    @property
    def case_id(self) -> str:
        return f"{self.patient}_{self.sequence}"


def _stem(path: Path) -> str:
    return path.name[: -len(suffix(path))]


def find_series(root, sequence: str = "t1") -> list[Series]:
    """Every series of ``sequence`` in a SPIDER-layout folder, sorted by patient.

    Raises :class:`DataError` if the folder lacks ``images/`` or ``masks/``, has no series of the
    sequence, or an image has no mask.
    """
    root = Path(root)
    if sequence.lower() not in {s.lower() for s in SEQUENCES}:
        raise DataError(root, f"unknown sequence {sequence!r}; valid: {', '.join(SEQUENCES)}")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise DataError(root, f"not a SPIDER archive: no {sub}/ folder")
    masks = {_stem(p).lower(): p for p in (root / "masks").iterdir() if suffix(p) in VOLUME_SUFFIXES}
    found = []
    for image in sorted((root / "images").iterdir()):
        match = _NAME.match(_stem(image)) if suffix(image) in VOLUME_SUFFIXES else None
        if not match or match["sequence"].lower() != sequence.lower():
            continue
        mask = masks.get(_stem(image).lower())
        if mask is None:
            raise DataError(image, f"no mask for this image in {root / 'masks'}")
        found.append(Series(match["patient"], match["sequence"], image, mask))
    if not found:
        raise DataError(root, f"no {sequence} series in images/ (names like 12_{sequence}.mha)")
    return sorted(found, key=lambda s: _patient_key(s.patient))


def _patient_key(patient: str):
    return (0, int(patient), "") if patient.isdigit() else (1, 0, patient)


def _same_grid(image: sitk.Image, mask: sitk.Image) -> bool:
    return (image.GetSize() == mask.GetSize()
            and np.allclose(image.GetSpacing(), mask.GetSpacing(), rtol=1e-3)
            and np.allclose(image.GetDirection(), mask.GetDirection(), atol=1e-3))


def read_series(series: Series) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Central sagittal slices of a series' image and mask (instance values) and their spacing."""
    images, masks, spacing = read_series_slices(series)
    return np.array(images[len(images) // 2]), np.array(masks[len(masks) // 2]), spacing


def read_series_slices(series: Series) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Every sagittal slice of a series' image and mask (instance values), right to left, and their
    spacing."""
    image = read_volume(series.image)
    mask = read_volume(series.mask)
    if not _same_grid(image, mask):
        raise DataError(series.mask, f"mask grid {mask.GetSize()} / spacing {np.round(mask.GetSpacing(), 3)} "
                                     f"does not match the image's {image.GetSize()} / "
                                     f"{np.round(image.GetSpacing(), 3)}")
    images, spacing = sagittal_slices(image)
    masks, _ = sagittal_slices(mask)
    return images, masks.astype(np.int16), spacing


# --------------------------------------------------------------------------- pixel sizes at the model's grid


def spider_pixel_sizes(folder, size: int = 128, sequence: str = "t1"):
    """The pixel size, in mm, of SPIDER's central sagittal slices once resized to ``size`` x ``size``.

    ``folder``: SPIDER volumes (``<patient>_<sequence>.mha``, images or masks: only the geometry
    is read). Per series: the slice's rows and columns, its spacing, and the size of one pixel of
    the resized slice along the rows and the columns (the study resizes the whole slice, so a
    pixel is ``extent / size`` mm, different per series and, for a non-square field of view, per
    axis). A distance in pixels of the study's 128 x 128 grid is that many of these. Returns a
    ``pandas.DataFrame``.
    """
    import pandas as pd

    rows = []
    for path in sorted(Path(folder).glob(f"*_{sequence}.mha")):
        if path.name[: -len(".mha")].split("_", 1)[1].lower() != sequence.lower():
            continue
        array, (row_mm, col_mm) = central_sagittal_slice(sitk.ReadImage(str(path)))
        rows.append({"series": path.name[: -len(".mha")], "rows": array.shape[0], "columns": array.shape[1],
                     "row spacing (mm)": row_mm, "column spacing (mm)": col_mm,
                     "mm per pixel (rows)": array.shape[0] * row_mm / size,
                     "mm per pixel (columns)": array.shape[1] * col_mm / size})
    return pd.DataFrame(rows)


def pixels_in_mm(distances: dict, sizes):
    """Distances in pixels (``{name: px}``) as millimetres over the pixel sizes of
    :func:`spider_pixel_sizes`: the smallest, median and largest value a pixel could stand for."""
    import pandas as pd

    per_pixel = sizes[["mm per pixel (rows)", "mm per pixel (columns)"]].to_numpy(dtype=float)
    low, mid, high = (per_pixel.min(), np.median(per_pixel), per_pixel.max()) if per_pixel.size else (np.nan,) * 3
    return pd.DataFrame([{"figure": name, "pixels": float(px), "mm (smallest pixel)": float(px) * low,
                          "mm (median pixel)": float(px) * mid, "mm (largest pixel)": float(px) * high}
                         for name, px in distances.items()])
