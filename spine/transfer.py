"""The transfer check: how a model trained on T2-SPACE segments other sequences.

Two sources a T2-SPACE model never trained on:

- **Real T1 and T2 slices** (``spider-t1t2-vertebrae``, 36 SPIDER slices of 320-800 px, vertebrae
  only, one RGB colour per level, black elsewhere). The folder stores them feet up (the sacrum at
  the top); ``spine predict`` reads 2D images head up, so the check turns each slice and its mask
  over first (:data:`T1T2_FEET_UP`; checks stored before it did are version 1 of
  :data:`T1T2_CHECK_VERSION`). Each slice goes through ``spine predict``'s own
  path (:func:`spine.inference.segment_slices`, labels back at the slice's size) and is scored
  against "any non-black colour = vertebra", on the slices whose reference covers at least
  :data:`MIN_REFERENCE_FRACTION` of the image (lateral slices with a sliver of bone say little).
  A 4-class model is scored on its vertebra class. A binary model's foreground also holds discs
  and canal, which this reference leaves out, so its Dice here is low by construction; its
  vertebra recall (the reference's pixels it covers) is the figure that means something.
  A check to report, never to train or choose on. For a 4-class model, the same slices also check
  ``spine predict --levels``: whether the instance numbers it gives two vertebrae that are
  neighbours in the reference are the right two, the upper one number higher
  (:func:`level_order_scores`).
- **Phantom T1 and T2 cases** held out from every training set
  (:data:`spine.data.PHANTOM_CHECK_PATIENTS`), prepared as training data is; scored with the
  selection Dice (binary: foreground; 4-class: mean over vertebra, disc and canal) and the
  vertebra Dice, on the central slice (the study's protocol) and over every sagittal slice (what
  ``spine predict`` meets in a volume; the export rule chooses on this one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image

from spine import inference, levels, stats
from spine.data import PHANTOM_CHECK_PATIENTS, phantom_slices
from spine.data.bodies import (POSTERIOR_MARGIN_MM, anterior_column, disc_spaces, far_behind, find_exams, read_exam,
                                sagittal_arrays)
from spine.data.geometry import sagittal_view
from spine.data.dataset import central_rows
from spine.data.io import read_slice
from spine.data.labels import label_values_to_classes, num_classes, spider_structures
from spine.data.slices import find_pairs
from spine.errors import DataError
from spine.inference import (load_model, output_classes, predict_labels, segment_slices, segment_volume,
                             volume_levels)
from spine.metrics import confusion_matrix, dice, overlap_from_confusion, selection_dice

MIN_REFERENCE_FRACTION = 0.01
MIN_LEVEL_SHARE = 0.1  # of the slice's median reference vertebra: smaller ones (slivers at the edge) are not paired
MIN_LEVEL_COVER = 0.25  # share of a reference vertebra that must carry predicted level numbers for it to be found
CENTRAL_REFERENCE_FRACTION = 0.05  # slices with this much vertebra are near the mid-line; below, lateral
# spider-t1t2-vertebrae stores its slices feet up. Evidence without a model: lumbar vertebrae grow
# larger downwards, so over a head-up slice's levels the area rises with the centre row; it does
# in 44 of SPIDER's 48 3D masks (mid-line slice, oriented by their geometry); in this folder, as
# stored, it falls in 27 of the 31 slices with four or more levels and rises in 3 (tests/test_transfer.py).
T1T2_FEET_UP = True
T1T2_CHECK_VERSION = 2  # of the stored check of those slices: 1 scored them as stored (upside down)
VERTEBRA = 1  # class index of vertebra in the 4-class task; the binary task's foreground is 1 too
PHANTOM_SEQUENCES = ("t1", "t2")
BODY_CHECK_FILE = "bodies.json"  # a record's stored body check (body_check): it outlives the model file
FULL_SIZE_CHECK_FILE = "full_size.json"  # a record's stored full-size T2-SPACE check (full_size_check)
# How the stored checks (the body check, the T1/T2 slices) bring labels back to the image's size:
# nearest neighbour, as every recorded check was made and `spine predict` did then, so that the
# checks the export rule compares stay comparable. `spine predict` itself now resizes probabilities
# (spine.inference.RESIZE_BACK); benchmarks/resize_back.py measures what that changes.
CHECK_RESIZE_BACK = "nearest"
# What a binary model's foreground is scored against in the body check: its foreground also holds the
# discs, so the bodies alone would count every disc it rightly marks as an error (and favour a model
# that misses discs). Checks stored before carry no "reference" and scored binary models on the bodies.
BINARY_REFERENCE = "bodies and the disc spaces between them"


def body_reference(task: str) -> str:
    """What the body check scores a model of ``task`` against."""
    return BINARY_REFERENCE if task == "binary" else "bodies"


def stored_reference(check: dict) -> str:
    """What a stored body check scored against (checks that name none: the bodies)."""
    return check.get("reference", "bodies")


def _head_up(array: np.ndarray) -> np.ndarray:
    """A slice of ``spider-t1t2-vertebrae`` (image or mask) the way up ``spine predict`` reads images."""
    return array[::-1] if T1T2_FEET_UP else array


def read_t1t2_image(path) -> np.ndarray:
    """An image of ``spider-t1t2-vertebrae``, head up."""
    return _head_up(read_slice(path))


def _t1t2_images(folder) -> tuple[list[str], list[np.ndarray]]:
    """The image names of a ``spider-t1t2-vertebrae`` folder, sorted, and the images, head up."""
    names = sorted(p.name for p in (Path(folder) / "images").glob("*.png"))
    return names, [read_t1t2_image(Path(folder) / "images" / name) for name in names]


def _read_rgb_mask(path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return _head_up(np.asarray(image.convert("RGB")))
    except OSError as exc:
        raise DataError(path, f"cannot be read as an image: {exc}") from exc


def read_vertebra_mask(path) -> np.ndarray:
    """A boolean vertebra mask from an RGB mask of ``spider-t1t2-vertebrae`` (any non-black colour),
    head up."""
    return _read_rgb_mask(path).max(axis=-1) > 0


def _model(model):
    return load_model(model) if isinstance(model, (str, Path)) else model


def _rows_spanned(mask: np.ndarray) -> np.ndarray:
    """The image rows from the mask's top to its bottom (all False for an empty mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    band = np.zeros_like(mask, dtype=bool)
    if rows.size:
        band[rows[0]:rows[-1] + 1] = True
    return band


