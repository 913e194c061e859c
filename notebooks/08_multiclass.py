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
# On Colab: install spine from the book's repository (Colab's own TensorFlow stays as it is) and say
# which device TensorFlow will use; fetch_spider=True also downloads SPIDER (then set data = "spider"
# below). Where spine is installed already, this installs nothing.
import importlib.util
import subprocess
import sys

REPOSITORY = "<repository.url@branch of _config.yml>"  # the Colab copies hold the URL (spine.book.colab_notebooks)
if importlib.util.find_spec("spine") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"spine[book] @ git+{REPOSITORY}"], check=True)
    importlib.invalidate_caches()
    import spine.colab

    print(spine.colab.setup(fetch_spider=False))
from spine.colab import records  # the recorded runs: the checkout's, else those installed with spine

# %% tags=["parameters", "remove-cell"]
data = "recorded"  # "recorded" (the store's real-data records), "phantom", a SPIDER archive or a slice folder
profile = "cpu"  # a profile of spine/profiles.toml
store = records("results")  # the results store the chapter reads (and fills)
max_new_runs = None  # train at most this many missing runs (None: all)
real_data = None  # a real slice folder for side-by-side sections (unused here)

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from spine import book_data, page, paper, plots, sentences
from spine.training import analysis, comparisons, engine, predictions, provenance

# %% [markdown]
# # Multiclass segmentation (Table 9, Fig. 7)

# %% tags=["remove-input"]
source = book_data.resolve(data, profile, store)
book_data.banner(source)

# %% [markdown]
# ## Overview
# The study extends its binary task to four classes: background, vertebrae, intervertebral
# discs and the spinal canal, and reports the five models trained with the combined
# categorical cross-entropy and Dice loss (CCE-Dice). A single figure for three structures can
# hide a structure that fails. This chapter answers:
#
# 1. What does the study report for four classes, and what do we measure with the same models
#    and loss?
# 2. Do the four multiclass losses (CCE, Dice, Focal, CCE-Dice) rank the same for every model?
#    The study reports only CCE-Dice.
# 3. Which structure is hardest to segment: vertebrae, discs or canal?
# 4. What do the four-class segmentations look like (Fig. 7)?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the binary comparison | necessary | {doc}`05_comparison` |
# | the losses, binary and multiclass | helpful | chapter 3 |
# | per-class and macro-averaged Dice and IoU | necessary | {doc}`../book/reference` |
#
# Time to run: seconds from recorded runs; 20 training runs (5 models x 4 losses) otherwise, a
# few minutes each on a CPU at the `cpu` profile.

# %% [markdown]
# ## What the study reports
# Table 9 of the study: four classes, the CCE-Dice loss (its figures, copied from the paper).
# The study does not say how its multiclass precision, recall, F1 and mIoU average over the
# classes (with or without the background, per class or over all pixels).

# %% tags=["remove-input"]
page.format_table(paper.table("multiclass"))

# %% [markdown]
# ## How we ran it
# The five models with each of the four multiclass losses, the protocol of chapter 1; each run
# keeps the epoch with the best validation Dice averaged over vertebra, disc and canal. The runs
# behind every figure below:

# %% tags=["remove-input"]
table = book_data.grid_table(source, "multiclass", max_new_runs, folds=(0,) if source.kind == "records" else None)
display(page.table_or_note(provenance.provenance(table, store), sentences.not_recorded("4-class", source)))

# %% tags=["remove-cell"]
cce_dice = table[table["loss"] == "CCE-Dice"].reset_index(drop=True)
cce_pairs = comparisons.paired_comparisons(cce_dice, store)
glue("multiclass_headline", Markdown(sentences.pair_sentence(cce_dice, cce_pairs, "Proposed", "U-Net", grid="4-class",
                                                             source=source)), display=False)
glue("multiclass_finding", Markdown(sentences.grid_finding(cce_dice, cce_pairs, grid="4-class (CCE-Dice)",
                                                           source=source)), display=False)

# %% [markdown]
# ## What we found
# With the study's loss (CCE-Dice), the proposed network against the U-Net: {glue:md}`multiclass_headline`
#
# {glue:md}`multiclass_finding`
#
# ### CCE-Dice, ours beside the study's
# Our headline multiclass figures are macro means over the three structures (background left
# out): `f1` the mean Dice, `fg_iou` the mean IoU of vertebra, disc and canal. Means over the test
# patients (over the test images for a record without folds), the difference from the study's
# figure and our 95 % interval.

