"""Parameter counts of the zoo beside the study's (Table 8, "complexity"), and compact outlines of
the models' blocks (a short ``model.summary()``) for the book's architecture chapter."""

from __future__ import annotations

import math

import keras
import numpy as np
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
    return {name: count_parameters(_built(name, input_shape, num_classes, width)) for name in names}


def _built(name: str, input_shape, num_classes: int, width: int) -> keras.Model:
    """A fresh build in a cleared session: the previous build's memory is freed first (one clearing,
    which also collects garbage, per build: a second one after each build had cost a third of the time)."""
    keras.backend.clear_session()
    return build_model(name, input_shape=input_shape, num_classes=num_classes, width=width)


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


def _block_of(layer_name: str) -> str:
    first = layer_name.split("_")[0]
    if first.startswith("transformer") or first in ("patch", "tokens", "pos", "embed", "encoder", "token"):
        return "transformer"
    return "input" if first == "image" else first


def _block_order(block: str) -> float:
    fixed = {"input": 0, "inception": 1, "transformer": 6, "bottleneck": 7, "aux": 12, "mask": 13}
    if block in fixed:
        return fixed[block]
    if block[:3] == "enc" and block[3:].isdigit():
        return 1 + int(block[3:])
    if block[:3] == "dec" and block[3:].isdigit():
        return 12 - int(block[3:])
    return 50.0


def _stage_of(block: str) -> str:
    if block in ("inception",) or block.startswith("enc"):
        return "encoder"
    if block.startswith("dec"):
        return "decoder"
    if block in ("aux", "mask"):
        return "heads"
    return block


def architecture_outline(model) -> pd.DataFrame:
    """A compact ``model.summary()``: the model's blocks in order (input, encoder blocks, Transformer,
    bottleneck, decoder stages, heads), with their stage, layer count, convolutions, BatchNorms,
    output shape (of the block's last layer) and parameters. Blocks are read from the layer names
    (``enc2_1_conv`` belongs to ``enc2``; skip attention and gates to their decoder stage)."""
    blocks: dict[str, list] = {}
    for layer in model.layers:
        blocks.setdefault(_block_of(layer.name), []).append(layer)
    rows = []
    for block, layers in blocks.items():
        shape = tuple(layers[-1].output.shape)[1:]
        rows.append({"block": block, "stage": _stage_of(block), "layers": len(layers),
                     "conv": sum(isinstance(l, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) for l in layers),
                     "batchnorm": sum(isinstance(l, keras.layers.BatchNormalization) for l in layers),
                     "output": "×".join(str(d) for d in shape), "params": int(sum(l.count_params() for l in layers))})
    table = pd.DataFrame(rows)
    order = table["block"].map(_block_order)
    return table.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)


def outline_table(names, width: int = 64, input_shape=(128, 128, 1), num_classes: int = 2) -> pd.DataFrame:
    """:func:`architecture_outline` of each named model (built in turn, the session cleared between
    builds), stacked with a ``model`` column."""
    parts = [architecture_outline(_built(name, input_shape, num_classes, width)).assign(model=name) for name in names]
    table = pd.concat(parts, ignore_index=True)
    return table[["model"] + [c for c in table.columns if c != "model"]]


def outline_wide(outlines: pd.DataFrame) -> pd.DataFrame:
    """One row per block, one column per model: ``output shape · parameters`` ("–" where a model
    has no such block)."""
    models = list(dict.fromkeys(outlines["model"]))
    blocks = sorted(dict.fromkeys(outlines["block"]), key=_block_order)
    cells = {(r.model, r.block): f"{r.output} · {r.params:,}" for r in outlines.itertuples()}
    return pd.DataFrame([{"block": b, **{m: cells.get((m, b), "–") for m in models}} for b in blocks])


def counts_table(counts, variants_only: bool = False) -> pd.DataFrame:
    """Parameter counts as a table, from ``spine.models.report.parameter_counts`` (a dict) or
    ``parameter_table`` (a DataFrame). A variant named ``"<base> + <addition>"`` whose base is also
    counted gets its base and the parameters it adds; ``variants_only`` keeps only those rows."""
    if isinstance(counts, pd.DataFrame):
        counts = {r["model"]: {k: r[k] for k in ("total", "trainable", "non_trainable")}
                  for r in counts.to_dict("records")}
    rows = []
    for name, c in counts.items():
        row = {"model": name, "total": int(c["total"]), "trainable": int(c["trainable"]),
               "non_trainable": int(c["non_trainable"])}
        base = name.split(" + ")[0]
        if " + " in name and base in counts:
            row |= {"base": base, "added": int(c["total"]) - int(counts[base]["total"])}
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=["model", "base", "total", "trainable", "non_trainable", "added"])
    table["added"] = table["added"].astype("Int64")
    if variants_only:
        table = table[table["base"].notna()].reset_index(drop=True)
    return table if table["base"].notna().any() else table.drop(columns=["base", "added"])