def t1t2_scores(model, folder, resize_back: str = CHECK_RESIZE_BACK) -> pd.DataFrame:
    """Per slice of ``folder`` (``images/`` and ``masks/``): the reference's share of the image and,
    for the predicted class 1 (vertebra; binary: foreground), Dice, recall and precision against
    the vertebra reference, and the Dice within the rows the reference spans (these wider fields of
    view show vertebrae above and below the labelled ones, which the reference leaves unlabelled:
    this figure says how much of the gap that is; the check's figure stays ``dice``). ``resize_back``:
    how the labels come back to the slice's size (:data:`CHECK_RESIZE_BACK`)."""
    model = _model(model)
    names, images = _t1t2_images(folder)
    if not names:
        raise DataError(folder, "no images/*.png")
    rows = []
    for name, predicted in zip(names, segment_slices(model, images, resize_back=resize_back)):
        reference = read_vertebra_mask(Path(folder) / "masks" / name)
        if reference.shape != predicted.shape:
            raise DataError(Path(folder) / "masks" / name, f"mask {reference.shape} and image {predicted.shape} differ")
        found = predicted == VERTEBRA
        overlap = np.count_nonzero(found & reference)
        rows.append({"image": name, "reference_fraction": reference.mean(), "dice": dice(found, reference),
                     "recall": overlap / max(np.count_nonzero(reference), 1),
                     "precision": overlap / max(np.count_nonzero(found), 1),
                     "dice_in_reference_rows": dice(found & _rows_spanned(reference), reference)})
    return pd.DataFrame(rows)


