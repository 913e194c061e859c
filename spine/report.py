"""A grid of runs shown the way the book shows it beside the study: a table, a figure, paired tests.

Several chapters show a grid (a study table from :func:`spine.training.studies.study_table`) the
same three ways, so the way lives here, once:

1. the table of ours beside the study's (:func:`spine.training.analysis.beside_study`);
2. bars of our F1 (with its 95 % interval) beside the study's;
3. paired comparisons on the same test patients (images, for records without per-patient tables)
   (:func:`spine.training.comparisons.paired_comparisons`, shown by :func:`pairs_table`), or a note
   when too few rows are trained.

:func:`table_or_note` shows any other table the same way: its rows, or one sentence when it has none.
Every sentence that compares models is worded by :func:`verdict` (through :func:`pair_sentence`,
:func:`grid_finding`, :func:`recipe_sensitivity` and the README's table), from the one rule of
:func:`spine.stats.compare_family`.

:func:`grid_section` displays the three in a notebook and returns them, so that a test (or a
reader's own script) can inspect what a chapter showed. :func:`budget_note` is the sentence a
chapter writes under a study's cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spine import plots, stats
from spine.training import analysis, comparisons, studies
from spine.training import store as results

if TYPE_CHECKING:
    from IPython.display import Markdown

# What a section says, in one sentence, when its data are absent.
NO_PAIRS = "Not enough recorded runs for a paired comparison."
NO_RUNS = "No run of this table is recorded: nothing to plot or compare."
NOT_RECORDED = "No run of this grid is in the store, and this build trained none."
NO_FIGURE = "No run of this grid is recorded: no segmentations to draw."


def note(sentence: str) -> Markdown:
    """A sentence that stands in for absent data, set apart in italics."""
    from IPython.display import Markdown

    return Markdown(f"*{sentence}*")


def table_or_note(table: pd.DataFrame, absent: str = NOT_RECORDED, style=plots.format_table, *args):
    """``style(table, *args)`` for display, or, when the table has no rows, the sentence ``absent``:
    a page never shows an empty table."""
    return style(table, *args) if len(table) else note(absent)


def grid_section(table: pd.DataFrame, store, reference: str = "Proposed", *, families: tuple[str, ...] = (),
                 keys=("model", "loss"), bar_label: pd.Series | None = None,
                 title: str = "F1 (Dice) with 95% CI", absent: str | None = None) -> dict:
    """Display ``table``'s rows beside the study's: the table, F1 bars, and each row against
    ``reference`` (or, with ``families``, against its own family's row) image by image.

    ``bar_label`` names the bars when the model name alone is ambiguous (e.g. model and loss);
    ``absent`` is the sentence shown instead of all three when no row is recorded.
    Returns ``{"table", "figure", "pairs"}``: what was shown (no figure when no row is trained).
    """
    from IPython.display import display

    beside = analysis.beside_study(table, keys=keys)
    if not table["trained"].any():
        display(note(absent or NO_RUNS))  # the study's figures are on the page already
        return {"table": beside, "figure": None, "pairs": pd.DataFrame()}
    display(plots.format_table(beside))
    bars = table.assign(row=table["model"] if bar_label is None else bar_label)
    figure, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    plots.ours_vs_study(bars, "f1", "study_f1", label="row", ax=ax, ci="dice_ci", title=title)
    figure.tight_layout()
    plt.show()
    pairs = comparisons.paired_comparisons(table, store, reference=reference, families=families)
    display(pairs_table(pairs))
    return {"table": beside, "figure": figure, "pairs": pairs}


def pairs_legend() -> str:
    """What the columns of a paired table (:func:`spine.training.comparisons.paired_comparisons`) mean."""
    return ("Each row: the mean paired difference in Dice (the reference row minus this one) over the same test "
            "patients, with its 95 % BCa interval; the two-sided sign-flip permutation test of that mean (exact), "
            "Holm-adjusted over the grid's comparisons, with Wilcoxon's signed-rank p beside it; the mean difference "
            "with each patient left out in turn (its range); the patient whose absence alone changes the outcome "
            "(whether the interval excludes 0 or the adjusted p is below 0.05), with the comparison without it; the "
            "smallest adjusted p this many patients allow (the grid's size times 2 / 2^n; at 0.05 or above no verdict "
            f"is possible); and the verdict: {verdict_rule()}.")


def pairs_table(pairs: pd.DataFrame, absent: str = NO_PAIRS):
    """A grid's paired comparisons as the chapters show them: :func:`pairs_legend` above the table, or
    the sentence ``absent`` when there is none."""
    from IPython.display import Markdown, display

    if not len(pairs):
        return note(absent)
    display(Markdown(pairs_legend()))
    return plots.format_counts(pairs, 4)


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


# --------------------------------------------------------------------------- which data a page shows

SPIDER_CREDIT = ("SPIDER: van der Graaf et al., *Scientific Data* 11, 264 (2024), CC BY 4.0; the slices are its "
                 "T2-SPACE series, not the study's T1")
RECORDS_PROFILE = "cpu"  # the profile of the committed real-data records


@dataclass(frozen=True)
class Source:
    """What a chapter's grids show: ``kind`` is ``"records"`` (the store's real-data records, read,
    never trained), ``"phantom"`` (the study re-executed on the synthetic phantom) or ``"real"`` (a
    real data folder: read, and missing runs trained within the chapter's budget); ``data`` is what the
    grid functions of ``spine.training.studies`` get (``"recorded:<data_id>"`` for records)."""

    kind: str
    data: str
    profile: str
    store: str
    data_id: str | None = None

    @property
    def trains(self) -> bool:
        return self.kind != "records"

    @property
    def recorded(self) -> bool:
        """Whether the store holds any record of this source (for records: any real-data record)."""
        return self.data_id is not None


def study_source(data, profile: str, store) -> Source:
    """The source of a chapter's grids from the book's parameters: ``data="recorded"`` (the default
    book) reads the real-data records of ``store`` (at the records' profile, whatever ``profile``
    says); ``phantom`` (or ``phantom:N``) and a data folder execute the study at ``profile``."""
    data = str(data)
    if data == results.RECORDED or results.recorded_data_id_of(data):
        source = results.recorded_source(store, RECORDS_PROFILE) if data == results.RECORDED else data
        data_id = results.recorded_data_id_of(source) if source else None
        return Source("records", source or results.RECORDED_PREFIX + "none", RECORDS_PROFILE, str(store), data_id)
    kind = "phantom" if data.startswith("phantom") else "real"
    return Source(kind, data, profile, str(store), data)


def study_grid(source: Source, name: str, max_new_runs: int | None = None, folds=None) -> pd.DataFrame:
    """A grid's table (:func:`spine.training.studies.study_table`); a source that trains first
    trains the grid's missing runs (at most ``max_new_runs``), a records source never does."""
    if source.trains:
        return studies.run_study(name, source.data, source.profile, source.store, max_new_runs=max_new_runs,
                                 verbose=False, folds=folds)
    return studies.study_table(name, source.data, source.profile, source.store, folds=folds)


def patients_recorded(source: Source) -> int | None:
    """How many patients the records' data hold (from the store's fold manifest), if known."""
    if source.data_id is None:
        return None
    folds = analysis.fold_patients(source.store, source.data_id)
    return None if folds is None else int(folds["patients"].sum())


class Banner:
    """A one-line admonition (HTML in the book, Markdown in a notebook viewer)."""

    def __init__(self, title: str, text: str):
        self.title, self.text = title, text

    def _repr_markdown_(self) -> str:
        return f"> **{self.title}** {self.text}"

    def _repr_html_(self) -> str:
        import html
        import re

        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(self.text, quote=False))
        body = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", body)
        return (f'<div class="admonition note spine-data"><p class="admonition-title">{html.escape(self.title)}</p>'
                f"<p>{body}</p></div>")

    def __str__(self) -> str:
        return f"{self.title} {self.text}"


