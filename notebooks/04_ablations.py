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
max_new_runs = None  # train at most this many missing runs for the chapter (None: all)
real_data = None  # a real slice folder for side-by-side sections (unused here)

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
from IPython.display import Markdown
from myst_nb import glue

from spine import book_data, page, paper, plots, sentences
from spine.data import load_dataset
from spine.training import comparisons, predictions, provenance, studies
from spine.training.config import resolve_profile
from spine.training.store import recorded_inputs

settings = resolve_profile(profile)

# %% [markdown]
# # Ablations (Tables 3, 4 and 5)

# %% tags=["remove-input"]
source = book_data.resolve(data, profile, store)
book_data.banner(source)

# %% [markdown]
# ## Overview
# The proposed network changes the U-Net in two ways, an Inception first block and a second,
# 8 x 8 output. The study checks what each change brings by removing one at a time (Table 3),
# tries attention modules on the skip connections instead (Table 4), and trains the proposed
# network with data augmentation (Table 5). This chapter re-runs the three experiments and
# answers:
#
# 1. Does each of the two changes help on its own, and do they help together?
# 2. Does attention on the skip connections (SAM, CBAM, SE) improve the networks?
# 3. Does data augmentation help the proposed network?
# 4. Are the differences larger than the noise of a small test set?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the architectures, their variants and sizes | necessary | chapter 2 |
# | the losses (the variants use the study's loss per row) | helpful | chapter 3 |
# | bootstrap intervals, paired tests | helpful | {doc}`../book/reference` |
#
# Time to run: seconds from recorded runs; a few minutes per missing run on a CPU (16 runs,
# some shared with chapters 3 and 5).

# %% [markdown]
# ## What the study reports
# The study's figures, copied from the paper, all on its test set.
#
# **Table 3, ablation** (Dice loss): the U-Net, the U-Net with only the Inception block, with only
# the dual output, and with both (the proposed network).

# %% tags=["remove-input"]
page.format_table(paper.table("ablation"))

# %% [markdown]
# **Table 4, skip attention**: a spatial attention module (SAM), CBAM (channel then spatial
# attention) or a squeeze-and-excitation block (SE) on each skip connection of three networks.
# Each row uses the loss the study lists beside it, which is not always the base network's.

# %% tags=["remove-input"]
page.format_table(paper.table("attention"))

# %% [markdown]
# **Table 5, augmentation**: the proposed network trained without and with augmentation
# (rotations, shifts, zoom, horizontal flips).

# %% tags=["remove-input"]
page.format_table(paper.table("augmentation"))

# %% [markdown]
# ## How we ran it
# Each row is one run with the protocol of chapter 1 (split by patient, the epoch with the best
# validation Dice kept, the test patients scored once). Rows that name the same network and loss
# as another chapter's (the U-Net and the proposed network with the Dice loss, say) are the same
# run, read from the store. The runs behind each table:

# %% tags=["remove-input"]
if source.trains:
    tables = studies.run_studies(("ablation", "attention", "augmentation"), source.data, source.profile, store,
                                 max_new_runs=max_new_runs, verbose=False)
else:  # the plan's folds: the ablation in every fold, the other two in fold 0
    tables = {name: book_data.grid_table(source, name, folds=folds) for name, folds in studies.PLAN
              if name in ("ablation", "attention", "augmentation")}
ablation, attention, augmentation = (tables[name] for name in ("ablation", "attention", "augmentation"))
runs = {"Table 3 (ablation)": ablation, "Table 4 (skip attention)": attention, "Table 5 (augmentation)": augmentation}
page.table_or_note(provenance.provenance_side_by_side(runs, store), sentences.not_recorded("ablation", source))

# %% tags=["remove-cell"]
ablation_pairs = comparisons.paired_comparisons(ablation, store)
augmentation_pairs = comparisons.paired_comparisons(augmentation, store)
glue("ablation_headline", Markdown(sentences.pair_sentence(ablation, ablation_pairs, "Proposed", "U-Net",
                                                           grid="ablation", source=source)), display=False)
glue("ablation_finding", Markdown(sentences.grid_finding(ablation, ablation_pairs, grid="ablation", source=source)),
     display=False)
