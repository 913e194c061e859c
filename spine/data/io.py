"""Reading and writing image files: volumes through SimpleITK (MetaImage, NRRD, DICOM series) and
nibabel (NIfTI), 2D slices through Pillow. Every reader names the file in its error; every writer is
atomic (a temporary file in the target folder, renamed into place), so nothing is half-written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from PIL import Image, UnidentifiedImageError

from spine.errors import DataError

VOLUME_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nii", ".nii.gz")
SLICE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# NIfTI stores RAS+ world coordinates; ITK (and so SimpleITK) uses LPS+.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def suffix(path) -> str:
    """The file's type suffix, lower case, with ``.nii.gz`` kept whole."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def is_volume(path) -> bool:
    return suffix(path) in VOLUME_SUFFIXES


def is_slice(path) -> bool:
    return suffix(path) in SLICE_SUFFIXES


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir() -> Path:
    """``$SPINE_CACHE`` if set, else ``~/.cache/spine``: prepared arrays, downloads, models rebuilt."""
    return Path(os.environ.get("SPINE_CACHE", Path.home() / ".cache" / "spine"))


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix(path))
    os.close(handle)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide outputs from other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _require_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    return path


def read_volume(path) -> sitk.Image:
    """Read a 3D image with its geometry (spacing, origin, direction in LPS) as a SimpleITK image."""
    path = _require_file(path)
    if suffix(path) not in VOLUME_SUFFIXES:
        raise DataError(path, f"not a volume file (expected one of {', '.join(VOLUME_SUFFIXES)})")
    try:
        image = _read_nifti(path) if suffix(path) in (".nii", ".nii.gz") else sitk.ReadImage(str(path))
    except DataError:
        raise
    except Exception as exc:  # SimpleITK raises RuntimeError, nibabel several kinds
        raise DataError(path, f"cannot be read as an image (corrupt or truncated?): {_first_line(exc)}") from exc
    if image.GetDimension() != 3:
        raise DataError(path, f"expected a 3D volume, found {image.GetDimension()} dimensions")
    return image


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def read_dicom_series(folder, series: str | None = None) -> sitk.Image:
    """The DICOM series in ``folder`` (through GDCM) as a 3D image with its geometry.

    One series: it is read; several: ``series`` (a SeriesInstanceUID) must choose one, and the
    error lists them. GDCM silently leaves out files it cannot parse, which would give a volume
    with a slice missing and a wrong spacing; so a ``.dcm`` file, or one with the DICOM magic
    (``DICM`` at byte 128), that no series holds is refused by name, and so is a series whose
    slices are unevenly spaced (a file missing).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder")
    with _quiet_itk():
        found = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
                 for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))}
    held = {Path(name).resolve() for names in found.values() for name in names}
    for path in sorted(folder.iterdir()):
        if path.resolve() not in held and _looks_like_dicom(path):
            raise DataError(path, "cannot be read as DICOM (broken or truncated?); remove it or replace it")
    if not found:
        raise DataError(folder, "no DICOM series in this folder")
    if series is None and len(found) > 1:
        raise DataError(folder, f"holds {len(found)} DICOM series; choose one with --series UID: "
                                + ", ".join(f"{uid} ({len(names)} files)" for uid, names in found.items()))
    uid = series if series is not None else next(iter(found))
    if uid not in found:
        raise DataError(folder, f"no DICOM series {uid!r}; found: {', '.join(found)}")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(found[uid])
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as exc:
        raise DataError(folder, f"series {uid} cannot be read: {_first_line(exc)}") from exc
    if image.GetDimension() != 3:
        raise DataError(folder, f"series {uid}: expected a 3D volume, found {image.GetDimension()} dimensions")
    _check_even_slices(reader, image, folder, uid)
    return image


def _check_even_slices(reader: sitk.ImageSeriesReader, image: sitk.Image, folder, uid: str) -> None:
    """Refuse a series whose slice positions (ImagePositionPatient) are unevenly spaced: a file is
    missing, and the volume's spacing would be wrong (ITK only warns)."""
    key = "0020|0032"
    if not all(reader.HasMetaDataKey(i, key) for i in range(image.GetDepth())):
        return
    normal = np.asarray(image.GetDirection()).reshape(3, 3)[:, 2]
    heights = np.sort([np.asarray(reader.GetMetaData(i, key).split("\\"), dtype=float) @ normal
                       for i in range(image.GetDepth())])
    gaps = np.diff(heights)
    if len(gaps) and np.ptp(gaps) > 0.1 * np.median(gaps):
        raise DataError(folder, f"series {uid}: slices are unevenly spaced ({gaps.min():.2f} to {gaps.max():.2f} mm "
                                "apart); is a file missing?")


