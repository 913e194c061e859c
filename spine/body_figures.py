"""Figures of the real T1/T2 chapter: body Dice by slice position (from the records) and overlays
(from the volumes and the models, where both are here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spine import transfer
from spine.data import bodies
from spine.inference import segment_volume


def position_figure(table: pd.DataFrame, labels: dict[str, str]):
    """Body Dice and false vertebra by distance from the mid-line, one line per run."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    for run, group in table.groupby("run", sort=False):
        names = [f"{int(b.left)}-{int(b.right)}" for b in group["band"]]
        axes[0].plot(names, group["dice"], marker="o", label=labels.get(run, run))
        axes[1].plot(names, group["false_pixels"], marker="o", label=labels.get(run, run))
    axes[0].set(xlabel="distance from the mid-line (mm)", ylabel="body Dice per slice", ylim=(0, 1.02))
    axes[1].set(xlabel="distance from the mid-line (mm)", ylabel="false vertebra pixels per slice")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncols=1)
    return figure


def overlay_figure(folder, exam: str, models: dict, offsets_mm=(0, 20, 30)):
    """The exam's sagittal slices nearest ``offsets_mm`` from the mid-line (one row each) with each
    model's vertebra class (red) inside the scored column (its edge dashed) and the bodies (outline):
    ``models`` maps a label to a model. Needs the volumes and the models."""
    [chosen] = [e for e in bodies.find_exams(folder) if e.exam == exam]
    image, mask = bodies.read_exam(chosen)
    pixels, _ = bodies.sagittal_arrays(image)
    truth, spacing = bodies.sagittal_arrays(mask)
    truth = truth > 0
    column = bodies.anterior_column(truth, spacing)
    found = {label: bodies.sagittal_arrays(segment_volume(model, image))[0] == transfer.VERTEBRA
             for label, model in models.items()}
    midline = np.average(np.arange(len(truth)), weights=truth.sum(axis=(1, 2)))
    picked = [int(np.clip(round(midline + offset / spacing[0]), 0, len(truth) - 1)) for offset in offsets_mm]
    figure, axes = plt.subplots(len(picked), len(models), figsize=(3.2 * len(models), 3.2 * len(picked)),
                                squeeze=False, constrained_layout=True)
    for row, k in zip(axes, picked):
        for ax, (label, vertebra) in zip(row, found.items()):
            ax.imshow(pixels[k], cmap="gray")
            ax.imshow(np.ma.masked_where(~(vertebra[k] & column[k]), vertebra[k]), cmap="autumn", alpha=0.5)
            ax.contour(truth[k], levels=[0.5], colors="cyan", linewidths=0.8)
            ax.contour(column[k], levels=[0.5], colors="yellow", linewidths=0.6, linestyles="dashed")
            ax.set_title(f"{label}, {(k - midline) * spacing[0]:+.0f} mm", fontsize=9)
            ax.axis("off")
    return figure