def reference_vertebrae(path) -> list[np.ndarray]:
    """The vertebrae of an RGB mask of ``spider-t1t2-vertebrae`` (one colour per level), one boolean
    mask each, head up, from the top of the image down (by centre row), slivers under
    :data:`MIN_LEVEL_SHARE` of the median vertebra left out."""
    rgb = _read_rgb_mask(path)
    colours = [c for c in np.unique(rgb.reshape(-1, 3), axis=0) if c.any()]
    masks = [(rgb == colour).all(axis=-1) for colour in colours]
    if not masks:
        return []
    typical = np.median([m.sum() for m in masks])
    kept = [m for m in masks if m.sum() >= MIN_LEVEL_SHARE * typical]
    return sorted(kept, key=lambda m: np.flatnonzero(m.any(axis=1)).mean())


def found_level(instances: np.ndarray, vertebra: np.ndarray) -> int:
    """The vertebra number (1, 2, ... from the lowest up) most of a reference vertebra carries in a
    predicted instance map; 0 when less than :data:`MIN_LEVEL_COVER` of it carries any."""
    numbers = instances[vertebra]
    numbers = numbers[(numbers > 0) & (numbers < levels.CANAL_LABEL)]
    if numbers.size < MIN_LEVEL_COVER * vertebra.sum():
        return 0
    return int(np.bincount(numbers).argmax())


def level_order_scores(model, folder, min_fraction: float = MIN_REFERENCE_FRACTION) -> pd.DataFrame:
    """Per pair of neighbouring reference vertebrae on the slices of ``folder`` whose reference covers
    at least ``min_fraction`` of the image: the numbers :func:`spine.levels.label_slice` gives them
    from the 4-class model's map (``spine predict --levels``' own path), whether both were found,
    and whether they are right: the upper one numbered exactly one higher than the lower."""
    model = _model(model)
    names, images = _t1t2_images(folder)
    rows = []
    for name, classes in zip(names, segment_slices(model, images, resize_back=CHECK_RESIZE_BACK)):
        if read_vertebra_mask(Path(folder) / "masks" / name).mean() < min_fraction:
            continue
        instances = levels.label_slice(classes)
        found = [found_level(instances, v) for v in reference_vertebrae(Path(folder) / "masks" / name)]
        rows += [{"image": name, "upper": upper, "lower": lower, "found": bool(upper and lower),
                  "right": bool(upper and lower and upper == lower + 1)}
                 for upper, lower in zip(found, found[1:])]
    return pd.DataFrame(rows, columns=["image", "upper", "lower", "found", "right"])


def t1t2_check_version(check: dict) -> int:
    """The version (:data:`T1T2_CHECK_VERSION`) of a stored transfer check's real T1/T2 figures;
    checks stored before the version was kept are version 1."""
    return check.get("t1t2_vertebrae", {}).get("version", 1)


def scored_head_up(check: dict) -> bool:
    """Whether a stored transfer check read the real T1/T2 slices head up (version 2 on)."""
    return t1t2_check_version(check) >= 2


def level_rules_version(order: dict) -> int:
    """The version of the level rules (:data:`spine.levels.RULES_VERSION`) that numbered a stored
    level-order check; checks stored before the version was kept are version 1."""
    return order.get("rules_version", 1)


def summarize_level_order(pairs: pd.DataFrame) -> dict:
    """The share of neighbouring pairs found (both vertebrae carry a number) and, of those, the share
    numbered right, with 95 % BCa intervals resampling whole series (as :func:`summarize`). Right is
    over found pairs: the lowest reference vertebra is often S1, which no class of the 4-class task
    holds (a miss there says nothing about the order)."""
    summary = {"pairs": len(pairs), "slices": int(pairs["image"].nunique())}
    for key, scored in (("found", pairs), ("right", pairs[pairs["found"]])):
        series = scored["image"].str.split("_").str[0].to_numpy()
        estimate, low, high = stats.cluster_bootstrap_ci(scored[key].to_numpy(float), series)
        summary[key] = {"mean": estimate, "ci95": [low, high], "pairs": len(scored), "series": len(set(series))}
    return summary


