"""Prepared datasets: any source -> arrays at the study's resolution, cached on disk.

A *source* is ``"phantom"`` (the embedded default; ``"phantom:N"`` for N patients), ``"spider"``
(the download of ``spine fetch spider``), a SPIDER
archive folder (``images/`` + ``masks/`` of ``.mha`` volumes; the study's protocol: one
sequence, central sagittal slice) or a slice folder (``images/`` + ``masks/`` PNG pairs). The
layout is detected; a folder of neither layout gets a clear error.

The prepared arrays are cached as ``.npz`` under :func:`cache_dir`, keyed by a hash of the
inputs (file names, sizes and modification times, sequence, size, package data version) and
written atomically, so an interrupted preparation never leaves a half-written cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from spine.data import bodies, labels, preprocess, slices, spider
from spine.data.io import SLICE_SUFFIXES, VOLUME_SUFFIXES, atomic_path, cache_dir, read_slice, suffix
from spine.errors import DataError

DATA_VERSION = 1  # bump when preparation changes, so stale caches are not reused
PHANTOM_PATIENTS = 60
PHANTOM_SEED = 0
# Phantom patients lent to other uses (patient p is the same case in any archive of p or more):
# 1-20 are held out for the transfer check (never trained on), 21-100 may be mixed into a
# real-data training set.
PHANTOM_CHECK_PATIENTS = range(1, 21)
PHANTOM_MIX_PATIENTS = range(21, 101)


@dataclass
class SliceSet:
    """2D samples at ``size`` x ``size``, one row per slice.

    ``structures`` holds 0 background, 1 vertebra, 2 disc, 3 canal; ``instances`` the SPIDER
    instance values where the source has them (structure codes otherwise); ``spacing`` the
    (row, column) pixel size in mm at this resolution (NaN where the source does not store it).
    """

    images: np.ndarray  # (N, S, S, 1) float32 in [0, 1]
    structures: np.ndarray  # (N, S, S) uint8
    instances: np.ndarray  # (N, S, S) int16
    spacing: np.ndarray  # (N, 2) float
    case_ids: np.ndarray  # (N,) str
    patients: np.ndarray  # (N,) str
    slice_index: np.ndarray  # (N,) int, -1 where not known
    source: str = ""
    data_id: str = ""  # names the data (not the path): layout, file names and sizes, sequence, size
    data_sha256: str = ""  # the bytes of every file (images and masks, the phantom's written ones too), in order
    skipped: list = field(default_factory=list)  # [(file, problem)] when asked to skip bad cases

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return self.images.shape[1]

    def labels(self, task: str) -> np.ndarray:
        """Class-index maps for ``task`` ("binary" or "multiclass")."""
        return labels.structures_to_classes(self.structures, task)

    def targets(self, task: str) -> dict[str, np.ndarray]:
        """One-hot targets for the main head and the 8 x 8 auxiliary head."""
        classes = self.labels(task)
        count = labels.num_classes(task)
        return {"mask": preprocess.one_hot(classes, count), "aux": preprocess.aux_target(classes, count)}

    def select(self, keep) -> "SliceSet":
        """The rows where ``keep`` (a boolean mask or index array) holds."""
        arrays = {f.name: getattr(self, f.name)[keep] for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        return replace(self, **arrays)

    def central(self, per_patient: int = 1) -> "SliceSet":
        """The ``per_patient`` slices nearest each patient's middle slice (all, if indices are unknown)."""
        return self.select(central_rows(self.patients, self.slice_index, per_patient))


def central_rows(patients, slice_index, per_patient: int = 1) -> np.ndarray:
    """Where the ``per_patient`` slices nearest each patient's middle slice lie (a boolean mask)."""
    patients, slice_index = np.asarray(patients), np.asarray(slice_index)
    keep = np.zeros(len(patients), dtype=bool)
    for patient in np.unique(patients):
        rows = np.flatnonzero(patients == patient)
        index = slice_index[rows]
        order = np.argsort(np.abs(index - np.median(index)), kind="stable")
        keep[rows[order[:per_patient]]] = True
    return keep


