"""Profiles (data in ``spine/profiles.toml``) and the run configuration that names a run.

A run is determined by its model, loss, task, data identity, resolved profile, seed, fold,
augmentation mode and the record format (:data:`RECORD_VERSION`). :attr:`RunConfig.run_id` is a
hash of exactly those, so the same request finds the same record, any change makes a new one, and
records written by older code (another format) are never silently reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from importlib import resources

from spine.errors import ConfigError

PROFILE_FIELDS = {
    "width": int, "epochs": int, "batch_size": int, "learning_rate": float, "size": int,
    "bn_momentum": float, "dropout": float, "aux_weight": float, "train_slices_per_patient": int,
    "eval_slices_per_patient": int, "max_train_images": int, "split_seed": int, "folds": int,
    "lr_schedule": str, "warmup_epochs": float, "precision": str, "checkpoint_every": int,
}
# What records of the first format (which lacked these fields) were trained with.
LEGACY_SETTINGS = {"folds": 0, "lr_schedule": "constant", "warmup_epochs": 0.0, "precision": "float32",
                   "checkpoint_every": 1}
# Settings of a run that adds a partially labelled source (RunConfig.partial), beside the profile's:
#   partial_stride  every k-th sagittal slice of each partially labelled exam (1 mm apart) is trained on
#   partial_select  the epoch kept: "best" (the best T2-SPACE validation Dice, as every run) or "last"
#                   (the validation Dice does not see the partially labelled source, which a fine-tuning
#                   is for: its epoch-to-epoch differences there are 1e-4, noise, and once kept epoch 1 of 4)
PARTIAL_FIELDS = {"partial_stride": int, "partial_fold": int, "partial_select": str}
PARTIAL_SELECT = ("best", "last")
# partial_fold (which fold of the partially labelled exams this run holds out) defaults to the run's
# own fold and partial_select to "best"; each is stored only where it differs, so the runs made
# before it keep their ids.
PARTIAL_DEFAULTS = {"partial_stride": 2}
LR_SCHEDULES = ("constant", "cosine")
# What a field's value must be, so that a bad --set value stops before any work.
RANGES = {
    "width": (lambda v: v >= 1, "at least 1"), "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"), "learning_rate": (lambda v: v > 0, "more than 0"),
    "size": (lambda v: v >= 16 and v % 16 == 0, "a multiple of 16 (four 2 x 2 poolings), at least 16"),
    "bn_momentum": (lambda v: 0 <= v < 1, "in [0, 1)"), "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "aux_weight": (lambda v: v >= 0, "at least 0"), "train_slices_per_patient": (lambda v: v >= 0, "at least 0"),
    "eval_slices_per_patient": (lambda v: v >= 1, "at least 1"), "max_train_images": (lambda v: v >= 0, "at least 0"),
    "warmup_epochs": (lambda v: v >= 0, "at least 0"), "checkpoint_every": (lambda v: v >= 1, "at least 1"),
    "partial_stride": (lambda v: v >= 1, "at least 1"),
}
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# A run's augmentation: False (none) and True (the study's) as records always stored them, so their
# ids stay; a named mode beside them. The CLI's names for each.
AUGMENT_MODES = {"none": False, "study": True, "robust": "robust", "robust-half": "robust-half",
                 "robust-lateral": "robust-lateral"}
# 2: cross-validation folds, per-patient aggregation over several central slices, stored test
# predictions, precision and learning-rate schedule in the settings.
RECORD_VERSION = 2


def profiles() -> dict[str, dict]:
    """Every profile of ``profiles.toml`` by name."""
    with resources.files("spine").joinpath("profiles.toml").open("rb") as handle:
        return tomllib.load(handle)


def resolve_profile(name: str, overrides: dict | None = None, partial: bool = False) -> dict:
    """A profile's fields with ``overrides`` applied (strings are converted to the field's type);
    with ``partial``, the :data:`PARTIAL_FIELDS` too (only then: the other runs' ids stay as they were)."""
    table = profiles()
    if name not in table:
        raise ConfigError(f"unknown profile {name!r}; valid: {', '.join(table)}")
    fields = PROFILE_FIELDS | (PARTIAL_FIELDS if partial else {})
    resolved = {key: table[name][key] for key in PROFILE_FIELDS} | (PARTIAL_DEFAULTS if partial else {})
    for key, value in (overrides or {}).items():
        if key not in fields:
            extra = f" ({', '.join(PARTIAL_FIELDS)} only with a partially labelled source)" if not partial else ""
            raise ConfigError(f"unknown profile field {key!r}; valid: {', '.join(fields)}{extra}")
        try:
            resolved[key] = fields[key](value)
        except ValueError:
            raise ConfigError(f"profile field {key}={value!r} is not a {fields[key].__name__}") from None
    if resolved["folds"] == 1 or resolved["folds"] < 0:
        raise ConfigError(f"profile field folds={resolved['folds']}: 0 (one fixed split) or 2 and more")
    _check_choice(resolved, "lr_schedule", LR_SCHEDULES)
    _check_choice(resolved, "precision", PRECISIONS)
    if "partial_select" in resolved:
        _check_choice(resolved, "partial_select", PARTIAL_SELECT)
        if resolved["partial_select"] == PARTIAL_SELECT[0]:
            del resolved["partial_select"]  # the default, stored only where it differs
    for key, (valid, says) in RANGES.items():
        if key in resolved and not valid(resolved[key]):
            raise ConfigError(f"profile field {key}={resolved[key]!r}: {says}")
    return resolved


def augment_mode(value) -> bool | str:
    """A run's augmentation as stored: ``False``, ``True`` or a named mode (``"robust"``, ...), also
    from the CLI's names (``none``, ``study``, ...)."""
    if isinstance(value, str):
        if value not in AUGMENT_MODES:
            raise ConfigError(f"unknown augmentation {value!r}; valid: {', '.join(AUGMENT_MODES)}")
        return AUGMENT_MODES[value]
    return bool(value)


def augment_name(mode: bool | str) -> str:
    """The CLI's name of a stored augmentation (the inverse of :func:`augment_mode`)."""
    return {stored: name for name, stored in AUGMENT_MODES.items()}[mode]


def _check_choice(settings: dict, key: str, valid: tuple[str, ...]) -> None:
    if settings[key] not in valid:
        raise ConfigError(f"profile field {key}={settings[key]!r} is not one of {', '.join(valid)}")


def parse_overrides(pairs: list[str] | None) -> dict:
    """``["epochs=3", "width=8"]`` -> ``{"epochs": "3", "width": "8"}`` (types applied later)."""
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"override {pair!r} is not KEY=VALUE")
        overrides[key.strip()] = value.strip()
    return overrides


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run (``data_id`` identifies the data by its files' names and sizes
    and the preparation settings, not its path; the engine records the bytes' SHA-256 beside it)."""

    model: str
    loss: str
    task: str
    data: str
    data_id: str
    profile: str
    settings: dict
    seed: int = 0
    augment: bool | str = False  # see AUGMENT_MODES
    fold: int = 0
    record_version: int = RECORD_VERSION
    # A second, partially labelled training source (spine.data.bodies) and its data id, or None.
    partial: str | None = None
    partial_id: str | None = None
    # The run (its id, in the same store) whose selected weights start this one: a fine-tuning, or None.
    init: str | None = None

    @property
    def run_id(self) -> str:
        # paths never name a run; without the later optional fields the id is what it was before them
        identity = {k: v for k, v in self.to_dict().items() if k not in ("data", "partial")}
        for optional in ("partial_id", "init"):
            if identity[optional] is None:
                del identity[optional]
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Read a stored configuration; one of the first format gets the settings it was made with."""
        if "record_version" not in values:  # the first format
            values = {"fold": 0, "record_version": 1} | values
            values["settings"] = LEGACY_SETTINGS | values["settings"]
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})
