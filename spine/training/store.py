"""The results store: one folder per finished run, named by the run's hash.

``<store>/<run_id>/`` holds ``config.json`` (what determined the run), ``metrics.json``
(validation and test summaries, intervals, conventions), ``per_image.csv`` and
``per_patient.csv`` (test metrics per image and per patient), ``predictions.npz`` (the test label
maps), ``history.csv`` (per epoch), ``environment.json`` (versions, code version, hardware,
precision, wall time) and ``model.keras`` (the weights selected on validation; kept out of git).
Beside the runs, ``folds/`` holds the cross-validation manifests and ``inputs/`` each fold's test
inputs and references (SPIDER-derived, CC BY 4.0), written once per fold. A folder without
``metrics.json`` is an unfinished run that ``--resume`` continues.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spine.data.io import atomic_path
from spine.errors import ConfigError, DataError
from spine.training.config import RECORD_VERSION, RunConfig

DEFAULT_STORE = Path("results")
RECORD_FILES = ("config.json", "metrics.json", "per_image.csv", "per_patient.csv", "history.csv", "environment.json",
                "predictions.npz")


@dataclass
class Record:
    """A finished run read back from the store."""

    path: Path
    config: RunConfig
    metrics: dict

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    def per_image(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "per_image.csv")

    def history(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "history.csv")

    def per_patient(self) -> pd.DataFrame:
        """Test metrics per patient (records of format 2 on; older ones have per-image rows only)."""
        return pd.read_csv(self.path / "per_patient.csv", dtype={"patient": str})

    def predictions(self) -> dict:
        """The stored test label maps (``labels``, ``case_ids``), records of format 2 on."""
        return _read_arrays(self.path / "predictions.npz")


def run_dir(store, config: RunConfig) -> Path:
    return Path(store) / config.run_id


def write_json(path, payload) -> None:
    """Atomic JSON (NaN written as null, so the files are valid JSON for any reader)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_nan_to_none(payload), indent=2, sort_keys=False) + "\n")


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def none_to_nan(value):
    """The inverse of :func:`write_json`'s NaN -> null, for files whose nulls are all missing figures."""
    if isinstance(value, dict):
        return {k: none_to_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [none_to_nan(v) for v in value]
    return float("nan") if value is None else value


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(path, f"damaged: not JSON ({error})") from None


def is_finished(path) -> bool:
    return (Path(path) / "metrics.json").is_file()


def load_record(path) -> Record:
    path = Path(path)
    if not is_finished(path):
        raise ConfigError(f"{path}: not a finished run (no metrics.json)")
    config, metrics = read_json(path / "config.json"), read_json(path / "metrics.json")
    try:
        config = RunConfig.from_dict(config)
    except (KeyError, TypeError) as error:
        raise DataError(path / "config.json", f"damaged: not a run's configuration ({error!r} missing or wrong)") from None
    if not isinstance(metrics, dict) or "test" not in metrics:
        raise DataError(path / "metrics.json", "damaged: no test figures")
    return Record(path, _locate_data(config, path.parent), metrics)


def _locate_data(config: RunConfig, store: Path) -> RunConfig:
    """A relative data path in a record is relative to where the run was started, usually the
    folder that holds the store (``spine study ... --out results`` from the repository): when the
    path does not exist from here, the store's parent is tried, so that a chapter running in
    ``notebooks/`` finds the data of a committed record."""
    data = Path(config.data)
    if config.data == "phantom" or config.data.startswith("phantom:") or data.is_absolute() or data.exists():
        return config
    beside = store.resolve().parent / data
    return dataclasses.replace(config, data=str(beside.resolve())) if beside.exists() else config


def find_record(store, config: RunConfig) -> Record | None:
    path = run_dir(store, config)
    return load_record(path) if is_finished(path) else None


def records(store) -> list[Record]:
    """Every finished run in the store."""
    store = Path(store)
    if not store.is_dir():
        return []
    return [load_record(p) for p in sorted(store.iterdir()) if is_finished(p)]


def check_writable(store) -> Path:
    """Create the store if needed; a store that cannot be written is a one-line error."""
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{store}: cannot create the results folder ({exc.strerror})") from None
    if not os.access(store, os.W_OK):
        raise ConfigError(f"{store}: the results folder is not writable")
    return store


def environment(wall_seconds: float) -> dict:
    """Versions, hardware and the code (:func:`code_version`) of this run, for its record."""
    import keras
    import numpy
    import tensorflow as tf

    import spine

    return {
        "spine": spine.__version__, "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "wall_seconds": round(wall_seconds, 1), **code_version(),
    }


def code_version() -> dict:
    """The code that made a record: package version, record format, git commit and whether the
    package's tracked files differed from that commit (``None`` outside a git checkout)."""
    import spine

    root = Path(spine.__file__).resolve().parent.parent

    def git(*args) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "spine") if commit else None
    version = {"spine_version": spine.__version__, "record_version": RECORD_VERSION, "git_commit": commit,
               "git_dirty": None if dirty is None else bool(dirty)}
    if dirty:  # the record keeps what differed from the commit, so that the code that ran can be rebuilt
        diff = git("diff", "HEAD", "--", "spine") or ""
        version |= {"git_diff": diff, "git_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()}
    return version


def record_code(record: Record) -> str:
    """The code version a record names, in a few words: ``"spine 0.1.0, 4f942519"`` (``", dirty"``
    when the package differed from that commit), or ``"not recorded"`` for records made before
    the environment kept it."""
    env = read_json(record.path / "environment.json") if (record.path / "environment.json").is_file() else {}
    if not env.get("git_commit"):
        return "not recorded"
    return f"spine {env.get('spine_version', '?')}, {env['git_commit'][:8]}" + (", dirty" if env.get("git_dirty") else "")


# --------------------------------------------------------------------------- the records without the data

RECORDED = "recorded"  # the data source that names "the real-data records of the store" (see recorded_source)
RECORDED_PREFIX = "recorded:"  # a source "recorded:<data_id>" names data by its content id, without the data


def recorded_data_id_of(source: str) -> str | None:
    """The data id a source of the form ``recorded:<data_id>`` names, else ``None``."""
    source = str(source)
    return source[len(RECORDED_PREFIX):] or None if source.startswith(RECORDED_PREFIX) else None


def recorded_data_ids(store, profile: str = "cpu") -> Counter:
    """How many finished current-format runs at ``profile`` the store holds per data id, the phantom's left
    out (reads each run's ``config.json`` only)."""
    counts: Counter = Counter()
    store = Path(store)
    if not store.is_dir():
        return counts
    for folder in sorted(store.iterdir()):
        if not (is_finished(folder) and (folder / "config.json").is_file()):
            continue
        config = read_json(folder / "config.json")
        if (config.get("record_version") == RECORD_VERSION and config.get("profile") == profile
                and not str(config.get("data_id", "")).startswith("phantom")):
            counts[config["data_id"]] += 1
    return counts


def recorded_source(store, profile: str = "cpu") -> str | None:
    """The store's real-data records as a data source, ``"recorded:<data_id>"`` (the data id with the
    most current-format runs at ``profile``; ties go to the first name), or ``None`` when it has none.

    ``engine.make_config`` and every grid function of ``spine.training.studies`` accept it in place
    of a data folder, so that a checkout without the data (a fresh clone) still finds and reads the
    committed records: their run ids depend on the data's content id, not on where the data are."""
    counts = recorded_data_ids(store, profile)
    if not counts:
        return None
    best = max(counts.values())
    return RECORDED_PREFIX + min(data_id for data_id, n in counts.items() if n == best)


def inputs_path(config: RunConfig, store) -> Path:
    """Where the store keeps the test inputs of a run's fold (shared by every run of that fold)."""
    settings = config.settings
    name = (f"k{settings['folds']}-seed{settings['split_seed']}-fold{config.fold}"
            f"-{settings['eval_slices_per_patient']}slices.npz")
    return Path(store) / "inputs" / config.data_id / name


def _stored_slices(arrays: dict, source: str, data_id: str):
    """A :class:`spine.data.SliceSet` from the arrays of a committed inputs file (images back in [0, 1])."""
    from spine.data.dataset import SliceSet

    return SliceSet(images=arrays["images"].astype(np.float32)[..., None] / 255.0, structures=arrays["structures"],
                    instances=arrays["structures"].astype(np.int16), spacing=arrays["spacing"],
                    case_ids=arrays["case_ids"], patients=arrays["patients"], slice_index=arrays["slice_index"],
                    source=source, data_id=data_id)


def _read_arrays(path: Path) -> dict:
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


def recorded_inputs(config: RunConfig, store):
    """The test slices of a run's fold as the store keeps them (``inputs/``), as a
    :class:`spine.data.SliceSet` (images back in [0, 1]); ``None`` where the store has none (records of
    the first format, or a fold not recorded)."""
    path = inputs_path(config, store)
    if config.record_version < 2 or not path.is_file():
        return None
    return _stored_slices(_read_arrays(path), str(path), config.data_id)


def recorded_slices(store, data_id: str):
    """Every fold's committed test inputs of ``data_id`` as one :class:`spine.data.SliceSet` (each
    patient once: the folds' test patients do not overlap), or ``None`` when the store has none."""
    folder = Path(store) / "inputs" / data_id
    parts = [_read_arrays(path) for path in sorted(folder.glob("*.npz"))]
    if not parts:
        return None
    joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    return _stored_slices(joined, str(folder), data_id)