def _looks_like_dicom(path: Path) -> bool:
    if not path.is_file() or path.name.upper() == "DICOMDIR":
        return False
    if path.suffix.lower() == ".dcm":
        return True
    with open(path, "rb") as handle:
        return handle.read(132)[128:] == b"DICM"


@contextlib.contextmanager
def _quiet_itk():
    """ITK prints warnings (no series found, uneven slices) to stderr; the errors raised here say it."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _read_nifti(path: Path) -> sitk.Image:
    nifti = nib.load(str(path))
    data = np.asanyarray(nifti.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(path, f"expected a 3D volume, found shape {data.shape}")
    zooms = np.asarray(nifti.header.get_zooms()[:3], dtype=float)
    affine = nifti.affine
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
    image.SetSpacing(tuple(zooms))
    image.SetDirection(tuple((_RAS_TO_LPS @ affine[:3, :3] / zooms).ravel()))
    image.SetOrigin(tuple(_RAS_TO_LPS @ affine[:3, 3]))
    return image


def write_volume(image: sitk.Image, path) -> Path:
    """Write a SimpleITK image atomically; ``.nii``/``.nii.gz`` through nibabel, others through SimpleITK."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if suffix(path) in (".nii", ".nii.gz"):
            _write_nifti(image, tmp)
        else:
            sitk.WriteImage(image, str(tmp), useCompression=True)
    return path


def _write_nifti(image: sitk.Image, path: Path) -> None:
    data = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    spacing = np.asarray(image.GetSpacing())
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = _RAS_TO_LPS @ direction * spacing
    affine[:3, 3] = _RAS_TO_LPS @ np.asarray(image.GetOrigin())
    nifti = nib.Nifti1Image(data, affine)
    nifti.header.set_zooms(tuple(spacing))
    nib.save(nifti, str(path))


def read_slice(path) -> np.ndarray:
    """Read a 2D image file (PNG, ...) as a 2D array; colour images are converted to grey."""
    path = _require_file(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("L", "I", "I;16", "F", "1", "P"):
                image = image.convert("L")
            array = np.array(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(path, f"cannot be read as an image (corrupt or truncated?): {exc}") from exc
    if array.ndim != 2:
        raise DataError(path, f"expected a 2D grey image, found shape {array.shape}")
    return array


def write_slice(array: np.ndarray, path) -> Path:
    """Write a 2D uint8/uint16 array as a PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(array)).save(tmp, format="PNG")
    return path


def read_label_array(path) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """A label map from any supported file, in NumPy axis order, with its spacing (None for 2D files).

    Volumes come back as ``[z, y, x]`` arrays with the spacing in the same order.
    """
    if is_volume(path):
        image = read_volume(path)
        return sitk.GetArrayFromImage(image), tuple(reversed(image.GetSpacing()))
    if is_slice(path):
        return read_slice(path), None
    raise DataError(path, f"unsupported file type {suffix(path)!r}; expected one of "
                          f"{', '.join(VOLUME_SUFFIXES + SLICE_SUFFIXES)}")
