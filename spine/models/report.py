"""Parameter counts of the zoo beside the study's (Table 8, "complexity")."""

from __future__ import annotations

import gc
import math

import keras
import pandas as pd

from spine.models.registry import BASELINE_NAMES, build_model


def count_parameters(model: keras.Model) -> dict[str, int]:
    """``{"total", "trainable", "non_trainable"}`` parameter counts of a built model."""
    trainable = sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(int(d) for d in w.shape) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def parameter_counts(names=BASELINE_NAMES, num_classes: int = 2, width: int = 64,
                     input_shape=(128, 128, 1)) -> dict[str, dict[str, int]]:
    """Build each model in turn (no training) and count its parameters; memory freed between builds."""
    if isinstance(names, str):
        names = (names,)
    counts = {}
    for name in names:
        keras.backend.clear_session()
        model = build_model(name, input_shape=input_shape, num_classes=num_classes, width=width)
        counts[name] = count_parameters(model)
        del model
        keras.backend.clear_session()
        gc.collect()
    return counts


def parameter_table(names=BASELINE_NAMES) -> pd.DataFrame:
    """Ours beside the study's, at the study's configuration (128x128x1, 2 classes, width 64).

    Columns: model, total, trainable, non_trainable, study_total, study_trainable,
    study_non_trainable, total_diff_pct (``100 * (total - study_total) / study_total``).
    """
    from spine.paper import table

    study = table("complexity").set_index("model")
    rows = []
    for name, ours in parameter_counts(names).items():
        row = {"model": name, **ours}
        if name in study.index:
            ref = study.loc[name]
            row.update(study_total=int(ref["total_params"]), study_trainable=int(ref["trainable_params"]),
                       study_non_trainable=int(ref["non_trainable_params"]))
            row["total_diff_pct"] = 100.0 * (row["total"] - row["study_total"]) / row["study_total"]
        rows.append(row)
    columns = ["model", "total", "trainable", "non_trainable", "study_total", "study_trainable",
               "study_non_trainable", "total_diff_pct"]
    return pd.DataFrame(rows).reindex(columns=columns)
