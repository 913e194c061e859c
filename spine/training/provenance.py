"""What the store holds of the grids and how it was made: each table's provenance (data, profile,
settings, seeds, code, wall time), the plan's coverage (which runs are recorded, which missing)
and its cost in machine hours. Nothing here trains; the grids and the plan are
:mod:`spine.training.studies`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spine.training import studies
from spine.training.store import DEFAULT_STORE, is_finished, load_record, read_json, record_code


def plan_budget(data, profile: str, store=DEFAULT_STORE, minutes_per_run: float | None = None,
                plan=studies.PLAN) -> pd.DataFrame:
    """Per grid of the plan: its new runs, how many are recorded, and the machine hours they take
    at ``minutes_per_run`` (default: the mean wall minutes of the plan's recorded runs)."""
    runs = studies.plan_runs(data, profile, plan)
    runs["recorded"] = [is_finished(Path(store) / run) for run in runs["run_id"]]
    if minutes_per_run is None:
        done = runs.loc[runs["recorded"], "run_id"]
        minutes = [read_json(Path(store) / run / "environment.json")["wall_seconds"] / 60 for run in done]
        minutes_per_run = float(np.mean(minutes)) if minutes else float("nan")
    table = runs.groupby("grid", sort=False).agg(folds=("fold", lambda f: ", ".join(map(str, sorted(set(f))))),
                                                 runs=("run_id", "size"), recorded=("recorded", "sum")).reset_index()
    table["hours"] = (table["runs"] * minutes_per_run / 60).round(1)
    total = {"grid": "all", "folds": "", "runs": table["runs"].sum(), "recorded": table["recorded"].sum(),
             "hours": round(table["runs"].sum() * minutes_per_run / 60, 1)}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def provenance(table: pd.DataFrame, store=DEFAULT_STORE) -> pd.DataFrame:
    """How a table's runs were made: data, profile and its settings, seeds, runs, wall time."""
    done = [load_record(Path(store) / run) for runs in table.loc[table["trained"], "run_ids"] for run in runs]
    if not done:
        return pd.DataFrame()
    first = done[0].config
    minutes = sum(read_json(r.path / "environment.json")["wall_seconds"] for r in done) / 60
    facts = {"data": first.data_id, "profile": first.profile, **first.settings,
             "seeds": ", ".join(sorted({str(r.config.seed) for r in done})),
             "runs": f"{len(done)} of {table['folds'].sum()}",
             "code": code_summary([record_code(r) for r in done]),
             "wall minutes (all runs)": round(minutes, 1)}
    return pd.DataFrame({"setting": list(facts), "value": [str(v) for v in facts.values()]})


CODES_LISTED = 2  # a provenance table names at most this many code versions, then counts the rest


def code_summary(codes: list[str]) -> str:
    """Several records' code versions in a few words: each distinct one with its count of runs,
    the most frequent first, the rest counted (records are made over many commits)."""
    counts = pd.Series(codes).value_counts()
    named = [f"{code} ({count} run{'s' * (count > 1)})" for code, count in counts.iloc[:CODES_LISTED].items()]
    rest = len(counts) - CODES_LISTED
    return "; ".join(named) + (f"; {rest} other commit{'s' * (rest > 1)}" if rest > 0 else "")


def provenance_side_by_side(tables: dict[str, pd.DataFrame], store=DEFAULT_STORE) -> pd.DataFrame:
    """:func:`provenance` of several tables as one: a row per setting, a column per table."""
    facts = {name: provenance(table, store) for name, table in tables.items()}
    columns = {name: table.set_index("setting")["value"] for name, table in facts.items() if len(table)}
    if not columns:
        return pd.DataFrame()
    order = list(dict.fromkeys(setting for values in columns.values() for setting in values.index))
    return pd.DataFrame(columns).reindex(order).rename_axis("setting").reset_index()


MISSING_LISTED = 6  # coverage names at most this many missing runs of a grid, then counts them


def coverage(data, profile: str, store=DEFAULT_STORE, plan=studies.PLAN) -> pd.DataFrame:
    """Per grid of ``plan``, in the folds the plan runs it in: how many of its runs on ``data`` at
    ``profile`` the store holds, and which are missing."""
    rows = []
    for name, folds in plan:
        table = studies.study_table(name, data, profile, store, folds=folds)
        recorded = int(table["run_ids"].map(len).sum())
        total = int(table["folds"].sum())
        missing = table.loc[table["run_ids"].map(len) < table["folds"]]
        labels = [f"{m} ({loss})" if name in ("loss", "multiclass", "attention") else m
                  for m, loss in zip(missing["model"], missing["loss"])]
        if name == "stability":
            labels = [f"seed {seed}" for seed in missing["seed"]]
        rows.append({"grid": name, "folds": "every" if folds is None else ", ".join(map(str, folds)),
                     "recorded": recorded, "runs": total,
                     "missing": "–" if recorded == total else
                     (", ".join(labels) if len(labels) <= MISSING_LISTED else f"{total - recorded} runs")})
    return pd.DataFrame(rows)