def summarize(per_slice: pd.DataFrame, min_fraction: float = MIN_REFERENCE_FRACTION, cluster: str = "series") -> dict:
    """Mean over slices and 95 % BCa bootstrap interval of each figure, resampling whole series (the
    slices of one series are not independent; the ``cluster`` column, else the image name up to its
    first "_", ``10008_12.png``: series 10008), on the slices whose reference covers at least
    ``min_fraction`` of the image."""
    kept = per_slice[per_slice["reference_fraction"] >= min_fraction]
    series = kept[cluster] if cluster in kept else kept["image"].str.split("_").str[0]
    summary = {"slices": len(kept), "series": int(series.nunique()), "of": len(per_slice),
               "min_reference_fraction": min_fraction}
    for key in [key for key in ("dice", "recall", "precision", "dice_in_reference_rows") if key in kept]:
        estimate, low, high = stats.cluster_bootstrap_ci(kept[key].to_numpy(), series.to_numpy())
        summary[key] = {"mean": estimate, "ci95": [low, high]}
    return summary


def phantom_scores(model, sequences=PHANTOM_SEQUENCES, patients: range = PHANTOM_CHECK_PATIENTS, *,
                   every_slice: bool = False) -> pd.DataFrame:
    """Per held-out phantom case and sequence: the selection Dice (binary: foreground; 4-class: mean
    over the three structures) and, for a 4-class model, the vertebra Dice; on the central slice,
    or with ``every_slice`` over all the case's sagittal slices pooled (a volume Dice: lateral
    slices, with little or no vertebral body, count as they do in a scan)."""
    model = _model(model)
    count = output_classes(model)
    task = "binary" if count == 2 else "multiclass"
    rows = []
    for sequence in sequences:
        cases = phantom_slices(sequence, patients, int(model.input_shape[1]), every_slice=every_slice)
        truths, predicted = cases.labels(task), predict_labels(model, cases.images)
        for patient in dict.fromkeys(cases.patients):
            mine = cases.patients == patient
            counts = confusion_matrix(truths[mine], predicted[mine], count)
            per_class = overlap_from_confusion(counts)["dice"]
            row = {"sequence": sequence, "case": f"{patient}_{sequence}", "dice": float(np.mean(per_class[1:]))}
            rows.append(row | ({"vertebra_dice": float(per_class[VERTEBRA])} if task == "multiclass" else {}))
    return pd.DataFrame(rows)


