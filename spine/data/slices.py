"""Folders of 2D slice pairs: ``images/<name>.png`` beside ``masks/<name>.png``.

The masks hold grey values that a value -> structure table maps to the 4 structures (the
published T2-SPACE slices use 0 background, 76 vertebra, 29 disc, 150 canal). File names
``<patient>_<sequence>_slice<k>.png`` give the patient (for splitting) and the slice index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from spine.data.io import SLICE_SUFFIXES, suffix
from spine.errors import DataError

_NAME = re.compile(r"^(?P<patient>[^_]+)_(?P<series>.*?)(?:_slice(?P<index>\d+))?$")


@dataclass(frozen=True)
class SlicePair:
    patient: str
    series: str
    index: int
    image: Path
    mask: Path

    @property
    def case_id(self) -> str:
        return self.image.stem


def find_pairs(root) -> list[SlicePair]:
    """Every image of ``root/images`` with its mask; a missing mask raises :class:`DataError`."""
    root = Path(root)
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise DataError(root, f"not a slice folder: no {sub}/ folder")
    pairs = []
    for image in sorted((root / "images").iterdir()):
        if suffix(image) not in SLICE_SUFFIXES:
            continue
        mask = root / "masks" / image.name
        if not mask.is_file():
            raise DataError(image, f"no mask of the same name in {root / 'masks'}")
        match = _NAME.match(image.stem)
        index = int(match["index"]) if match and match["index"] else -1
        patient = match["patient"] if match else image.stem
        pairs.append(SlicePair(patient, match["series"] if match else "", index, image, mask))
    if not pairs:
        raise DataError(root / "images", f"no image files ({', '.join(SLICE_SUFFIXES)})")
    return pairs
