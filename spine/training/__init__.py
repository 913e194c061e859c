"""Experiments: profiles, the training engine, the results store and the study grids."""

from spine.training.config import RunConfig, profiles, resolve_profile
from spine.training.engine import make_config, train
from spine.training.store import DEFAULT_STORE, Record, load_record, records

__all__ = ["RunConfig", "profiles", "resolve_profile", "make_config", "train", "DEFAULT_STORE", "Record",
           "load_record", "records"]