def body_scores(model, folder, exams=None, resize_back: str = CHECK_RESIZE_BACK) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The body check on real T1, T2 and TIRM volumes (``vertebral-bodies-t1t2``, vertebral bodies
    labelled): per exam and per sagittal slice.

    Each exam goes through ``spine predict``'s own path (:func:`spine.inference.segment_volume`, the
    volume in its native geometry). The model's vertebra class (binary: foreground) is kept inside
    the anterior column (:func:`spine.data.bodies.anterior_column`: posterior elements, which SPIDER's
    vertebra label includes, lie outside it and are not scored; vertebra marked inside it outside the
    bodies, e.g. psoas, bowel or discs called bone, counts against the model) and scored against the
    bodies (a binary model: the bodies and the disc spaces between adjacent ones,
    :data:`BINARY_REFERENCE`), every sagittal slice pooled: ``dice``, ``recall`` (share found) and
    ``precision``; and ``behind``, the share of the exam's vertebra voxels (anywhere in the volume)
    that lie far behind the spine, where no vertebra is (:func:`spine.data.bodies.far_behind`: back
    muscles called bone, which the column does not see). A 4-class model's volume also goes through ``spine predict --levels``' path
    (:func:`spine.inference.volume_levels`), and the numbers it gives neighbouring bodies are
    counted (:func:`body_level_pairs`, :func:`count_level_pairs`: ``level_pairs``, ``level_found``,
    ``level_right``). ``exams``: the exam names to check (``vb1_02``, ...; default all). Per slice:
    its offset from the mid-line (the bodies' mean left-right position) in mm, its Dice, and its
    body and false-vertebra pixel counts. ``resize_back``: how the labels come back to each slice's
    size (:data:`CHECK_RESIZE_BACK`).
    """
    model = _model(model)
    chosen = [e for e in find_exams(folder) if exams is None or e.exam in set(exams)]
    if not chosen:
        raise DataError(folder, f"none of the exams {sorted(exams or [])} is here")
    per_exam, per_slice = [], []
    numbers_levels = output_classes(model) == 4
    for exam in chosen:
        image, mask = read_exam(exam)
        classes = segment_volume(model, image, resize_back=resize_back)
        predicted, _ = sagittal_arrays(classes)
        bodies, spacing = sagittal_arrays(mask)
        reference = None if numbers_levels else (bodies > 0) | disc_spaces(bodies, spacing)
        scores, slices = score_bodies(predicted == VERTEBRA, bodies > 0, spacing, reference)
        if numbers_levels:
            instances, _ = volume_levels(model, image, classes, exam.image)
            scores |= count_level_pairs(body_level_pairs(sitk.GetArrayFromImage(instances), sitk.GetArrayFromImage(mask)))
        per_exam.append({"exam": exam.exam, "patient": exam.patient, "sequence": exam.sequence} | scores)
        per_slice += [{"exam": exam.exam} | row for row in slices]
    return pd.DataFrame(per_exam), pd.DataFrame(per_slice)


def score_bodies(vertebra: np.ndarray, bodies: np.ndarray, spacing, reference=None) -> tuple[dict, list[dict]]:
    """:func:`body_scores` of one exam from boolean ``[slice, row, column]`` arrays in the sagittal
    view (the predicted vertebra class, the bodies) and the (slice, row, column) spacing: the pooled
    figures and one row per slice, against ``reference`` (default: the bodies; the column, mid-line
    and far-behind region are always the bodies')."""
    reference = bodies if reference is None else reference
    found = vertebra & anterior_column(bodies, spacing)
    overlap = np.count_nonzero(found & reference)
    scores = {"dice": dice(found, reference), "recall": overlap / max(np.count_nonzero(reference), 1),
              "precision": overlap / max(np.count_nonzero(found), 1),
              "behind": np.count_nonzero(vertebra & far_behind(bodies, spacing)) / max(np.count_nonzero(vertebra), 1)}
    midline = np.average(np.arange(len(bodies)), weights=bodies.sum(axis=(1, 2)))
    slices = [{"offset_mm": round(float((k - midline) * spacing[0]), 1), "body_pixels": int(reference[k].sum()),
               "false_pixels": int((found[k] & ~reference[k]).sum()), "dice": dice(found[k], reference[k])}
              for k in range(len(bodies))]
    return scores, slices


def body_level_pairs(instances: np.ndarray, bodies: np.ndarray) -> pd.DataFrame:
    """Per pair of neighbouring bodies of a labelled volume (``bodies``: 1..N from the lowest up, as
    ``vertebral-bodies-t1t2`` numbers them), the vertebra numbers a level map (``instances``, same
    grid, numbered from the lowest up too) gives them (:func:`found_level`), whether both were found
    and whether they are right: the upper one numbered exactly one higher."""
    labels = [int(k) for k in np.unique(bodies) if k > 0]
    numbers = {k: found_level(instances, bodies == k) for k in labels}
    rows = [{"lower": numbers[k], "upper": numbers[k + 1], "found": bool(numbers[k] and numbers[k + 1]),
             "right": bool(numbers[k] and numbers[k + 1] == numbers[k] + 1)}
            for k in labels if k + 1 in numbers]
    return pd.DataFrame(rows, columns=["lower", "upper", "found", "right"])


def count_level_pairs(pairs: pd.DataFrame) -> dict:
    """How many neighbouring pairs there are, were found, and were numbered right."""
    return {"level_pairs": len(pairs), "level_found": int(pairs["found"].sum()), "level_right": int(pairs["right"].sum())}


def level_order_share(per_exam: pd.DataFrame) -> dict | None:
    """Of the exams' neighbouring body pairs, the share found and, of those, the share numbered right
    (pooled counts); None where the exams have no level counts (a binary model). Where the exams name
    their patients, each share also gets a 95 % BCa interval resampling whole patients
    (:func:`level_order_intervals`)."""
    if "level_pairs" not in per_exam or per_exam["level_pairs"].isna().all():
        return None
    pairs, found, right = (int(per_exam[key].sum()) for key in ("level_pairs", "level_found", "level_right"))
    share = {"pairs": pairs, "found": found / pairs if pairs else float("nan"),
             "right": right / found if found else float("nan")}
    return share | (level_order_intervals(per_exam) if "patient" in per_exam else {})


def level_order_intervals(per_exam: pd.DataFrame) -> dict:
    """95 % BCa intervals of the pooled shares of :func:`level_order_share` resampling whole patients
    (the pairs of one spine, and of one patient's two exams, are not independent): ``found_ci95``,
    ``right_ci95`` (NaN where fewer than two patients hold pairs) and the ``patients`` that do."""
    counted = per_exam.dropna(subset=["level_pairs"])
    found = [(row.patient, float(k < row.level_found)) for row in counted.itertuples() for k in range(int(row.level_pairs))]
    right = [(row.patient, float(k < row.level_right)) for row in counted.itertuples() for k in range(int(row.level_found))]
    intervals = {}
    for key, pairs in (("found", found), ("right", right)):
        patients, values = zip(*pairs) if pairs else ((), ())
        intervals[f"{key}_ci95"] = list(stats.cluster_bootstrap_ci(values, patients)[1:])
    return intervals | {"patients": int(counted.loc[counted["level_pairs"] > 0, "patient"].nunique())}


def summarize_bodies(per_exam: pd.DataFrame) -> dict:
    """Mean body Dice, recall and precision (and ``behind``, where every exam has it: checks made
    before it lack it) with 95 % BCa intervals over patients (exams of one patient averaged first),
    and for a 4-class model the level order (:func:`level_order_share`)."""
    figures = [key for key in ("dice", "recall", "precision", "behind")
               if key in per_exam and per_exam[key].notna().all()]
    patients = stats.per_patient_means(per_exam[["patient", *figures]])[figures]
    summary = {"exams": len(per_exam), "patients": len(patients)}
    for key in patients:
        estimate, low, high = stats.bootstrap_ci(patients[key].to_numpy())
        summary[key] = {"mean": estimate, "ci95": [low, high]}
    order = level_order_share(per_exam)
    return summary | ({"level_order": order} if order else {})


def body_check(model, folder, split: pd.DataFrame, subsets=("val", "test"),
               resize_back: str = CHECK_RESIZE_BACK) -> dict:
    """The body check of the exams whose patients ``split`` (``patient, subset``) puts in ``subsets``:
    per subset its :func:`summarize_bodies`, and each exam's and each slice's figures with their
    subset (what a record stores as :data:`BODY_CHECK_FILE`)."""
    model = _model(model)
    subset_of = dict(zip(split["patient"].astype(str), split["subset"]))
    exams = [e.exam for e in find_exams(folder) if subset_of.get(e.patient) in subsets]
    per_exam, per_slice = body_scores(model, folder, exams, resize_back)
    per_exam.insert(1, "subset", per_exam["patient"].map(subset_of))
    check = {"source": Path(folder).name, "column_margin_mm": POSTERIOR_MARGIN_MM, "resize_back": resize_back} | (
        {} if output_classes(model) == 4 else {"reference": BINARY_REFERENCE})
    for subset, group in per_exam.groupby("subset"):
        check[subset] = summarize_bodies(group)
    return check | {"exams": per_exam.to_dict("records"), "slices": per_slice.to_dict("records")}


def full_size_scores(model, folder, patients, per_patient: int, resize_back: str | None = None) -> pd.DataFrame:
    """The T2-SPACE slices of ``patients`` in ``folder`` (each patient's ``per_patient`` central ones,
    as the engine scores them) through ``spine predict``'s path (:func:`spine.inference.segment_slices`,
    labels back at the slice's full size, 512 x 640; ``resize_back``: how), each scored against its
    full-size mask with the selection Dice: the figure a user's own slices get, where the engine's
    is taken at the model's input size against masks resized to it."""
    model = _model(model)
    task = "multiclass" if output_classes(model) == 4 else "binary"
    pairs = [pair for pair in find_pairs(folder) if pair.patient in set(map(str, patients))]
    if not pairs:
        raise DataError(folder, f"none of the patients {sorted(map(str, patients))} is here")
    keep = central_rows([pair.patient for pair in pairs], [pair.index for pair in pairs], per_patient)
    pairs = [pair for pair, kept in zip(pairs, keep) if kept]
    predicted = segment_slices(model, [read_slice(pair.image) for pair in pairs], resize_back=resize_back)
    return pd.DataFrame([{"case": pair.case_id, "patient": pair.patient,
                          "dice": selection_dice(label_values_to_classes(read_slice(pair.mask), task, pair.mask),
                                                 labels, num_classes(task))}
                         for pair, labels in zip(pairs, predicted)])


def full_size_check(model, folder, split: pd.DataFrame, per_patient: int, subsets=("val", "test")) -> dict:
    """:func:`full_size_scores` of the patients ``split`` (``patient, subset``) puts in ``subsets``: per
    subset the mean over patients (slices of one patient averaged first) with its 95 % BCa interval
    over patients, and each slice's Dice (what a record stores as :data:`FULL_SIZE_CHECK_FILE`)."""
    subset_of = dict(zip(split["patient"].astype(str), split["subset"]))
    chosen = [patient for patient, subset in subset_of.items() if subset in subsets]
    way = inference.RESIZE_BACK  # spine predict's
    per_slice = full_size_scores(model, folder, chosen, per_patient, resize_back=way)
    per_slice.insert(2, "subset", per_slice["patient"].map(subset_of))
    check = {"source": Path(folder).name, "resize_back": way, "slices_per_patient": per_patient}
    for subset, group in per_slice.groupby("subset"):
        means = stats.per_patient_means(group[["patient", "dice"]])["dice"].to_numpy()
        estimate, low, high = stats.bootstrap_ci(means)
        check[subset] = {"patients": len(means), "dice": {"mean": estimate, "ci95": [low, high]}}
    return check | {"slices": per_slice.to_dict("records")}


def input_size_ceiling(slice_folder, sizes=(128, 256)) -> dict[tuple[int, str], dict[str, float]]:
    """What the input size alone costs: a perfect prediction at ``size`` x ``size`` brought back to
    each full-size mask of ``slice_folder`` and scored against it; mean Dice per size and way back,
    binary (foreground) and 4-class (mean over vertebra, disc and canal). ``"nearest"``: the true
    label map at that size resized back nearest-neighbour; ``"linear"``: each class's share of every
    pixel at that size (a perfect probability map) resized back bilinearly, then the largest taken,
    as ``spine predict`` does (:data:`spine.inference.RESIZE_BACK`)."""
    from spine.data.preprocess import resize_labels

    scores = {(size, way): {"binary": [], "multiclass": []} for size in sizes for way in inference.RESIZERS}
    for pair in find_pairs(slice_folder):
        truth = label_values_to_classes(read_slice(pair.mask), "multiclass", pair.mask)
        for size in sizes:
            perfect = {"nearest": np.eye(4, dtype=np.float32)[resize_labels(truth, size)], "linear": _class_shares(truth, size)}
            for way, back in inference.RESIZERS.items():
                labels = back(perfect[way], truth.shape)
                scores[size, way]["binary"].append(dice(labels > 0, truth > 0))
                scores[size, way]["multiclass"].append(selection_dice(truth, labels, 4))
    return {key: {task: float(np.mean(values)) for task, values in tasks.items()} for key, tasks in scores.items()}


def _class_shares(labels: np.ndarray, size: int) -> np.ndarray:
    """Each class's share of every pixel of a ``size`` x ``size`` grid laid over ``labels``."""
    return np.stack([np.asarray(Image.fromarray((labels == c).astype(np.float32)).resize((size, size), Image.Resampling.BOX))
                     for c in range(4)], axis=-1)


def lateral_coverage(slice_folder, masks_folder) -> dict:
    """How far across the patient the real training slices reach, against how far vertebrae reach.

    ``slice_folder``: the T2-SPACE slice pairs (each patient's contiguous sagittal slices around the
    mid-line, numbered in the file names); ``masks_folder``: SPIDER ``<patient>_<sequence>.mha``
    masks, whose T2-SPACE series give the spacing between those slices and whose every series
    gives the left-right extent of its vertebra labels (sagittal slices holding any vertebra
    times the sagittal spacing). Returns ``{"training_mm": [...], "vertebra_mm": {sequence:
    [...]}}``, each a [smallest, median, largest] over patients or series, in millimetres.
    """
    per_patient = {}
    for pair in find_pairs(slice_folder):
        low, high = per_patient.get(pair.patient, (pair.index, pair.index))
        per_patient[pair.patient] = (min(low, pair.index), max(high, pair.index))
    extents, t2space_spacings = {}, []
    for path in sorted(Path(masks_folder).glob("*.mha")):
        mask = sagittal_view(sitk.ReadImage(str(path)))  # index x runs left-right: array axis 2
        spacing = mask.GetSpacing()[0]
        vertebra = spider_structures(sitk.GetArrayViewFromImage(mask)) == VERTEBRA
        holding = np.count_nonzero(vertebra.any(axis=(0, 1)))
        sequence = path.stem.split("_", 1)[1]
        extents.setdefault(sequence, []).append(holding * spacing)
        if sequence.lower() == "t2_space":
            t2space_spacings.append(spacing)
    if not t2space_spacings:
        raise DataError(masks_folder, "no T2-SPACE mask (*_t2_SPACE.mha) to take the slice spacing from")
    spacing = float(np.median(t2space_spacings))
    widths = [(high - low + 1) * spacing for low, high in per_patient.values()]
    return {"training_mm": _spread(widths), "slice_spacing_mm": spacing,
            "vertebra_mm": {sequence: _spread(values) for sequence, values in sorted(extents.items())}}


def _spread(values) -> list[float]:
    return [float(np.min(values)), float(np.median(values)), float(np.max(values))]


def _by_sequence(scores: pd.DataFrame) -> dict:
    figures = [key for key in ("dice", "vertebra_dice") if key in scores]
    return {sequence: {"cases": len(group), **{key: float(group[key].mean()) for key in figures}}
            for sequence, group in scores.groupby("sequence")}


def transfer_check(model, t1t2_folder=None) -> dict:
    """The check's summary: phantom T1 / T2 mean Dice (and vertebra Dice) on the central slice and
    over every slice, and, where the folder is given, the real T1/T2 slices (:func:`summarize`, and
    each slice's figures)."""
    model = _model(model)
    result = {"phantom_patients": [PHANTOM_CHECK_PATIENTS.start, PHANTOM_CHECK_PATIENTS.stop - 1],
              "phantom": _by_sequence(phantom_scores(model)),
              "phantom_every_slice": _by_sequence(phantom_scores(model, every_slice=True))}
    if t1t2_folder is not None:
        per_slice = t1t2_scores(model, t1t2_folder)
        result["t1t2_vertebrae"] = summarize(per_slice) | {"version": T1T2_CHECK_VERSION, "resize_back": CHECK_RESIZE_BACK}
        result["t1t2_slices"] = per_slice.to_dict("records")
        if output_classes(model) == 4:
            pairs = level_order_scores(model, t1t2_folder)
            result["t1t2_level_order"] = summarize_level_order(pairs) | {
                "rules_version": levels.RULES_VERSION, "pairs_scored": pairs.to_dict("records")}
    return result

