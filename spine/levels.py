"""Per-level labels: a 4-class map to SPIDER's instance numbers, and a table of each level.

The input is a class map (0 background, 1 vertebra, 2 disc, 3 canal; :mod:`spine.data.labels`) of
a sagittal slice **read with the head at the top** (rows superior -> inferior): a 2D file upside
down cannot be detected and gets its numbers reversed. The output follows SPIDER: vertebrae 1, 2,
... from the lowest one up, the disc directly below vertebra k 200 + k, the canal 100, background 0.

How a slice is labelled

- Spine axis: the principal axis of the vertebra and disc pixels (in mm), pointing to the head.
  A part's extent and centre along the spine are its pixels' projections on that axis.
- Order: structures sorted by centre along the axis, then a disc and a neighbouring vertebra swap
  if their centroids lie the other way round across the disc's plane (the minor principal axis of
  its pixels): at a steep lumbosacral angle the axis alone can put L5 above the L4-L5 disc.
- Cuts: each disc's plane (through its centroid, along its major axis) cuts the vertebra pixels on
  it, up to half the median disc width beyond the disc's ends: a model that marks a disc's rim as
  bone joins the vertebrae above and below there. The cut pixels take the number of the nearest
  numbered vertebra at the end.
- Parts are the 8-connected components of the vertebra and of the disc class. A vertebra part
  that the canal separates from the discs (the straight line from its centroid to the nearest
  disc's centroid crosses the canal), or whose centroid lies beyond that disc's end along its
  plane by more than three quarters of the median disc width (a canal found only in pieces), is a posterior
  element (spinous process, lamina): a body lies in line with its discs. A part smaller than
  ``fragment_fraction`` (:class:`Rules`) of the class's typical part (the area-weighted median part)
  is a fragment, unless it touches the image border above or below all other parts (a level cut by the field of view). The other
  parts are main parts; main parts of a class whose extents along the spine overlap by more than
  half of the shorter one are one structure (a body split in two); so are two neighbours of a class
  with nothing of the other class between them that together span at most ``run_merge`` median extents,
  and two such discs of which the second lies within half a median extent of the first's plane
  (a tilted L5-S1 disc found in two pieces).
- A posterior element joins the vertebra whose centre along the spine is nearest to its own centre
  raised by ``posterior_shift`` median extents (spinous processes slope down from their body), if within
  one median extent; a fragment joins the structure of its class nearest in the image, if within
  a quarter of a median extent. Parts that join nothing are dropped (0).
- Numbering: structures walked from the lowest up; a vertebra takes the next number, a disc
  200 + the number of the vertebra just above it. Two discs in a row mean a missed vertebra: the
  count skips a number there, so the levels above keep theirs.

Level names (``level`` column; empty when uncertain). SPIDER, and so the shipped models, do not
label the sacrum: the lowest labelled disc of a lumbar scan is L5-S1. So names are given only
when the lowest structure is a disc with at least one median vertebra height of image below it
(measured along the local axis from the disc's edge; room for the unlabelled sacrum, so the
field of view is not cut above it); that disc is L5-S1, vertebra 1 is L5, then L4 ... L1, T12 ... upwards
(five lumbar vertebrae assumed: a transitional vertebra shifts every name by one). A disc is named
by its two neighbours, e.g. L4-L5. S1 itself never gets a row: no class holds the sacrum. (TotalSpineSeg's
first model marks landmark discs, C2-C3, C7-T1, T12-L1 and L5-S, as classes of their own and
numbers the others from them; SPINEPS segments the sacrum as a class. A 4-class map has neither,
so the lumbosacral disc is found by position.) The thresholds (:data:`RULES`) were chosen on the central
slices of the real SPIDER masks of half of the patients and are reported on the other half, which
``tests/test_levels.py`` checks against (:mod:`spine.level_thresholds`; the README states both halves' figures).

Measurements (``unit`` says mm, mm^2 where the pixel spacing is known, else px):
``area`` the pixel count times the pixel area; ``height`` (vertebrae and discs) the median length,
along the local spine axis, of the structure cut by lines parallel to that axis across the middle
half of its width; for a vertebra only its main parts count (the body, not the posterior elements)
and the local axis runs from the centroid of its lower neighbour to that of its upper one; for a
disc the local axis is the normal of its plane (the minor principal axis of its pixels).
``canal_ap_diameter`` (disc rows) the length of canal cut by the line through the disc's centroid
along its plane: the canal's antero-posterior diameter at that disc (empty if the line misses it).
``centroid_row``, ``centroid_col`` in pixels (volumes: ``centroid_x/y/z``, LPS mm).

Volumes (given in the sagittal view, :func:`spine.data.geometry.sagittal_view`): of the sagittal
slices within 10 mm of the spine's centre (the mean left-right position of its vertebra, disc and
canal pixels), the one with the most canal (else the most vertebra and disc) is labelled as above; every other slice, from
the reference outwards, takes for each vertebra or disc pixel the label of the nearest pixel of the
same class in its already labelled neighbour, within 5 mm (else 0). So a level keeps one number
across slices. The table measures the reference slice.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from spine.data.labels import CANAL, DISC, VERTEBRA

CANAL_LABEL, DISC_OFFSET = 100, 200
PROPAGATION_MM = 5.0
BESIDE_DISC = 0.75  # of the median disc width: a vertebra part centred further beyond its disc's end is not a body
# (0.5-1.0 alike on the choosing half of the SPIDER masks and the fold-0 validation exams; 0.25 broke a mask)
CUT_REACH = 0.5  # of the median disc width, beyond a disc's ends, that its plane cuts through vertebra
REFERENCE_WINDOW_MM = 10.0  # the reference slice lies this close to the spine's centre
COLUMNS = ["label", "structure", "level", "area", "height", "canal_ap_diameter"]
SLICE_COLUMNS = COLUMNS + ["centroid_row", "centroid_col", "unit"]
VOLUME_COLUMNS = COLUMNS + ["centroid_x", "centroid_y", "centroid_z", "unit"]
_NAMES = ["L5", "L4", "L3", "L2", "L1"] + [f"T{i}" for i in range(12, 0, -1)]
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Rules:
    """The thresholds of the labelling rules (the module's docstring says what each does)."""

    fragment_fraction: float = 0.04  # of the class's typical part
    run_merge: float = 1.25  # median extents of a class
    posterior_shift: float = 0.1  # median vertebra extents: spinous processes slope down from their own body


RULES = Rules()  # chosen on half of the real SPIDER masks: spine.level_thresholds
# The labelling's version, stored with every level-order check (1: before the disc cuts and the
# beside-the-discs test, eb422ba): checks under an older version are said to be so.
RULES_VERSION = 2


@dataclass(eq=False)
class _Part:
    pixels: np.ndarray  # (n, 2) row, col indices
    along: np.ndarray  # positions along the axis (mm)
    posterior: bool = False

    @property
    def centre(self) -> float:
        return float(self.along.mean())

    @property
    def extent(self) -> tuple[float, float]:
        return float(self.along.min()), float(self.along.max())


@dataclass(eq=False)
class _Structure:
    kind: int  # VERTEBRA or DISC
    main: list
    extra: list
    label: int = 0

    @property
    def centre(self) -> float:
        return float(np.concatenate([p.along for p in self.main]).mean())

    @property
    def extent(self) -> tuple[float, float]:
        ranges = np.array([p.extent for p in self.main])
        return float(ranges[:, 0].min()), float(ranges[:, 1].max())


def label_slice(classes: np.ndarray, spacing=None, rules: Rules = RULES) -> np.ndarray:
    """The SPIDER instance map (uint8) of a 2D class map; ``spacing`` (row, col) mm or None (1)."""
    return _label(classes, spacing, rules)[0]


def slice_levels(classes: np.ndarray, spacing=None, source="slice", rules: Rules = RULES) -> tuple[np.ndarray, pd.DataFrame]:
    """Instance map and per-level table of a 2D class map (head at the top). An empty map and an
    empty table (with its header) and a warning naming ``source`` if there is no spine in it."""
    instances, structures, step, axis = _label(classes, spacing, rules)
    if not structures:
        warnings.warn(f"{source}: no vertebra or disc found; the level map and table are empty", stacklevel=2)
    table = _table(instances, classes, structures, step, axis)
    table["unit"] = "px" if spacing is None else "mm"
    return instances, table[SLICE_COLUMNS]


def volume_levels(classes: sitk.Image, source="volume") -> tuple[np.ndarray, pd.DataFrame]:
    """Instance array ``[z, y, x]`` and per-level table of a class volume in the sagittal view
    (x left-right, each x-slice head up): the reference slice labelled, the others propagated."""
    array = sitk.GetArrayFromImage(classes)
    spacing_x, spacing_y, spacing_z = classes.GetSpacing()
    step = (spacing_z, spacing_y)
    reference = _reference_slice(array, spacing_x)
    instances = np.zeros(array.shape, dtype=np.uint8)
    reference_labels, structures, step, axis = _label(array[:, :, reference], step, RULES)
    instances[:, :, reference] = reference_labels
    for order in (range(reference + 1, array.shape[2]), range(reference - 1, -1, -1)):
        previous = reference
        for x in order:
            instances[:, :, x] = _propagate(array[:, :, x], instances[:, :, previous], step)
            previous = x
    if not structures:
        warnings.warn(f"{source}: no vertebra or disc found; the level map and table are empty", stacklevel=2)
    table = _table(reference_labels, array[:, :, reference], structures, step, axis)
    points = [classes.TransformContinuousIndexToPhysicalPoint((float(reference), float(col), float(row)))
              for row, col in zip(table["centroid_row"], table["centroid_col"])]
    table[["centroid_x", "centroid_y", "centroid_z"]] = np.array(points).reshape(-1, 3)
    table["unit"] = "mm"
    return instances, table[VOLUME_COLUMNS]


# --------------------------------------------------------------------------- labelling one slice


def _label(classes, spacing, rules: Rules):
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"expected a 2D class map, found shape {classes.shape}")
    step = np.asarray(spacing if spacing is not None else (1.0, 1.0), dtype=float)
    instances = np.where(classes == CANAL, CANAL_LABEL, 0).astype(np.uint8)
    spine = np.argwhere(np.isin(classes, (VERTEBRA, DISC)))
    if len(spine) < 2:
        return instances, [], step, None
    axis = _spine_axis(spine * step)
    planes = _disc_planes(classes, step)  # the cuts leave the discs as they are
    cut = _disc_lines(classes, step, planes)
    split = np.where(cut, 0, classes)
    structures = (_structures(split, VERTEBRA, step, axis, rules, planes)
                  + _structures(split, DISC, step, axis, rules, planes))
    structures = _merge_runs(_settle(sorted(structures, key=lambda s: s.centre), step), step, rules.run_merge)
    for structure, label in zip(structures, _numbers(structures)):
        for part in structure.main + structure.extra:
            instances[tuple(part.pixels.T)] = label
        structure.label = label
    return _fill_cut(instances, cut, step), structures, step, axis


