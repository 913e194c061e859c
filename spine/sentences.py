"""What the book and the README say in words, computed from the records: every sentence that
compares models, says what is missing or where a run falls among others, and the plan in words.

Every sentence that compares models is worded by :func:`verdict` (through :func:`pair_sentence`,
:func:`grid_finding`, :func:`recipe_sensitivity` and the README's table), from the one rule of
:func:`spine.stats.compare_family`. Nothing here displays anything: a chapter shows these sentences
(:mod:`spine.page`), the README writes them (:mod:`spine.readme`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spine import stats
from spine.training import comparisons, studies
from spine.training.analysis import position_among
from spine.training.store import records

if TYPE_CHECKING:
    from spine.book_data import Source

ALPHA = 0.05  # the level of spine.stats.compare_family's verdicts


def _name(label: str, what: str = "{}") -> str:
    return "the proposed network" if label == "Proposed" else what.format(label)


def signed(value: float) -> str:
    """A difference with its sign and 3 decimals; one that rounds to zero is +0.000, never -0.000."""
    return f"{round(float(value), 3) + 0.0:+.3f}"


def interval_text(ci) -> str:
    return f"{ci[0]:.3f}–{ci[1]:.3f}" if isinstance(ci, (tuple, list)) and np.all(np.isfinite(ci)) else "no interval"


def _scope(row) -> str:
    """Which test units a row's figure rests on: patients of folds, or images of one run."""
    patients = getattr(row, "test_patients", np.nan)
    if pd.notna(patients):
        folds = f"{len(row.run_ids)} of {row.folds} folds" if row.folds > 1 else "one fold"
        return f"{int(patients)} test patients ({folds})"
    return f"{int(row.test_images)} test images of one run"


def _delta(pairs) -> str:
    """The column of a paired table that holds the mean difference (``mean Δ<metric>``)."""
    return next(column for column in pairs.index if column.startswith("mean Δ"))


def _listed(names) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _patients(units: list, unit: str) -> str:
    return f"{'patient' if unit == 'patients' else 'image'}{'s' * (len(units) > 1)} {_listed(units)}"


# --------------------------------------------------------------------------- paired comparisons


def verdict_rule() -> str:
    """The rule behind every verdict, in words."""
    return (f"ahead or behind only when the Holm-adjusted p < {ALPHA}, the 95 % interval excludes 0 and no single "
            "patient left out changes either; otherwise not distinguishable")


def verdict(pair: pd.Series, reference: str, other: str, what: str = "{}") -> str:
    """The one way the book words a paired comparison (a row of :func:`spine.training.comparisons.
    paired_comparisons`): the mean difference with its BCa interval, the sign-flip p and its Holm
    adjustment over the grid's comparisons, Wilcoxon's p beside them, then the verdict
    (:func:`spine.stats.compare_family`: ahead or behind only when the adjusted p < 0.05, the interval
    excludes 0 and no single patient left out changes either), the floor of p where it rules a verdict
    out, and the patient whose absence alone changes the outcome, with the comparison without it."""
    unit = "patients" if "patients" in pair.index else "images"
    n, low, high = int(pair[unit]), *pair["95% CI"]
    floor = stats.smallest_p(n)
    at_floor = f" (all on one side: the smallest p {n} {unit} allow)" if np.isclose(pair["sign-flip p"], floor) else ""
    text = (f"{signed(pair[_delta(pair)])} (95 % BCa CI {signed(low)} to {signed(high)} over {n} {unit}; "
            f"sign-flip p = {pair['sign-flip p']:.2g}{at_floor}, {pair['Holm p']:.2g} after Holm; Wilcoxon p = "
            f"{pair['Wilcoxon p']:.2g}{_over_seeds(pair)})")
    if pair.get("verdict over patients", pair["verdict"]) != pair["verdict"]:
        return text + (f": not distinguishable (over patients alone {_name(reference, what)} would be "
                       f"{pair['verdict over patients']} of {_name(other, what)}, but the interval over patients and "
                       "seeds holds 0)")
    if pair["verdict"] != "not distinguishable":
        return text + f": {_name(reference, what)} is {pair['verdict']} of {_name(other, what)}"
    text += ": not distinguishable"
    if pair["smallest Holm p"] >= ALPHA:
        text += (f" (with {n} {unit} no sign-flip or Wilcoxon p can fall below {floor:.2g}, "
                 f"{pair['smallest Holm p']:.2g} after Holm, so no verdict is possible at this size)")
    if pair["influential"]:
        mean, low, high, holm = pair["without it (Δ, CI, Holm p)"]
        text += (f"; leaving out {_patients([pair['influential']], unit)} alone changes the outcome: without it the "
                 f"difference is {signed(mean)} ({signed(low)} to {signed(high)}; Holm p = {holm:.2g})")
    return text