glue("augmentation_headline", Markdown(sentences.pair_sentence(augmentation, augmentation_pairs, "Proposed",
                                                               "Proposed + data augmentation", grid="augmentation",
                                                               source=source)), display=False)

# %% [markdown]
# ## What we found
# Both changes against neither (the proposed network against the U-Net): {glue:md}`ablation_headline`
#
# {glue:md}`ablation_finding`
#
# With and without augmentation: {glue:md}`augmentation_headline`
#
# In each table: F1 (= Dice) and the foreground IoU, ours beside the study's, the difference
# (ours minus the study's) and our 95 % BCa bootstrap interval over the test patients; "–" marks
# a row not trained in this build. Below each table, ours and the study's as bars (the black line
# is our interval), and paired comparisons on the same test patients, each grid's comparisons one
# Holm family (the ablation in every fold; the skip-attention and augmentation grids in fold 0,
# whose few patients may allow no verdict at all).
#
# ### The two changes, one at a time (Table 3)

# %% tags=["remove-input"]
section = page.grid_section(ablation, store, reference="Proposed", absent=sentences.not_recorded("ablation", source))

# %% [markdown]
# ### Attention on the skip connections (Table 4)
# Each variant against its own base network (the study's rows: the base with its listed loss).
# Where the variant's loss differs from the base's, the difference mixes the module's effect with
# the loss's.

# %% tags=["remove-input"]
section = page.grid_section(attention, store, families=("U-Net", "ResUNet", "Proposed"),
                               bar_label=attention["model"] + " (" + attention["loss"] + ")",
                               absent=sentences.not_recorded("skip-attention", source))

# %% [markdown]
# ### Data augmentation (Table 5)
# The study's augmentation (`spine.training.augment`): a random rotation, shift and zoom and a
# horizontal flip, drawn per image and epoch, the mask transformed with the image (by nearest
# neighbour, so labels stay labels). The study names the kinds of transform but not their
# ranges; the library uses the usual Keras settings. One slice and four draws (with the records, a
# real test slice kept in the store; otherwise a slice of this build's data):

# %% tags=["hide-input"]
first = next(iter(predictions.trained_records(ablation, store).values()), None)
inputs = recorded_inputs(first.config, store) if first is not None else None
if inputs is not None:
    image, structures = inputs.images[0], inputs.structures[0]
else:
    sample = load_dataset(source.data if source.trains else "phantom", size=settings["size"])
    image, structures = sample.images[0], sample.structures[0]
plots.augmentation_examples(image, structures, seeds=(1, 2, 3, 4))
plt.show()

# %% [markdown]
# A horizontal flip of a sagittal slice puts the spine's front at the back: an image that no
# scanner produces. The flipped slices teach the network an invariance the test images never
# call for, one plausible reason for the study's drop with augmentation.

# %% tags=["remove-input"]
section = page.grid_section(augmentation, store, reference="Proposed",
                               absent=sentences.not_recorded("augmentation", source))

# %% [markdown]
# ## Where we differ from the study, and why
# - **Data and profile.** As in chapters 3 and 5: the phantom or the T2-SPACE slices instead of
#   the study's T1 slices, and a smaller, shorter profile than the study's 50 epochs at width 64.
#   Augmentation in particular needs many epochs to pay off, so a short profile is biased
#   against it.
# - **Selection.** Every run keeps its best epoch on validation patients; the study does not say
#   how its reported epoch was chosen.
# - **Modules the study does not describe.** SAM, CBAM and SE follow their original papers
#   (chapter 2), and the augmentation ranges are the usual Keras ones: the study gives neither.
# - **Paired comparisons.** The study reports single figures per row; we add intervals and
#   paired tests, which say whether a difference in the third decimal is more than noise.
#
# ## Summary
# {glue:md}`ablation_headline` {glue:md}`augmentation_headline`
#
# Each of the study's three experiments is re-run with the same rows: removing the Inception
# block or the dual output, adding attention to the skips, and augmenting the training images.
# The tables set our figures beside the study's, and the paired comparisons say which of the
# differences this test set can resolve.
#
# ## What's next
# Chapter 5 compares the proposed network with the four baselines (Table 6), with paired tests
# and boundary distances in millimetres.
