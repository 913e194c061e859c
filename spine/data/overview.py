"""Summaries of a dataset for people: label tables, class balance, the split.

- :func:`label_mapping_table`: how SPIDER's instance values and the grey values of the PNG slices
  become the study's classes, through the library's own mapping functions;
- :func:`raw_case`: one unprocessed central sagittal slice of a source, its mask values and
  structures;
- :func:`class_balance`: each structure's share of the pixels, per dataset;
- :func:`shared_patients`: the patients found in more than one subset (none, for a split by
  patient; the split a run uses is ``spine.training.folds.split_overview``);
- :func:`geometry_table`: size, spacing, origin and direction of volumes side by side.

The figures drawn from these are in ``spine.plots``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spine.data import dataset, labels, slices, spider
from spine.data.io import read_slice


def label_mapping_table() -> pd.DataFrame:
    """How mask values become the study's classes: SPIDER's instance values, and the grey values of
    the published PNG slices, each mapped through the library's own functions."""
    instance_groups = [("0", [0], "background"), ("1–25", range(1, 26), "vertebra k (instance number)"),
                       ("101–125", range(101, 126), "vertebra k cut by the field of view"),
                       ("100", [100], "spinal canal"), ("201–225", range(201, 226), "disc 200 + k, below vertebra k")]
    rows = []
    groups = [("SPIDER .mha", text, np.asarray(list(values)), meaning) for text, values, meaning in instance_groups]
    groups += [("PNG slices", str(value), np.asarray([value]), "grey value")
               for value in sorted(labels.SLICE_VALUE_TABLE)]
    for source, text, values, meaning in groups:
        if source.startswith("SPIDER"):
            structures = np.unique(labels.spider_structures(values))
        else:
            structures = np.unique(labels.table_to_structures(values, labels.SLICE_VALUE_TABLE))
        (structure,) = structures  # every value of a group maps to one structure
        binary = int(labels.structures_to_classes(structure, "binary"))
        multi = int(labels.structures_to_classes(structure, "multiclass"))
        rows.append({"source": source, "values": text, "meaning": meaning,
                     "binary class": f"{binary} {labels.CLASS_NAMES['binary'][binary]}",
                     "4-class class": f"{multi} {labels.CLASS_NAMES['multiclass'][multi]}"})
    return pd.DataFrame(rows)


def raw_case(source, patient: int = 0) -> dict:
    """The unprocessed central sagittal slice of the ``patient``-th patient of a source.

    The phantom and SPIDER archives: the volume's central sagittal slice through the SPIDER reader
    (mask in instance values, spacing in mm); slice folders: the patient's PNG pair nearest its
    middle slice index (mask in grey values, no spacing). Keys: image, mask, structures, spacing,
    case_id, layout.
    """
    layout = dataset.detect_layout(source)
    if layout == "slices":
        pairs = slices.find_pairs(source)
        patients = list(dict.fromkeys(p.patient for p in pairs))
        own = [p for p in pairs if p.patient == patients[patient]]
        middle = np.median([p.index for p in own])
        pair = min(own, key=lambda p: abs(p.index - middle))
        image, mask = read_slice(pair.image), read_slice(pair.mask)
        structures = labels.table_to_structures(mask, labels.SLICE_VALUE_TABLE, pair.mask)
        return {"image": image, "mask": mask, "structures": structures, "spacing": (np.nan, np.nan),
                "case_id": pair.case_id, "layout": layout}
    if layout == "phantom":
        parts = str(source).split(":")
        count = int(parts[1]) if len(parts) > 1 else dataset.PHANTOM_PATIENTS
        source = dataset.phantom_archive(count, dataset.PHANTOM_SEED)
    series = spider.find_series(source)[patient]
    image, mask, spacing = spider.read_series(series)
    return {"image": image, "mask": mask, "structures": labels.spider_structures(mask).astype(np.uint8),
            "spacing": tuple(float(s) for s in spacing), "case_id": series.case_id, "layout": layout}


def class_balance(structure_maps: dict) -> pd.DataFrame:
    """Each structure's share of the pixels (%), per dataset: over all slices (all of one size, so
    this is also the mean over slices), its range over slices, and the slices where it is absent.
    ``structure_maps``: name -> (N, H, W) structure codes (0 background, 1 vertebra, 2 disc, 3 canal)."""
    rows = []
    for name, maps in structure_maps.items():
        maps = np.asarray(maps)
        flat = maps.reshape(len(maps), -1)
        for code, structure in list(enumerate(labels.CLASS_NAMES["multiclass"])) + [(None, "foreground")]:
            hit = flat > 0 if code is None else flat == code
            share = 100.0 * hit.mean(axis=1)
            rows.append({"data": name, "structure": structure, "share of pixels (%)": 100.0 * hit.mean(),
                         "smallest in a slice (%)": share.min(), "largest in a slice (%)": share.max(),
                         "slices without it": int((share == 0).sum()), "slices": len(maps)})
    return pd.DataFrame(rows)


def shared_patients(subsets: dict) -> list[str]:
    """Patients found in more than one subset (a split by patient has none)."""
    seen: dict[str, int] = {}
    for s in subsets.values():
        for patient in set(map(str, s.patients)):
            seen[patient] = seen.get(patient, 0) + 1
    return sorted(p for p, n in seen.items() if n > 1)


def geometry_table(volumes: dict) -> pd.DataFrame:
    """Size, spacing, origin and direction of SimpleITK images side by side (one column each), and
    whether they all agree (``same``: exactly for size and direction, to 1e-6 for spacing and origin)."""
    facts = {"size": lambda v: tuple(int(s) for s in v.GetSize()),
             "spacing (mm)": lambda v: tuple(round(float(s), 4) for s in v.GetSpacing()),
             "origin (mm)": lambda v: tuple(round(float(s), 3) for s in v.GetOrigin()),
             "direction": lambda v: tuple(round(float(s), 3) for s in v.GetDirection())}
    exact = {"size": lambda v: v.GetSize(), "spacing (mm)": lambda v: v.GetSpacing(),
             "origin (mm)": lambda v: v.GetOrigin(), "direction": lambda v: v.GetDirection()}
    rows = []
    for name, fact in facts.items():
        row = {"property": name, **{label: str(fact(v)) for label, v in volumes.items()}}
        values = [np.asarray(exact[name](v), dtype=float) for v in volumes.values()]
        row["same"] = all(a.shape == values[0].shape and np.allclose(a, values[0], rtol=0, atol=1e-6) for a in values)
        rows.append(row)
    return pd.DataFrame(rows)