def _disc_lines(classes, step, planes) -> np.ndarray:
    """The vertebra pixels on each disc's plane (through its centroid, along its major axis) within
    :data:`CUT_REACH` of the median disc width beyond either end: where a model marks a disc's rim as bone
    (the disc found narrower than it is), the vertebrae above and below touch there and would be one
    part; cut along the disc, they are two."""
    vertebra = np.argwhere(classes == VERTEBRA)
    cut = np.zeros(classes.shape, dtype=bool)
    if not planes or not len(vertebra):
        return cut
    reach = CUT_REACH * np.median([plane.width for plane in planes])
    for plane in planes:
        offset, position = plane.coordinates(vertebra * step)
        on_line = (np.abs(offset) <= step.max()) & (position >= plane.low - reach) & (position <= plane.high + reach)
        cut[tuple(vertebra[on_line].T)] = True
    return cut


@dataclass(frozen=True)
class _DiscPlane:
    """A disc's centroid, plane (its pixels' major axis) and extent along it (mm)."""

    centre: np.ndarray
    normal: np.ndarray  # across the disc, toward the head
    low: float
    high: float

    @classmethod
    def of(cls, disc_mm: np.ndarray) -> "_DiscPlane":
        centre, normal = disc_mm.mean(axis=0), _spine_axis(disc_mm, minor=True)
        position = (disc_mm - centre) @ np.array([-normal[1], normal[0]])
        return cls(centre, normal, float(position.min()), float(position.max()))

    @property
    def width(self) -> float:
        return self.high - self.low

    def coordinates(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's offset across the plane and its position along it."""
        relative = points_mm - self.centre
        return relative @ self.normal, relative @ np.array([-self.normal[1], self.normal[0]])


def _disc_planes(classes, step) -> list[_DiscPlane]:
    """The plane of each disc part of at least 3 pixels."""
    discs, _ = ndimage.label(classes == DISC, structure=_EIGHT)
    return [_DiscPlane.of(np.stack(pixels, axis=1) * step)
            for pixels in ndimage.value_indices(discs, ignore_value=0).values() if len(pixels[0]) >= 3]


def _fill_cut(instances: np.ndarray, cut: np.ndarray, step) -> np.ndarray:
    """The cut pixels (vertebra in the class map) take the number of the nearest numbered vertebra."""
    numbered = (instances > 0) & (instances < CANAL_LABEL)
    if not cut.any() or not numbered.any():
        return instances
    _, (rows, cols) = ndimage.distance_transform_edt(~numbered, sampling=step, return_indices=True)
    filled = instances.copy()
    filled[cut] = instances[rows[cut], cols[cut]]
    return filled


def _spine_axis(points_mm: np.ndarray, minor: bool = False) -> np.ndarray:
    """The principal (or the minor) direction of the points, (d_row, d_col), pointing to the head."""
    centred = points_mm - points_mm.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axis = vectors[:, 0 if minor else -1]
    return -axis if axis[0] > 0 else axis


def _parts(classes, kind, step, axis) -> list[_Part]:
    components, count = ndimage.label(classes == kind, structure=_EIGHT)
    parts = []
    for pixels in ndimage.value_indices(components, ignore_value=0).values():
        pixels = np.stack(pixels, axis=1)
        parts.append(_Part(pixels, (pixels * step) @ axis))
    return parts


def _structures(classes, kind, step, axis, rules: Rules, planes) -> list[_Structure]:
    parts = _parts(classes, kind, step, axis)
    if kind == VERTEBRA:
        _mark_posterior(parts, classes, step, planes)
    floor = rules.fragment_fraction * _typical_size(parts)
    main = [p for p in parts if not p.posterior and len(p.pixels) >= floor]
    if main:  # a level cut by the field of view: a small part on the border above or below the others
        low, high = min(p.centre for p in main), max(p.centre for p in main)
        main += [p for p in parts if not p.posterior and p not in main and _on_border(p, classes.shape)
                 and not low <= p.centre <= high]
    structures = []
    for part in sorted(main, key=lambda p: -len(p.pixels)):
        same = next((s for s in structures if _overlap(part.extent, s.extent) > 0.5), None)
        if same is None:
            structures.append(_Structure(kind, [part], []))
        else:
            same.main.append(part)
    if structures:
        _attach([p for p in parts if p not in main], structures, classes.shape, step, rules.posterior_shift)
    return structures


def _typical_size(parts) -> float:
    """The area-weighted median part size: half of the class's pixels lie in parts at least this big,
    so many specks of noise do not lower it."""
    sizes = np.sort([len(p.pixels) for p in parts])[::-1]
    return float(sizes[np.searchsorted(np.cumsum(sizes), sizes.sum() / 2)]) if len(sizes) else 0.0


def _attach(extra, structures, shape, step, posterior_shift: float) -> None:
    """Posterior elements join the structure nearest along the spine (compared ``posterior_shift``
    median extents higher: spinous processes slope down) within one median extent; fragments the
    structure nearest in the image, within a quarter of one."""
    reach = np.median([_length(s) for s in structures])
    owner = np.zeros(shape, dtype=np.int32)
    for i, structure in enumerate(structures, start=1):
        owner[tuple(np.concatenate([p.pixels for p in structure.main]).T)] = i
    distance, nearest_index = ndimage.distance_transform_edt(owner == 0, sampling=step, return_indices=True)
    for part in extra:
        if part.posterior:
            centre = part.centre + posterior_shift * reach
            nearest = min(structures, key=lambda s: abs(s.centre - centre))
            if abs(nearest.centre - centre) <= reach:
                nearest.extra.append(part)
            continue
        where = tuple(part.pixels.T)
        closest = int(np.argmin(distance[where]))
        if distance[where][closest] <= reach / 4:
            row, col = nearest_index[0][where][closest], nearest_index[1][where][closest]
            structures[owner[row, col] - 1].extra.append(part)


def _on_border(part: _Part, shape) -> bool:
    rows, cols = part.pixels.T
    return rows.min() == 0 or cols.min() == 0 or rows.max() == shape[0] - 1 or cols.max() == shape[1] - 1


def _overlap(a, b) -> float:
    """Length of the overlap of two ranges over the shorter range's length."""
    shorter = min(a[1] - a[0], b[1] - b[0])
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) / shorter if shorter > 0 else float(a[0] <= b[1] and b[0] <= a[1])


