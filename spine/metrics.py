"""Overlap and surface metrics on integer label maps (NumPy/SciPy; never on tensors).

A label map holds one class index per pixel (0 background, 1..C-1 structures), 2D or 3D; the
prediction and the reference have the same shape. Turn a model's softmax output into a label
map with :func:`labels_from_probabilities` first.

The conventions, quoted by the book and stored in every run's record, are the constant
:data:`CONVENTIONS`, shown here. Comparing mask files on disk is ``spine.evaluation``'s job.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage

from spine.data.labels import CLASS_NAMES, check_task
from spine.errors import ConfigError

CONNECTIVITY = 1  # face connectivity for the surface erosion (medpy's default)
EMPTY_SCORE = 1.0  # Dice/IoU/precision/recall of a class absent from both masks
OVERLAP_KEYS = ("dice", "iou", "precision", "recall")
DISTANCE_KEYS = ("hd", "hd95", "assd")
HEADLINE_KEYS = ("accuracy", "precision", "recall", "f1", "dice", "iou", "miou", "fg_iou")

#: The conventions of every figure here, as text: quoted by the book and stored in each run's
#: record (``metrics.json``). A constant, not the docstring, so that ``python -OO`` keeps it.
CONVENTIONS = """\
- **Confusion counts** per class ``c``: TP = pixels with true c and predicted c, FP = predicted c
  but not true c, FN = true c but not predicted c, TN = the rest (one-vs-rest).
- **Accuracy** is the fraction of pixels whose predicted class equals the true class (all
  classes, background included).
- **Per class**: precision TP/(TP+FP), recall TP/(TP+FN), Dice = F1 = 2TP/(2TP+FP+FN),
  IoU = TP/(TP+FP+FN).
- **Headline figures** ``precision``, ``recall``, ``f1`` (= ``dice``) and ``iou``: binary task,
  those of the foreground (class 1); multiclass, the macro (unweighted) mean over the foreground
  classes 1..C-1, with each class also reported (``dice_vertebra``, ``iou_disc``, ...).
- **mIoU vs foreground IoU**: ``miou`` is the mean IoU over *all* classes, background included;
  ``fg_iou`` (equal to ``iou``) is the foreground IoU (binary: class 1; multiclass: mean over
  classes 1..C-1). Both are reported because papers use the name "mIoU" for either. (The study's
  binary "mIoU" figures are consistent with the foreground IoU: F1 0.9384 gives
  IoU = F1/(2 - F1) = 0.884, its reported mIoU 0.8874.)
- **Empty masks** (a class absent from the reference and/or the prediction of an image):
  both empty -> Dice, IoU, precision and recall are ``empty_score`` = 1.0 (absence correctly
  predicted); only one empty -> Dice = IoU = 0 (the formula's value), and the ratio whose
  denominator is 0 is NaN (precision when nothing is predicted, recall when nothing is true).
  Every surface distance is NaN when either mask is empty (including both). NaN means
  "undefined", never a silent 0: aggregates skip NaNs and report how many there were
  (``nan_counts``), and the number of both-empty and one-empty cases per class (``empty``).
- **Surfaces**: the boundary of a binary mask is the mask minus its binary erosion with the
  *face-connected* structuring element (``generate_binary_structure(ndim, 1)``: 4-neighbourhood
  in 2D, 6 in 3D), the image border counting as outside. A boundary pixel is thus a mask pixel
  with at least one face neighbour outside the mask. This is ``medpy.metric.binary``'s default
  (``connectivity=1``).
- **Surface distances**: for each boundary pixel of A, the Euclidean distance to the nearest
  boundary pixel of B (``scipy.ndimage.distance_transform_edt`` of B's non-boundary with
  ``sampling=spacing``), and vice versa. ``hd`` = the maximum over both directed sets (the
  Hausdorff distance); ``hd95`` = the 95th percentile (NumPy's linear interpolation) of the
  *union* of both directed sets; ``assd`` = the mean of that union. These are medpy's ``hd``,
  ``hd95`` and ``assd`` (medpy 0.5; older medpy averaged the two directed means for ``assd``,
  which differs when the two surfaces have different sizes). Values are in pixels (unit spacing) and, given a spacing
  (one value per axis, in NumPy axis order), also in millimetres (``hd_mm``, ``hd95_mm``,
  ``assd_mm``). Headline distances are those of the foreground (binary) or the mean over the
  foreground classes with a defined value (multiclass), each class also reported.
- **Aggregation** over a test set (:func:`evaluate`): ``per_image`` = each metric computed on
  each image, then the NaN-skipping mean over images (with the NaN count); ``pooled`` = the
  confusion counts summed over every pixel of the test set, then the overlap metrics computed
  once (a large image weighs more; surface distances are not pooled). The two differ whenever
  images differ in foreground size or quality.
"""
__doc__ = (__doc__ or "") + "\nConventions (quoted by the book):\n\n" + CONVENTIONS


# --------------------------------------------------------------------------- helpers

def class_names(num_classes: int) -> tuple[str, ...]:
    """Names of the classes: the study's for 2 and 4 classes, ``class<k>`` otherwise."""
    for names in CLASS_NAMES.values():
        if len(names) == num_classes:
            return names
    return tuple(f"class{k}" for k in range(num_classes))


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=float).ravel()
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, str):
        return len(CLASS_NAMES[check_task(num_classes)])
    if int(num_classes) != num_classes or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2 (or a task name), got {num_classes!r}")
    return int(num_classes)