def _over_seeds(pair: pd.Series) -> str:
    """The interval over patients and training seeds of a comparison of seed means, if it is one."""
    if "seeds" not in pair.index:
        return ""
    low, high = pair["95% CI, patients and seeds"]
    return (f"; each patient's value the mean of {int(pair['seeds'])} seeds, 95 % CI over patients and seeds "
            f"{signed(low)} to {signed(high)}")


def pairs_legend() -> str:
    """What the columns of a paired table (:func:`spine.training.comparisons.paired_comparisons`) mean."""
    return ("Each row: the mean paired difference in Dice (the reference row minus this one) over the same test "
            "patients, with its 95 % BCa interval; the two-sided sign-flip permutation test of that mean (exact), "
            "Holm-adjusted over the grid's comparisons, with Wilcoxon's signed-rank p beside it; the mean difference "
            "with each patient left out in turn (its range); the patient whose absence alone changes the outcome "
            "(whether the interval excludes 0 or the adjusted p is below 0.05), with the comparison without it; the "
            "smallest adjusted p this many patients allow (the grid's size times 2 / 2^n; at 0.05 or above no verdict "
            f"is possible); and the verdict: {verdict_rule()}.")


def pair_sentence(table: pd.DataFrame, pairs: pd.DataFrame, reference: str, other: str, *, label: str = "model",
                  grid: str = "comparison", source: Source | None = None, what: str = "{}") -> str:
    """One sentence: ``reference``'s Dice against ``other``'s, with intervals, and their paired
    difference (from ``pairs``, :func:`spine.training.comparisons.paired_comparisons`) worded by
    :func:`verdict`; a sentence saying what is missing otherwise. ``what`` names a row in the prose
    (e.g. ``"the {} loss"``)."""
    done = table[table["trained"]].set_index(label)
    if not len(done):
        return not_recorded(grid, source)
    missing = [name for name in (reference, other) if name not in done.index]
    if missing:
        return (f"Not recorded yet: {' and '.join(_name(m, what) for m in missing)} (the {grid} grid has "
                f"{len(done)} of {len(table)} rows recorded), so the two cannot be compared here.")
    ours, theirs = done.loc[reference], done.loc[other]
    text = (f"On {_scope(ours)}, {_name(reference, what)} reaches a Dice of {ours['dice']:.3f} (95 % CI "
            f"{interval_text(ours.get('dice_ci'))}) against {theirs['dice']:.3f} ({interval_text(theirs.get('dice_ci'))}) for "
            f"{_name(other, what)}")
    found = pairs[pairs["comparison"] == f"{reference} - {other}"] if len(pairs) else pairs
    if not len(found):
        return text + "; no paired comparison is possible on these records."
    among = f"one of the grid's {len(pairs)} comparisons" if len(pairs) > 1 else "the grid's only comparison"
    return (text + f". The paired difference ({reference} minus {other}, {among}) "
            f"is {verdict(found.iloc[0], reference, other, what)}.")