def _mark_posterior(parts, classes, step, planes) -> None:
    """Mark the vertebra parts that are not bodies: the straight line from the part's centroid to the
    nearest disc's centroid crosses the canal, or the centroid lies beside that disc, more than
    :data:`BESIDE_DISC` of the median disc width beyond either end of it along its plane (posterior
    elements where the canal is found only in pieces; a body lies in line with its discs)."""
    canal = classes == CANAL
    if not planes:
        return
    centres = np.array([plane.centre for plane in planes])
    margin = BESIDE_DISC * np.median([plane.width for plane in planes])
    for part in parts:
        centre = part.pixels.mean(axis=0) * step
        plane = planes[int(np.argmin(np.linalg.norm(centres - centre, axis=1)))]
        samples = np.linspace(0.0, 1.0, int(np.linalg.norm(plane.centre - centre) / step.min() * 2) + 2)
        line = np.rint((centre + samples[:, None] * (plane.centre - centre)) / step).astype(int)
        _, position = plane.coordinates(centre[None])
        beside = position[0] > plane.high + margin or position[0] < plane.low - margin
        part.posterior = bool(canal[tuple(line.T)].any()) or bool(beside)


def _settle(structures, step) -> list[_Structure]:
    """Swap neighbouring discs and vertebrae that lie the other way round across the disc's plane
    (its pixels' minor principal axis): at a steep lumbosacral angle the axis alone can put L5's
    centre above the L4-L5 disc's."""
    structures = list(structures)
    for _ in range(len(structures)):
        swapped = False
        for i in range(len(structures) - 1):
            lower, upper = structures[i], structures[i + 1]
            if (lower.kind == DISC) != (upper.kind == DISC):
                disc = lower if lower.kind == DISC else upper
                if (_centroid(upper, step) - _centroid(lower, step)) @ _plane_normal(disc, step) < 0:
                    structures[i], structures[i + 1] = upper, lower
                    swapped = True
        if not swapped:
            break
    return structures


