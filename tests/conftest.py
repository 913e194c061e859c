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


@pytest.fixture(scope="session")
def masks_3d() -> Path:
    return _require(MASKS_3D)


@pytest.fixture(scope="session")
def t2space_slices() -> Path:
    return _require(T2SPACE_SLICES)


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
