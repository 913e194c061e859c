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
real_data = None  # a real slice folder (e.g. the SPIDER T2-SPACE slices) for the real-data section

# %% tags=["remove-cell"]
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from spine import book_data, evaluation, inference, page, paper, plots, sentences
from spine.data import overview, spider
from spine.training import analysis, comparisons, engine, provenance, shipped, studies
from spine.training.folds import fold_overview
from spine.training.store import recorded_source

REAL_PROFILE = "cpu"  # the profile of the real-data runs (trained by a separate, long job)
REAL_BUDGET_HOURS = 8  # the machine time the real-data study may take (issue 11)
VOLUME_CASE = 2025  # the phantom case segmented as a volume: a patient no model has seen
SPIDER_MASKS = Path(os.environ.get("SPINE_SHARED_DATA", "../../shared/data")) / "spider-masks-3d"

# %% [markdown]
# # Beyond the study

# %% tags=["remove-input"]
source = book_data.resolve(data, profile, store)
# the real-data section: the slice folder if given, else the store's real-data records (no data needed)
real_source = real_data or recorded_source(store, REAL_PROFILE)
book_data.banner(source, executes="The whole-volume segmentation executes on a phantom volume"
                 + (" with the shipped binary model." if not source.trains else " with this build's proposed model."))

# %% [markdown]
# ## Overview
# The earlier chapters re-compute the study's tables. This one asks what the study leaves open:
# whether the comparison holds on real images, whether a trained model is usable on a scan as
# it comes from the scanner, and the four points a careful reader of the study raises. It
# answers:
#
# 1. How do the five models compare on real SPIDER images?
# 2. Can a trained model segment a whole 3D volume read from a file, and give back a mask on the
#    volume's own grid?
# 3. Does a single-run headline overstate the expected result?
# 4. Does choosing the loss on the test set, as the study did, flatter the result compared with
#    choosing it on validation patients?
# 5. With a test set of a few dozen images, are differences in the third decimal significant?
# 6. How large are the boundary errors in millimetres, the unit that matters clinically?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the comparison and its paired tests | necessary | {doc}`05_comparison` |
# | the stability study | necessary | {doc}`06_stability` |
# | the loss study | helpful | chapter 3 |
# | image geometry: size, spacing, origin, direction | helpful | {doc}`../book/reference` |
#
# Time to run: about a minute from recorded runs (preparing the real slices, segmenting one
# volume); the loss grid's missing runs otherwise.

# %% [markdown]
# ## What the study reports
# Its comparison (Table 6, the study's figures) is the yardstick of this chapter: the proposed
# model first, the four baselines within about 0.02 of it in mIoU, HD and ASSD in pixels of the
# 128 x 128 grid for the proposed model only.

# %% tags=["remove-input"]
page.format_table(paper.table("comparison"))

# %% [markdown]
# ## How we ran it
# - **Real images**: the study's grids at the `cpu` profile on the real slice folder given as
#   `real_data`, cross-validated by patient, read from the store as it stands (those runs take
#   hours on a CPU and come from a separate job, `spine study plan`; this chapter never trains
#   them).
# - **A volume**: the proposed model of the book's comparison grid (data and profile of this
#   build), applied to a phantom volume written to a temporary `.mha` file.
# - **Open points**: the book's stability, comparison and loss grids (data and profile of this
#   build); the loss grid is trained here where runs are missing, within `max_new_runs`.
#
# ## What we found
# ### Real SPIDER images

# %% [markdown]
# The real slices are used the same way in every grid, fixed by the `cpu` profile
# (`spine/profiles.toml`, which says what each choice rests on): **5-fold cross-validation by
# patient**. The 31 patients are dealt into 5 folds by the split seed (the manifest is saved in
# the store, `folds/`); a run tests one fold's patients and draws its 5 validation patients from
# the other folds with its own seed; it trains on every slice of its training patients. Validation
# and test patients are scored on their **5 central slices**, averaged per patient first: the
# patient is the unit of every interval and paired test below (slices of one patient are
# near-duplicates). Over the 5 folds every patient is tested exactly once, so a grid's figures
# are means over up to 31 patients with BCa bootstrap intervals over patients (at n = 31 the BCa
# interval corrects the skew of a Dice bounded by 1, which the plain percentile interval
# under-covers at this size). The study's own view, the central slice alone, is kept as a second
# column (`dice_central`). The table below gives the patients per fold of the seed-0 runs.

# %% tags=["remove-input"]
if real_data:
    display(page.format_counts(fold_overview(real_data, REAL_PROFILE), 1))
