"""The patients of a run's split and of each cross-validation fold, as the book tables them
(chapters 1 and 9): counted from the data and the engine's split (:func:`split_overview`,
:func:`fold_overview`), or read from the store's fold manifest without the data
(:func:`fold_patients`). The splits themselves are made by :mod:`spine.data.splits`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from spine.data import load_dataset, load_split
from spine.data.splits import patient_key
from spine.training.engine import make_config, split_data
from spine.training.studies import fold_numbers


def split_overview(config) -> pd.DataFrame:
    """The split of a run (``engine.split_data``): per subset, the patients, the slices of the data,
    the slices a run uses (the profile keeps a few per patient near the mid-line and may cap the
    training set), each subset's share of the patients, and a total row."""
    with tempfile.TemporaryDirectory() as folder:
        used = split_data(config, Path(folder))
        split = load_split(Path(folder) / "split.csv")
    data = load_dataset(config.data, size=config.settings["size"])
    subset_of = dict(zip(split["patient"].astype(str), split["subset"]))
    rows = [{"subset": name, "patients": int((split["subset"] == name).sum()),
             "slices in the data": int(sum(subset_of[str(p)] == name for p in data.patients)),
             "slices a run uses": len(s), "patients a run uses": len(set(map(str, s.patients)))}
            for name, s in used.items() if name in ("train", "val", "test")]
    table = pd.DataFrame(rows)
    total = table["patients"].sum()
    table["share of patients (%)"] = 100.0 * table["patients"] / total
    totals = {c: table[c].sum() for c in table.columns if c != "subset"} | {"subset": "all"}
    return pd.concat([table, pd.DataFrame([totals])], ignore_index=True)


def fold_overview(data, profile: str) -> pd.DataFrame:
    """:func:`split_overview` of every fold of ``profile`` (needs the data itself), with a ``fold`` column."""
    return pd.concat([split_overview(make_config("Proposed", "Dice", "binary", data, profile, fold=k)).assign(fold=k)
                      for k in fold_numbers(profile)], ignore_index=True)


def fold_patients(store, data_id: str) -> pd.DataFrame | None:
    """From the store's fold manifest of ``data_id`` (no data needed): per fold, how many patients
    and which; ``None`` when the store has none."""
    manifests = sorted((Path(store) / "folds").glob(f"{data_id}-k*.csv"))
    if not manifests:
        return None
    manifest = pd.read_csv(manifests[0], dtype={"patient": str})
    return manifest.groupby("fold").agg(patients=("patient", "size"),
                                        ids=("patient", lambda p: ", ".join(sorted(p, key=patient_key)))).reset_index()