def _check_pair(true, pred, num_classes: int):
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape:
        raise ValueError(f"label maps differ in shape: reference {true.shape}, prediction {pred.shape}")
    if true.ndim < 1:
        raise ValueError("label maps must have at least one axis")
    for what, array in (("reference", true), ("prediction", pred)):
        if array.dtype.kind not in "biu":
            if array.dtype.kind != "f" or not np.all(np.equal(np.mod(array, 1), 0)):
                raise ValueError(f"{what} is not a label map of integers (dtype {array.dtype}); "
                                 "use labels_from_probabilities() on softmax outputs")
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(f"{what} holds values outside 0..{num_classes - 1}: "
                             f"{np.unique(array[(array < 0) | (array >= num_classes)])[:10].tolist()}")
    return true.astype(np.int64), pred.astype(np.int64)


def normalize_spacing(spacing, ndim: int):
    """``None``, a number (every axis), or one positive value per axis -> tuple of floats or None."""
    if spacing is None:
        return None
    values = np.atleast_1d(np.asarray(spacing, dtype=float)).ravel()
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.size != ndim:
        raise ConfigError(f"spacing {tuple(values.tolist())} has {values.size} values; "
                          f"the label maps have {ndim} axes")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ConfigError(f"spacing must be positive, got {tuple(values.tolist())}")
    return tuple(float(v) for v in values)


def labels_from_probabilities(probabilities) -> np.ndarray:
    """Softmax (or one-hot) maps with the classes on the last axis -> label maps (argmax)."""
    return np.argmax(np.asarray(probabilities), axis=-1).astype(np.uint8)


# --------------------------------------------------------------------------- overlap

