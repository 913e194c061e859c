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
profile = "cpu"  # a profile of spine/profiles.toml (its width and size for the last table)
store = records("results")  # the results store (unused here: nothing is trained)
max_new_runs = None  # train at most this many missing runs (unused here)
real_data = None  # a real slice folder for side-by-side sections (unused here)

# %% tags=["remove-cell"]
import keras
import matplotlib.pyplot as plt
import pandas as pd
from myst_nb import glue

from spine import page, paper, plots
from spine.book_data import Banner
from spine.models import BASELINE_NAMES, MODEL_NAMES, report
from spine.training.config import resolve_profile

settings = resolve_profile(profile)

# %% [markdown]
# # The architectures (Table 8)

# %% tags=["remove-input"]
Banner("Data: none.", "The networks are built and their weights counted; nothing is trained and no data are read.")

# %% [markdown]
# ## Overview
# The study compares its proposed network with four published ones, all encoder-decoder
# networks that map a 128 x 128 slice to a class map of the same size. It describes them in a
# few sentences and reports their parameter counts (Table 8). This chapter rebuilds all of
# them and answers:
#
# 1. What are the five networks, and how do they differ?
# 2. What does each look like, block by block?
# 3. Do our parameter counts match the study's Table 8?
# 4. Where the study's text and its counts disagree, which did we follow, and why?
# 5. How large are the ablation and skip-attention variants, and the networks this build trains?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | convolutions, pooling, BatchNorm, the U-Net | necessary | Ronneberger et al. (2015) |
# | the targets (one-hot, 8 x 8 auxiliary) | helpful | chapter 1 |
# | self-attention (for TransUNet) | helpful | Chen et al. (2021) |
#
# Time to run: one to two minutes on a CPU (the full-size networks are built, never trained).

# %% [markdown]
# ## What the study reports
# Table 8 of the study (its figures, copied from the paper): the parameters of each network at a
# 128 x 128 x 1 input with 2 output classes. Non-trainable parameters are BatchNorm's moving
# means and variances, two per normalised channel.

# %% tags=["remove-input"]
page.format_counts(paper.table("complexity"))

# %% [markdown]
# ## How we ran it
# Each network is built with `spine.models.build_model(name)` at the study's configuration and
# its weights counted; nothing is trained and no data are read.

# %% tags=["remove-input"]
page.format_table(pd.DataFrame({"setting": ["input", "classes", "width (base filters)", "builder", "Keras"],
                                "value": ["128 x 128 x 1", "2 (binary)", "64 (the study's)",
                                          "spine.models.build_model", keras.__version__]}))

# %% [markdown]
# ## The five networks
# All five share the U-Net's plan: an encoder of four blocks that halve the resolution (128 ->
# 8 pixels) while the channels grow (64 -> 512 at width 64), a bottleneck of 1,024 channels at
# 8 x 8, and a decoder of four stages that double the resolution back, each concatenating the
# encoder feature of the same size (the *skip connection*), ending in a 1 x 1 convolution with a
# softmax over the classes (the `mask` head).
#
# - **U-Net** (Ronneberger et al., 2015): each block two 3 x 3 convolutions with BatchNorm and
#   ReLU; max-pooling down, a learned 2 x 2 transposed convolution up; dropout in the deep layers.
# - **ResUNet**: the same layout with *residual* blocks: the two convolutions are added to a
#   1 x 1 projection of the block's input, which eases the flow of gradients.
# - **Attention U-Net** (Oktay et al., 2018): the U-Net with an *attention gate* on each skip: the
#   decoder's feature decides, pixel by pixel, how much of the encoder's feature passes.
# - **TransUNet** (Chen et al., 2021): the U-Net's encoder, then a Transformer that treats the
#   8 x 8 bottleneck cells as 64 tokens and lets every cell attend to every other (global
#   context), then the U-Net's decoder ("cascaded upsampler").
# - **Proposed**: the U-Net with two changes. Its first block is an **Inception block**: four
#   parallel branches (1 x 1; 1 x 1 then 3 x 3; 1 x 1 then 5 x 5; 3 x 3 max-pool then 1 x 1)
#   concatenated, so the first features mix several receptive fields. And a **dual output**: a
#   second 1 x 1 softmax head on the bottleneck predicts the 8 x 8 auxiliary mask of chapter 1,
#   so the deepest features are supervised directly (the study's "bottleneck loss").
#
# ## Block by block
# A compact `model.summary()`: for each block (read from the layer names; skip attention and
# gates count with their decoder stage), its output shape (an encoder block's after its
# pooling) and its parameters, at width 64. In the proposed network the Inception block is
# the first encoder block, so its `enc1` is only the pooling that follows it.

