"""Paired comparisons of a grid's rows on the same test patients (images for first-format records),
read from the store: the values per patient, the family of comparisons tested by
:func:`spine.stats.compare_family` (which holds the statistics), and the patients a recipe was
chosen on (for the sensitivity analysis without them).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spine import stats
from spine.errors import ConfigError
from spine.training import store as results
from spine.training.studies import pooled_per_patient


def unit_values(store, run_ids, metric: str) -> pd.Series:
    """A cell's test values of ``metric`` by patient (pooled over its folds' records), or by image
    for records of the first format (which have no per-patient table)."""
    records = [results.load_record(Path(store) / run) for run in run_ids]
    if all((r.path / "per_patient.csv").is_file() for r in records):
        return pooled_per_patient(records).set_index("patient")[metric]
    return pd.concat([r.per_image() for r in records]).set_index("image")[metric]


def recipe_patients(table: pd.DataFrame, store=results.DEFAULT_STORE) -> pd.DataFrame:
    """The patients a profile's recipe was chosen on, from a comparison table: the validation
    patients of the proposed network's seed-0 fold-0 record (the run ``benchmarks/recipe.py``
    repeats), each with the fold whose test patients it is among; no rows without that record."""
    from spine.data import load_split

    rows = table[(table["model"] == "Proposed") & table["trained"]]
    records = [results.load_record(Path(store) / run) for runs in rows["run_ids"] for run in runs]
    first = [r for r in records if r.config.fold == 0 and r.config.seed == 0]
    if not first:
        return pd.DataFrame(columns=["patient", "test fold"])
    split = load_split(first[0].path / "split.csv")
    seen = split.loc[split["subset"] == "val", "patient"].astype(str)
    folds = pooled_per_patient(records).astype({"patient": str}).set_index("patient")["fold"]
    return pd.DataFrame({"patient": seen.to_numpy(), "test fold": folds.reindex(seen).to_numpy()})


def paired_comparisons(table: pd.DataFrame, store=results.DEFAULT_STORE, reference: str = "Proposed",
                       metric: str = "dice", label: str = "model", families: tuple[str, ...] = (),
                       exclude=()) -> pd.DataFrame:
    """The row whose ``label`` column is ``reference`` against every other trained row of a table,
    patient by patient (image by image for first-format records) on the same test patients, as one
    family (:func:`spine.stats.compare_family`): the mean difference of ``metric`` with its 95 % BCa
    interval, the sign-flip p and its Holm adjustment over the family, the Wilcoxon p beside them,
    the range of the mean difference with each patient left out, the patient who changes the
    outcome (if one does), the comparison without that patient, and the verdict. ``label`` names the
    rows (e.g. ``"loss"`` for the rows of one model in the loss grid, where model names repeat).
    With ``families`` (e.g. the base networks of the skip-attention grid), each family's rows
    (labels starting with its name) are compared with the family's own row instead, and
    ``reference`` is not used; all of the table's comparisons are still one Holm family. ``exclude``:
    patients (or images) left out of every comparison (a sensitivity analysis)."""
    done = table[table["trained"]]
    if done[label].duplicated().any():
        raise ConfigError(f"paired comparisons need one row per {label!r}; repeated: "
                          f"{', '.join(done.loc[done[label].duplicated(), label])}")
    values = {name: unit_values(store, run_ids, metric) for name, run_ids in zip(done[label], done["run_ids"])}
    values = {name: v.rename(index=str).drop([str(u) for u in exclude], errors="ignore") for name, v in values.items()}
    groups = {base: [name for name in values if name.startswith(base + " ")] for base in families} if families \
        else {reference: [name for name in values if name != reference]}
    diffs = {f"{base} - {name}": _paired_difference(values[base], values[name])
             for base, names in groups.items() if base in values for name in names}
    if not diffs:
        return pd.DataFrame()
    unit = "patients" if next(iter(values.values())).index.name == "patient" else "images"
    family = stats.compare_family(diffs)
    return pd.DataFrame({"comparison": list(family.index), unit: family["n"].astype(int).to_numpy(),
                         f"mean Δ{metric}": family["mean_diff"].astype(float).to_numpy(),
                         "95% CI": _rounded(family[["ci_low", "ci_high"]].to_numpy()),
                         "sign-flip p": family["sign_flip_p"].astype(float).to_numpy(),
                         "Holm p": family["holm_p"].astype(float).to_numpy(),
                         "Wilcoxon p": family["p_value"].astype(float).to_numpy(),
                         "leave-one-out Δ": _rounded(family[["loo_min", "loo_max"]].to_numpy()),
                         "influential": family["influential"].astype(str).to_numpy(),
                         "without it (Δ, CI, Holm p)": [None if w is None else tuple(round(v, 4) for v in w)
                                                        for w in family["without"]],
                         "smallest Holm p": family["smallest_holm_p"].astype(float).to_numpy(),
                         "verdict": family["verdict"].to_numpy()})


def _paired_difference(ours: pd.Series, theirs: pd.Series) -> pd.Series:
    """``ours - theirs`` on the units both have."""
    ours, theirs = ours.align(theirs, join="inner")
    return ours - theirs


def _rounded(bounds) -> list[tuple[float, float]]:
    return [(round(float(low), 4), round(float(high), 4)) for low, high in bounds]
