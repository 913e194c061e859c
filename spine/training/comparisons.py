"""Paired comparisons of a grid's rows on the same test patients (images for first-format records),
read from the store: the values per patient, the family of comparisons tested by
:func:`spine.stats.compare_family` (which holds the statistics; over patients and training seeds
:func:`spine.stats.compare_family_over_seeds` where a seeds grid is complete), what a seeds grid
holds, and the patients a recipe was chosen on (for the sensitivity analysis without them).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spine import stats
from spine.errors import ConfigError
from spine.training.store import DEFAULT_STORE, load_record
from spine.training.studies import pooled_per_patient


def unit_values(store, run_ids, metric: str) -> pd.Series:
    """A cell's test values of ``metric`` by patient (pooled over its folds' records), or by image
    for records of the first format (which have no per-patient table)."""
    records = [load_record(Path(store) / run) for run in run_ids]
    if all((r.path / "per_patient.csv").is_file() for r in records):
        return pooled_per_patient(records).set_index("patient")[metric]
    return pd.concat([r.per_image() for r in records]).set_index("image")[metric]


def recipe_patients(table: pd.DataFrame, store=DEFAULT_STORE) -> pd.DataFrame:
    """The patients a profile's recipe was chosen on, from a comparison table: the validation
    patients of the proposed network's seed-0 fold-0 record (the run ``benchmarks/recipe.py``
    repeats), each with the fold whose test patients it is among; no rows without that record."""
    from spine.data import load_split

    rows = table[(table["model"] == "Proposed") & table["trained"]]
    records = [load_record(Path(store) / run) for runs in rows["run_ids"] for run in runs]
    first = [r for r in records if r.config.fold == 0 and r.config.seed == 0]
    if not first:
        return pd.DataFrame(columns=["patient", "test fold"])
    split = load_split(first[0].path / "split.csv")
    seen = split.loc[split["subset"] == "val", "patient"].astype(str)
    folds = pooled_per_patient(records).astype({"patient": str}).set_index("patient")["fold"]
    return pd.DataFrame({"patient": seen.to_numpy(), "test fold": folds.reindex(seen).to_numpy()})


def paired_comparisons(table: pd.DataFrame, store=DEFAULT_STORE, reference: str = "Proposed",
                       metric: str = "dice", label: str = "model", families: tuple[str, ...] = (),
                       exclude=(), seeds: pd.DataFrame | None = None) -> pd.DataFrame:
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
    patients (or images) left out of every comparison (a sensitivity analysis).

    ``seeds``: the table of a grid of the same rows trained with several seeds (``comparison-seeds``).
    Where it holds every seed of every compared row in every fold (:func:`seeds_complete`), each
    patient's value is the mean over the seeds and the comparisons are
    :func:`spine.stats.compare_family_over_seeds`'s: three more columns, ``seeds``, the 95 % interval
    over patients and seeds and the verdict over patients alone (the verdict needs both)."""
    done = table[table["trained"]]
    if done[label].duplicated().any():
        raise ConfigError(f"paired comparisons need one row per {label!r}; repeated: "
                          f"{', '.join(done.loc[done[label].duplicated(), label])}")
    values = {name: unit_values(store, run_ids, metric) for name, run_ids in zip(done[label], done["run_ids"])}
    values = {name: v.rename(index=str).drop([str(u) for u in exclude], errors="ignore") for name, v in values.items()}
    groups = {base: [name for name in values if name.startswith(base + " ")] for base in families} if families \
        else {reference: [name for name in values if name != reference]}
    pairs = [(base, name) for base, names in groups.items() if base in values for name in names]
    if not pairs:
        return pd.DataFrame()
    unit = "patients" if next(iter(values.values())).index.name == "patient" else "images"
    if seeds is not None and seeds_complete(seeds, list(values)):
        by_seed = {name: seed_values(seeds, store, name, metric, exclude) for name in values}
        folds = pd.concat([f for _, f in by_seed.values()]).groupby(level=0).first()
        family = stats.compare_family_over_seeds({f"{base} - {name}": (by_seed[base][0], by_seed[name][0])
                                                  for base, name in pairs}, folds)
    else:
        family = stats.compare_family({f"{base} - {name}": _paired_difference(values[base], values[name])
                                       for base, name in pairs})
    columns = {"comparison": list(family.index), unit: family["n"].astype(int).to_numpy(),
               f"mean Δ{metric}": family["mean_diff"].astype(float).to_numpy(),
               "95% CI": _rounded(family[["ci_low", "ci_high"]].to_numpy()),
               "sign-flip p": family["sign_flip_p"].astype(float).to_numpy(),
               "Holm p": family["holm_p"].astype(float).to_numpy(),
               "Wilcoxon p": family["p_value"].astype(float).to_numpy(),
               "leave-one-out Δ": _rounded(family[["loo_min", "loo_max"]].to_numpy()),
               "influential": family["influential"].astype(str).to_numpy(),
               "without it (Δ, CI, Holm p)": [None if w is None else tuple(round(v, 4) for v in w)
                                              for w in family["without"]],
               "smallest Holm p": family["smallest_holm_p"].astype(float).to_numpy()}
    if "seeds" in family:
        columns |= {"seeds": family["seeds"].to_numpy(),
                    "95% CI, patients and seeds": _rounded(family[["seed_ci_low", "seed_ci_high"]].to_numpy()),
                    "verdict over patients": family["verdict_over_patients"].to_numpy()}
    return pd.DataFrame(columns | {"verdict": family["verdict"].to_numpy()})