def data_banner(source: Source, executes: str | None = None) -> Banner:
    """The line at the top of every chapter that says which data and protocol its figures come from;
    ``executes`` adds what the page itself computes (e.g. the pipeline on the phantom)."""
    if source.kind == "records":
        if source.recorded:
            patients = patients_recorded(source)
            text = (f"The study's grids on real SPIDER slices{f' ({patients} patients)' if patients else ''}, read from "
                    f"the records committed in `results/` (data `{source.data_id}`, `{source.profile}` profile, "
                    "cross-validated by patient); nothing is trained to draw them. " + SPIDER_CREDIT + ".")
        else:
            text = (f"The store `{Path(source.store).name}` holds no real-data record yet, so the grids below show "
                    "the study's figures only; `spine book --data phantom` re-executes the study on the phantom.")
        title = "Data: real SPIDER slices, from the records."
    elif source.kind == "phantom":
        title = "Data: the synthetic phantom."
        text = (f"The study re-executed on `{source.data}` at the `{source.profile}` profile (runs missing from the store "
                "are trained by this build): its figures show the code at work, not results on patients.")
    else:
        title = "Data: real slices, executed."
        text = (f"The study's grids on `{Path(source.data).name}` at the `{source.profile}` profile, read from the "
                "store, missing runs trained by this build. " + SPIDER_CREDIT + ".")
    if executes:
        text += " " + executes
    return Banner(title, text)


