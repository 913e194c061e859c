"""Comparing predicted and reference masks stored in files (``spine metrics``) or as SimpleITK
volumes: reading, matching and checking the pairs, then the pure array metrics of
:mod:`spine.metrics` on them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine.data import phantom
from spine.data.io import is_slice, is_volume, read_label_array, read_volume, write_volume
from spine.data.labels import check_task, label_values_to_classes, num_classes
from spine.errors import ConfigError, DataError
from spine.inference import predict_file
from spine.metrics import evaluate, image_metrics, normalize_spacing


def _json_value(value):
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def _read_classes(path: Path, task: str):
    array, spacing = read_label_array(path)
    return label_values_to_classes(array, task, source=path), spacing


def _pair_spacing(pred_path, true_path, pred_spacing, true_spacing, spacing, ndim):
    if spacing is not None:
        try:
            return normalize_spacing(spacing, ndim)
        except ConfigError as exc:
            raise DataError(true_path, str(exc)) from exc
    if true_spacing is None:
        return normalize_spacing(pred_spacing, ndim) if pred_spacing is not None else None
    if pred_spacing is not None and not np.allclose(pred_spacing, true_spacing, rtol=1e-3, atol=1e-6):
        raise DataError(pred_path, f"spacing {tuple(pred_spacing)} differs from the reference's "
                                   f"{tuple(true_spacing)} ({true_path})")
    return normalize_spacing(true_spacing, ndim)


def _compare_pair(pred_path: Path, true_path: Path, spacing, task: str):
    pred, pred_spacing = _read_classes(pred_path, task)
    true, true_spacing = _read_classes(true_path, task)
    if pred.shape != true.shape:
        raise DataError(pred_path, f"shape {pred.shape} differs from the reference's {true.shape} ({true_path})")
    spacing = _pair_spacing(pred_path, true_path, pred_spacing, true_spacing, spacing, true.ndim)
    return true, pred, spacing


def _label_files(folder: Path):
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and (is_volume(p) or is_slice(p)))


def compare_files(pred_path, true_path, spacing=None, classes: str = "binary") -> dict:
    """Compare predicted and reference masks on disk; a JSON-ready dict (NaN -> ``None``).

    ``pred_path`` and ``true_path`` are both files (PNG, ``.mha``, ``.nii.gz``, ...) or both
    folders, the prediction for each reference file having the same file name (extra files in
    the prediction folder are ignored). Masks are read with ``read_label_array`` and mapped with
    ``label_values_to_classes`` (0/1, 0/255, grey 0/76/29/150 and SPIDER instance values all
    work). ``spacing``: one value per axis in NumPy order (``(sy, sx)`` for slices), overriding
    any spacing stored in the files; if None, the volumes' own spacing (which must agree between
    prediction and reference), and no millimetre figures for 2D files.
    ``classes``: ``"binary"`` or ``"multiclass"``.

    A file pair gives the keys of :func:`image_metrics` plus ``file``, ``classes`` and
    ``spacing``. Folders give the per-image means at the top level (``aggregation:
    "per_image_mean"``), plus ``n_images``, ``pooled``, ``nan_counts``, ``empty`` and a
    ``per_image`` list (each entry with its ``file`` name). Mismatched shapes or spacings, or a
    reference without a matching prediction, raise :class:`DataError` naming the file.
    """
    task = check_task(classes)
    pred_path, true_path = Path(pred_path), Path(true_path)
    for path in (pred_path, true_path):
        if not path.exists():
            raise DataError(path, "not found")
    if pred_path.is_dir() != true_path.is_dir():
        raise DataError(pred_path, f"one of prediction and reference is a folder, the other a file "
                                   f"(reference: {true_path})")
    if not true_path.is_dir():
        true, pred, pair_spacing = _compare_pair(pred_path, true_path, spacing, task)
        values = image_metrics(true, pred, task, pair_spacing)
        return _json_value({"file": true_path.name, "classes": task,
                            "spacing": list(pair_spacing) if pair_spacing else None, **values})
    references = _label_files(true_path)
    if not references:
        raise DataError(true_path, "no mask files in the reference folder")
    trues, preds, spacings, names = [], [], [], []
    for reference in references:
        prediction = pred_path / reference.name
        if not prediction.is_file():
            raise DataError(prediction, f"no prediction matching the reference {reference}")
        true, pred, pair_spacing = _compare_pair(prediction, reference, spacing, task)
        trues.append(true), preds.append(pred), spacings.append(pair_spacing), names.append(reference.name)
    frame, summary = evaluate(trues, preds, task, spacings=spacings, names=names)
    per_image = []
    for row, pair_spacing in zip(frame.to_dict(orient="records"), spacings):
        name = row.pop("image")
        per_image.append({"file": name, "spacing": list(pair_spacing) if pair_spacing else None, **row})
    result = {"classes": task, "n_images": summary["n_images"], "aggregation": "per_image_mean",
              **summary["per_image"], "pooled": summary["pooled"], "nan_counts": summary["nan_counts"],
              "empty": summary["empty"], "per_image": per_image}
    return _json_value(result)


def volume_scores(prediction, reference, task: str = "binary") -> dict:
    """3D figures of a predicted volume against a reference mask (SimpleITK images, same grid).

    ``reference`` may hold SPIDER values or class indices (``spine.data.labels.label_values_to_classes``).
    Returns :func:`image_metrics` computed on the whole volume with its spacing (so the
    distances come in voxels and in mm), plus the voxel counts of the two foregrounds.
    """
    if prediction.GetSize() != reference.GetSize():
        raise ConfigError(f"prediction {prediction.GetSize()} and reference {reference.GetSize()} differ in size")
    pred = sitk.GetArrayFromImage(prediction).astype(np.uint8)
    true = label_values_to_classes(sitk.GetArrayFromImage(reference), task)
    spacing = tuple(reversed(reference.GetSpacing()))  # NumPy order (z, y, x)
    out = image_metrics(true, pred, num_classes(task), spacing=spacing)
    out.update(voxels_predicted=int((pred > 0).sum()), voxels_reference=int((true > 0).sum()))
    return out


def phantom_volume_check(model, case: int, folder) -> dict:
    """Segment phantom ``case`` as a user's volume is: written to an ``.mha`` file in ``folder``,
    segmented by :func:`spine.inference.predict_file`, read back and scored against the phantom's
    reference (binary). The files (``source``, ``output``), the volumes (``volume``,
    ``segmentation``, ``reference``) and the :func:`volume_scores` (``scores``)."""
    image, reference = phantom.make_case(case, permuted=True)
    source = write_volume(image, Path(folder) / f"phantom_{case}_t1.mha")
    output = predict_file(source, Path(folder) / "out", model)
    segmentation = read_volume(output)
    return {"source": source, "output": output, "volume": read_volume(source), "segmentation": segmentation,
            "reference": reference, "scores": volume_scores(segmentation, reference, "binary")}