else:
    display(page.note("That table needs the slice folder itself (real_data); the records keep the fold manifest "
                      "(`results/folds/`, its patients per fold in chapter 1) and each fold's test inputs."))

# %% [markdown]
# The plan and its cost are written before the runs: every grid's runs in the order they go (a
# run that two grids share is counted once, in the first), costed at the mean wall minutes of the
# runs recorded so far on the machine that made them (chapter 10 measures its rates).

# %% tags=["remove-input"]
if real_source:
    plan = provenance.plan_budget(real_source, REAL_PROFILE, store)
    display(page.format_counts(plan, 1))
    hours = plan.loc[plan["grid"] == "all", "hours"].iloc[0]
    display(Markdown(sentences.budget_note(hours, REAL_BUDGET_HOURS) if pd.notna(hours) else
                     "*No run of the plan is recorded yet, so its cost is not known from this machine.*"))

# %% [markdown]
# What the store holds, per grid (runs over all the folds a grid needs):

# %% tags=["remove-input"]
if real_source:
    display(page.format_counts(provenance.coverage(real_source, REAL_PROFILE, store)))
    real = {name: studies.study_table(name, real_source, REAL_PROFILE, store)
            for name in ("comparison", "ablation", "augmentation", "multiclass")}
    display(Markdown(f"Data: `{real['comparison']['data_id'].iloc[0]}`, profile `{REAL_PROFILE}`, "
                     f"store `{Path(store).name}`."))
else:
    real = None
    display(Markdown("*This store holds no real-data record and this build was given no real data; build with "
                     "`spine book --real-data <slice folder>` to fill this section with the SPIDER runs.*"))

# %% [markdown]
# #### The comparison on real slices
# Our figures on the real test patients beside the study's (the study's are on T1 slices; the
# real slices of this project are T2-SPACE: comparable in kind, not in value), with 95 % BCa
# intervals over the test patients of the recorded folds, then each model against the proposed
# one, patient by patient.

# %% tags=["remove-input"]
if real is not None and real["comparison"]["trained"].any():
    done = real["comparison"][real["comparison"]["trained"]]
    section = page.grid_section(done, store, keys=("model",), title="Real SPIDER slices: F1 (Dice) with 95% CI")
    display(page.format_counts(done[["model", "folds", "run_ids", "test_patients", "test_images", "dice",
                                     "dice_central", "hd95", "assd"]]
                               .assign(folds=lambda t: t["run_ids"].map(len).astype(str) + " of " + t["folds"].astype(str))
                               .drop(columns="run_ids"), 4))
elif real is not None:
    display(Markdown("*No comparison run is recorded on the real slices yet.*"))

# %% [markdown]
# #### The project's targets
# Set before the runs (`spine.training.analysis.TARGETS`): on the real test patients, the
# proposed network at the `cpu` profile should reach the thresholds below (4-class: with the
# study's CCE-Dice loss).

# %% tags=["remove-input"]
if real is not None:
    tasks = {"binary": real["comparison"], "multiclass": real["multiclass"]}
    display(page.format_table(analysis.target_check(tasks, loss={"multiclass": "CCE-Dice"}), 4))

# %% [markdown]
# #### Ablation, augmentation and 4 classes on real slices
# The rows of Tables 3, 5 and 9 recorded on the real slices so far (chapters 4 and 8 explain the
# experiments): the ablation and augmentation rows with their paired comparisons against the
# proposed network, the 4-class rows per structure.

# %% tags=["remove-input"]
if real is not None:
    shown = 0
    for name in ("ablation", "augmentation"):
        done = real[name][real[name]["trained"]]
        if len(done) > 1:
            shown += 1
            display(Markdown(f"**{name.capitalize()}** (real slices)"))
            section = page.grid_section(done, store, title=f"{name}: F1 (Dice) with 95% CI")
    multiclass = real["multiclass"][real["multiclass"]["trained"]]
    if len(multiclass):
        shown += 1
        display(Markdown("**4 classes** (real slices): Dice per structure, with 95 % intervals"))
        scores = analysis.structure_scores(multiclass, store)
        display(page.format_table(scores.drop(columns=[c for c in scores if c.endswith("_ci")]), 4))
        plots.structure_bars(scores, "dice", title="Real slices: Dice per structure (95% CI)")
        plt.show()
    if not shown:
        display(Markdown("*No ablation, augmentation or 4-class grid has two recorded runs on the real slices yet.*"))