# %% tags=["remove-input"]
page.table_or_note(analysis.beside_study(cce_dice[cce_dice["trained"]], keys=("model",)),
                   sentences.not_recorded("4-class", source))

# %% [markdown]
# The other figures of Table 9; `miou` averages the background's IoU in with the three
# structures', the other reading of the study's "mIoU":

# %% tags=["remove-input"]
for columns in (["model", "miou", "study_mIoU", "accuracy", "study_accuracy"],
                ["model", "precision", "study_precision", "recall", "study_recall"]):  # two tables: one is too wide
    display(page.table_or_note(cce_dice.loc[cce_dice["trained"], [c for c in columns if c in cce_dice]],
                               sentences.not_recorded("4-class", source)))

# %% tags=["remove-input"]
if cce_dice["trained"].any():
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
    plots.ours_vs_study(cce_dice, "f1", "study_f1", ax=axes[0], ci="dice_ci", title="mean Dice (F1) with 95% CI")
    plots.ours_vs_study(cce_dice, "fg_iou", "study_mIoU", ax=axes[1], ci="iou_ci", title="IoU")
    fig.tight_layout()

# %% [markdown]
# ### All four losses
# Mean Dice over the three structures, one row per model, one column per loss (the study
# trained only the last column):

# %% tags=["remove-input"]
page.table_or_note(analysis.loss_grid(table, "f1") if table["trained"].any() else pd.DataFrame(),
                   sentences.not_recorded("4-class", source))

# %% [markdown]
# ### Structure by structure
# Dice of each structure with its 95 % bootstrap interval, then IoU (means over the test patients,
# or over the test images for a record without folds):

# %% tags=["remove-input"]
scores = analysis.structure_scores(table, store)
done = scores[scores["trained"]].drop(columns="trained")
done = done.assign(**{c: done[c].map(lambda ci: f"{ci[0]:.3f}–{ci[1]:.3f}") for c in done if c.endswith("_ci")})
for kind in ("dice_", "iou_"):  # two tables: one is too wide for the page
    display(page.table_or_note(done[["model", "loss", *[c for c in done if c.startswith(kind)]]], page.NO_RUNS))

# %% tags=["remove-input"]
if scores["trained"].any():
    plots.structure_bars(scores, "dice", title="Dice per structure (95% CI)")
    plt.show()

# %% [markdown]
# ## Fig. 7: four-class segmentations of test patients
# The reference (top row) and each model's prediction (CCE-Dice, the study's loss, where trained;
# otherwise every trained run) on the same test images: vertebrae, discs and canal in the colours
# used throughout the book.

# %% tags=["remove-input"]
shown = cce_dice if cce_dice["trained"].any() else table
sample = predictions.recorded_sample(shown, store, count=4)
if sample is not None:  # the stored predictions and the committed inputs: nothing is run
    images, case_ids, rows = sample
    plots.overlay_grid(images, rows, "multiclass", titles=case_ids)
    plt.show()
elif shown["trained"].any() and source.trains:
    models = {run_id: engine.retrain(record) for run_id, record in predictions.trained_records(shown, store).items()}
    sample, rows = predictions.sample_predictions(shown, store, count=4, models=models)
    plots.overlay_grid(sample.images, rows, "multiclass", titles=list(sample.case_ids))
    plt.show()
else:
    display(page.note(page.NO_FIGURE))

# %% [markdown]
# ## Where we differ from the study, and why
# - **Averaging.** We state ours (macro mean over the structures, per image, then over images;
#   the background reported separately in `miou`); the study's Table 9 does not say, so its
#   figures and ours may differ by convention as well as by result.
# - **Data and profile.** As in chapter 5: the build's data and profile are named above; the
#   study trained width-64 models for 50 epochs on SPIDER's T1 slices.
# - **Losses.** The study reports one loss; we train all four so that the choice of CCE-Dice can
#   be checked rather than assumed (on the validation patients; see chapter 9 for why choosing on
#   the test set overstates).
#
# ## Summary
# {glue:md}`multiclass_headline`
#
# The four-class models are compared with the study on the CCE-Dice rows and across all four
# losses; the per-structure table shows which structure limits the mean, with intervals that
# say how much a small test set can tell apart.
#
# ## What's next
# Chapter 9 goes beyond the study: the same comparison on real SPIDER images, segmentation of a
# whole volume from a file, and the open points of the study answered from our records.