def concat(*sets: SliceSet) -> SliceSet:
    """The rows of several slice sets of one size, in order (their sources and data ids joined)."""
    arrays = {f.name: np.concatenate([getattr(s, f.name) for s in sets]) for f in fields(SliceSet)
              if isinstance(getattr(sets[0], f.name), np.ndarray)}
    return SliceSet(**arrays, source=" + ".join(s.source for s in sets), data_id=" + ".join(s.data_id for s in sets),
                    skipped=[item for s in sets for item in s.skipped])


def phantom_slices(sequence: str, patients, size: int = preprocess.STUDY_SIZE, *,
                   every_slice: bool = False) -> SliceSet:
    """The central slices of phantom ``patients`` (numbers of one archive; only their cases are
    made, once, and cached) rendered as ``sequence``, in the order of their numbers, or with
    ``every_slice`` all their sagittal slices, lateral ones too (case ids ``<case>_x<k>``, k counted
    from the right; constant slices left out); patients and case ids are prefixed ``phantom-`` so
    that they never meet a real patient's."""
    root = phantom_archive(max(patients), PHANTOM_SEED, sequence, only=patients)
    series = [s for s in spider.find_series(root, sequence) if int(s.patient) in patients]
    if every_slice:
        dataset = _prepare(_sagittal_slices(series), _read_volume_slice, size, "raise",
                           description=f"phantom:{max(patients)} every sagittal slice")
    else:
        dataset = _prepare(series, _read_series, size, "raise", description=f"phantom:{max(patients)}")
    dataset.patients = np.char.add("phantom-", dataset.patients.astype(str))
    dataset.case_ids = np.char.add("phantom-", dataset.case_ids.astype(str))
    return dataset


def _sagittal_slices(series_list):
    """(series, k, image, mask, spacing) for every non-constant sagittal slice of each series."""
    for series in series_list:
        images, masks, spacing = spider.read_series_slices(series)
        for k, (image, mask) in enumerate(zip(images, masks)):
            if image.max() > image.min():
                yield series, k, image, mask, spacing


def _read_volume_slice(item):
    series, k, image, mask, spacing = item
    preprocess.check_pair(image, mask, series.mask)
    return image, labels.spider_structures(mask), mask, spacing, f"{series.case_id}_x{k}", series.patient, k, series.image


def resolve_source(source):
    """``"spider"``: the folder ``spine fetch spider`` unpacked; any other source unchanged."""
    if str(source) != "spider":
        return source
    from spine.data.fetch import COMPLETE, spider_dir  # pooch and requests, only where a download is looked for

    folder = spider_dir()
    if not (folder / COMPLETE).is_file():
        raise DataError("spider", f"SPIDER is not downloaded (expected in {folder}); run `spine fetch spider`")
    return folder


def detect_layout(source) -> str:
    """``"phantom"``, ``"spider"`` (volumes), ``"slices"`` (2D pairs) or ``"bodies"`` (volumes with
    their vertebral bodies labelled, :mod:`spine.data.bodies`); otherwise :class:`DataError`."""
    if str(source).split(":")[0] == "phantom":
        return "phantom"
    root = Path(resolve_source(source))
    if not root.is_dir():
        raise DataError(root, "data source not found (give 'phantom', a SPIDER archive or a slice folder)")
    if bodies.is_bodies_folder(root):
        return "bodies"
    images = root / "images"
    if not images.is_dir() or not (root / "masks").is_dir():
        raise DataError(root, "not a dataset folder: expected images/ and masks/ sub-folders "
                              "(a SPIDER archive of .mha volumes, or PNG slice pairs), or <exam>.nii.gz "
                              f"volumes with <exam>{bodies.MASK_SUFFIX} body masks")
    kinds = {suffix(p) for p in images.iterdir()}
    if kinds & set(VOLUME_SUFFIXES):
        return "spider"
    if kinds & set(SLICE_SUFFIXES):
        return "slices"
    raise DataError(images, "holds neither volumes (.mha, .nii.gz) nor 2D images (.png)")


