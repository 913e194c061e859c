# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# On Colab: install spine (Colab's own TensorFlow stays as it is) and say which device TensorFlow
# will use; fetch_spider=True also downloads SPIDER (then set data = "spider" below). Where spine
# is installed already, this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("spine") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "spine[book] @ git+https://github.com/spine-book/spine"], check=True)
    importlib.invalidate_caches()
    import spine.colab

    print(spine.colab.setup(fetch_spider=False))

# %% [markdown]
# # Comparison with the baselines (Table 6, Fig. 5)
#
# ## Overview
# The study's central claim: the proposed network (Inception first block + dual output)
# segments the lumbar spine better than U-Net, ResUNet, Attention U-Net and TransUNet, all
# trained with the Dice loss. This chapter answers:
#
# 1. What does the study report, and what do we measure with the same protocol?
# 2. Are the differences between models larger than the noise of a small test set?
# 3. How far are the boundaries off, in pixels and in millimetres (HD, HD95, ASSD)?
# 4. What do the segmentations look like (Fig. 5)?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the data and the split by patient | necessary | chapter 1 |
# | the five architectures | helpful | chapter 2 |
# | Dice, IoU, Hausdorff distance | necessary | {doc}`../book/reference` |
#
# Time to run: seconds from recorded runs; a few minutes per missing run on a CPU.

# %% tags=["parameters", "remove-cell"]
data = "phantom"  # 'phantom', a SPIDER archive, or a slice folder
profile = "book"  # a profile of spine/profiles.toml
store = "../results"  # the results store the chapter reads (and fills)
max_new_runs = None  # train at most this many missing runs (None: all)
real_data = None  # a real slice folder for side-by-side sections (unused here)

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
from IPython.display import display

from spine import paper, plots, report
from spine.training import analysis, engine, studies

# %% [markdown]
# ## What the study reports
# Table 6 of the study (its figures, copied from the paper; HD and ASSD in pixels at
# 128 x 128 are given for the proposed model only):

# %% tags=["remove-input"]
plots.format_table(paper.table("comparison"))

# %% [markdown]
# ## How we ran it
# The same grid, the same loss, the protocol of chapter 1 (split by patient, model selected
# on the validation patients, test patients touched once). The runs behind every figure below:

# %% tags=["remove-input"]
table = studies.run_study("comparison", data, profile, store, max_new_runs=max_new_runs, verbose=False)
display(report.table_or_note(studies.provenance(table, store)))

# %% [markdown]
# ## What we found
# Test figures are means over test images (per image, then averaged; the conventions are in
# the reference page). `fg_iou` is the foreground IoU, the quantity the study's "mIoU" matches
# (its F1 0.9444 implies IoU 0.8947 = F1 / (2 - F1), its reported mIoU 0.8974); `miou`
# averages the background's IoU in too.

# %% tags=["remove-input"]
columns = ["model", "f1", "study_f1", "fg_iou", "study_mIoU", "miou", "precision", "recall", "accuracy"]
plots.format_table(table[columns])

# %% tags=["remove-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
plots.ours_vs_study(table, "f1", "study_f1", ax=axes[0], ci="dice_ci", title="F1 (Dice) with 95% CI")
plots.ours_vs_study(table, "fg_iou", "study_mIoU", ax=axes[1], ci="iou_ci", title="IoU")
fig.tight_layout()

# %% [markdown]
# ### Are the differences real?
# Each model is compared with the proposed one on the same test images: the mean paired
# difference in Dice with its 95 % bootstrap interval and the Wilcoxon signed-rank p-value.
# An interval that contains 0 means the test set cannot tell the two models apart.

# %% tags=["remove-input"]
report.table_or_note(studies.paired_comparisons(table, store), report.NO_PAIRS)

# %% [markdown]
# ## Boundary errors
# Hausdorff distance (maximum), its 95th percentile and the average symmetric surface distance,
# in pixels of the 128 x 128 grid as in the study, and in millimetres where the data carries its
# spacing (the phantom and SPIDER archives do; PNG slices only if their spacing is given).

# %% tags=["remove-input"]
plots.format_table(table[["model", "hd", "hd95", "assd", "hd_mm", "assd_mm", "study_hd_px", "study_assd_px"]], 2)

# %% [markdown]
# ## Fig. 5: segmentations of test patients
# The reference (top row) and each model's prediction on the same test images, drawn over the
# MRI.

# %% tags=["remove-input"]
if table["trained"].any():
    models = {run_id: engine.retrain(record) for run_id, record in analysis.trained_records(table, store).items()}
    sample, rows = analysis.sample_predictions(table, store, count=4, models=models)
    plots.overlay_grid(sample.images, rows, "binary", titles=list(sample.case_ids))
    plt.show()
else:
    display(report.note(report.NO_FIGURE))

# %% [markdown]
# ## Where we differ from the study, and why
# - **Data.** The study used 196 T1 central slices of SPIDER; the book's default build uses the
#   synthetic phantom, and the real-data build the 31 T2-SPACE patients available here. Figures
#   are comparable in kind, not in value.
# - **Profile.** The study trained at width 64 for 50 epochs; the profile named above is smaller.
# - **Selection.** We select each model's epoch on validation patients; the study's text does
#   not say how its reported model was chosen.
#
# ## Summary
# The table above is re-computed from recorded runs; the paired tests say whether the
# test set can separate the models at all, and the boundary errors give the distances in
# millimetres that the study reports only in pixels.
#
# ## What's next
# Chapter 6 trains the proposed model with ten seeds to see how much of these differences
# a different seed alone produces.
