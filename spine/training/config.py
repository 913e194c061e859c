"""Profiles (data in ``spine/profiles.toml``) and the run configuration that names a run.

A run is determined by its model, loss, task, data identity, resolved profile, seed and
augmentation switch. :attr:`RunConfig.run_id` is a hash of exactly those, so the same request
finds the same record, and any change makes a new one.
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
    "eval_slices_per_patient": int, "max_train_images": int, "split_seed": int,
}


def profiles() -> dict[str, dict]:
    """Every profile of ``profiles.toml`` by name."""
    with resources.files("spine").joinpath("profiles.toml").open("rb") as handle:
        return tomllib.load(handle)


def resolve_profile(name: str, overrides: dict | None = None) -> dict:
    """A profile's fields with ``overrides`` applied (strings are converted to the field's type)."""
    table = profiles()
    if name not in table:
        raise ConfigError(f"unknown profile {name!r}; valid: {', '.join(table)}")
    resolved = {key: table[name][key] for key in PROFILE_FIELDS}
    for key, value in (overrides or {}).items():
        if key not in PROFILE_FIELDS:
            raise ConfigError(f"unknown profile field {key!r}; valid: {', '.join(PROFILE_FIELDS)}")
        try:
            resolved[key] = PROFILE_FIELDS[key](value)
        except ValueError:
            raise ConfigError(f"profile field {key}={value!r} is not a {PROFILE_FIELDS[key].__name__}") from None
    return resolved


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
    """Everything that determines a run (``data_id`` identifies the data's content, not its path)."""

    model: str
    loss: str
    task: str
    data: str
    data_id: str
    profile: str
    settings: dict
    seed: int = 0
    augment: bool = False

    @property
    def run_id(self) -> str:
        identity = {k: v for k, v in self.to_dict().items() if k != "data"}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})
