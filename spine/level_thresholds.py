"""The thresholds of :mod:`spine.levels`, chosen on one half of the real SPIDER masks and reported
on the other.

The evidence: the central sagittal slice of each of SPIDER's reference masks (``spider-masks-3d``),
reduced to the four classes and labelled again, should get SPIDER's own vertebra and disc numbers
back. Figures of a set of slices (:func:`summary`): how many keep the same set of numbers, how many
name their lowest vertebra L5 and the disc below it L5-S1 (SPIDER's 1 and 201), and the share of
vertebra and disc pixels that get their own number (median and lowest over the slices).

The split (:func:`halves`): by patient, never by series (a patient's T1 and T2 masks are near
copies of one anatomy): the patient ids in numerical order, alternately to the choosing half (the
first, third, ...) and to the reporting half. The choice (:func:`choose`): every candidate of
:data:`GRID` on the choosing half; the best keeps the most slices' numbers, then names the most,
then has the highest mean pixel agreement; among equals, the candidate nearest the rules in use
(:data:`spine.levels.RULES`, in grid steps) wins, so that the rules change only for a better
figure. The chosen rules are then scored once on the reporting half, which the choice never saw.
``benchmarks/level_thresholds.py`` runs it and writes :data:`TABLE`; :func:`readme_lines` states both
halves' figures from that file.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from spine import levels

GRID = {"fragment_fraction": (0.04, 0.06, 0.08, 0.10, 0.12), "run_merge": (1.1, 1.25, 1.4),
        "posterior_shift": (0.0, 0.1, 0.2)}
TABLE = "level_thresholds.csv"  # in benchmarks/results/
HALVES = ("choose", "report")


def bottom_up(mask: np.ndarray) -> np.ndarray:
    """SPIDER instance numbers counted from the lowest vertebra (15 of the 48 series count 17-24
    with 24 the lowest)."""
    vertebrae, discs = (mask >= 1) & (mask <= 25), (mask >= 201) & (mask <= 225)
    if not vertebrae.any() or mask[vertebrae].max() <= 12:
        return mask
    out = mask.copy()
    out[vertebrae] = 25 - mask[vertebrae]
    out[discs] = 200 + 25 - (mask[discs] - 200)
    return out


def central_slices(folder) -> list[tuple[str, np.ndarray, tuple]]:
    """``(series, reference instance numbers counted bottom-up, spacing)`` of the central sagittal
    slice of every ``.mha`` mask in ``folder``, by name."""
    import SimpleITK as sitk

    from spine.data import geometry

    slices = []
    for path in sorted(Path(folder).glob("*.mha")):
        mask, spacing = geometry.central_sagittal_slice(sitk.ReadImage(str(path)))
        slices.append((path.stem, bottom_up(mask.astype(int)), spacing))
    return slices


def patient(series: str) -> str:
    """The SPIDER patient of a series name, e.g. ``"104"`` of ``"104_t2_SPACE"``."""
    return re.match(r"\d+", series).group()


def halves(series) -> dict[str, str]:
    """Each series' half (``"choose"`` or ``"report"``): patients in numerical order, alternately."""
    order = sorted({patient(s) for s in series}, key=int)
    return {s: HALVES[order.index(patient(s)) % 2] for s in series}


def agreement(slices, rules: levels.Rules = levels.RULES) -> pd.DataFrame:
    """Per slice: whether it keeps SPIDER's set of numbers, whether it names L5 and L5-S1, and the
    share of vertebra and disc pixels given their own number."""
    from spine.data import labels

    rows = []
    for name, reference, spacing in slices:
        instances, table = levels.slice_levels(labels.spider_to_classes(reference, "multiclass"), spacing,
                                               source=name, rules=rules)
        spine = (reference > 0) & (reference != levels.CANAL_LABEL)
        rows.append({"series": name, "agreement": float((instances[spine] == reference[spine]).mean()),
                     "same_numbers": set(np.unique(instances[spine])) - {0} == set(np.unique(reference[spine])),
                     "named": table.set_index("label").reindex([1, 201])["level"].tolist() == ["L5", "L5-S1"]})
    return pd.DataFrame(rows)