# --------------------------------------------------------------------------- training seeds


def seed_coverage(seeds: pd.DataFrame) -> pd.DataFrame:
    """How many folds of each model and seed a seeds grid's table (e.g. ``comparison-seeds``) has
    recorded: one row per model, one column per seed."""
    recorded = seeds.assign(recorded=seeds["run_ids"].map(len))
    return recorded.pivot_table(index="model", columns="seed", values="recorded", sort=False).astype(int)


def seeds_complete(seeds: pd.DataFrame, models) -> bool:
    """Whether the table holds every seed of each of ``models`` in every fold of the grid."""
    coverage = seed_coverage(seeds)
    return set(models) <= set(coverage.index) and bool((coverage.loc[list(models)] == seeds["folds"].max()).all(axis=None))


def seed_values(seeds: pd.DataFrame, store, model: str, metric: str, exclude=()) -> tuple[pd.DataFrame, pd.Series]:
    """A model's test values of ``metric`` in a seeds grid's records: one row per patient (but those in
    ``exclude``), one column per seed; and each patient's fold."""
    pooled = {row.seed: pooled_per_patient([load_record(Path(store) / run) for run in row.run_ids])
              .astype({"patient": str}).set_index("patient").drop([str(u) for u in exclude], errors="ignore")
              for row in seeds[(seeds["model"] == model) & seeds["trained"]].itertuples()}
    folds = pd.concat([p["fold"] for p in pooled.values()]).groupby(level=0).first()
    return pd.DataFrame({seed: p[metric] for seed, p in pooled.items()}), folds


def fold_seed_means(seeds: pd.DataFrame, store, metric: str = "dice") -> pd.DataFrame:
    """In each fold where every model of a seeds grid's table has every seed recorded: each model's
    mean test ``metric`` over the fold's patients under each seed (one column per seed), one row
    per fold and model; no rows while no fold is complete."""
    wanted = sorted(int(s) for s in seeds["seed"].unique())
    coverage = seed_coverage(seeds)
    if not (coverage > 0).all(axis=None):  # a model without a record of some seed: no fold is complete
        return pd.DataFrame(columns=["fold", *wanted, "model", "patients"])
    means = []
    for model in seeds["model"].unique():
        values, folds = seed_values(seeds, store, model, metric)
        values = values.reindex(columns=wanted)
        by_fold = values.groupby(folds.reindex(values.index).to_numpy())
        complete = by_fold.count().eq(by_fold.size(), axis=0).all(axis=1)
        means.append(by_fold.mean()[complete].assign(model=model, patients=by_fold.size()[complete]))
    table = pd.concat(means).rename_axis("fold").reset_index().sort_values("fold", kind="stable")
    folds = [fold for fold, rows in table.groupby("fold") if len(rows) == seeds["model"].nunique()]
    return table[table["fold"].isin(folds)].reset_index(drop=True)


