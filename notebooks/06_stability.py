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
from spine.training import analysis, provenance, studies

# %% [markdown]
# # Stability across seeds (Table 7)

# %% tags=["remove-input"]
source = book_data.resolve(data, profile, store)
book_data.banner(source)

# %% [markdown]
# ## Overview
# A test figure of one training run is one draw: another seed gives other initial weights,
# another order of the training images, other validation patients and so another selected
# epoch. The study trained its proposed model ten times with different seeds (Table 7) to show
# that the result is stable. This chapter repeats that experiment and answers:
#
# 1. How much does the proposed model's test figure move when only the seed changes?
# 2. Where does the study's headline figure (Table 6) fall among its own ten runs, and where
#    does our single comparison run (chapter 5) fall among our ten?
# 3. Is the seed-to-seed spread small beside the differences between models that chapter 5
#    compares, and beside the uncertainty that a small test set puts on any one run?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the comparison of the five models | necessary | {doc}`05_comparison` |
# | mean, standard deviation, z-score | necessary | |
# | bootstrap confidence intervals | helpful | {doc}`../book/reference` |
#
# Time to run: seconds from recorded runs; ten training runs of the proposed model otherwise
# (a few minutes each on a CPU at the `cpu` profile).

# %% [markdown]
# ## What the study reports
# Table 7 of the study: the proposed model with the Dice loss, trained ten times with different
# seeds on the same train/test split (the validation patients re-drawn per run). These are the
# study's figures, copied from the paper; its text gives mIoU 0.8892 ± 0.0012 and F1
# 0.9394 ± 0.0008 as mean ± SD.

# %% tags=["remove-input"]
page.format_counts(paper.table("stability"), 4)

# %% [markdown]
# Re-computed from the ten rows above (sample SD, ddof = 1), beside the single-run figure of the
# same model and loss in its Table 6:

# %% tags=["remove-input"]
study_position = analysis.headline_vs_stability(metric="fg_iou")
page.format_turned(study_position, "source")

# %% tags=["remove-input"]
row = study_position.iloc[0]
display(Markdown(
    f"The study's headline mIoU {row['headline']:.4f} lies **{row['z']:.1f} standard deviations** above the mean "
    f"of its own stability runs ({row['runs mean']:.4f} ± {row['runs SD']:.4f}), above all {row['runs below']} of "
    f"them. If those runs show what the protocol gives, one more run would land this far above their mean with "
    f"probability {row['p (a new run this far out)']:.1g} (Student-t prediction from {row['runs']} runs). The "
    f"headline is thus either a rare draw or the product of something the stability runs did not repeat (a "
    f"seed, an epoch chosen differently, other code); either way the stability mean, not the headline, is the "
    f"result to expect from the method."))

# %% [markdown]
# ## How we ran it
# The proposed model with the Dice loss, seeds 1 to 10 (`studies.STABILITY_SEEDS`, the study's
# run numbers), the protocol of chapter 1: the split into train and test patients is fixed (its
# own seed in the profile); the run's seed draws the validation patients, the initial weights,
# the order of the training images and the dropout masks; each run keeps the epoch with the best
# validation Dice and touches the test patients once. The runs behind every figure below:

# %% tags=["remove-input"]
stability_folds = (0,) if source.kind == "records" else None  # the plan runs the seeds in fold 0
table = book_data.grid_table(source, "stability", max_new_runs, folds=stability_folds)
display(page.table_or_note(provenance.provenance(table, store), sentences.not_recorded("stability", source)))

# %% [markdown]
# Our single-run figure is the proposed model of the comparison grid (chapter 5), trained with
# seed 0, which is not one of the ten: it plays the part of the study's Table 6 run (with the
# records, its fold-0 run, the fold the seeds are run in). It is read from the store (and, on the
# phantom, trained if missing unless `max_new_runs` is 0):

# %% tags=["remove-input"]
if source.trains:
    studies.study_record("comparison", source.data, source.profile, store, "Proposed", "Dice",
                         train_missing=max_new_runs != 0)
comparison = studies.study_table("comparison", source.data, source.profile, store, folds=stability_folds)
display(page.table_or_note(provenance.provenance(comparison[comparison["model"] == "Proposed"], store),
                           sentences.not_recorded("comparison", source)))

# %% tags=["remove-cell"]
glue("stability_finding", Markdown(sentences.stability_sentence(table, comparison, source=source)), display=False)

