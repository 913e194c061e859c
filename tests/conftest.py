"""Shared fixtures: where the real SPIDER data lives, and a private cache for every test session."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPINE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MASKS_3D = SHARED_DATA / "spider-masks-3d"
T2SPACE_SLICES = SHARED_DATA / "spider-t2space-slices"


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real SPIDER data not present at {path}")
    return path


def pytest_collection_modifyitems(items):
    """A test that takes the real data is marked ``real``, whether or not it says so: the fast tier
    (``-m "not slow and not real"``) leaves it out also where the data is present."""
    for item in items:
        if {"masks_3d", "t2space_slices"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def masks_3d() -> Path:
    return _require(MASKS_3D)


@pytest.fixture(scope="session")
def t2space_slices() -> Path:
    return _require(T2SPACE_SLICES)


@pytest.fixture(scope="session")
def built_model():
    """``built_model(name, size, num_classes, width)``: a model built once per session, shared by the
    tests that only read it (shapes, layer names, outlines, predictions). A test that trains or
    changes a model builds its own."""
    from spine.models import build_model

    cache = {}

    def get(name: str, size: int = 32, num_classes: int = 2, width: int = 4):
        key = (name, size, num_classes, width)
        if key not in cache:
            cache[key] = build_model(name, input_shape=(size, size, 1), num_classes=num_classes, width=width)
        return cache[key]

    return get


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep every cache a test writes out of the user's home."""
    previous = os.environ.get("SPINE_CACHE")
    os.environ["SPINE_CACHE"] = str(tmp_path_factory.mktemp("spine-cache"))
    yield
    if previous is None:
        os.environ.pop("SPINE_CACHE", None)
    else:
        os.environ["SPINE_CACHE"] = previous