def _fold_seed_sentence(means: pd.DataFrame, metric: str) -> str:
    """What the complete folds of :func:`fold_seed_means` show so far, fold by fold: how far each
    model's seeds moved its mean, against how far apart the models' first seeds lay."""
    seeds = [c for c in means.columns if isinstance(c, int)]
    clauses = []
    for fold, rows in means.groupby("fold"):
        moved = rows[seeds].max(axis=1) - rows[seeds].min(axis=1)
        apart = rows[seeds[0]].max() - rows[seeds[0]].min()
        clauses.append(f"in fold {int(fold)} ({int(rows['patients'].min())} test patients), a model's mean test "
                       f"{metric.capitalize()} moved between its seeds by {moved.min():.3f} "
                       f"({rows.loc[moved.idxmin(), 'model']}) to {moved.max():.3f} ({rows.loc[moved.idxmax(), 'model']}), "
                       f"while the models' seed-{seeds[0]} runs lay {apart:.3f} apart from lowest to highest")
    folds = sorted(int(f) for f in means["fold"].unique())
    where = f"fold {folds[0]} holds" if len(folds) == 1 else f"folds {_joined(folds)} hold"
    return (f" So far {where} every seed of every model: " + "; ".join(clauses)
            + " (`spine.training.comparisons.fold_seed_means`).")


def seed_note(seeds: pd.DataFrame, pairs: pd.DataFrame, store=None, metric: str = "dice") -> str:
    """Whether the verdicts of ``pairs`` (:func:`paired_comparisons`) include the variation between
    training seeds, and, where they do not, how many seeds the store holds of each model (from the
    seeds grid's table ``seeds``) and, given the ``store``, what its complete folds show so far
    (:func:`fold_seed_means`)."""
    wanted = sorted(int(s) for s in seeds["seed"].unique())
    folds = int(seeds["folds"].max())
    where = f"in each of the {folds} folds" if folds > 1 else "in its one split"
    if "seeds" in pairs:
        return (f"Seed variation is included: every compared model has seeds {_joined(wanted)} recorded {where}; "
                f"each patient's value is the mean over its {len(wanted)} seeds, and a verdict also needs the 95 % "
                "interval of a bootstrap over patients and seeds (`spine.stats.seed_bootstrap`) to exclude 0.")
    counts = "; ".join(f"{model} {'/'.join(str(n) for n in row)}" for model, row in seed_coverage(seeds).iterrows())
    return (f"Seed variation is not yet included: each model is trained once {where} (seed 0), so these verdicts "
            f"hold the variation between test patients only, not that between training runs. The comparison-seeds "
            f"grid trains every model with seeds {_joined(wanted)} {where}; the store holds, per model, the folds "
            f"recorded with seeds {'/'.join(map(str, wanted))}: {counts}. Once every model has all of them the "
            "verdicts include the seeds (`spine study comparison-seeds` trains the rest)."
            + (_fold_seed_sentence(means, metric) if store is not None and len(means := fold_seed_means(seeds, store, metric))
               else ""))


def _joined(numbers) -> str:
    numbers = [str(n) for n in numbers]
    return numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]


def _paired_difference(ours: pd.Series, theirs: pd.Series) -> pd.Series:
    """``ours - theirs`` on the units both have."""
    ours, theirs = ours.align(theirs, join="inner")
    return ours - theirs


def _rounded(bounds) -> list[tuple[float, float]]:
    return [(round(float(low), 4), round(float(high), 4)) for low, high in bounds]
