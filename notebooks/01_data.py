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
max_new_runs = None  # train at most this many missing runs (None: all; unused here: no training)
real_data = None  # a real slice folder for side-by-side sections, e.g. ../shared/data/spider-t2space-slices

# %% tags=["remove-cell"]
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from myst_nb import glue

from spine import book_data, page, plots
from spine.data import load_dataset, overview, preprocess
from spine.training import engine
from spine.training.config import resolve_profile
from spine.training.folds import fold_patients, split_overview
from spine.training.store import recorded_slices

settings = resolve_profile(profile)
source = book_data.resolve(data, profile, store)
pipeline_data = source.data if source.trains else "phantom"  # what executes: the records' data need not be here
data_name = "phantom" if str(pipeline_data).startswith("phantom") else Path(str(pipeline_data)).name

# %% [markdown]
# # The data (Figs. 1 and 3)

# %% tags=["remove-input"]
book_data.banner(source, executes=None if source.trains else
                 "The pipeline on this page executes on the synthetic phantom; the real slices beside it are the "
                 "test inputs committed with the records (or the slice folder given as `real_data`).")

# %% [markdown]
# ## Overview
# The study segments sagittal lumbar spine MRI from SPIDER, a public dataset of 218 patients
# whose masks label each vertebra, each intervertebral disc and the spinal canal. Before any
# network sees a slice, the study turns each volume into a 128 x 128 image and two targets. This
# chapter follows one slice through that pipeline and answers:
#
# 1. What do SPIDER's masks hold, and how do they become the study's binary and 4-class targets?
# 2. What does the study's preprocessing do to a slice, step by step?
# 3. How much of a slice is vertebra, disc and canal (the class balance)?
# 4. What do our slices and masks look like (the study's Figs. 1 and 3)?
# 5. How are the patients split into training, validation and test sets?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | sagittal MRI of the lumbar spine (vertebrae, discs, canal) | helpful | {doc}`../book/intro` |
# | one-hot encoding of class labels | helpful | {doc}`../book/reference` |
# | NumPy arrays and Matplotlib | helpful | |
#
# Time to run: under a minute once the data are prepared; preparing them (the phantom, or the
# real slices) takes a minute or two the first time and is cached.

# %% [markdown]
# ## What the study reports
# The study describes its data in words, not in a table (its figures, restated in the
# {doc}`reference page <../book/reference>`):
#
# - SPIDER's public part: 218 patients, 447 series (T1, T2, T2-SPACE); the study keeps the 196
#   T1 series.
# - From each volume and its mask, the **central sagittal slice**; rescaled to [0, 255] and
#   stored as 8 bits; resized to 128 x 128 (the mask by nearest neighbour); intensities to
#   [0, 1]; masks one-hot over 2 classes (binary) or 4 (background, vertebrae, discs, canal).
# - A second target, the mask **downsampled to 8 x 8** (the bottleneck's resolution), for the
#   auxiliary output of the proposed model.
# - A fixed 80 % / 20 % train / test split; 20 % of the training part for validation.
#
# Its Fig. 1 shows sample images with their masks, and its Fig. 3 the preprocessed inputs and
# targets; ours are below.
#
# ## How we ran it
# Every picture and table on this page is computed from the data named below, with the
# library's own readers and preprocessing (`spine.data`); nothing is trained.

# %% tags=["remove-input"]
dataset = load_dataset(pipeline_data, size=preprocess.STUDY_SIZE)
sources = {data_name: (pipeline_data, dataset)}
if real_data:
    real = load_dataset(real_data, size=preprocess.STUDY_SIZE)
    sources["real slices"] = (real_data, real)
elif source.recorded:  # the records' committed test inputs: every patient's central slices, SPIDER CC BY 4.0
    real = recorded_slices(store, source.data_id)
    if real is not None:
        sources["real slices (records)"] = (f"{Path(store).name}/inputs/", real)
page.format_counts(pd.DataFrame([{"data": name, "source": str(where), "data_id": s.data_id,
                                 "patients": len(set(s.patients)), "slices": len(s), "size": s.size}
                                for name, (where, s) in sources.items()]))

# %% tags=["remove-cell"]
glue("patients", len(set(dataset.patients)), display=False)
glue("slices", len(dataset), display=False)

# %% tags=["remove-input"]
if len(sources) == 1:
    display(page.note("No real slices in this build (no records, no real_data): the real-data panels below are "
                      "skipped."))