def load_dataset(source="phantom", *, sequence: str = "t1", size: int = preprocess.STUDY_SIZE,
                 on_error: str = "raise", use_cache: bool = True,
                 slice_spacing: tuple[float, float] | None = None) -> SliceSet:
    """Prepare (or load from the cache) the 2D samples of a source.

    PNG slices store no pixel spacing: give ``slice_spacing`` (row, column) in mm of the files
    as they are (SPIDER's T2-SPACE slices: about 0.47 x 0.47) to get millimetre distances.

    ``on_error="skip"`` turns a bad case into a warning and a row of ``SliceSet.skipped``;
    the default raises :class:`DataError` naming the file.
    """
    source = resolve_source(source)
    layout = detect_layout(source)
    if layout == "phantom":
        source = phantom_archive(*_phantom_args(str(source)), sequence=sequence)
    if layout == "slices":
        inputs = slices.find_pairs(source)
        reader = functools.partial(_read_pair, spacing=slice_spacing or (np.nan, np.nan))
    elif layout == "bodies":
        exams = bodies.find_exams(source)
        inputs, reader = bodies.exam_slices(exams), _read_body_slice
    else:
        inputs, reader = spider.find_series(source, sequence), _read_series
    # The phantom is named by its generator's settings (its files are deterministic from them);
    # real data by the names and sizes of its files.
    listed = exams if layout == "bodies" else inputs  # what holds the files (image and mask) behind the inputs
    files = [] if layout == "phantom" else listed
    identity = _content_key(layout, files, sequence, size, on_error, slice_spacing)
    data_id = f"{Path(source).name if layout == 'phantom' else layout + '-' + Path(source).name}-{identity}"
    path = cache_dir() / f"prepared-{_cache_key(identity, source, listed)}.npz"
    if use_cache and path.is_file():
        dataset = _load_npz(path)
        dataset.data_sha256 = dataset.data_sha256 or _bytes_digest(listed)  # a cache written before the digest
        return dataset
    dataset = _prepare(inputs, reader, size, on_error, description=f"{layout}:{Path(source).resolve()}")
    dataset.data_id, dataset.data_sha256 = data_id, _bytes_digest(listed)
    if use_cache:
        _save_npz(dataset, path)
    return dataset


def _phantom_args(source: str) -> tuple[int, int]:
    parts = source.split(":")
    try:
        count = int(parts[1]) if len(parts) > 1 else PHANTOM_PATIENTS
    except ValueError:
        raise DataError(source, "expected 'phantom' or 'phantom:N' with N a number of patients") from None
    return count, PHANTOM_SEED


def phantom_archive(n_patients: int = PHANTOM_PATIENTS, seed: int = PHANTOM_SEED, sequence: str = "t1",
                    only=None) -> Path:
    """The phantom written once as a SPIDER-layout archive in the cache (idempotent); with
    ``only`` (patient numbers), just those cases are made for now, and the archive is completed
    the first time it is asked for whole."""
    from spine.data import phantom

    root = cache_dir() / f"phantom-v{DATA_VERSION}-{sequence}-n{n_patients}-s{seed}"
    if not (root / ".complete").is_file():
        _link_made_cases(root, n_patients, f"phantom-v{DATA_VERSION}-{sequence}-n*-s{seed}")
        phantom.write_archive(root, n_patients=n_patients, seed=seed, sequences=(sequence,), keep_existing=True,
                              only=only)
        if only is None:
            (root / ".complete").touch()
    return root


def _link_made_cases(root: Path, n_patients: int, siblings: str) -> None:
    """Hard-link into ``root`` the cases of patients 1..``n_patients`` that an archive matching
    ``siblings`` (the same sequence and seed, another size, complete or made in part) already holds:
    patient p is the same case in each, and making one takes about a second. Its files were written
    whole (atomically); a case whose mask is missing is made again."""
    for sibling in sorted(root.parent.glob(siblings)):
        if sibling == root:
            continue
        for source in sibling.glob("*/[0-9]*.mha"):  # not the hidden temporary files of a case being written
            target = root / source.parent.name / source.name
            if int(source.name.split("_")[0]) <= n_patients and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:  # another file system, or links not allowed: a copy
                    shutil.copyfile(source, target)