def summary(per_slice: pd.DataFrame) -> dict:
    """The figures of a set of slices (:func:`agreement`'s rows)."""
    return {"slices": len(per_slice), "patients": len({patient(s) for s in per_slice["series"]}),
            "same_numbers": int(per_slice["same_numbers"].sum()), "named": int(per_slice["named"].sum()),
            "mean_agreement": float(per_slice["agreement"].mean()),
            "median_agreement": float(per_slice["agreement"].median()),
            "min_agreement": float(per_slice["agreement"].min())}


def candidates() -> list[levels.Rules]:
    return [levels.Rules(*values) for values in itertools.product(*GRID.values())]


def _steps_from_current(rules: levels.Rules) -> int:
    """How many grid steps ``rules`` lie from the rules in use."""
    return sum(abs(values.index(getattr(rules, name)) - values.index(getattr(levels.RULES, name)))
               for name, values in GRID.items())


def choose(slices) -> pd.DataFrame:
    """Every candidate's figures on ``slices`` (the choosing half), one row each, best first, with
    ``chosen`` true for the first: the most slices keeping their numbers, then the most named, then
    the highest mean agreement, then the fewest grid steps from the rules in use."""
    rows = [dataclasses.asdict(rules) | summary(agreement(slices, rules)) | {"steps": _steps_from_current(rules)}
            for rules in candidates()]
    table = pd.DataFrame(rows).sort_values(["same_numbers", "named", "mean_agreement", "steps"],
                                           ascending=[False, False, False, True], kind="stable")
    return table.assign(chosen=np.arange(len(table)) == 0).drop(columns="steps").reset_index(drop=True)


def split_study(folder) -> pd.DataFrame:
    """The choice on one half and its figures on the other: :func:`choose`'s rows (``half`` =
    ``"choose"``), then the chosen rules on the reporting half (``half`` = ``"report"``)."""
    slices = central_slices(folder)
    half = halves([name for name, _, _ in slices])
    chosen = choose([s for s in slices if half[s[0]] == "choose"])
    rules = chosen_rules(chosen)
    report = dataclasses.asdict(rules) | summary(agreement([s for s in slices if half[s[0]] == "report"], rules))
    return pd.concat([chosen.assign(half="choose"), pd.DataFrame([report | {"chosen": True, "half": "report"}])],
                     ignore_index=True)


def chosen_rules(table: pd.DataFrame) -> levels.Rules:
    """The rules a :func:`choose` or :func:`split_study` table chose."""
    row = table[table["chosen"]].iloc[0]
    return levels.Rules(**{field.name: float(row[field.name]) for field in dataclasses.fields(levels.Rules)})


def readme_lines(measurements) -> list[str]:
    """Both halves' figures, from ``measurements/`` :data:`TABLE` (none if it is absent)."""
    path = Path(measurements) / TABLE
    if not path.is_file():
        return []
    table = pd.read_csv(path)
    chosen = table[table["chosen"]].set_index("half")
    rules = chosen_rules(table)
    best = chosen.loc["choose"]
    tried = table[table["half"] == "choose"]
    tied = tried[(tried["same_numbers"] == best["same_numbers"]) & (tried["named"] == best["named"])]

    def figures(row) -> str:
        return (f"{row['same_numbers']} of {row['slices']} slices ({row['patients']} patients) keep SPIDER's own numbers, "
                f"{row['named']} name L5 and L5-S1, and {row['median_agreement']:.2%} of the vertebra and disc pixels "
                f"get their own number in the median slice ({row['min_agreement']:.2%} in the worst)")

    return ["#### Per-level labels: thresholds chosen on half the masks (generated from "
            f"`benchmarks/results/{TABLE}`)", "",
            f"The thresholds of `spine/levels.py` (fragment {rules.fragment_fraction:g} of a typical part, run merge "
            f"{rules.run_merge:g} median extents, posterior shift {rules.posterior_shift:g}) were chosen among "
            f"{len(tried)} candidates on the central slices of the real SPIDER masks of every other patient "
            f"(`spine.level_thresholds`): there {figures(best)}. {len(tied)} of the {len(tried)} candidates keep and "
            f"name as many slices; the highest mean pixel agreement ({best['mean_agreement']:.2%}, against "
            f"{tied['mean_agreement'].min():.2%} for the lowest of those) chose among them, and nearness to the rules "
            f"in use where that tied too. On the other half, which the choice never saw, {figures(chosen.loc['report'])}."]