# %% [markdown]
# This build's data hold {glue:text}`patients` patients and {glue:text}`slices` slices.
#
# :::{note}
# The default build uses the **phantom**, a synthetic sagittal spine that the library writes in
# SPIDER's layout and labels (`spine.data.phantom`), so the whole pipeline runs without a
# download. Its slices are cleaner and more alike than patients' are: what it shows is that the
# code does what the study describes, not how a model does on patients. The real slices
# available here are SPIDER's **T2-SPACE** series, not the study's T1 (see the end of the page).
# :::
#
# ## SPIDER's labels
# A SPIDER mask is not a class map: it numbers each structure. Vertebrae carry their instance
# number, discs 200 plus the number of the vertebra above them, the canal a value of its own.
# The study's two tasks merge those instances, into one foreground class (binary) or into three
# structure classes (4 classes with the background). The mapping, as the library applies it:

# %% tags=["remove-input"]
page.format_table(overview.label_mapping_table())

# %% [markdown]
# One slice of this build's data, read the way the study reads SPIDER (the volume's central
# sagittal slice, found from the image's direction matrix), with each mask value written where
# it lies, and the two class maps the study trains on:

# %% tags=["hide-input"]
case = overview.raw_case(pipeline_data)
plots.instance_figure(case["image"], case["mask"], case["structures"])
plt.show()
print(f"case {case['case_id']}: {case['image'].shape[0]} x {case['image'].shape[1]} pixels of "
      f"{case['spacing'][0]:.2f} x {case['spacing'][1]:.2f} mm (rows x columns)")

# %% [markdown]
# The same for a real slice at its original size (its mask stores one grey value per structure,
# not instance numbers, so the vertebrae are not told apart); this needs the slice folder itself
# (`real_data`), since the records keep their inputs at 128 x 128 only.

# %% tags=["hide-input"]
if real_data:
    real_case = overview.raw_case(real_data)
    plots.instance_figure(real_case["image"], real_case["mask"], real_case["structures"])
    plt.show()
    print(f"case {real_case['case_id']}: {real_case['image'].shape[0]} x {real_case['image'].shape[1]} pixels")
else:
    display(page.note("Left out: this build has no real slice folder (real_data)."))

# %% [markdown]
# ## The preprocessing, step by step
# The study's steps 3 to 5 on the slice above: a min-max rescale to 8 bits (the picture does not
# change, the numbers do), a bilinear resize of the image to 128 x 128 and a nearest-neighbour
# resize of the mask (so that no new label value is invented at a boundary), then intensities
# divided by 255. The titles give the sizes and value ranges of each step, as computed.

# %% tags=["hide-input"]
plots.preprocessing_steps(case["image"], case["structures"], size=preprocess.STUDY_SIZE)
plt.show()

# %% [markdown]
# The network is trained against one-hot targets: one channel per class, 1 where the pixel
# belongs to it. For the proposed model's second output, the study downsamples the mask to the
# bottleneck's 8 x 8 grid; the library averages each 16 x 16 block of the one-hot mask, so each
# cell holds the fraction of each class in it (the study says only "downsampled"; nearest
# neighbour would keep one pixel in 256). Binary targets first, the study's main task:

# %% tags=["hide-input"]
prepared = preprocess.resize_labels(case["structures"], preprocess.STUDY_SIZE)
plots.target_panels(prepared, "binary")
plt.show()

# %% [markdown]
# and the four classes of the multiclass extension:

# %% tags=["hide-input"]
plots.target_panels(prepared, "multiclass")
plt.show()