def _read_series(series: spider.Series):
    image, mask, spacing = spider.read_series(series)
    preprocess.check_pair(image, mask, series.mask)
    structures = labels.spider_structures(mask)
    if (structures < 0).any():
        labels.spider_to_classes(mask, "multiclass", series.mask)  # raises, naming the values
    return image, structures, mask, spacing, series.case_id, series.patient, -1, series.image


def _read_pair(pair: slices.SlicePair, spacing):
    image, mask = read_slice(pair.image), read_slice(pair.mask)
    preprocess.check_pair(image, mask, pair.mask)
    structures = labels.table_to_structures(mask, labels.SLICE_VALUE_TABLE, pair.mask)
    return image, structures, structures, spacing, pair.case_id, pair.patient, pair.index, pair.image


def _read_body_slice(item):
    exam, k, image, structures, body_labels, spacing = item
    return image, structures, body_labels, spacing, f"{exam.case_id}_x{k}", exam.patient, k, exam.image


def _prepare(inputs, reader, size, on_error, description) -> SliceSet:
    rows, skipped = [], []
    for item in inputs:
        try:
            image, structures, instances, spacing, case_id, patient, index, path = reader(item)
            prepared = preprocess.prepare_image(image, size, source=path)
        except DataError as error:
            if on_error != "skip":
                raise
            warnings.warn(f"skipped {error}", stacklevel=2)
            skipped.append((error.path, error.problem))
            continue
        scale = np.array(image.shape, dtype=float) / size
        rows.append((prepared, preprocess.resize_labels(structures, size),
                     preprocess.resize_labels(instances.astype(np.int16), size),
                     np.asarray(spacing, dtype=float) * scale, case_id, patient, index))
    if not rows:
        raise DataError(description, "no usable cases")
    columns = list(zip(*rows))
    return SliceSet(images=np.stack(columns[0])[..., None], structures=np.stack(columns[1]),
                    instances=np.stack(columns[2]), spacing=np.stack(columns[3]),
                    case_ids=np.array(columns[4]), patients=np.array(columns[5]),
                    slice_index=np.array(columns[6]), source=description, skipped=skipped)


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def _bytes_digest(inputs) -> str:
    """SHA-256 of every file's bytes behind ``inputs`` (image then mask, in order): what the id,
    made from names and sizes, cannot tell apart (a file rewritten at the same size)."""
    digest = hashlib.sha256()
    for path in (p for item in inputs for p in (item.image, item.mask)):
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest() if inputs else ""


def _content_key(layout, inputs, sequence, size, on_error, slice_spacing) -> str:
    """Same files (names and sizes) and settings -> same key, on any machine (for body volumes, the
    same partial-label rules too)."""
    files = [(p.name, p.stat().st_size) for item in inputs for p in (item.image, item.mask)]
    rules = [bodies.PARTIAL_LABELS_VERSION] if layout == "bodies" else []  # version 1 was named without it
    return _digest([DATA_VERSION, layout, sequence, size, on_error, slice_spacing, files, *rules])


def _cache_key(identity, source, inputs) -> str:
    """The content key plus where and when: a touched file is prepared again."""
    stamps = [p.stat().st_mtime_ns for item in inputs for p in (item.image, item.mask)]
    return _digest([identity, str(Path(source).resolve()), stamps])


def _save_npz(dataset: SliceSet, path: Path) -> None:
    arrays = {f.name: getattr(dataset, f.name) for f in fields(dataset)
              if isinstance(getattr(dataset, f.name), np.ndarray)}
    meta = json.dumps({"source": dataset.source, "data_id": dataset.data_id, "data_sha256": dataset.data_sha256,
                       "skipped": dataset.skipped})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, meta=np.array(meta), **arrays)


def _load_npz(path: Path) -> SliceSet:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {name: data[name] for name in data.files if name != "meta"}
    return SliceSet(**arrays, source=meta["source"], data_id=meta["data_id"], data_sha256=meta.get("data_sha256", ""),
                    skipped=[tuple(s) for s in meta["skipped"]])
