"""Which data a chapter shows, from the book's parameters (``spine book --data``): the store's
real-data records (read, never trained), the study re-executed on the phantom, or a real data
folder; the grids' tables from that source; and the banner at the top of every page that says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spine.training import studies
from spine.training.folds import fold_patients
from spine.training.store import RECORDED, RECORDED_PREFIX, recorded_data_id_of, recorded_source

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


def resolve(data, profile: str, store) -> Source:
    """The source of a chapter's grids from the book's parameters: ``data="recorded"`` (the default
    book) reads the real-data records of ``store`` (at the records' profile, whatever ``profile``
    says); ``phantom`` (or ``phantom:N``) and a data folder execute the study at ``profile``."""
    data = str(data)
    if data == RECORDED or recorded_data_id_of(data):
        recorded = recorded_source(store, RECORDS_PROFILE) if data == RECORDED else data
        data_id = recorded_data_id_of(recorded) if recorded else None
        return Source("records", recorded or RECORDED_PREFIX + "none", RECORDS_PROFILE, str(store), data_id)
    kind = "phantom" if data.startswith("phantom") else "real"
    return Source(kind, data, profile, str(store), data)


def grid_table(source: Source, name: str, max_new_runs: int | None = None, folds=None) -> pd.DataFrame:
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
    folds = fold_patients(source.store, source.data_id)
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


def banner(source: Source, executes: str | None = None) -> Banner:
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
