"""Figures for the book, with one look throughout: the same colour for each structure, masks
drawn over the MRI, the study's figures beside ours.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

# One colour per structure across the book (colour-blind-safe Okabe-Ito hues).
STRUCTURE_COLOURS = {"vertebra": "#E69F00", "disc": "#56B4E9", "canal": "#CC79A7", "foreground": "#009E73"}
OURS, STUDY = "#0072B2", "#999999"


def label_cmap(task: str) -> ListedColormap:
    """Transparent background, then the task's structure colours."""
    names = ("foreground",) if task == "binary" else ("vertebra", "disc", "canal")
    return ListedColormap([(0, 0, 0, 0)] + [STRUCTURE_COLOURS[n] for n in names])


def legend_handles(task: str) -> list[Patch]:
    names = ("foreground",) if task == "binary" else ("vertebra", "disc", "canal")
    return [Patch(color=STRUCTURE_COLOURS[n], label=n) for n in names]


def show_overlay(ax, image: np.ndarray, labels: np.ndarray | None = None, task: str = "multiclass",
                 alpha: float = 0.45, title: str | None = None) -> None:
    """The MRI in grey with a label map on top (class 0 transparent)."""
    ax.imshow(np.squeeze(image), cmap="gray", interpolation="nearest")
    if labels is not None:
        count = 2 if task == "binary" else 4
        ax.imshow(np.ma.masked_equal(labels, 0), cmap=label_cmap(task), vmin=0, vmax=count - 1,
                  alpha=alpha, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)


def show_contours(ax, labels: np.ndarray, task: str = "binary", linewidth: float = 1.0) -> None:
    """Outlines of each structure of a label map (for reference masks over predictions)."""
    names = ("foreground",) if task == "binary" else ("vertebra", "disc", "canal")
    for index, name in enumerate(names, start=1):
        if (labels == index).any():
            ax.contour(labels == index, levels=[0.5], colors=[STRUCTURE_COLOURS[name]], linewidths=linewidth)


def overlay_grid(images, rows: dict[str, np.ndarray], task: str, titles=None, size: float = 2.2):
    """A grid: one column per image, one row per label source (e.g. reference, each model)."""
    count = len(images)
    fig, axes = plt.subplots(len(rows), count, figsize=(size * count, size * len(rows)), squeeze=False)
    for r, (name, label_maps) in enumerate(rows.items()):
        for c in range(count):
            show_overlay(axes[r, c], images[c], label_maps[c], task,
                         title=(titles[c] if titles is not None and r == 0 else None))
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=10)
    fig.legend(handles=legend_handles(task), loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0.02, 0.05, 1, 1))
    return fig


def ours_vs_study(table: pd.DataFrame, metric: str, study_metric: str, label: str = "model", ax=None,
                  ci: str | None = None, title: str | None = None):
    """Horizontal bars: our figure (with its 95 % interval if given) beside the study's, per row."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    y = np.arange(len(table))
    ours = table[metric].to_numpy(dtype=float)
    ax.barh(y + 0.2, ours, height=0.4, color=OURS, label="ours")
    if ci is not None and ci in table:
        bounds = np.array([c if isinstance(c, (tuple, list)) else (np.nan, np.nan) for c in table[ci]], dtype=float)
        ax.errorbar(ours, y + 0.2, xerr=np.abs(bounds.T - ours), fmt="none", ecolor="black", capsize=2, lw=1)
    if study_metric in table:
        ax.barh(y - 0.2, table[study_metric].to_numpy(dtype=float), height=0.4, color=STUDY, label="the study")
    ax.set_yticks(y, table[label])
    ax.invert_yaxis()
    ax.set_xlabel(metric)
    ax.legend(loc="lower right", frameon=False)
    finite = np.concatenate([ours[np.isfinite(ours)], table.get(study_metric, pd.Series(dtype=float)).dropna()])
    if finite.size and finite.max() <= 1:
        ax.set_xlim(max(0.0, finite.min() - 0.1), 1.0)
    if title:
        ax.set_title(title)
    return ax


def learning_curves(histories: dict[str, pd.DataFrame], column: str = "loss", ax=None, title: str | None = None):
    """One line per run: a history column against the epoch."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in histories.items():
        ax.plot(history["epoch"], history[column], marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(column.replace("_", " "))
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def format_table(table: pd.DataFrame, digits: int = 4):
    """A pandas Styler with fixed decimals and the study's columns in grey."""
    numeric = table.select_dtypes("number").columns
    styler = table.style.format({c: f"{{:.{digits}f}}" for c in numeric}, na_rep="–").hide(axis="index")
    study = [c for c in table.columns if str(c).startswith("study")]
    return styler.set_properties(subset=study, color="#666666") if study else styler
