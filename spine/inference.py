"""Segmenting files in their native geometry (``spine predict``).

Depends on data I/O, preprocessing and a model file only, not on the experiment engine. A 2D
image is preprocessed as in the study (min-max to 8 bit, resized to the model's input, [0, 1]),
segmented, and the class probabilities resized back (bilinear) to the image's size, where each
pixel takes its most probable class: boundaries finer than the model's grid (a label map resized
back nearest-neighbour keeps its staircase; see :data:`RESIZE_BACK`). A volume is
reoriented to the sagittal view, every sagittal slice is segmented the same way, and the labels
are put back into the volume's own orientation with its spacing, origin and direction. A DICOM
folder is read as one series (:func:`spine.data.io.read_dicom_series`) and segmented as a volume.
Output values are class indices: 0/1 (binary); 0 background, 1 vertebra, 2 disc, 3 canal. With
levels, each input also gets its SPIDER instance map and per-level table (:mod:`spine.levels`),
made from a 4-class model's output.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from spine import levels
from spine.data import geometry, io, preprocess
from spine.data.labels import check_task, num_classes
from spine.errors import ConfigError, DataError

DEFAULT_MODELS = {"binary": "binary.keras", "multiclass": "multiclass.keras"}
WEIGHTS = Path(str(resources.files("spine").joinpath("weights")))  # where the shipped models live


def default_model_path(task: str = "binary", required: bool = True) -> Path | None:
    """The model shipped with the package for ``task``; a clear error if none is shipped (or
    ``None`` if not ``required``)."""
    path = WEIGHTS / DEFAULT_MODELS[check_task(task)]
    if not path.is_file() and not required:
        return None
    if not path.is_file():
        raise ConfigError(f"no default {task} model is shipped with this version of spine yet; "
                          "pass --model FILE (a .keras file from `spine train`)")
    return path


def model_card(task: str = "binary") -> dict:
    """The card of the shipped model for ``task``: the run it comes from (configuration, data),
    how it was chosen (on validation) and its recorded test figures (``spine export`` writes it)."""
    return json.loads(default_model_path(task).with_suffix(".json").read_text())


def shipped_input_sizes() -> dict[str, int]:
    """The input side of each shipped model, by task, from its card (tasks without a card left out)."""
    cards = {task: (WEIGHTS / name).with_suffix(".json") for task, name in DEFAULT_MODELS.items()}
    return {task: json.loads(card.read_text())["config"]["settings"]["size"] for task, card in cards.items()
            if card.is_file()}


def load_model(path=None, task: str = "binary"):
    """A segmentation model from a ``.keras`` file (default: the shipped one for ``task``)."""
    import keras

    import spine.losses  # noqa: F401  (registers the custom objects)
    import spine.models  # noqa: F401

    path = Path(path) if path else default_model_path(task)
    if not path.is_file():
        raise DataError(path, "model file not found")
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # Keras raises several kinds for a damaged archive
        raise DataError(path, f"cannot be loaded as a Keras model (corrupt or not a .keras file?): "
                              f"{str(exc).splitlines()[0][:200]}") from exc


def _input_size(model) -> int:
    return int(model.input_shape[1])


def segment_slices(model, slices: list[np.ndarray], batch_size: int = 16,
                   resize_back: str | None = None) -> list[np.ndarray]:
    """Label maps for 2D slices of any size, each returned at its own size (``resize_back``: how,
    default :data:`RESIZE_BACK`)."""
    size = _input_size(model)
    batch = np.stack([preprocess.prepare_image(s, size) if np.ptp(s) > 0 else np.zeros((size, size), np.float32)
                      for s in slices])[..., None]
    back = RESIZERS[resize_back or RESIZE_BACK]
    return [back(p, s.shape) for p, s in zip(predict_probabilities(model, batch, batch_size), slices)]


def predict_probabilities(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class probabilities ``(N, S, S, classes)`` of the main head for prepared images ``(N, S, S, 1)``.

    Only the given images are computed (Keras' prediction graph relaxes its batch dimension
    after a second shape, so set sizes that vary do not keep re-tracing it; padding every call
    to a multiple of ``batch_size`` had cost the engine 3x the work on a small validation set).
    """
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    return outputs["mask"] if isinstance(outputs, dict) else outputs