# %% tags=["remove-input"]
outlines = report.outline_table(BASELINE_NAMES)
page.format_table(report.outline_wide(outlines))

# %% [markdown]
# Where the parameters sit. A 3 x 3 convolution that joins 512 or 1,024 channels to as many holds
# millions of weights, so the deep, coarse layers outweigh the full-resolution blocks that see
# the fine detail.

# %% tags=["remove-input"]
plots.parameter_breakdown_plot(outlines)
plt.tight_layout()
plt.show()

# %% tags=["remove-cell"]
proposed = outlines[outlines["model"] == "Proposed"]
deep = proposed[proposed["block"].isin(["enc4", "bottleneck", "dec4"])]["params"].sum()
glue("deep_share", float(100 * deep / proposed["params"].sum()), display=False)

# %% [markdown]
# In the proposed network, the layers at 16 x 16 and 8 x 8 (encoder block 4, the bottleneck and
# decoder stage 4) hold {glue:text}`deep_share:.0f` % of the parameters.

# %% [markdown]
# The proposed network in more detail (layers, convolutions and BatchNorm layers per block):

# %% tags=["remove-input"]
page.format_counts(outlines[outlines["model"] == "Proposed"].drop(columns="model"))

# %% [markdown]
# ## What we found: parameter counts beside Table 8
# Ours (at the study's configuration) beside the study's, with the difference of the totals in
# percent:

# %% tags=["remove-input"]
counts = report.parameter_table(MODEL_NAMES)
table8 = counts[counts["model"].isin(BASELINE_NAMES)].reset_index(drop=True).convert_dtypes()  # counts as integers
page.format_counts(table8, 2)

# %% tags=["remove-cell"]
exact = table8[(table8["total"] == table8["study_total"]) & (table8["non_trainable"] == table8["study_non_trainable"])]
glue("exact_models", len(exact), display=False)
glue("transunet_diff", float(table8.set_index("model").loc["TransUNet", "total_diff_pct"]), display=False)

