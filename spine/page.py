"""How a chapter's page shows what it computes: tables in the book's look (fixed decimals, the
study's columns in grey), a sentence in place of a table whose data are absent, and a grid of runs
beside the study.

Several chapters show a grid (a table of :func:`spine.training.studies.study_table`) the same three
ways, so :func:`grid_section` shows them once:

1. the table of ours beside the study's (:func:`spine.training.analysis.beside_study`);
2. bars of our F1 (with its 95 % interval) beside the study's;
3. paired comparisons on the same test patients (images, for records without per-patient tables)
   (:func:`spine.training.comparisons.paired_comparisons`, shown by :func:`pairs_table`), or a note
   when too few rows are trained.

:func:`table_or_note` shows any other table the same way: its rows, or one sentence when it has none.
What the sentences say is :mod:`spine.sentences`'s; which data a page shows, :mod:`spine.book_data`'s.
IPython is imported only where something is displayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spine import plots
from spine.sentences import pairs_legend
from spine.training import analysis, comparisons

if TYPE_CHECKING:
    from IPython.display import Markdown

# What a section says, in one sentence, when its data are absent.
NO_PAIRS = "Not enough recorded runs for a paired comparison."
NO_RUNS = "No run of this table is recorded: nothing to plot or compare."
NOT_RECORDED = "No run of this grid is in the store, and this build trained none."
NO_FIGURE = "No run of this grid is recorded: no segmentations to draw."


# --------------------------------------------------------------------------- the book's table look


def format_table(table: pd.DataFrame, digits: int = 4):
    """A pandas Styler with fixed decimals (none for whole-number columns such as seeds or
    counts, even when a missing value made them float) and the study's columns in grey."""
    formats = {}
    for column in table.select_dtypes("number").columns:
        values = table[column].dropna()
        whole = len(values) > 0 and bool(np.all(np.mod(values, 1) == 0))
        formats[column] = "{:.0f}" if whole else f"{{:.{digits}f}}"
    return _styled(table, formats)


def _styled(table: pd.DataFrame, formats: dict):
    """The book's table look: ``formats`` per column, missing values as "–", no index, the study's
    columns in grey."""
    styler = table.style.format(formats, na_rep="–").hide(axis="index")
    styler = styler.format_index(lambda label: str(label).replace("_", "_<wbr>"), axis="columns")  # may wrap there
    study = [c for c in table.columns if str(c).startswith("study")]
    return styler.set_properties(subset=study, color="#666666") if study else styler


def format_counts(table: pd.DataFrame, digits: int = 2):
    """Like :func:`format_table` for counts: integer columns with thousands separators, other numbers
    with ``digits`` decimals, missing values as "–", the study's columns in grey."""
    formats = {column: "{:,.0f}" if pd.api.types.is_integer_dtype(table[column]) else f"{{:,.{digits}f}}"
               for column in table.select_dtypes("number").columns}
    return _styled(table, formats)


def format_turned(table: pd.DataFrame, index: str, digits: int = 4):
    """A table of few rows and many columns turned to fit the page: one column per row of ``table``
    (headed by its ``index`` value), one row per other column (the study's rows in grey); a column
    of whole numbers without decimals, other numbers with ``digits``, tuples (intervals) element by
    element, missing values as "–"."""
    def cell(value, whole: bool) -> str:
        if isinstance(value, tuple):
            return "(" + ", ".join(cell(v, False) for v in value) + ")"
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return "–" if np.isnan(value) else f"{value:,.0f}" if whole else f"{value:,.{digits}f}"
        return str(value)

    def shown(column: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(column, errors="coerce").dropna() if column.dtype != object else pd.Series(dtype=float)
        whole = len(numbers) > 0 and bool(np.all(np.mod(numbers, 1) == 0))
        return column.map(lambda value: cell(value, whole))

    turned = table.set_index(index).apply(shown).T.rename_axis("").reset_index()
    study = turned.index[turned[""].astype(str).str.startswith("study")]
    return _styled(turned, {}).set_properties(subset=pd.IndexSlice[study, :], color="#666666")


# --------------------------------------------------------------------------- a table, or a sentence in its place


def note(sentence: str) -> Markdown:
    """A sentence that stands in for absent data, set apart in italics."""
    from IPython.display import Markdown

    return Markdown(f"*{sentence}*")


def table_or_note(table: pd.DataFrame, absent: str = NOT_RECORDED, style=format_table, *args):
    """``style(table, *args)`` for display, or, when the table has no rows, the sentence ``absent``:
    a page never shows an empty table."""
    return style(table, *args) if len(table) else note(absent)


def pairs_table(pairs: pd.DataFrame, absent: str = NO_PAIRS):
    """A grid's paired comparisons as the chapters show them: :func:`spine.sentences.pairs_legend` above it, or
    the sentence ``absent`` when there is none."""
    from IPython.display import Markdown, display

    if not len(pairs):
        return note(absent)
    display(Markdown(pairs_legend()))
    return format_counts(pairs, 4)


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
    display(format_table(beside))
    bars = table.assign(row=table["model"] if bar_label is None else bar_label)
    figure, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    plots.ours_vs_study(bars, "f1", "study_f1", label="row", ax=ax, ci="dice_ci", title=title)
    figure.tight_layout()
    plt.show()
    pairs = comparisons.paired_comparisons(table, store, reference=reference, families=families)
    display(pairs_table(pairs))
    return {"table": beside, "figure": figure, "pairs": pairs}
