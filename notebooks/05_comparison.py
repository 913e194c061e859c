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
from IPython.display import Markdown, display
from myst_nb import glue

from spine import book_data, page, paper, plots, sentences
from spine.training import analysis, comparisons, engine, predictions, provenance, studies

# %% [markdown]
# # Comparison with the baselines (Table 6, Fig. 5)

# %% tags=["remove-input"]
source = book_data.resolve(data, profile, store)
book_data.banner(source)

# %% [markdown]
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

# %% [markdown]
# ## What the study reports
# Table 6 of the study (its figures, copied from the paper; HD and ASSD in pixels at
# 128 x 128 are given for the proposed model only):

# %% tags=["remove-input"]
page.format_table(paper.table("comparison"))

# %% [markdown]
# ## How we ran it
# The same grid, the same loss, the protocol of chapter 1 (split by patient, model selected
# on the validation patients, test patients touched once). With cross-validation (the real-data
# records), each model is run once per fold and its figures pool the test patients of every
# recorded fold. The runs behind every figure below:

# %% tags=["remove-input"]
table = book_data.grid_table(source, "comparison", max_new_runs)
display(page.table_or_note(provenance.provenance(table, store), sentences.not_recorded("comparison", source)))

# %% [markdown]
# ## What we found

# %% tags=["remove-cell"]
seeds = studies.study_table("comparison-seeds", source.data, source.profile, store)  # read, never trained here
pairs = comparisons.paired_comparisons(table, store, seeds=seeds)  # over patients and seeds once every seed is in
glue("comparison_seeds", Markdown(comparisons.seed_note(seeds, pairs, store)), display=False)
glue("comparison_headline", Markdown(sentences.pair_sentence(table, pairs, "Proposed", "U-Net", source=source)),
     display=False)
glue("comparison_finding", Markdown(sentences.grid_finding(table, pairs, source=source)), display=False)
glue("comparison_recipe", Markdown(sentences.recipe_sensitivity(table, store, source.data, source.profile)
                                   if source.kind != "phantom" and len(pairs) else
                                   "The recipe question concerns the real-data records; this build shows the phantom."),
     display=False)

# %% [markdown]
# {glue:md}`comparison_headline`
#
# {glue:md}`comparison_finding`
#
# The figures: Dice (= F1) and IoU are means over the test patients (each patient's value the
# mean over its central slices; over test images for a record without folds), with 95 %
# intervals; `fg_iou` is the foreground IoU, the quantity the study's "mIoU" matches (its F1
# 0.9444 implies IoU 0.8947 = F1 / (2 - F1), its reported mIoU 0.8974); `dice_central` is the
# study's view, the central slice alone.

# %% tags=["remove-input"]
columns = ["model", "patients", "f1", "study_f1", "dice_central", "fg_iou", "study_mIoU", "precision", "recall"]
shown = table.rename(columns={"test_patients": "patients"})
page.table_or_note(shown[[c for c in columns if c in shown]], sentences.not_recorded("comparison", source))

# %% tags=["remove-input"]
if table["trained"].any():
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    plots.ours_vs_study(table, "f1", "study_f1", ax=axes[0], ci="dice_ci", title="F1 (Dice) with 95% CI")
    plots.ours_vs_study(table, "fg_iou", "study_mIoU", ax=axes[1], ci="iou_ci", title="IoU")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ### Are the differences real?
# Each model is compared with the proposed one on the same test patients, the four comparisons
# as one family (`spine.stats.compare_family`; the sentences above come from this table):

# %% tags=["remove-input"]
page.pairs_table(pairs)

# %% [markdown]
# ### The patient an outcome rests on
# A mean over 31 patients can move with one of them. The patient whose absence alone changes the
# closest comparison's outcome, with every model's prediction on its slices:

# %% tags=["remove-input"]
focus = sentences.influential_patient(pairs)
drawn = predictions.recorded_patient(table, store, focus[0]) if focus else None
if drawn is not None:
    display(Markdown(sentences.patient_sentence(table, store, *focus)))
    plots.overlay_grid(drawn[0], drawn[2], "binary", titles=drawn[1])
    plt.show()