def confusion_matrix(true, pred, num_classes) -> np.ndarray:
    """(C, C) pixel counts, rows the reference class, columns the predicted class."""
    num_classes = _check_num_classes(num_classes)
    true, pred = _check_pair(true, pred, num_classes)
    counts = np.bincount((true * num_classes + pred).ravel(), minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def overlap_from_confusion(confusion, empty_score: float = EMPTY_SCORE) -> dict:
    """Per-class arrays ``dice``, ``iou``, ``precision``, ``recall`` (and scalar ``accuracy``).

    Empty-mask convention of the module docstring: a class absent from both reference and
    prediction scores ``empty_score``; a zero denominator otherwise gives NaN.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(confusion).astype(float)
    n_true = confusion.sum(axis=1).astype(float)
    n_pred = confusion.sum(axis=0).astype(float)
    fp, fn = n_pred - tp, n_true - tp
    both_empty = (n_true == 0) & (n_pred == 0)
    result = {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, n_pred),
        "recall": _ratio(tp, n_true),
    }
    for key in OVERLAP_KEYS:
        result[key][both_empty] = empty_score
    total = confusion.sum()
    result["accuracy"] = float(tp.sum() / total) if total else math.nan
    return result


def _headline_overlap(per_class: dict) -> dict:
    """The flat headline figures from per-class arrays (foreground = classes 1..C-1)."""
    fg = slice(1, None)
    dice = _nanmean(per_class["dice"][fg])
    iou = _nanmean(per_class["iou"][fg])
    return {"accuracy": per_class["accuracy"],
            "precision": _nanmean(per_class["precision"][fg]),
            "recall": _nanmean(per_class["recall"][fg]),
            "f1": dice, "dice": dice, "iou": iou,
            "miou": _nanmean(per_class["iou"]), "fg_iou": iou}


def _overlap_dict(confusion, names, empty_score) -> dict:
    per_class = overlap_from_confusion(confusion, empty_score)
    out = _headline_overlap(per_class)
    if len(names) > 2:
        for c, name in enumerate(names):
            for key in OVERLAP_KEYS:
                out[f"{key}_{name}"] = float(per_class[key][c])
    return out


def selection_dice(true, pred, num_classes: int) -> float:
    """One image's selection Dice: binary, the foreground's; 4-class, the mean over vertebra, disc and
    canal (a class absent from both maps scores ``EMPTY_SCORE``)."""
    return float(np.mean(overlap_from_confusion(confusion_matrix(true, pred, num_classes))["dice"][1:]))


def dice(a, b, empty_score: float = EMPTY_SCORE) -> float:
    """Dice of two binary masks (non-zero = foreground); ``empty_score`` if both are empty."""
    return float(overlap_from_confusion(_binary_confusion(a, b), empty_score)["dice"][1])


def iou(a, b, empty_score: float = EMPTY_SCORE) -> float:
    """IoU (Jaccard) of two binary masks; ``empty_score`` if both are empty."""
    return float(overlap_from_confusion(_binary_confusion(a, b), empty_score)["iou"][1])


def _binary_confusion(a, b):
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    return confusion_matrix(a.astype(np.uint8), b.astype(np.uint8), 2)


# --------------------------------------------------------------------------- surfaces

def surface(mask, connectivity: int = CONNECTIVITY) -> np.ndarray:
    """Boundary pixels of a binary mask: the mask minus its erosion (image border = outside)."""
    mask = np.asarray(mask) != 0
    if not mask.any():
        return mask
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(a, b, spacing=None, connectivity: int = CONNECTIVITY):
    """Directed surface distances ``(d_ab, d_ba)``: from each boundary pixel of ``a`` to the
    nearest boundary pixel of ``b``, and the reverse (in units of ``spacing``; pixels if None).

    Raises ``ValueError`` if either mask is empty (the distances are undefined).
    """
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    if not a.any() or not b.any():
        raise ValueError("surface distances are undefined when a mask is empty")
    spacing = normalize_spacing(spacing, a.ndim)
    surface_a, surface_b = surface(a, connectivity), surface(b, connectivity)
    d_ab = ndimage.distance_transform_edt(~surface_b, sampling=spacing)[surface_a]
    d_ba = ndimage.distance_transform_edt(~surface_a, sampling=spacing)[surface_b]
    return d_ab, d_ba


def _distances_from_sets(d_ab, d_ba) -> dict:
    union = np.concatenate([d_ab, d_ba])
    return {"hd": float(union.max()), "hd95": float(np.percentile(union, 95)),
            "assd": float(union.mean())}


def distance_metrics(a, b, spacing=None, connectivity: int = CONNECTIVITY) -> dict:
    """``hd``, ``hd95``, ``assd`` of two binary masks (symmetric); all NaN if either is empty."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    if not a.any() or not b.any():
        return {key: math.nan for key in DISTANCE_KEYS}
    return _distances_from_sets(*surface_distances(a, b, spacing, connectivity))


def hausdorff(a, b, spacing=None) -> float:
    """Hausdorff distance (maximum surface distance, both directions); NaN if a mask is empty."""
    return distance_metrics(a, b, spacing)["hd"]


def hd95(a, b, spacing=None) -> float:
    """95th percentile of the union of both directed surface-distance sets; NaN if a mask is empty."""
    return distance_metrics(a, b, spacing)["hd95"]


def assd(a, b, spacing=None) -> float:
    """Mean of the union of both directed surface-distance sets; NaN if a mask is empty."""
    return distance_metrics(a, b, spacing)["assd"]


def _distance_dict(true, pred, names, spacing) -> dict:
    """Distances per foreground class in pixels (and mm), plus the headline (mean over classes)."""
    suffixes = [("", None)] + ([("_mm", spacing)] if spacing is not None else [])
    per_class = {}
    for c in range(1, len(names)):
        a, b = true == c, pred == c
        for suffix, sampling in suffixes:
            values = distance_metrics(a, b, sampling)
            for key in DISTANCE_KEYS:
                per_class[f"{key}{suffix}_{names[c]}"] = values[key]
    out = {}
    for suffix, _ in suffixes:
        for key in DISTANCE_KEYS:
            out[f"{key}{suffix}"] = _nanmean([per_class[f"{key}{suffix}_{names[c]}"]
                                              for c in range(1, len(names))])
    if len(names) > 2:
        out.update(per_class)
    return out


# --------------------------------------------------------------------------- per image

def _image_metrics(true, pred, num_classes, spacing, empty_score):
    num_classes = _check_num_classes(num_classes)
    true, pred = _check_pair(true, pred, num_classes)
    spacing = normalize_spacing(spacing, true.ndim)
    names = class_names(num_classes)
    confusion = confusion_matrix(true, pred, num_classes)
    out = _overlap_dict(confusion, names, empty_score)
    out.update(_distance_dict(true, pred, names, spacing))
    return out, confusion


def image_metrics(true, pred, num_classes, spacing=None, empty_score: float = EMPTY_SCORE) -> dict:
    """Every metric of one image (2D or 3D label maps of the same shape) as a flat dict.

    Keys: ``accuracy, precision, recall, f1, dice (= f1), iou, miou, fg_iou (= iou), hd, hd95,
    assd`` (pixels), ``hd_mm, hd95_mm, assd_mm`` when ``spacing`` is given (one value per axis,
    NumPy order), and, with more than two classes, per class ``dice_<name>``, ``iou_<name>``,
    ``precision_<name>``, ``recall_<name>`` (every class) and ``hd_<name>``, ``hd95_<name>``,
    ``assd_<name>`` (+ ``_mm``; foreground classes). Binary: the foreground's figures;
    multiclass: the macro mean over foreground classes. NaN marks an undefined value (see the
    module docstring); ``num_classes`` may also be a task name (``"binary"``, ``"multiclass"``).
    """
    return _image_metrics(true, pred, num_classes, spacing, empty_score)[0]


# --------------------------------------------------------------------------- data sets

def _as_list(maps):
    if isinstance(maps, np.ndarray):
        return list(maps)
    return [np.asarray(m) for m in maps]


def _spacing_list(spacings, n):
    if spacings is None:
        return [None] * n
    if np.isscalar(spacings) or (len(spacings) and np.isscalar(spacings[0])):
        return [spacings] * n  # one spacing for every image
    if len(spacings) != n:
        raise ConfigError(f"{len(spacings)} spacings for {n} images")
    return list(spacings)


def empty_counts(confusions, names) -> dict:
    """Per class: images where the class is absent from both masks, and from exactly one."""
    confusions = np.asarray(confusions).reshape(-1, len(names), len(names))
    n_true = confusions.sum(axis=2)
    n_pred = confusions.sum(axis=1)
    both = (n_true == 0) & (n_pred == 0)
    one = (n_true == 0) ^ (n_pred == 0)
    return {"both_empty": {name: int(both[:, c].sum()) for c, name in enumerate(names)},
            "one_empty": {name: int(one[:, c].sum()) for c, name in enumerate(names)}}


def pooled_metrics(confusion, num_classes, empty_score: float = EMPTY_SCORE) -> dict:
    """Overlap metrics of confusion counts pooled over a whole test set (a (C, C) matrix)."""
    return _overlap_dict(np.asarray(confusion), class_names(_check_num_classes(num_classes)), empty_score)


def evaluate(trues, preds, num_classes, spacings=None, names=None, empty_score: float = EMPTY_SCORE):
    """Metrics of a test set: ``(per_image DataFrame, summary dict)``.

    ``trues``, ``preds``: label maps, a list (shapes may differ between images) or an array with
    the images on axis 0. ``spacings``: None, one spacing for all images, or one per image (each
    may be None). ``names``: image names for the ``image`` column (default 0..N-1).

    The summary (JSON-ready apart from NaN floats) holds ``n_images``, ``num_classes``,
    ``class_names``, ``per_image`` (NaN-skipping mean over images of every column), ``nan_counts``
    (NaNs per column), ``pooled`` (overlap metrics of the confusion counts summed over all pixels)
    and ``empty`` (per class, images where it is absent from both masks / from exactly one).
    """
    num_classes = _check_num_classes(num_classes)
    trues, preds = _as_list(trues), _as_list(preds)
    if len(trues) != len(preds):
        raise ValueError(f"{len(trues)} reference maps but {len(preds)} predictions")
    if not trues:
        raise ValueError("no images to evaluate")
    names = list(range(len(trues))) if names is None else list(names)
    if len(names) != len(trues):
        raise ValueError(f"{len(names)} names for {len(trues)} images")
    spacings = _spacing_list(spacings, len(trues))
    rows, confusions = [], []
    for name, true, pred, spacing in zip(names, trues, preds, spacings):
        values, confusion = _image_metrics(true, pred, num_classes, spacing, empty_score)
        rows.append({"image": name, **values})
        confusions.append(confusion)
    frame = pd.DataFrame(rows)
    metric_columns = [c for c in frame.columns if c != "image"]
    labels = class_names(num_classes)
    summary = {
        "n_images": len(rows),
        "num_classes": num_classes,
        "class_names": list(labels),
        "per_image": {c: _nanmean(frame[c]) for c in metric_columns},
        "nan_counts": {c: int(frame[c].isna().sum()) for c in metric_columns},
        "pooled": pooled_metrics(np.sum(confusions, axis=0), num_classes, empty_score),
        "empty": empty_counts(confusions, labels),
    }
    return frame, summary