def _plane_normal(disc, step) -> np.ndarray:
    """The direction across a disc's plate (its pixels' minor principal axis), toward the head."""
    return _spine_axis(np.concatenate([p.pixels for p in disc.main]) * step, minor=True)


def _merge_runs(structures, step, run_merge: float) -> list[_Structure]:
    """Merge two neighbours of one class (no structure of the other between them) that are one
    body or disc broken in two: together they span no more than ``run_merge`` median extents of
    their class, or (discs) the second lies in the first's plate, less than half a median extent
    from its plane."""
    typical = {kind: np.median([_length(s) for s in structures if s.kind == kind]) for kind in (VERTEBRA, DISC)
               if any(s.kind == kind for s in structures)}
    merged = []
    for structure in structures:
        previous = merged[-1] if merged else None
        if previous is not None and previous.kind == structure.kind and (
                _length(previous, structure) <= run_merge * typical[structure.kind]
                or structure.kind == DISC and _off_plane(previous, structure, step) < typical[DISC] / 2):
            previous.main += structure.main
            previous.extra += structure.extra
        else:
            merged.append(structure)
    return merged


def _off_plane(disc, other, step) -> float:
    """How far (mm) the centroid of ``other`` lies from the plane of ``disc``."""
    return abs(float((_centroid(other, step) - _centroid(disc, step)) @ _plane_normal(disc, step)))