def grid_finding(table: pd.DataFrame, pairs: pd.DataFrame, *, reference: str = "Proposed", label: str = "model",
                 grid: str = "comparison", source: Source | None = None) -> str:
    """The answer of a whole grid in words: how much of it is recorded, which row has the highest
    Dice, and the verdicts of its paired comparisons (:func:`verdict`'s rule): which are decided, in
    whose favour, whether the floor of p rules every verdict out, and which patients' absence alone
    changes an outcome."""
    done = table[table["trained"]]
    if not len(done):
        return not_recorded(grid, source)
    best = done.loc[done["dice"].astype(float).idxmax()]
    worst = done.loc[done["dice"].astype(float).idxmin()]
    text = (f"{len(done)} of the {grid} grid's {len(table)} rows are recorded. The highest mean Dice is "
            f"{_name(best[label])}'s, {best['dice']:.3f}; the lowest {_name(worst[label])}'s, {worst['dice']:.3f}")
    if not len(pairs):
        return text + "; a paired comparison needs " + _name(reference) + " and another row recorded."
    decided = pairs[pairs["verdict"] != "not distinguishable"]
    text += (f". Of {len(pairs)} paired comparison{'s' * (len(pairs) > 1)} (sign-flip tests of the mean difference, "
             f"Holm-adjusted over the {len(pairs)}; a verdict needs adjusted p < {ALPHA}, a 95 % interval that excludes "
             f"0, and no single patient who changes either), {len(decided) or 'none'} give{'s' * (len(decided) < 2)} "
             "a verdict")
    parts = [f"{a} is {v} of {b}" for (a, b), v in zip(decided["comparison"].str.split(" - "), decided["verdict"])]
    text += (": " + "; ".join(parts) if parts else "") + "."
    unit = "patients" if "patients" in pairs else "images"
    if (pairs["smallest Holm p"] >= ALPHA).all():
        n = int(pairs[unit].min())
        text += (f" With {n} {unit}, no sign-flip or Wilcoxon p can fall below {stats.smallest_p(n):.2g}, "
                 f"{pairs['smallest Holm p'].min():.2g} after Holm: this grid cannot reach a verdict at this size.")
    resting = pairs[pairs["influential"] != ""]
    for patient, rows in resting.groupby("influential", sort=False):
        text += f" Leaving out {_patients([patient], unit)} alone changes the outcome of {_listed(rows['comparison'])}."
    return text


def recipe_sensitivity(table: pd.DataFrame, store, data, profile: str) -> str:
    """The comparison without the patients the recipe was chosen on (:func:`spine.training.comparisons.
    recipe_patients`), in words: a sensitivity analysis, since the recipe was not chosen again inside
    each fold (which a nested analysis would do)."""
    seen = comparisons.recipe_patients(table, store)
    if not len(seen):
        return "The records the recipe was chosen on are not in the store: no sensitivity analysis."
    pairs = comparisons.paired_comparisons(table, store, exclude=seen["patient"])
    folds = sorted(int(f) for f in seen["test fold"].dropna().unique())
    shown = "; ".join(f"{a} minus {b} {verdict(pair, a, b)}"
                      for (a, b), (_, pair) in zip(pairs["comparison"].str.split(" - "), pairs.iterrows()))
    return (f"The `{profile}` recipe was chosen on the validation patients of fold 0 (`benchmarks/recipe.py`, the "
            f"proposed network only), {_patients(list(seen['patient']), 'patients')}, who are test patients of fold"
            f"{'s' * (len(folds) > 1)} {_listed(folds)}. A sensitivity analysis (not nested: the recipe was "
            f"not chosen again inside each fold's training patients) repeats the comparison without them, on "
            f"{int(pairs['patients'].max()) if len(pairs) else 0} patients: {shown or 'no pair left'}.")


def influential_patient(pairs: pd.DataFrame):
    """The patient whose absence alone changes the outcome of the grid's closest comparison (the
    smallest adjusted p among those that have such a patient), with that comparison; ``None`` if
    no comparison has one."""
    resting = pairs[pairs["influential"] != ""] if len(pairs) else pairs
    if not len(resting):
        return None
    closest = resting.loc[resting["Holm p"].idxmin()]
    return closest["influential"], closest["comparison"]