# %% [markdown]
# {glue:text}`exact_models` of the five networks match the study's total, trainable and
# non-trainable counts exactly. TransUNet differs by {glue:text}`transunet_diff:.2f` % in the
# total, with its non-trainable count exact (next section).
#
# ## Where the study's text and its counts disagree
# The text leaves choices open (how to upsample, where the BatchNorm layers go, the
# Transformer's size) and in places contradicts the counts. Counting parameters settles most of
# them: the non-trainable count gives the number of BatchNorm channels, and the trainable count
# then admits only a few layouts. Where text and count disagree, the builders follow the count
# (the reasoning is in each module's docstring, `spine/models/*.py`):
#
# - **Upsampling** is a learned 2 x 2 transposed convolution. Parameter-free upsampling, or
#   upsampling followed by a 3 x 3 convolution, do not fit any of the counts.
# - **Convolutions keep their bias** even where BatchNorm follows (redundant, but counted).
# - **The bottleneck's BatchNorm.** The text gives the U-Net and the proposed network the same
#   bottleneck ("ReLU + BatchNorm + dropout"). The counts say the U-Net's bottleneck has a
#   single BatchNorm, after its second ReLU, while the proposed network and the Attention U-Net
#   have one after each of its two convolutions; each builder follows its own count.
# - **The Inception block** has BatchNorm and ReLU after each of its six convolutions (the only
#   placement that fits), and its 256-channel output is also the first skip connection, so the
#   last decoder stage concatenates 64 + 256 channels.
# - **The attention gate** uses the upsampled decoder feature as its gating signal, as many
#   intermediate channels as the skip has, and no BatchNorm: half as many intermediate channels
#   (a common choice) gives half the gates' count.
# - **TransUNet** is not the original (a ResNet-50 encoder and 12 Transformer layers of 768
#   would be far larger than Table 8). The non-trainable count fixes one BatchNorm between the
#   Transformer and the decoder; the remaining budget fits no natural configuration exactly.
#   The builder uses the nearest natural one (hidden size 512, 8 heads, an MLP of 4 x 512, 2
#   layers, a 1 x 1 bridge to the decoder), hence the small difference above.
# - **Filters scale with the width.** Every filter count, the Inception branches' included, is
#   the study's times `width / 64`, so smaller profiles keep the study's channel ratios.
#
# ## The variants: ablations and skip attention
# The ablations of chapter 4 remove one change from the proposed network ("U-Net + Inception
# module" has no auxiliary head; "U-Net + Dual-output mechanism" is the U-Net with the head),
# and the skip-attention variants add a spatial attention module (SAM), CBAM or a
# squeeze-and-excitation (SE) block on each skip connection. The study gives no counts for them;
# ours, and what each adds to its base network:

# %% tags=["remove-input"]
variants = report.counts_table(counts, variants_only=True)
page.format_counts(variants)

# %% tags=["remove-cell"]
glue("largest_change", float(100 * (variants["added"].abs() / (variants["total"] - variants["added"])).max()),
     display=False)

# %% [markdown]
# The auxiliary head is a single 1 x 1 convolution, the Inception block's branches are narrow,
# and the attention modules are small: no variant changes the size of its base network by more
# than {glue:text}`largest_change:.2f` %. Differences between them in chapter 4 are not a matter
# of network size.
#
# ## The networks this build trains
# The chapters' runs use the profile named in the parameters, at its own width and input size;
# the counts of the five networks at that size:

# %% tags=["remove-input"]
small = report.parameter_counts(BASELINE_NAMES, width=settings["width"],
                                input_shape=(settings["size"], settings["size"], 1))
print(f"profile {profile}: width {settings['width']}, input {settings['size']} x {settings['size']} x 1, 2 classes")
page.format_counts(report.counts_table(small))

# %% [markdown]
# ## Where we differ from the study, and why
# - **Layouts inferred from counts.** Where the study's text is silent or contradicts its Table 8,
#   the builders follow the counts (above); {glue:text}`exact_models` networks reproduce them
#   exactly, good evidence that those layouts are the study's. TransUNet's exact configuration
#   remains a guess.
# - **Smaller networks in the book.** The `book`, `smoke` and `cpu` profiles train the same
#   layouts with fewer filters (and, for `book` and `smoke`, at 64 x 64); only the `paper`
#   profile trains the study's sizes.
# - **Skip-attention modules** follow their original papers (reduction ratio 16 for SE and CBAM's
#   channel part, a 7 x 7 convolution for the spatial part); the study does not describe them.
#
# ## Summary
# The five networks share the U-Net's encoder-decoder plan and differ in their blocks (residual,
# gated skips, a Transformer bottleneck, an Inception first block with a second, 8 x 8 output).
# Counting parameters pins down the layouts the text leaves open; our counts match Table 8
# exactly for {glue:text}`exact_models` of the five networks, and TransUNet's is off by
# {glue:text}`transunet_diff:.2f` %.
#
# ## What's next
# Chapter 3 trains the five networks with each of the study's four losses (Table 2).
