"""Splits by patient, never by slice (neighbouring slices of one patient are near-duplicates).

The study's protocol: 80 % train / 20 % test, fixed across every experiment; 20 % of train is
validation. The test patients depend only on the split seed; the validation patients may be
re-drawn per run (the study's stability runs re-sample validation) with ``val_seed``.
A split is saved as a CSV manifest (``patient,subset``) so every experiment uses the same one.

Cross-validation (``folds`` >= 2): the patients are dealt into ``folds`` groups of near-equal
size by a permutation from the split seed (:func:`make_folds`, saved as a ``patient,fold``
manifest); fold ``k``'s test patients are group ``k``, so over all folds every patient is tested
exactly once; its validation patients are drawn from the other groups with ``val_seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spine.data.io import atomic_path
from spine.errors import DataError

SUBSETS = ("train", "val", "test")


def patient_key(patient: str) -> tuple[int, str]:
    """Sort key of patient ids in natural order ("9" before "10")."""
    return len(patient), patient


def _unique_patients(patients) -> list[str]:
    return sorted(set(map(str, patients)), key=patient_key)


def make_folds(patients, folds: int, seed: int = 0) -> pd.DataFrame:
    """Deal the unique patients into ``folds`` groups of near-equal size; a ``patient, fold`` table."""
    unique = _unique_patients(patients)
    if not 2 <= folds <= len(unique) // 2:
        raise DataError("split", f"{folds} folds need at least {2 * max(folds, 2)} patients "
                                 f"(two per fold), found {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold = np.empty(len(unique), dtype=int)
    for k, members in enumerate(np.array_split(order, folds)):
        fold[members] = k
    return pd.DataFrame({"patient": unique, "fold": fold})


def make_split(patients, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.2,
               val_seed: int | None = None, folds: int = 0, fold: int = 0) -> pd.DataFrame:
    """Assign each unique patient to train / val / test; returns a ``patient, subset`` table.

    Test patients are drawn with ``seed`` (``folds`` >= 2: the patients of fold ``fold`` of
    :func:`make_folds`); validation patients are drawn from the rest with ``val_seed`` (default:
    ``seed``). At least one patient goes to each subset when there are 3+.
    """
    unique = _unique_patients(patients)
    if len(unique) < 3:
        raise DataError("split", f"need at least 3 patients to split by patient, found {len(unique)}")
    if folds >= 2:
        if not 0 <= fold < folds:
            raise DataError("split", f"fold {fold} does not exist; folds are 0..{folds - 1}")
        manifest = make_folds(unique, folds, seed)
        test = list(manifest.loc[manifest["fold"] == fold, "patient"])
    else:
        order = np.random.default_rng(seed).permutation(len(unique))
        n_test = min(max(1, round(test_fraction * len(unique))), len(unique) - 2)
        test = [unique[i] for i in order[:n_test]]
    rest = _unique_patients(set(unique) - set(test))
    val_order = np.random.default_rng(seed if val_seed is None else val_seed).permutation(len(rest))
    n_val = min(max(1, round(val_fraction * len(rest))), len(rest) - 1)
    val = {rest[i] for i in val_order[:n_val]}
    subset = {p: "test" for p in test} | {p: ("val" if p in val else "train") for p in rest}
    return pd.DataFrame({"patient": unique, "subset": [subset[p] for p in unique]})


def save_split(split: pd.DataFrame, path) -> Path:
    """Write the manifest atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        split.to_csv(tmp, index=False)
    return path


def load_split(path) -> pd.DataFrame:
    """Read a manifest, checking its columns and subset names."""
    path = Path(path)
    try:
        split = pd.read_csv(path, dtype={"patient": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"cannot read split manifest: {exc}") from exc
    if list(split.columns) != ["patient", "subset"] or not split["subset"].isin(SUBSETS).all():
        raise DataError(path, f"a split manifest has columns patient,subset with subsets {SUBSETS}")
    return split


def subset_mask(patients, split: pd.DataFrame, subset: str) -> np.ndarray:
    """Boolean mask of the rows whose patient is in ``subset``; unknown patients raise."""
    lookup = dict(zip(split["patient"], split["subset"]))
    missing = sorted(set(map(str, patients)) - set(lookup))
    if missing:
        raise DataError("split", f"patients not in the split manifest: {missing[:10]}")
    return np.array([lookup[str(p)] == subset for p in patients])