# %% [markdown]
# ## What we found
# {glue:md}`stability_finding`
#
# Run by run, ours beside the study's run of the same number, with the difference and our 95 %
# interval over the test patients (test figures are per-patient means; `fg_iou` is the foreground
# IoU, the quantity the study's "mIoU" matches, see chapter 5; "–" marks a run not trained yet).
# Our seeds and the study's are different random streams: only the spread of the two columns can
# be compared, not the rows one by one.

# %% tags=["remove-input"]
page.table_or_note(analysis.beside_study(table[table["trained"]], keys=("seed",)),
                   sentences.not_recorded("stability", source), page.format_counts, 4)

# %% [markdown]
# Over the seeds, one column per metric: our mean, SD and range, then the study's (`study_`
# rows). `mean 95% CI` is a bootstrap interval of our mean over the seeds; `one run's CI half-width` is the half-width of a single
# run's 95 % interval over its test patients, averaged over the runs: the uncertainty a small test
# set puts on one run, to set beside the SD that the seed alone produces.

# %% tags=["remove-input"]
page.table_or_note(analysis.stability_summary(table) if table["trained"].sum() > 1 else pd.DataFrame(),
                   "Fewer than two seeds are recorded: no spread to summarise yet.", page.format_turned, "metric")

# %% [markdown]
# ### Where the single-run figures fall
# The same question for the study and for us: how many seed-to-seed SDs lie between the
# single-run figure and the mean of the repeated runs?

# %% tags=["remove-input"]
positions = analysis.headline_vs_stability(table, comparison, metric="fg_iou")
page.format_turned(positions, "source")

# %% tags=["remove-input"]
fig, axes = plt.subplots(2, 1, figsize=(8, 3.6))
plots.seed_spread(paper.table("stability")["mIoU"], positions.iloc[0]["headline"], ax=axes[0], colour=plots.STUDY,
                  label="Table 7 runs", headline_label="Table 6 figure", title="The study: mIoU")
plots.seed_spread(table["fg_iou"] if "fg_iou" in table else [], positions.iloc[1]["headline"], ax=axes[1],
                  label="recorded seeds", headline_label="comparison run (seed 0)",
                  title=f"Ours: foreground IoU ({profile} profile, {table['data_id'].iloc[0]})")
fig.tight_layout()

# %% [markdown]
# ### Seeds against models
# Chapter 5 ranks five models by one run each per fold (seed 0). If a different seed moves a
# model's figure by as much as the gap between two models, one run per model cannot rank them;
# chapter 5's verdicts take the seeds in once the `comparison-seeds` grid (every model with each
# seed of `studies.COMPARISON_SEEDS` in every fold) is recorded, and say until then how much of it
# is. The gap between the best and the second-best model, in seed SDs; the second row puts the
# study's proposed model at the mean of its stability runs rather than at its Table 6 figure, which
# the first part of this chapter found to be far from typical (the baselines' figures are single
# runs, so they may be lucky or unlucky too, by an amount the study does not measure):

# %% tags=["remove-input"]
page.format_counts(analysis.seed_vs_model_spread(table, comparison, metric="fg_iou"), 4)

# %% [markdown]
# ## Where we differ from the study, and why
# - **Data and profile.** The study trained at width 64 for 50 epochs on 196 T1 slices of SPIDER;
#   the build above names its data and profile. Smaller models trained for fewer epochs vary
#   more from seed to seed, so our SD is an upper bound for what the study's setting would give.
# - **What a seed changes.** The study says the validation set was re-sampled per run; it does not
#   say whether the seed also fixed the initial weights and the order of the images. Ours fixes
#   all of them from one number, so a run can be repeated exactly on the same machine.
# - **The single run.** Our comparison run uses seed 0, outside the ten; the study does not say
#   which seed (or which code) produced its Table 6 figure.
#
# ## Summary
# {glue:md}`stability_finding`
#
# The ten-seed experiment gives the expected result of the method and its spread; a figure from
# one run should be read against that spread. The study's own tables place its headline mIoU
# far above all ten of its stability runs, so the stability mean, not the headline, is the
# figure to compare with other methods. Whether the model ranking of chapter 5 survives a change
# of seed depends on the gap between models measured in seed SDs, shown above for the study and
# for us.
#
# ## What's next
# Chapter 7 looks inside the proposed model: where in the image it finds the evidence for its
# segmentation (Grad-CAM, the study's Fig. 6), and whether those maps pass two sanity checks.
