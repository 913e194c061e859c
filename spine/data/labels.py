"""Label maps: SPIDER's instance values to the study's classes.

SPIDER masks hold instance numbers: 1-25 vertebrae, 101-125 partly visible vertebrae, 100 the
spinal canal, 201-225 intervertebral discs (disc 200 + k lies just below vertebra k), 0
background. The study uses two class maps of them:

- ``binary``: 0 background, 1 foreground (every vertebra, disc and the canal);
- ``multiclass``: 0 background, 1 vertebra, 2 disc, 3 canal.

The instance numbers stay available (``instances`` in a prepared dataset) for work that
segments each vertebra and disc.
"""

from __future__ import annotations

import numpy as np

from spine.errors import ConfigError, DataError

BACKGROUND, VERTEBRA, DISC, CANAL = 0, 1, 2, 3
# A pixel whose class is not known (partial labels, :mod:`spine.data.bodies`): it stays this value in
# every task's class map, becomes an all-zero one-hot target, and the losses ignore it.
UNKNOWN = 255
CLASS_NAMES = {"binary": ("background", "foreground"),
               "multiclass": ("background", "vertebra", "disc", "canal")}
TASKS = tuple(CLASS_NAMES)
# Grey values of the published T2-SPACE slice masks (istiak769/Lumbar-Spine-MRI-Segementation).
SLICE_VALUE_TABLE = {0: BACKGROUND, 76: VERTEBRA, 29: DISC, 150: CANAL}


def num_classes(task: str) -> int:
    return len(CLASS_NAMES[check_task(task)])


def foreground_classes(task: str) -> tuple[str, ...]:
    """The classes of ``task`` without the background (``metrics.class_names`` names them all)."""
    return CLASS_NAMES[check_task(task)][1:]


def check_task(task: str) -> str:
    if task not in CLASS_NAMES:
        raise ConfigError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    return task


def spider_structures(values: np.ndarray) -> np.ndarray:
    """SPIDER instance values -> structure codes (0 background, 1 vertebra, 2 disc, 3 canal, -1 unknown)."""
    values = np.asarray(values)
    out = np.full(values.shape, -1, dtype=np.int8)
    out[values == 0] = BACKGROUND
    out[((values >= 1) & (values <= 25)) | ((values >= 101) & (values <= 125))] = VERTEBRA
    out[(values >= 201) & (values <= 225)] = DISC
    out[values == 100] = CANAL
    return out


def spider_to_classes(mask: np.ndarray, task: str, source="mask") -> np.ndarray:
    """Map a SPIDER instance mask to the task's class indices (uint8).

    Raises :class:`DataError` naming ``source`` if the mask holds values SPIDER does not define.
    """
    structures = spider_structures(mask)
    unknown = structures < 0
    if unknown.any():
        bad = np.unique(np.asarray(mask)[unknown])
        raise DataError(source, f"unknown SPIDER label values {bad[:10].tolist()} "
                                "(expected 0, 1-25, 100, 101-125, 201-225)")
    return structures_to_classes(structures, task)


def structures_to_classes(structures: np.ndarray, task: str) -> np.ndarray:
    """Structure codes (0-3) -> class indices of ``task``: identity for multiclass, > 0 for binary;
    :data:`UNKNOWN` stays unknown."""
    structures = np.asarray(structures, dtype=np.uint8)
    if check_task(task) == "multiclass":
        return structures
    return np.where(structures == UNKNOWN, UNKNOWN, structures > 0).astype(np.uint8)


def table_to_structures(mask: np.ndarray, table: dict[int, int], source="mask") -> np.ndarray:
    """Map grey values through a value -> structure table; unknown values raise :class:`DataError`."""
    mask = np.asarray(mask)
    out = np.full(mask.shape, -1, dtype=np.int8)
    for value, structure in table.items():
        out[mask == value] = structure
    if (out < 0).any():
        bad = np.unique(mask[out < 0])
        raise DataError(source, f"unknown mask values {bad[:10].tolist()} (expected {sorted(table)})")
    return out.astype(np.uint8)


def label_values_to_classes(mask: np.ndarray, task: str, source="mask") -> np.ndarray:
    """Class indices from a mask in any encoding this package meets.

    Understood: class indices already (0/1, or 0-3 for multiclass), 0/255 binary masks, the
    slice folders' grey values (0/76/29/150) and SPIDER instance values.
    """
    mask = np.asarray(mask)
    values = set(np.unique(mask).tolist())
    if values <= {0, 1} or (task == "multiclass" and values <= {0, 1, 2, 3}):
        return mask.astype(np.uint8) if task == "multiclass" else (mask > 0).astype(np.uint8)
    if values <= {0, 255}:
        return (mask > 0).astype(np.uint8) if task == "binary" else _binary_for_multiclass(source)
    if values <= set(SLICE_VALUE_TABLE):
        return structures_to_classes(table_to_structures(mask, SLICE_VALUE_TABLE, source), task)
    return spider_to_classes(mask, task, source)


def _binary_for_multiclass(source):
    raise DataError(source, "a 0/255 binary mask cannot be compared as a 4-class map; use --task binary")