# %% [markdown]
# #### The shipped models
# `spine predict` uses, with no `--model`, one binary and one 4-class model shipped in
# `spine/weights`. Each is the recorded real-data run with the best mean **validation** Dice
# among those of its task (`spine export`), so its test figure below is an honest estimate: the
# test patients played no part in choosing it. A test re-scores the shipped files on these test
# patients and checks the figures against the record. A model chosen among the cross-validated
# runs is scored on its fold's test patients; one of the first protocol (a fixed 80/20 split,
# central slices only) on that split's 6 test patients, not on the folds above.

# %% tags=["remove-input"]
cards, behind = shipped.shipped_runs(store)
if cards:
    if behind:  # the records behind the cards, when this build's store has them
        display(page.format_counts(analysis.run_summaries(behind), 4))
    display(Markdown("Chosen on: " + "; ".join(f"`{task}.keras`: {card['selected_on']}" for task, card in cards.items())))
else:
    display(Markdown("*No model is shipped with this version of spine.*"))

# %% [markdown]
# SPIDER: van der Graaf et al., "Lumbar spine segmentation in MR images: a dataset and a public
# benchmark", Scientific Data 11, 264 (2024), CC BY 4.0.
#
# ### A whole volume from a file
# A phantom case (a patient outside every training set), stored with the T2-SPACE-like direction
# matrix of SPIDER so that the sagittal axis is not the first array axis, is written to a `.mha`
# file and segmented by `spine.inference.predict_file` with the proposed model: every sagittal
# slice is preprocessed as in training, segmented, and the labels are put back on the volume's
# own grid.

# %% tags=["remove-input"]
if source.trains:  # this build's proposed model (trained on the phantom or the given data)
    record = studies.study_record("comparison", source.data, source.profile, store, "Proposed", "Dice",
                                  train_missing=max_new_runs != 0)
    volume_model = engine.retrain(record) if record is not None else None
    described = (f"the proposed model, Dice loss, seed {record.config.seed}, {record.config.profile} profile, trained on "
                 f"`{record.config.data_id}`" if record is not None else None)
else:  # the shipped binary model: nothing is trained
    card = inference.model_card("binary")
    volume_model = inference.load_model(task="binary")
    described = (f"the shipped binary model (`spine/weights/binary.keras`: {card['config']['model']}, run "
                 f"`{card['run_id']}`, trained on `{card['config']['data_id']}`)")
if volume_model is not None:
    check = evaluation.phantom_volume_check(volume_model, VOLUME_CASE, tempfile.mkdtemp(prefix="spine-volume-"))
    volume, segmentation, scores = check["volume"], check["segmentation"], check["scores"]
    display(Markdown(f"Model: {described}. The input file and the file written:"))
    display(page.format_table(overview.geometry_table({check["source"].name: volume,
                                                       f"out/{check['output'].name}": segmentation})))
else:
    display(Markdown("*The proposed model is not in the store and this build may not train it.*"))

# %% [markdown]
# The middle sagittal slice and one a quarter of the way toward each side: the predicted
# foreground over the MRI, the phantom's reference outlined. Then the agreement in 3D, over every voxel of the volume
# (distances in mm from the volume's spacing):

# %% tags=["remove-input"]
if volume_model is not None:
    plots.volume_slices(volume, segmentation, check["reference"], "binary", count=3)
    plt.show()
    keys = ["dice", "iou", "precision", "recall", "hd_mm", "hd95_mm", "assd_mm"]
    display(page.format_table(pd.DataFrame([{k: scores[k] for k in keys}]), 3))
    display(Markdown(f"{scores['voxels_predicted']:,} voxels predicted as foreground, "
                     f"{scores['voxels_reference']:,} in the reference, of {volume.GetNumberOfPixels():,}."))

# %% [markdown]
# ### Does a single run overstate the result?
# The study's headline against its own ten stability runs, and ours the same way (details and
# figures in {doc}`06_stability`):

# %% tags=["remove-input"]
grid_folds = (0,) if source.kind == "records" else None  # the plan's stability and loss grids are in fold 0
stability = studies.study_table("stability", source.data, source.profile, store, folds=grid_folds)
comparison = studies.study_table("comparison", source.data, source.profile, store, folds=grid_folds)
comparison_all = studies.study_table("comparison", source.data, source.profile, store)  # every recorded fold
page.format_turned(analysis.headline_vs_stability(stability, comparison, metric="fg_iou"), "source")

# %% [markdown]
# ### Choosing the loss on validation, not on test
# The study picked each model's loss by its test figures (Table 2). A clean protocol picks on the
# validation patients and reports the test figure of that choice. For each model of our loss
# grid: the loss each rule picks and the test Dice it reports.
# Where the two picks differ, the gap between the two test figures is how much choosing on the
# test set flatters the result.

