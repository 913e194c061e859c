"""A grid of runs shown the way the book shows it beside the study: a table, a figure, paired tests.

Several chapters show a grid (a study table from :func:`spine.training.studies.study_table`) the
same three ways, so the way lives here, once:

1. the table of ours beside the study's (:func:`spine.training.analysis.beside_study`);
2. bars of our F1 (with its 95 % interval) beside the study's;
3. paired comparisons on the same test images
   (:func:`spine.training.studies.paired_comparisons`), or a note when too few rows are trained.

:func:`grid_section` displays the three in a notebook and returns them, so that a test (or a
reader's own script) can inspect what a chapter showed. :func:`budget_note` is the sentence a
chapter writes under a study's cost.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from spine import plots
from spine.training import analysis, studies

NO_PAIRS = "*Not enough trained runs in this build for a paired comparison.*"
NO_RUNS = "*No run of this table is trained in this build: nothing to plot or compare.*"


def grid_section(table: pd.DataFrame, store, reference: str = "Proposed", *, families: tuple[str, ...] = (),
                 keys=("model", "loss"), bar_label: pd.Series | None = None,
                 title: str = "F1 (Dice) with 95% CI") -> dict:
    """Display ``table``'s rows beside the study's: the table, F1 bars, and each row against
    ``reference`` (or, with ``families``, against its own family's row) image by image.

    ``bar_label`` names the bars when the model name alone is ambiguous (e.g. model and loss).
    Returns ``{"table", "figure", "pairs"}``: what was shown (no figure when no row is trained).
    """
    beside = analysis.beside_study(table, keys=keys)
    display(plots.format_table(beside))
    if not table["trained"].any():
        display(Markdown(NO_RUNS))
        return {"table": beside, "figure": None, "pairs": pd.DataFrame()}
    bars = table.assign(row=table["model"] if bar_label is None else bar_label)
    figure, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    plots.ours_vs_study(bars, "f1", "study_f1", label="row", ax=ax, ci="dice_ci", title=title)
    figure.tight_layout()
    plt.show()
    pairs = studies.paired_comparisons(table, store, reference=reference, families=families)
    display(plots.format_counts(pairs, 4) if len(pairs) else Markdown(NO_PAIRS))
    return {"table": beside, "figure": figure, "pairs": pairs}


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