def _length(*structures) -> float:
    """The extent along the axis that the structures span together."""
    ranges = np.array([s.extent for s in structures])
    return float(ranges[:, 1].max() - ranges[:, 0].min())


def _numbers(structures) -> list[int]:
    numbers, count, last = [], 0, None
    for structure in structures:
        if structure.kind == VERTEBRA:
            count += 1
            numbers.append(count)
        else:
            if last == DISC:
                count += 1  # a vertebra between two discs was missed
            numbers.append(DISC_OFFSET + count + 1)
        last = structure.kind
    return numbers


# --------------------------------------------------------------------------- volumes


def _reference_slice(array: np.ndarray, spacing_x: float) -> int:
    """The slice with the most canal (else the most vertebra and disc) within
    :data:`REFERENCE_WINDOW_MM` of the spine's centre, the mean left-right position of its pixels:
    a canal drawn on a lateral slice (muscle, skin) must not make that slice the reference."""
    spine = np.isin(array, (VERTEBRA, DISC, CANAL)).sum(axis=(0, 1))
    if not spine.any():
        return array.shape[2] // 2
    position = np.arange(array.shape[2])
    near = np.abs(position - np.average(position, weights=spine)) * spacing_x <= REFERENCE_WINDOW_MM
    canal = (array == CANAL).sum(axis=(0, 1))
    return int(np.argmax(np.where(near, canal if canal[near].any() else spine, -1)))