else:
    display(page.note("No single patient changes an outcome here, or no record keeps its predictions."))

# %% [markdown]
# ### The recipe's patients: a sensitivity analysis
# {glue:md}`comparison_recipe`
#
# ### Training variance
# A model trained with another seed (other initial weights, image order and validation patients)
# scores every test patient of its fold differently: a difference between two models is evidence
# only if it exceeds that variation as well as the patients'. The `comparison-seeds` grid trains
# every model with each seed of `studies.COMPARISON_SEEDS` in every fold; with all of them
# recorded, the comparisons above use each patient's mean over the seeds, and a verdict also needs
# the 95 % interval of a two-level bootstrap (each fold's seeds of each model, then the patients;
# `spine.stats.seed_bootstrap`) to exclude 0. The next paragraph says, from the store, which applies here.
#
# {glue:md}`comparison_seeds`

# %% [markdown]
# ## Boundary errors
# Hausdorff distance (maximum), its 95th percentile and the average symmetric surface distance,
# in pixels of the 128 x 128 grid as in the study, and in millimetres where the data carries its
# spacing (the phantom and SPIDER archives do; the PNG slices of the real-data records do not, so
# their millimetre columns are left out), with the range of pixel sizes over the test images.

# %% tags=["remove-input"]
distances = analysis.distance_units(table, store)
if len(distances):
    distances = distances.merge(table[["model", "study_hd_px", "study_assd_px"]], on="model").drop(columns="loss")
    distances = distances.drop(columns=[c for c in distances if "mm" in c and distances[c].isna().all()])
page.table_or_note(distances, sentences.not_recorded("comparison", source), page.format_table, 2)

# %% [markdown]
# ## Fig. 5: segmentations of test patients
# The reference (top row) and each model's prediction on the same test images (one slice of
# each of four test patients of one fold), drawn over the MRI.

# %% tags=["remove-input"]
sample = predictions.recorded_sample(table, store, count=4)
if sample is not None:  # the stored predictions and the committed inputs: nothing is run
    images, case_ids, rows = sample
    plots.overlay_grid(images, rows, "binary", titles=case_ids)
    plt.show()
elif table["trained"].any() and source.trains:  # records that keep no predictions: retrain them
    models = {run_id: engine.retrain(record) for run_id, record in predictions.trained_records(table, store).items()}
    sample, rows = predictions.sample_predictions(table, store, count=4, models=models)
    plots.overlay_grid(sample.images, rows, "binary", titles=list(sample.case_ids))
    plt.show()
else:
    display(page.note(page.NO_FIGURE))

# %% [markdown]
# %% tags=["remove-cell"]
glue("paper_profile_note", Markdown(sentences.paper_profile_note(store, "comparison")), display=False)

# %% [markdown]
# ## Where we differ from the study, and why
# - **Data.** The study used 196 T1 central slices of SPIDER; the default book shows the runs
#   recorded on the 31 T2-SPACE patients available here (and `spine book --data phantom` the
#   synthetic phantom). Figures are comparable in kind, not in value.
# - **Profile.** The study trained at width 64 for 50 epochs; the profile named above is smaller.
#   {glue:md}`paper_profile_note`
# - **Protocol.** We cross-validate by patient and report intervals and paired tests over
#   patients, Holm-adjusted, with each patient left out in turn; the study reports one split and
#   single figures.
# - **Recipe.** Our `cpu` recipe was chosen on fold 0's validation patients, some of whom are test
#   patients of other folds; the sensitivity analysis above repeats the comparison without them.
# - **Selection.** We select each model's epoch on validation patients; the study's text does
#   not say how its reported model was chosen.
#
# ## Summary
# {glue:md}`comparison_headline`
#
# {glue:md}`comparison_finding`
#
# The boundary errors give the distances that the study reports in pixels, and the overlays show
# where the models disagree.
#
# ## What's next
# Chapter 6 trains the proposed model with ten seeds to see how much of these differences
# a different seed alone produces.