def patient_sentence(table: pd.DataFrame, store, patient, comparison: str) -> str:
    """Every trained row's Dice on one test patient, and which comparison that patient's absence changes."""
    scores = {row.model: comparisons.unit_values(store, row.run_ids, "dice").rename(index=str).get(str(patient))
              for row in table[table["trained"]].itertuples()}
    listed = ", ".join(f"{_name(model)} {score:.3f}" for model, score in scores.items() if score is not None)
    return (f"Patient {patient}, whose absence alone changes the outcome of {comparison}: its Dice over its central "
            f"slices is {listed}. Its slices, the reference and every model's prediction (the stored test predictions):")


# --------------------------------------------------------------------------- what is recorded


def stability_sentence(stability: pd.DataFrame, comparison: pd.DataFrame, metric: str = "fg_iou",
                       source: Source | None = None) -> str:
    """The stability grid's answer in words: the spread of the recorded seeds, and where the
    single comparison run falls among them (:func:`spine.training.analysis.position_among`)."""
    done = stability[stability["trained"]]
    if len(done) < 2:
        return (not_recorded("stability", source) if not len(done) else
                "Only one seed of the stability grid is recorded: no spread to measure yet.")
    values = done[metric].astype(float)
    text = (f"Over the {len(done)} recorded seeds, the proposed network's foreground IoU is {values.mean():.3f} on "
            f"average (SD {values.std(ddof=1):.4f}, range {values.min():.3f}–{values.max():.3f})")
    ours = comparison[(comparison["model"] == "Proposed") & comparison["trained"]]
    if not len(ours):
        return text + "; the single comparison run is not recorded, so there is nothing to place among them."
    place = position_among(float(ours.iloc[0][metric]), values)
    return (text + f"; the single comparison run (seed 0) scores {place['value']:.3f}, {place['z']:+.1f} seed SDs "
            f"from that mean, with {place['runs_below']} seed(s) below it and {place['runs_above']} above.")


def not_recorded(grid: str, source: Source | None = None) -> str:
    """The sentence for a grid without records."""
    where = "on real data " if source is None or source.kind != "phantom" else ""
    return (f"Not recorded yet: the runs of the {grid} grid {where}are in the plan (chapter 9 lists what the store "
            "holds), so this section shows the study's figures only.")


def paper_profile_note(store, grid: str) -> str:
    """Whether the grid was also run at the study's own settings (the ``paper`` profile, for a GPU),
    from the records of ``store``."""
    runs = [r for r in records(store) if r.config.profile == "paper"
            and (r.config.model, r.config.loss, r.config.task) in {(c.model, c.loss, c.task) for c in studies.cells(grid)}]
    if not runs:
        return ("The study's own settings (the `paper` profile: width 64, 50 epochs, batch 2) were not run for this "
                "grid: no GPU was lent to the sessions that made these records, so every conclusion here is at the "
                "`cpu` profile's width 16.")
    return (f"{len(runs)} run(s) of this grid are recorded at the study's own settings (the `paper` profile): "
            f"{', '.join(sorted(f'`{r.path.name}`' for r in runs))}.")


def plan_order(plan=studies.PLAN) -> str:
    """The order of a study plan in words: ``"comparison and ablation in every fold, then ..."``."""
    groups: list[tuple[str, list[str]]] = []
    for name, folds in plan:
        where = "every fold" if folds is None else "fold " + ", ".join(map(str, folds))
        if groups and groups[-1][0] == where:
            groups[-1][1].append(name)
        else:
            groups.append((where, [name]))
    return ", then ".join(f"{' and '.join(names) if len(names) < 3 else ', '.join(names[:-1]) + ' and ' + names[-1]}"
                          f" in {where}" for where, names in groups)


def budget_note(hours: float, budget_hours: float, plan=studies.PLAN) -> str:
    """Whether a study's machine ``hours`` fit ``budget_hours``, and the order its runs go in."""
    fits = "fits within" if hours <= budget_hours else "is more than"
    return (f"{hours:.1f} machine hours: that {fits} the {budget_hours} hours the real-data study may take. "
            f"The runs go in order of what they answer: {plan_order(plan)}.")