def _propagate(classes: np.ndarray, labelled: np.ndarray, step) -> np.ndarray:
    """Labels for one slice from its labelled neighbour: the nearest same-class label within reach."""
    out = np.where(classes == CANAL, CANAL_LABEL, 0).astype(np.uint8)
    for kind, low, high in ((VERTEBRA, 1, CANAL_LABEL - 1), (DISC, DISC_OFFSET + 1, 255)):
        source = (labelled >= low) & (labelled <= high)
        target = classes == kind
        if not source.any() or not target.any():
            continue
        distance, (rows, cols) = ndimage.distance_transform_edt(~source, sampling=step, return_indices=True)
        take = target & (distance <= PROPAGATION_MM)
        out[take] = labelled[rows[take], cols[take]]
    return out


# --------------------------------------------------------------------------- the table


def _table(instances, classes, structures, step, axis) -> pd.DataFrame:
    names = _level_names(structures, classes, step, axis)
    rows = []
    for i, structure in enumerate(structures):
        local = _plane_normal(structure, step) if structure.kind == DISC else _local_axis(structures, i, axis, step)
        main = np.concatenate([p.pixels for p in structure.main])
        every = np.argwhere(instances == structure.label)
        rows.append({
            "label": structure.label,
            "structure": "vertebra" if structure.kind == VERTEBRA else "disc",
            "level": names.get(structure.label, ""),
            "area": len(every) * float(np.prod(step)),
            "height": _height(main, local, step),
            "canal_ap_diameter": (_canal_diameter(classes, every.mean(axis=0) * step, local, step)
                                  if structure.kind == DISC else np.nan),
            "centroid_row": every[:, 0].mean(), "centroid_col": every[:, 1].mean(),
        })
    canal = np.argwhere(instances == CANAL_LABEL)
    if len(canal):
        rows.append({"label": CANAL_LABEL, "structure": "canal", "level": "", "area": len(canal) * float(np.prod(step)),
                     "height": np.nan, "canal_ap_diameter": np.nan,
                     "centroid_row": canal[:, 0].mean(), "centroid_col": canal[:, 1].mean()})
    return pd.DataFrame(rows, columns=COLUMNS + ["centroid_row", "centroid_col"])


