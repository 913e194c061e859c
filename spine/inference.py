"""Segmenting files in their native geometry (``spine predict``).

Depends on data I/O, preprocessing and a model file only, not on the experiment engine. A 2D
image is preprocessed as in the study (min-max to 8 bit, resized to the model's input, [0, 1]),
segmented, and the label map resized back (nearest neighbour) to the image's size. A volume is
reoriented to the sagittal view, every sagittal slice is segmented the same way, and the labels
are put back into the volume's own orientation with its spacing, origin and direction.
Output values are class indices: 0/1 (binary); 0 background, 1 vertebra, 2 disc, 3 canal.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine.data import geometry, io, preprocess
from spine.data.labels import check_task
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


def segment_slices(model, slices: list[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
    """Label maps for 2D slices of any size, each returned at its own size."""
    size = _input_size(model)
    batch = np.stack([preprocess.prepare_image(s, size) if np.ptp(s) > 0 else np.zeros((size, size), np.float32)
                      for s in slices])[..., None]
    return [_resize_back(lab, s.shape) for lab, s in zip(predict_labels(model, batch, batch_size), slices)]


def predict_labels(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class-index maps of the main head for prepared images ``(N, S, S, 1)``.

    Only the given images are computed (Keras' prediction graph relaxes its batch dimension
    after a second shape, so set sizes that vary do not keep re-tracing it; padding every call
    to a multiple of ``batch_size`` had cost the engine 3x the work on a small validation set).
    """
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    probabilities = outputs["mask"] if isinstance(outputs, dict) else outputs
    return np.argmax(probabilities, axis=-1).astype(np.uint8)


def _resize_back(labels: np.ndarray, shape) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(labels).resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def segment_volume(model, volume: sitk.Image, batch_size: int = 16) -> sitk.Image:
    """Segment every sagittal slice; the result has the volume's size, spacing, origin and direction."""
    original_code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(volume.GetDirection())
    oriented = geometry.sagittal_view(volume)
    array = sitk.GetArrayFromImage(oriented)  # [z, y, x]: x are the sagittal slices
    slices = [array[:, :, i] for i in range(array.shape[2])]
    labels = np.stack(segment_slices(model, slices, batch_size), axis=2)
    result = sitk.GetImageFromArray(labels)
    result.CopyInformation(oriented)
    restored = sitk.DICOMOrient(result, original_code)
    restored.CopyInformation(volume)  # the same grid, bit for bit
    return restored


def output_path(input_path, out_dir) -> Path:
    """``<out_dir>/<input name>``, with ``.png`` for 2D inputs and the input's format for volumes."""
    input_path = Path(input_path)
    name = input_path.name if io.is_volume(input_path) else input_path.stem + ".png"
    return Path(out_dir) / name


def predict_file(input_path, out_dir, model, *, overwrite: bool = False) -> Path:
    """Segment one file into ``out_dir``; never overwrites the input, nor an output unless asked."""
    input_path = Path(input_path)
    target = output_path(input_path, out_dir)
    if target.resolve() == input_path.resolve():
        raise DataError(target, "the output would overwrite the input; choose another --out folder")
    if target.exists() and not overwrite:
        raise DataError(target, "output exists; pass --overwrite to replace it")
    if io.is_volume(input_path):
        volume = io.read_volume(input_path)
        preprocess.check_finite(sitk.GetArrayViewFromImage(volume), input_path)  # else NaN slices pass as blank
        io.write_volume(segment_volume(model, volume), target)
    elif io.is_slice(input_path):
        image = io.read_slice(input_path)
        preprocess.to_uint8(image, input_path)  # NaN or constant images are refused here
        io.write_slice(segment_slices(model, [image])[0], target)
    else:
        raise DataError(input_path, f"unsupported input; give a 2D image ({', '.join(io.SLICE_SUFFIXES)}) "
                                    f"or a 3D volume ({', '.join(io.VOLUME_SUFFIXES)})")
    return target