# %% tags=["remove-input"]
losses = book_data.grid_table(source, "loss", max_new_runs, folds=grid_folds)
display(page.table_or_note(provenance.provenance(losses, store), sentences.not_recorded("loss", source)))
selection = analysis.selection_table(losses, store)
display(page.table_or_note(selection[selection["trained"] > 0], sentences.not_recorded("loss", source),
                           page.format_counts, 4))

# %% [markdown]
# ### Are the differences significant?
# The study's models differ in the third decimal (Table 6) on about 39 test images. Each model
# against the proposed one on the same test patients (ours, comparison grid of this build), the
# comparisons one Holm family; the interval's width is the smallest difference the test set can
# resolve.

# %% tags=["remove-input"]
paired = comparisons.paired_comparisons(comparison_all, store)
display(page.pairs_table(paired, "No paired comparison yet: it needs the proposed model and at least one other in "
                                   "the store."))
if len(paired) and source.kind != "phantom":
    display(Markdown(sentences.recipe_sensitivity(comparison_all, store, source.data, source.profile)))

# %% [markdown]
# The same question for seeds: the gap between the best two models of a comparison, measured in
# the seed-to-seed SD of the stability study (below about 2, a different seed could swap them):

# %% tags=["remove-input"]
page.format_counts(analysis.seed_vs_model_spread(stability, comparison, metric="fg_iou"), 4)

# %% [markdown]
# ### Boundary errors in millimetres
# A distance in pixels of the 128 x 128 grid is not a physical length: each slice is resized
# from its own field of view, so one pixel stands for a different number of millimetres in each
# image (and, for a non-square field of view, along each axis). Ours, in pixels and in mm, with
# the range of pixel sizes over the test images:

# %% tags=["remove-input"]
page.table_or_note(analysis.distance_units(comparison_all, store), sentences.not_recorded("comparison", source),
                   page.format_table, 2)

# %% [markdown]
# What the study's own HD and ASSD (Table 6, in pixels) mean in millimetres, over the pixel sizes
# of SPIDER's T1 central slices at 128 x 128 (from the original geometry of the SPIDER T1 masks
# available to this project):

# %% tags=["remove-input"]
if SPIDER_MASKS.is_dir():
    sizes = spider.spider_pixel_sizes(SPIDER_MASKS, size=128, sequence="t1")
    study = paper.table("comparison").set_index("model").loc["Proposed"]
    display(Markdown(f"{len(sizes)} SPIDER T1 series; one pixel at 128 x 128 is "
                     f"{sizes[['mm per pixel (rows)', 'mm per pixel (columns)']].min().min():.2f} to "
                     f"{sizes[['mm per pixel (rows)', 'mm per pixel (columns)']].max().max():.2f} mm."))
    display(page.format_table(spider.pixels_in_mm({"HD (the study, Table 6)": study["hd_px"],
                                                   "ASSD (the study, Table 6)": study["assd_px"]}, sizes), 2))
else:
    display(Markdown(f"*The SPIDER masks with their original geometry are not at `{SPIDER_MASKS}`: "
                     "the conversion of the study's figures is left out.*"))

# %% [markdown]
# ## Where we differ from the study, and why
# - **Real data.** The study used SPIDER's T1 series; the real slices available here are T2-SPACE
#   from 31 patients. The pipeline is the same, the images are not, so the comparison with the
#   study is in kind (the ranking, the size of the gaps), not in value.
# - **Volumes.** The study segments single 2D slices; `spine predict` segments every sagittal
#   slice of a volume. Slices far from the mid-line look unlike the central slices the models were
#   trained on, so the 3D figures are lower than the 2D ones and measure that domain shift too.
# - **Protocol.** We select epochs and (above) losses on validation patients, report intervals
#   and paired tests, and give distances in mm; the study reports single runs, chosen on test, in
#   pixels.
#
# ## Summary
# Each open point of the study is answered above with figures computed from recorded runs: the
# headline against the stability runs, the loss chosen on validation against the one chosen on
# test, paired intervals that say which differences the test set can resolve, and boundary
# errors converted to millimetres. A trained model segments a whole volume from a file and
# returns a mask on the volume's own grid, which is what a user of the package needs.
#
# ## What's next
# The reference page lists the conventions behind every metric and interval in the book; the
# README shows how to train on the full SPIDER download and segment your own scans with
# `spine predict`.