def _canal_diameter(classes, point_mm, normal, step) -> float:
    """The canal's length on the line through ``point_mm`` across ``normal``; NaN if it misses the canal."""
    length = _chord(classes == CANAL, point_mm, np.array([-normal[1], normal[0]]), step)
    return length if length > 0 else np.nan


def _level_names(structures, classes, step, axis) -> dict[int, str]:
    if not structures or structures[0].kind != DISC:
        return {}
    vertebrae = [s for s in structures if s.kind == VERTEBRA]
    if not vertebrae:
        return {}
    lowest_disc = structures[0]
    room = _to_border(_centroid(lowest_disc, step), -_local_axis(structures, 0, axis, step), classes.shape, step)
    if room - _length(lowest_disc) / 2 < np.median([_length(s) for s in vertebrae]):
        return {}
    vertebra_names = {k: _NAMES[k - 1] for k in range(1, len(_NAMES) + 1)}
    names = {}
    for structure in structures:
        if structure.kind == VERTEBRA:
            names[structure.label] = vertebra_names.get(structure.label, "")
        else:
            k = structure.label - DISC_OFFSET
            upper, lower = vertebra_names.get(k), vertebra_names.get(k - 1, "S1" if k == 1 else None)
            names[structure.label] = f"{upper}-{lower}" if upper and lower else ""
    return names


def _to_border(point_mm, direction, shape, step) -> float:
    """Distance (mm) from a point inside the image to its border along ``direction``."""
    size = np.asarray(shape) * step
    with np.errstate(divide="ignore"):
        exits = np.where(direction > 0, (size - point_mm) / direction, np.where(direction < 0, -point_mm / direction, np.inf))
    return float(exits.min())


def _local_axis(structures, i, axis, step) -> np.ndarray:
    """The spine direction at structure i: from its lower neighbour's centroid to its upper one's."""
    lower, upper = structures[max(i - 1, 0)], structures[min(i + 1, len(structures) - 1)]
    if lower is upper:
        return axis
    vector = _centroid(upper, step) - _centroid(lower, step)
    return vector / np.linalg.norm(vector)


def _centroid(structure, step) -> np.ndarray:
    return np.concatenate([p.pixels for p in structure.main]).mean(axis=0) * step


def _height(pixels, axis, step) -> float:
    """Median length along ``axis`` of the structure, over lines across the middle half of its width."""
    pixels = pixels - pixels.min(axis=0)
    mask = np.zeros(pixels.max(axis=0) + 1, dtype=bool)
    mask[tuple(pixels.T)] = True
    across = np.array([-axis[1], axis[0]])
    points = pixels * step
    centre = points.mean(axis=0)
    offsets = points @ across - centre @ across
    low, high = np.percentile(offsets, [25, 75])
    lines = np.linspace(low, high, 9)
    return float(np.median([_chord(mask, centre + t * across, axis, step) for t in lines]))


def _chord(mask, point_mm, direction, step) -> float:
    """Length (mm, or px for unit spacing) of ``mask`` along the whole line through ``point_mm``."""
    sample = float(step.min()) / 4
    reach = float(np.hypot(*(np.array(mask.shape) * step)))
    t = np.arange(-reach, reach, sample)
    index = np.rint((point_mm + t[:, None] * direction) / step).astype(int)
    inside = np.all((index >= 0) & (index < mask.shape), axis=1)
    return float(mask[tuple(index[inside].T)].sum() * sample)
