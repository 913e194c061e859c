"""Profiles: every shipped profile resolves, and a value out of its field's range is refused by name."""

import pytest

from spine.errors import ConfigError
from spine.training.config import RANGES, profiles, resolve_profile


def test_every_profile_resolves_within_the_ranges():
    for name in profiles():
        resolve_profile(name)
        resolve_profile(name, partial=True)


@pytest.mark.parametrize("key, value", [("width", "0"), ("size", "17"), ("size", "8"), ("dropout", "1"),
                                        ("learning_rate", "0"), ("epochs", "0"), ("eval_slices_per_patient", "0")])
def test_a_value_out_of_range_names_the_field_and_the_range(key, value):
    with pytest.raises(ConfigError, match=rf"profile field {key}=.*: "):
        resolve_profile("cpu", {key: value})


def test_partial_stride_is_checked_only_with_a_partial_source():
    for key in ("partial_stride", "partial_fold", "partial_select"):
        with pytest.raises(ConfigError, match="partial_stride, partial_fold, partial_select only with a partially "
                                              "labelled source"):
            resolve_profile("cpu", {key: "2"})
    with pytest.raises(ConfigError, match="partial_stride=0: at least 1"):
        resolve_profile("cpu", {"partial_stride": "0"}, partial=True)
    with pytest.raises(ConfigError, match="partial_select='first' is not one of best, last"):
        resolve_profile("cpu", {"partial_select": "first"}, partial=True)
    assert "partial_select" not in resolve_profile("cpu", {"partial_select": "best"}, partial=True)  # the default
    assert resolve_profile("cpu", {"partial_select": "last"}, partial=True)["partial_select"] == "last"
    assert set(RANGES) >= {"width", "size", "partial_stride"}
