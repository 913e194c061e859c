"""The book's figures, with one look throughout: the same colour for each structure, masks drawn
over the MRI, the study's figures beside ours.

Functions here draw what they are given; the tables they draw come from ``spine.data.overview``
(data summaries), ``spine.models.report`` (the architecture tables), ``spine.training.analysis``
(analyses of the study grids), ``spine.explain`` (Grad-CAM) and ``spine.training.studies`` (the
grids). The tables themselves are shown in the book's look by :mod:`spine.page`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from spine.data.labels import CLASS_NAMES, foreground_classes

# The book's one class palette: every figure that colours classes takes its colours from here
# (colour-blind-safe Okabe-Ito hues). The background is transparent over the MRI.
CLASS_COLOURS = {"background": "none", "foreground": "#009E73", "vertebra": "#E69F00", "disc": "#56B4E9",
                 "canal": "#CC79A7"}
OURS, STUDY = "#0072B2", "#999999"


def label_cmap(task: str) -> ListedColormap:
    """One colour per class index of ``task``, from :data:`CLASS_COLOURS` (background transparent)."""
    return ListedColormap([CLASS_COLOURS[name] for name in CLASS_NAMES[task]])


def legend_handles(task: str) -> list[Patch]:
    return [Patch(color=CLASS_COLOURS[n], label=n) for n in foreground_classes(task)]


def show_overlay(ax, image: np.ndarray, labels: np.ndarray | None = None, task: str = "multiclass",
                 alpha: float = 0.45, title: str | None = None) -> None:
    """The MRI in grey with a label map on top (class 0 transparent)."""
    ax.imshow(np.squeeze(image), cmap="gray", interpolation="nearest")
    if labels is not None:
        colours = label_cmap(task)
        ax.imshow(np.ma.masked_equal(labels, 0), cmap=colours, vmin=0, vmax=colours.N - 1,
                  alpha=alpha, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)


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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # clear of bars near 1
    finite = np.concatenate([ours[np.isfinite(ours)], table.get(study_metric, pd.Series(dtype=float)).dropna()])
    if finite.size and finite.max() <= 1:
        ax.set_xlim(max(0.0, finite.min() - 0.1), 1.0)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- chapter 1: data


def _value_colours(values: np.ndarray) -> ListedColormap:
    """A qualitative colour per distinct non-zero value (tab20, cycled), for an instance map."""
    palette = plt.get_cmap("tab20").colors
    return ListedColormap([palette[i % len(palette)] for i in range(max(1, len(values)))])


def instance_figure(image, mask, structures, size: float = 3.0):
    """The labels of one slice: the MRI, its mask values (each value written where it lies), and
    the study's two class maps (binary, 4 classes) drawn over the MRI."""
    from scipy import ndimage

    from spine.data.labels import structures_to_classes

    mask = np.asarray(mask)
    aspect = image.shape[0] / image.shape[1]
    fig, axes = plt.subplots(1, 4, figsize=(size * 4, size * aspect + 0.8))
    show_overlay(axes[0], image, None, title="MRI")
    values = np.unique(mask[mask != 0])
    ranks = np.zeros(mask.shape, dtype=float)
    for rank, value in enumerate(values, start=1):
        ranks[mask == value] = rank
    axes[1].imshow(np.squeeze(image), cmap="gray", interpolation="nearest")
    if values.size:
        axes[1].imshow(np.ma.masked_equal(ranks, 0), cmap=_value_colours(values), vmin=0.5,
                       vmax=values.size + 0.5, alpha=0.7, interpolation="nearest")
    for value in values:
        parts, found = ndimage.label(mask == value)
        largest = 1 + int(np.argmax(np.bincount(parts.ravel())[1:])) if found > 1 else 1
        rows, cols = np.nonzero(parts == largest)  # written on the value's largest piece (a vertebral body)
        nearest = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
        axes[1].text(cols[nearest], rows[nearest], str(int(value)), fontsize=7, ha="center", va="center",
                     color="black", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    axes[1].set_axis_off()
    axes[1].set_title("mask values", fontsize=10)
    show_overlay(axes[2], image, structures_to_classes(structures, "binary"), "binary", title="binary")
    show_overlay(axes[3], image, structures_to_classes(structures, "multiclass"), "multiclass", title="4 classes")
    handles = legend_handles("binary") + legend_handles("multiclass")
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def preprocessing_steps(image, structures, size: int = 128, panel: float = 2.8):
    """The study's preprocessing of one slice, step by step: the raw slice, min-max to 8 bits, resized
    to ``size`` x ``size`` (bilinear), intensities in [0, 1] with the mask resized by nearest neighbour."""
    from spine.data import preprocess

    raw = np.asarray(image)
    eight = preprocess.to_uint8(raw)
    resized = preprocess.resize_image(eight, size)
    scaled = resized.astype(np.float32) / 255.0
    mask = preprocess.resize_labels(np.asarray(structures, dtype=np.uint8), size)
    fig, axes = plt.subplots(1, 4, figsize=(panel * 4, panel + 0.9))
    steps = [(raw, f"raw slice {raw.shape[0]}×{raw.shape[1]}\n{raw.dtype} [{raw.min():g}, {raw.max():g}]"),
             (eight, f"-> 8 bits (min-max) {eight.shape[0]}×{eight.shape[1]}\nuint8 [{eight.min()}, {eight.max()}]"),
             (resized, f"-> {size}×{size} (bilinear)\nuint8 [{resized.min()}, {resized.max()}]")]
    for ax, (picture, title) in zip(axes, steps):
        ax.imshow(picture, cmap="gray", interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
    show_overlay(axes[3], scaled, mask, "multiclass",
                 title=f"-> /255: float [{scaled.min():.2f}, {scaled.max():.2f}]\nmask {size}×{size} (nearest)")
    fig.legend(handles=legend_handles("multiclass"), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def target_panels(structures, task: str = "binary", panel: float = 2.2):
    """The targets of one prepared slice (``structures`` at the model's size): each one-hot channel,
    and the auxiliary target (the class fractions in each cell of the bottleneck grid)."""
    from spine.data import labels, preprocess

    classes = labels.structures_to_classes(structures, task)
    count = labels.num_classes(task)
    hot = preprocess.one_hot(classes, count)
    aux = preprocess.aux_target(classes[None], count)[0]
    names = labels.CLASS_NAMES[task]
    fig, axes = plt.subplots(2, count, figsize=(panel * count + 0.9, panel * 2 + 0.4), squeeze=False)
    image = None
    for c in range(count):
        axes[0, c].imshow(hot[..., c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[0, c].set_title(f"one-hot {hot.shape[0]}×{hot.shape[1]}: {names[c]}", fontsize=9)
        image = axes[1, c].imshow(aux[..., c], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        axes[1, c].set_title(f"auxiliary {aux.shape[0]}×{aux.shape[1]}: {names[c]}", fontsize=9)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(image, ax=axes[1, :].tolist(), fraction=0.03, pad=0.02, label="fraction of the cell")
    return fig


def class_balance_plot(balance: pd.DataFrame, ax=None):
    """Horizontal bars of each structure's share of the pixels, grouped by dataset, in the structures'
    colours (background left out: it is the rest)."""
    shown = [s for s in ("foreground", *foreground_classes("multiclass")) if s in set(balance["structure"])]
    datasets = list(dict.fromkeys(balance["data"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(shown) * len(datasets) + 1.2))
    height = 0.8 / max(1, len(datasets))
    hatches = ["", "//", "..", "xx"]
    for d, name in enumerate(datasets):
        part = balance[balance["data"] == name].set_index("structure")
        y = np.arange(len(shown)) + d * height
        ax.barh(y, [part.loc[s, "share of pixels (%)"] for s in shown], height=height * 0.95,
                color=[CLASS_COLOURS[s] for s in shown], hatch=hatches[d % len(hatches)], edgecolor="white",
                label=name)
    ax.set_yticks(np.arange(len(shown)) + height * (len(datasets) - 1) / 2, shown)
    ax.invert_yaxis()
    ax.set_xlabel("share of the pixels (%)")
    if len(datasets) > 1:
        ax.legend(handles=[Patch(facecolor="#bbbbbb", hatch=hatches[d % len(hatches)], edgecolor="white", label=n)
                           for d, n in enumerate(datasets)], frameon=False, loc="lower right")
    return ax


def sample_figure(sets: dict, count: int = 4, size: float = 2.2):
    """Figs. 1 and 3 of the study, ours: for each dataset (a name -> SliceSet), ``count`` slices
    spread over its patients (the central one of each), the MRI and the 4-class reference over it."""
    rows = []
    for name, data in sets.items():
        data = data.central(1) if hasattr(data, "central") else data
        pick = np.unique(np.linspace(0, len(data.images) - 1, count).round().astype(int))
        rows.append((name, data.images[pick], data.structures[pick], np.asarray(data.case_ids)[pick]))
    columns = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(2 * len(rows), columns, figsize=(size * columns, size * 2 * len(rows) + 0.4),
                             squeeze=False)
    for r, (name, images, structures, ids) in enumerate(rows):
        for c in range(columns):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            if c >= len(images):
                top.set_axis_off()
                bottom.set_axis_off()
                continue
            show_overlay(top, images[c], None, title=str(ids[c]))
            show_overlay(bottom, images[c], structures[c], "multiclass")
        for offset, what in enumerate(("MRI", "reference")):
            axes[2 * r + offset, 0].text(-0.08, 0.5, f"{name}\n{what}", transform=axes[2 * r + offset, 0].transAxes,
                                         rotation=90, va="center", ha="right", fontsize=9)
    fig.legend(handles=legend_handles("multiclass"), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0.03, 0.04, 1, 1))
    return fig


# --------------------------------------------------------------------------- chapter 2: architectures


_STAGE_COLOURS = {"encoder": "#0072B2", "transformer": "#F0E442", "bottleneck": "#D55E00", "decoder": "#009E73",
                  "heads": "#000000"}


def parameter_breakdown_plot(outlines: pd.DataFrame, ax=None):
    """Stacked horizontal bars: where each model's parameters sit (encoder, Transformer, bottleneck,
    decoder, heads), in millions."""
    totals = outlines.groupby(["model", "stage"], sort=False)["params"].sum().unstack(fill_value=0) / 1e6
    totals = totals.reindex(list(dict.fromkeys(outlines["model"])))
    stages = [s for s in _STAGE_COLOURS if s in totals.columns]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(totals) + 1.2))
    left = np.zeros(len(totals))
    for stage in stages:
        values = totals[stage].to_numpy()
        ax.barh(np.arange(len(totals)), values, left=left, color=_STAGE_COLOURS[stage], label=stage, height=0.6)
        left += values
    ax.set_yticks(np.arange(len(totals)), totals.index)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05 * max(left.max(), 1e-9))
    ax.set_xlabel("parameters (millions)")
    ax.legend(frameon=False, ncol=len(stages), loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    return ax


# --------------------------------------------------------------------------- chapters 3-4: losses, ablations


def _model_colours(names) -> dict:
    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]
    return {name: palette[i % len(palette)] for i, name in enumerate(dict.fromkeys(names))}


def history_grid(table: pd.DataFrame, histories: dict, columns=("mask_loss", "val_dice"), by: str = "loss",
                 hue: str = "model", size=(2.9, 2.3)):
    """Fig. 4, ours: per epoch, one panel per value of ``by`` (each loss) and per history column, one
    line per ``hue`` (each model). ``histories``: the trained rows' histories by run id
    (``spine.training.analysis.histories``, where ``mask_loss`` is the main head's loss for every
    model). Untrained rows are skipped; ``None`` when no row is trained."""
    done = table[table["trained"]]
    if done.empty:
        return None
    colours = _model_colours(table[hue])
    panels = list(dict.fromkeys(done[by]))
    fig, axes = plt.subplots(len(columns), len(panels), figsize=(size[0] * len(panels), size[1] * len(columns) + 0.5),
                             squeeze=False, sharex=True)
    last_epoch = 1
    for row in done.itertuples():
        history = histories[row.run_id]
        last_epoch = max(last_epoch, int(history["epoch"].max()))
        c = panels.index(getattr(row, by))
        for r, column in enumerate(columns):
            if column in history:
                axes[r, c].plot(history["epoch"], history[column], marker="o", ms=3, color=colours[getattr(row, hue)],
                                label=getattr(row, hue))
    from matplotlib.ticker import MaxNLocator

    names = {"mask_loss": "training loss\n(main output)", "loss": "training loss", "val_dice": "validation Dice",
             "val_miou": "validation mIoU"}
    for c, panel in enumerate(panels):
        axes[0, c].set_title(str(panel), fontsize=10)
        axes[-1, c].set_xlabel("epoch")
        axes[-1, c].set_xlim(0.5, last_epoch + 0.5)
        axes[-1, c].xaxis.set_major_locator(MaxNLocator(nbins=min(last_epoch, 6), integer=True, min_n_ticks=1))
    for r, column in enumerate(columns):
        axes[r, 0].set_ylabel(names.get(column, column.replace("_", " ")))
        if column.startswith("val_"):  # validation scores share one scale across the panels
            low = min(ax.get_ylim()[0] for ax in axes[r])
            high = max(ax.get_ylim()[1] for ax in axes[r])
            for ax in axes[r]:
                ax.set_ylim(low, high)
    shown = [n for n in colours if n in set(done[hue])]
    fig.legend(handles=[plt.Line2D([], [], color=colours[n], marker="o", ms=3, label=n) for n in shown],
               loc="lower center", ncol=len(shown), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def loss_heatmaps(ours: pd.DataFrame, study: pd.DataFrame, metric: str = "f1", size=(4.6, 3.2)):
    """A study grid as two heat maps, ours and the study's: two tables of
    ``spine.training.analysis.loss_grid`` (row names in the first column), each cell written out;
    an untrained cell is blank and marked "–". Each map has its own colour scale."""
    row_names = list(ours.iloc[:, 0])
    col_names = list(ours.columns[1:])
    fig, axes = plt.subplots(1, 2, figsize=(size[0] * 2, size[1]))
    for ax, values, title in zip(axes, (ours, study), ("ours", "the study")):
        grid = values.iloc[:, 1:].to_numpy(dtype=float)
        finite = grid[np.isfinite(grid)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        high = high if high > low else low + 1e-6
        vmin = low - 0.25 * (high - low)
        ax.imshow(np.ma.masked_invalid(grid), cmap="Blues" if title == "ours" else "Greys", vmin=vmin,
                  vmax=high, aspect="auto")
        for i in range(len(row_names)):
            for j in range(len(col_names)):
                value = grid[i, j]
                text = "–" if not np.isfinite(value) else f"{value:.4f}"
                bold = np.isfinite(value) and value == np.nanmax(grid[i])
                dark = np.isfinite(value) and (value - vmin) / (high - vmin) > 0.6
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black",
                        fontweight="bold" if bold else "normal")
        ax.set_xticks(range(len(col_names)), col_names)
        ax.set_yticks(range(len(row_names)), row_names if ax is axes[0] else [""] * len(row_names))
        ax.set_title(f"{title} ({metric})", fontsize=10)
    fig.tight_layout()
    return fig


def augmentation_examples(image, structures, seeds=(1, 2, 3, 4), size: float = 2.2):
    """The study's augmentation (``spine.training.augment``) on one prepared slice: the original and
    one draw per seed, image and 4-class mask transformed together (the mask by nearest neighbour)."""
    import keras

    from spine.training.augment import augmenter

    images = np.asarray(image, dtype=np.float32).reshape(1, *np.shape(image)[:2], 1)
    masks = np.asarray(structures, dtype=np.float32).reshape(1, *np.shape(structures)[:2], 1)
    columns = [("original", images[0], masks[0])]
    for seed in seeds:
        out = augmenter(seed)({"images": images, "segmentation_masks": masks}, training=True)
        columns.append((f"seed {seed}", keras.ops.convert_to_numpy(out["images"])[0],
                        keras.ops.convert_to_numpy(out["segmentation_masks"])[0]))
    fig, axes = plt.subplots(1, len(columns), figsize=(size * len(columns), size + 0.6), squeeze=False)
    for ax, (title, picture, mask) in zip(axes[0], columns):
        show_overlay(ax, picture, np.rint(mask[..., 0]).astype(np.uint8), "multiclass", title=title)
    fig.legend(handles=legend_handles("multiclass"), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


# --------------------------------------------------------------------------- chapters 6-9


def seed_spread(values, headline: float | None = None, ax=None, colour: str = OURS, label: str = "runs",
                headline_label: str = "single-run figure", title: str | None = None, xlabel: str | None = None):
    """Repeated runs of one setting on one axis: a box, each run as a dot, mean +- SD shaded, and
    (optionally) a single-run figure marked as a diamond, to see where it falls among the runs."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 1.8))
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size:
        if values.size > 1:
            mean, sd = values.mean(), values.std(ddof=1)
            ax.axvspan(mean - sd, mean + sd, color=colour, alpha=0.12, lw=0, label="mean ± SD")
        import matplotlib

        # Matplotlib 3.10 replaced vert=False by orientation= (vert is deprecated from 3.11).
        sideways = {"orientation": "horizontal"} if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10) \
            else {"vert": False}
        ax.boxplot(values, **sideways, positions=[0], widths=0.5, showfliers=False,
                   medianprops={"color": colour}, boxprops={"color": colour}, whiskerprops={"color": colour},
                   capprops={"color": colour})
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, values.size)
        ax.scatter(values, jitter, color=colour, s=22, zorder=3, label=f"{label} ({values.size})")
    else:
        ax.text(0.5, 0.5, "no runs recorded yet", transform=ax.transAxes, ha="center", va="center", color="#666666")
    if headline is not None and np.isfinite(headline):
        ax.scatter([headline], [0], marker="D", s=60, color="#D55E00", zorder=4, label=headline_label)
    ax.set_yticks([])
    ax.set_ylim(-0.6, 0.6)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    if values.size or headline is not None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    return ax


def gradcam_grid(images, rows: dict, contours=None, titles=None, size: float = 2.2):
    """Grad-CAM maps over the MRI: one column per image, one row per map source (e.g. a layer of the
    trained model, the randomised copy), the region outlined in white; a shared colour bar."""
    from spine.explain import overlay

    count = len(images)
    fig, axes = plt.subplots(len(rows), count, figsize=(size * count + 0.8, size * len(rows)), squeeze=False)
    heat = None
    for r, (name, maps) in enumerate(rows.items()):
        for c in range(count):
            heat = overlay(axes[r, c], images[c], maps[c], contour=None if contours is None else contours[c])
            if titles is not None and r == 0:
                axes[r, c].set_title(titles[c], fontsize=8)
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=9)
    if heat is not None:
        fig.colorbar(heat, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02, label="Grad-CAM (0-1)")
    return fig


def structure_bars(scores: pd.DataFrame, metric: str = "dice", ax=None, title: str | None = None):
    """Grouped bars: one group per trained row of ``spine.training.analysis.structure_scores``, one
    bar per structure in its colour, with the 95 % interval where the table has one."""
    names = foreground_classes("multiclass")
    done = scores[scores["trained"]] if "trained" in scores else scores
    labels = [f"{m} ({l})" if scores["loss"].nunique() > 1 else m for m, l in zip(done["model"], done["loss"])]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(done) + 2), 3.2))
    x = np.arange(len(done))
    for k, name in enumerate(names):
        values = done[f"{metric}_{name}"].to_numpy(dtype=float) if len(done) else np.array([])
        ax.bar(x + (k - 1) * 0.27, values, width=0.27, color=CLASS_COLOURS[name], label=name)
        ci = f"{metric}_{name}_ci"
        if ci in done and len(done):
            bounds = np.array([c if isinstance(c, (tuple, list)) else (np.nan, np.nan) for c in done[ci]], dtype=float)
            ax.errorbar(x + (k - 1) * 0.27, values, yerr=np.abs(bounds.T - values), fmt="none", ecolor="black",
                        capsize=2, lw=0.8)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(metric)
    if not len(done):
        ax.text(0.5, 0.5, "no runs recorded yet", transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return ax


REFERENCE_OUTLINE = "#D55E00"  # the reference mask's outline over a prediction (Okabe-Ito vermillion)


def volume_slices(image, labels, reference=None, task: str = "binary", count: int = 3, size: float = 3.0):
    """``count`` sagittal slices of a volume, spread around the middle (for 3: the middle one and one
    a quarter of the way toward each side): the labels drawn over the MRI, the outline of the
    reference's foreground on top. ``image``, ``labels``, ``reference``: SimpleITK images on one
    grid, in any orientation (they are shown in the radiological sagittal view); ``reference``
    may hold SPIDER values or class indices."""
    import SimpleITK as sitk

    from spine.data.labels import label_values_to_classes
    from spine.data.geometry import sagittal_view

    def view(volume):
        return sitk.GetArrayFromImage(sagittal_view(volume))  # [z, y, x]: x are the sagittal slices

    picture, predicted = view(image), view(labels)
    truth = label_values_to_classes(view(reference), task) if reference is not None else None
    _, column_mm, row_mm = sagittal_view(image).GetSpacing()  # (x, y, z): the array's columns are y, rows z
    # The middle slice and slices a quarter of the way (count 3) toward each side.
    centre, step = picture.shape[2] // 2, max(1, picture.shape[2] // (count + 1))
    indices = sorted({int(np.clip(centre + round((k - (count - 1) / 2) * step), 0, picture.shape[2] - 1))
                      for k in range(count)})
    fig, axes = plt.subplots(1, len(indices), figsize=(size * len(indices), size * 1.15), squeeze=False)
    for ax, index in zip(axes[0], indices):
        show_overlay(ax, picture[:, :, index].astype(np.float32), predicted[:, :, index], task,
                     title=f"sagittal slice {index + 1} of {picture.shape[2]}")
        if truth is not None and (truth[:, :, index] > 0).any():
            ax.contour(truth[:, :, index] > 0, levels=[0.5], colors=[REFERENCE_OUTLINE], linewidths=1.0)
        ax.set_aspect(row_mm / column_mm)  # millimetres, not voxels, on both axes
    handles = legend_handles(task)
    if truth is not None:
        handles.append(plt.Line2D([], [], color=REFERENCE_OUTLINE, lw=1, label="reference (outline)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# --------------------------------------------------------------------------- chapter 10: performance


def throughput_bars(training: pd.DataFrame, peak_gflops: float, size: float = 4.2):
    """Two panels per model, one bar per width: training images/s (log scale) and the achieved
    training GFLOP/s as a fraction of the machine's matmul peak."""
    widths = sorted(training["width"].unique(), reverse=True)
    models = list(dict.fromkeys(training["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(2.6 * size, size * 0.8))
    y = np.arange(len(models))
    step = 0.8 / len(widths)
    shades = dict(zip(widths, (OURS, "#56B4E9", "#009E73")))
    for index, width in enumerate(widths):
        rows = training[training["width"] == width].set_index("model").reindex(models)
        offset = y - 0.4 + step * (index + 0.5)
        label = f"width {width} (batch {int(rows['batch'].dropna().iloc[0])})" if rows["batch"].notna().any() else f"width {width}"
        axes[0].barh(offset, rows["train_img_per_s"], height=step, color=shades[width], label=label)
        axes[1].barh(offset, rows["train_gflop_per_s"] / peak_gflops, height=step, color=shades[width])
    axes[0].set_xscale("log")
    axes[0].set_xlabel("training images / s (log scale)")
    axes[1].set_xlabel(f"achieved GFLOP/s ÷ matmul peak ({peak_gflops:.0f} GFLOP/s)")
    axes[1].axvline(1.0, color="black", lw=0.8, ls="--")
    for ax in axes:
        ax.set_yticks(y, models)
        ax.invert_yaxis()
    axes[1].set_yticklabels([])
    axes[0].legend(loc="lower right", frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