# --------------------------------------------------------------------------- a grid's answer, in words


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


def paper_profile_note(store, grid: str) -> str:
    """Whether the grid was also run at the study's own settings (the ``paper`` profile, for a GPU),
    from the records of ``store``."""
    runs = [r for r in results.records(store) if r.config.profile == "paper"
            and (r.config.model, r.config.loss, r.config.task) in {(c.model, c.loss, c.task) for c in studies.cells(grid)}]
    if not runs:
        return ("The study's own settings (the `paper` profile: width 64, 50 epochs, batch 2) were not run for this "
                "grid: no GPU was lent to the sessions that made these records, so every conclusion here is at the "
                "`cpu` profile's width 16.")
    return (f"{len(runs)} run(s) of this grid are recorded at the study's own settings (the `paper` profile): "
            f"{', '.join(sorted(f'`{r.path.name}`' for r in runs))}.")


def not_recorded(grid: str, source: Source | None = None) -> str:
    """The sentence for a grid without records."""
    where = "on real data " if source is None or source.kind != "phantom" else ""
    return (f"Not recorded yet: the runs of the {grid} grid {where}are in the plan (chapter 9 lists what the store "
            "holds), so this section shows the study's figures only.")


def _delta(pairs) -> str:
    """The column of a paired table that holds the mean difference (``mean Δ<metric>``)."""
    return next(column for column in pairs.index if column.startswith("mean Δ"))


def _listed(names) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _patients(units: list, unit: str) -> str:
    return f"{'patient' if unit == 'patients' else 'image'}{'s' * (len(units) > 1)} {_listed(units)}"


def verdict(pair: pd.Series, reference: str, other: str, what: str = "{}") -> str:
    """The one way the book words a paired comparison (a row of :func:`spine.training.studies.
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


ALPHA = 0.05  # the level of spine.stats.compare_family's verdicts


def verdict_rule() -> str:
    """The rule behind every verdict, in words."""
    return (f"ahead or behind only when the Holm-adjusted p < {ALPHA}, the 95 % interval excludes 0 and no single "
            "patient left out changes either; otherwise not distinguishable")


def recipe_sensitivity(table: pd.DataFrame, store, data, profile: str) -> str:
    """The comparison without the patients the recipe was chosen on (:func:`spine.training.studies.
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
    place = analysis.position_among(float(ours.iloc[0][metric]), values)
    return (text + f"; the single comparison run (seed 0) scores {place['value']:.3f}, {place['z']:+.1f} seed SDs "
            f"from that mean, with {place['runs_below']} seed(s) below it and {place['runs_above']} above.")