def predict_labels(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class-index maps of the main head for prepared images ``(N, S, S, 1)``, at the model's size."""
    return np.argmax(predict_probabilities(model, images, batch_size), axis=-1).astype(np.uint8)


def labels_back_nearest(probabilities: np.ndarray, shape) -> np.ndarray:
    """The most probable class at the model's size, resized to ``shape`` (nearest neighbour)."""
    from PIL import Image

    labels = Image.fromarray(np.argmax(probabilities, axis=-1).astype(np.uint8))
    return np.asarray(labels.resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def labels_back_linear(probabilities: np.ndarray, shape) -> np.ndarray:
    """Each class's probability resized to ``shape`` (bilinear), then the most probable class."""
    from PIL import Image

    resized = [np.asarray(Image.fromarray(np.ascontiguousarray(probabilities[..., c], np.float32))
                          .resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
               for c in range(probabilities.shape[-1])]
    return np.argmax(np.stack(resized, axis=-1), axis=-1).astype(np.uint8)


# How a label map at the model's size comes back to the image's. "linear" was chosen on the
# T2-SPACE validation patients of the shipped models' fold at full size (512 x 640)
# (benchmarks/resize_back.py); "nearest" is what spine predict did before.
RESIZERS = {"nearest": labels_back_nearest, "linear": labels_back_linear}
RESIZE_BACK = "linear"


def segment_volume(model, volume: sitk.Image, batch_size: int = 16, resize_back: str | None = None) -> sitk.Image:
    """Segment every sagittal slice; the result has the volume's size, spacing, origin and direction."""
    def segment(oriented):
        array = sitk.GetArrayFromImage(oriented)  # [z, y, x]: x are the sagittal slices
        slices = [array[:, :, i] for i in range(array.shape[2])]
        return np.stack(segment_slices(model, slices, batch_size, resize_back), axis=2)

    return _in_sagittal_view(volume, segment)


def _in_sagittal_view(volume: sitk.Image, label) -> sitk.Image:
    """``label(oriented)`` labels the volume in the sagittal view (a ``[z, y, x]`` array); the labels
    come back on the volume's own grid."""
    original_code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(volume.GetDirection())
    oriented = geometry.sagittal_view(volume)
    result = sitk.GetImageFromArray(label(oriented))
    result.CopyInformation(oriented)
    restored = sitk.DICOMOrient(result, original_code)
    restored.CopyInformation(volume)  # the same grid, bit for bit
    return restored


def output_classes(model) -> int:
    """How many classes ``model`` segments (the channels of its outputs)."""
    shapes = model.output_shape
    shapes = list(shapes.values()) if isinstance(shapes, dict) else shapes
    last = shapes[-1] if isinstance(shapes[0], (tuple, list)) else shapes
    return last[-1]


def levels_model(model):
    """The model for per-level labels: ``model`` if it segments the 4 classes, else the shipped 4-class one."""
    return model if output_classes(model) == num_classes("multiclass") else load_model(task="multiclass")


def output_path(input_path, out_dir, tag: str = "", kind: str | None = None) -> Path:
    """``<out_dir>/<input name><tag><kind>``; by default ``kind`` is ``.png`` for 2D inputs, the
    input's format for volumes and ``.nii.gz`` for a DICOM folder."""
    input_path = Path(input_path)
    if input_path.is_dir():
        stem, own = input_path.resolve().name, ".nii.gz"
    elif io.is_volume(input_path):
        stem = input_path.name[: -len(io.suffix(input_path))]
        own = input_path.name[len(stem):]
    else:
        stem, own = input_path.stem, ".png"
    return Path(out_dir) / f"{stem}{tag}{kind or own}"


def predict_file(input_path, out_dir, model, *, overwrite: bool = False, series: str | None = None,
                 levels_with=None) -> Path:
    """Segment one file or DICOM folder into ``out_dir``; never overwrites the input, nor an output
    unless asked. ``series``: the DICOM series to read from a folder holding several.
    ``levels_with``: a 4-class model (:func:`levels_model`); also write ``<name>_levels.<format>``
    and ``<name>_levels.csv``. Everything is computed before anything is written."""
    input_path = Path(input_path)
    targets = [output_path(input_path, out_dir)]
    if levels_with is not None:
        targets += [output_path(input_path, out_dir, "_levels"), output_path(input_path, out_dir, "_levels", ".csv")]
    for target in targets:
        if target.resolve() == input_path.resolve():
            raise DataError(target, "the output would overwrite the input; choose another --out folder")
        if target.exists() and not overwrite:
            raise DataError(target, "output exists; pass --overwrite to replace it")
    if input_path.is_dir() or io.is_volume(input_path):
        volume = io.read_dicom_series(input_path, series) if input_path.is_dir() else io.read_volume(input_path)
        preprocess.check_finite(sitk.GetArrayViewFromImage(volume), input_path)  # else NaN slices pass as blank
        outputs = [segment_volume(model, volume)]
        if levels_with is not None:
            outputs += list(volume_levels(levels_with, volume, outputs[0] if levels_with is model else None, input_path))
        write = io.write_volume
    elif io.is_slice(input_path):
        image = io.read_slice(input_path)
        preprocess.to_uint8(image, input_path)  # NaN or constant images are refused here
        outputs = segment_slices(model, [image])
        if levels_with is not None:
            classes = outputs[0] if levels_with is model else segment_slices(levels_with, [image])[0]
            outputs += levels.slice_levels(classes, source=input_path)
        write = io.write_slice
    else:
        raise DataError(input_path, f"unsupported input; give a 2D image ({', '.join(io.SLICE_SUFFIXES)}), "
                                    f"a 3D volume ({', '.join(io.VOLUME_SUFFIXES)}) or a DICOM folder")
    for output, target in zip(outputs, targets):
        if target.suffix == ".csv":
            _write_table(output, target)
        else:
            write(output, target)
    return targets[0]


def volume_levels(model, volume: sitk.Image, classes: sitk.Image | None = None,
                  source="volume") -> tuple[sitk.Image, pd.DataFrame]:
    """``spine predict --levels`` on a volume: the instance map (on the volume's grid) and the per-level
    table, from ``classes`` (the 4-class map of ``volume``) or, without it, from segmenting it."""
    table = []

    def label(oriented):
        instances, found = levels.volume_levels(oriented, source)
        table.append(found)
        return instances

    classes = classes if classes is not None else segment_volume(model, volume)
    return _in_sagittal_view(classes, label), table[0]


def _write_table(table, path) -> None:
    with io.atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")