# %% tags=["remove-cell"]
glue("profile_size", settings["size"], display=False)
glue("profile_grid", settings["size"] // preprocess.BOTTLENECK_FACTOR, display=False)

# %% [markdown]
# :::{note}
# The runs of this book use the profile's image size, {glue:text}`profile_size` x
# {glue:text}`profile_size` pixels for this build, so their auxiliary grid is
# {glue:text}`profile_grid` x {glue:text}`profile_grid` (four 2 x 2 poolings, as at 128 x 128).
# :::
#
# ## How much of a slice is spine: the class balance
# The share of the pixels of each structure, pooled over every slice of the data, with the
# range over slices. The background takes most of each image, which is one reason the
# study tries overlap losses (Dice) beside pixel-wise ones (BCE, chapter 3).

# %% tags=["remove-input"]
balance = overview.class_balance({name: s.structures for name, (_, s) in sources.items()})
page.format_counts(balance, 2)

# %% tags=["remove-input"]
plots.class_balance_plot(balance)
plt.tight_layout()
plt.show()

# %% tags=["remove-cell"]
shares = balance[balance["data"] == list(sources)[0]].set_index("structure")["share of pixels (%)"]
glue("foreground_share", float(shares["foreground"]), display=False)

# %% [markdown]
# In this build's data the spine (all three structures) covers
# {glue:text}`foreground_share:.1f` % of the pixels.
#
# ## Figs. 1 and 3: sample slices and masks
# Slices of patients spread over each dataset (the central slice of each), the MRI above and the
# 4-class reference drawn over it below. The study's figures show T1 slices of SPIDER patients.

# %% tags=["remove-input"]
plots.sample_figure({name: s for name, (_, s) in sources.items()}, count=5)
plt.show()

# %% [markdown]
# ## The split by patient
# Neighbouring slices of one patient are nearly identical, so a split by slice would put
# near-copies of test images in the training set. The library splits **by patient**: the test
# patients are fixed by the profile's split seed for every experiment; validation patients are
# drawn from the rest with each run's seed (the study's stability runs re-sample validation).
# The split of this build's data, and how many of its slices a run of this build's profile
# uses (the profile keeps a few slices per patient near the mid-line, and the `smoke` profile
# also caps the training set):

# %% tags=["remove-input"]
config = engine.make_config("Proposed", "Dice", "binary", pipeline_data, profile)
subsets = engine.split_data(config)
display(page.format_counts(split_overview(config), 1))
print(f"data {config.data_id}, profile {profile}, split seed {settings['split_seed']}, validation seed {config.seed}; "
      f"patients in more than one subset: {len(overview.shared_patients(subsets))}")

# %% [markdown]
# And for the real slices: with the slice folder, their split at the same profile; with the
# records only, the patients of each cross-validation fold (the manifest in the store's `folds/`).

# %% tags=["remove-input"]
if real_data:
    real_config = engine.make_config("Proposed", "Dice", "binary", real_data, profile)
    real_subsets = engine.split_data(real_config)
    display(page.format_counts(split_overview(real_config), 1))
    print(f"data {real_config.data_id}, profile {profile}; "
          f"patients in more than one subset: {len(overview.shared_patients(real_subsets))}")
elif source.recorded and (folds := fold_patients(store, source.data_id)) is not None:
    display(page.format_counts(folds))
else:
    display(page.note("Left out: this build has neither real-data records nor a real slice folder."))

# %% [markdown]
# ## Where we differ from the study, and why
# - **Sequence.** The study used SPIDER's T1 series; the real slices available to this project
#   are its T2-SPACE series (published as PNG slices), where fluid (the canal, healthy discs) is
#   bright rather than dark. The pipeline is the same; the figures are not comparable in value.
#   With a full SPIDER download, `data` pointing at the archive runs the study's exact protocol
#   (T1, central sagittal slice).
# - **Slices per patient.** The study keeps one slice per patient (the central one). The PNG
#   slices hold several sagittal slices around the mid-line of each patient; the profile
#   says how many the runs use (`train_slices_per_patient`, `eval_slices_per_patient`), and the
#   split is always by patient.
# - **The central slice.** SPIDER stores the sagittal axis on different array axes in different
#   series; the library finds it from each image's direction matrix instead of assuming it.
# - **The auxiliary target.** "Downsampled to 8 x 8" is read as the class fractions of each
#   16 x 16 block (area averaging); the study does not say which downsampling it used.
# - **Image size.** The `book` and `smoke` profiles train at 64 x 64 to fit a CPU; `cpu` and
#   `paper` at the study's 128 x 128.
#
# ## Summary
# SPIDER's masks number every vertebra and disc; the study merges them into one foreground class
# or three structures. Its preprocessing is a min-max rescale, a resize (nearest neighbour for
# masks) and one-hot targets, plus an 8 x 8 auxiliary target for the bottleneck output. The
# spine is a minority of the pixels, discs and canal a small one. Patients, not slices, are
# split, so no test patient is ever seen in training.
#
# ## What's next
# Chapter 2 describes the five networks that are trained on these targets, and checks their
# parameter counts against the study's Table 8.
