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
profile = "cpu"  # a profile of spine/profiles.toml (unused here)
store = records("results")  # the results store (unused here)
max_new_runs = None  # train at most this many missing runs (unused here: nothing is trained)
real_data = None  # a real slice folder (the shipped model's data): its test patients are explained

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from spine import book_data, explain, inference, page, paper, plots
from spine.models import bottleneck_layer_name, decoder_layer_name
from spine.training import engine, shipped
from spine.training.config import RunConfig
from spine.training.store import recorded_inputs

# %% [markdown]
# # Grad-CAM (Fig. 6)

# %% tags=["remove-input"]
source = book_data.resolve(data, profile, store)
card = inference.model_card("binary")
# the model's own test patients as the store keeps them, unless a slice folder or the phantom is asked for
test = None if real_data or source.kind == "phantom" else recorded_inputs(RunConfig.from_dict(card["config"]), store)
images_from = "real slices (records)" if test is not None else "real slices" if real_data else "phantom"
book_data.Banner(f"Data: {'the synthetic phantom' if images_from == 'phantom' else images_from}.",
                 f"The shipped binary model (`spine/weights/binary.keras`, run `{card['run_id']}`) explained on "
                 + ("the phantom, data it was not trained on." if images_from == "phantom" else
                    "its own test patients, which it never saw in training (" + book_data.SPIDER_CREDIT + ")."))

# %% [markdown]
# ## Overview
# The study shows Grad-CAM heat maps of its proposed network to argue that the model looks at
# the spine when it segments the spine. A heat map is only evidence if it depends on what the
# network learned and points at the structure more than chance would. This chapter explains the
# binary model that ships with spine (`spine predict` uses it), the network its card names
# (chosen on validation among the recorded real-data runs), trained on real SPIDER slices, and
# answers:
#
# 1. Where in the image does the model find the evidence for its foreground?
# 2. How does the map at the coarse bottleneck differ from one at a finer decoder layer?
# 3. Do the maps pass two sanity checks: are they different from the maps of the same network
#    with random weights, and is their mass on the spine larger than the spine's share of the
#    image?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the proposed model and its dual output | necessary | chapter 2 |
# | the comparison of the five models | helpful | {doc}`05_comparison` |
# | gradients, convolutional feature maps | helpful | |
#
# Time to run: about a minute (the maps of one slice per test patient); nothing is trained.

# %% [markdown]
# ## What the study reports
# Fig. 6 of the study: Grad-CAM maps of the proposed model over test images, read by eye. The
# study gives no number for them, and does not say which layer the maps come from, which score
# is differentiated (a class probability or its logit), over which pixels, nor whether the maps
# were checked against a network with random weights. The model they explain is this row of its
# Table 6 (the study's figures). The model explained here is the shipped one, whose architecture
# its card names (below): the same method applied to another network where the card names
# another, not a re-drawing of the study's Fig. 6 model.

# %% tags=["remove-input"]
page.format_table(paper.table("comparison").query("model == 'Proposed'"))

# %% [markdown]
# ## How we ran it
# The model explained is the binary model shipped in the package (`spine/weights/binary.keras`),
# loaded as it is; nothing is trained for this page. Its card says which recorded run it is,
# what it was trained on and how it was chosen:

# %% tags=["remove-input"]
model = inference.load_model(task="binary")
page.format_table(shipped.card_table(card))

# %% [markdown]
# The images are the test slices of the card's split: by default those of the model's own test
# patients as the store keeps them (`results/inputs/`), or read again from the real slices
# (`real_data`), images it never saw in training; with `--data phantom`, the phantom's, a
# synthetic spine the model was not trained on. The model is scored again on the
# images of this page, beside the test Dice its card records:

# %% tags=["remove-input"]
if test is not None:  # the committed inputs of the card's run: its own test patients
    own = True
else:
    test, own = shipped.shipped_test_images(card, real_data or "phantom")
_, scored = engine.score(model, test, "binary")
page.format_table(pd.DataFrame([{
    "images": images_from, "data": test.data_id, "test images": len(test),
    "the model's own test patients": "yes" if own else "no", "recorded test dice": card["test"]["dice"],
    "dice on these images": scored["per_image"]["dice"]}]))

# %% tags=["remove-input"]
display(Markdown(
    "*These are the model's own test patients: the two Dice figures measure the same model on the same images.*"
    if own else
    "*The phantom is not the data this model learned from: its Dice here says how far the model carries to "
    "a synthetic spine, and the maps below explain that, not the model on patients. The default book "
    "explains it on its own test patients.*"))

# %% [markdown]
# The maps are Seg-Grad-CAM (Vinogradova et al., 2020; the docstring of `spine.explain` has
# the details): the score is the foreground logit summed over the pixels the model predicts as
# foreground; each channel of a target layer is weighted by the mean gradient of that score,
# the weighted sum is clipped at zero, upsampled to the image and scaled to [0, 1]. Two target
# layers:
#
# - the **bottleneck** (1/16 of the input side), the deepest layer; in the study's proposed
#   network it is the layer whose features the auxiliary 8 x 8 head is trained on, while the other
#   architectures (TransUNet among them) have no auxiliary head, so there it is only the deepest
#   features; its map is coarse by construction;
# - a **decoder layer** at 1/4 of the input side, after the skip connections have brought back
#   the encoder's detail.
#
# Each map is computed for the central slice of each test patient (one slice per patient: a map
# costs a gradient pass, and a patient's neighbouring slices are near copies), for the shipped
# model and for a copy with the same architecture and freshly initialised weights (Adebayo et al.,
# 2018).

# %% tags=["remove-input"]
layers = [bottleneck_layer_name(model), decoder_layer_name(model, stage=3)]  # stage 3: 1/4 of the side
side = {layer: model.get_layer(layer).output.shape[1] for layer in layers}
explained = test.central(1)
maps = explain.gradcam_maps(model, explained.images, layers, class_index=1, seed=0)
reference = explained.labels("binary") == 1
predicted = inference.predict_labels(model, explained.images)
display(Markdown(f"{len(explained)} test images (the central slice of each test patient) of {test.size} x "
                 f"{test.size} pixels; layer sides: "
                 + ", ".join(f"`{layer}` {side[layer]} x {side[layer]}" for layer in layers) + "."))

# %% [markdown]
# ## What we found
# ### The maps (Fig. 6)
# Four test images. First the reference and the model's foreground; then the maps of
# the shipped model at the two layers, and those of the randomised copy, with the reference
# foreground outlined in white. Warm colours mark where the evidence for "foreground" lies.

# %% tags=["remove-input"]
pick = slice(0, min(4, len(explained)))
titles = list(explained.case_ids[pick])
plots.overlay_grid(explained.images[pick], {"reference": reference[pick].astype("uint8"), "prediction": predicted[pick]},
                   "binary", titles=titles)
plt.show()
rows = {f"{kind}\n{layer}": maps[kind][layer][pick] for kind in ("trained", "randomised") for layer in layers}
plots.gradcam_grid(explained.images[pick], rows, contours=reference[pick], titles=titles)
plt.show()

# %% [markdown]
# ### Sanity checks, in numbers
# Over those slices, one per test patient, per layer:
#
# - `concentration`: the fraction of the map's mass that lies on the reference foreground (the
#   energy-based pointing game); `chance` is the foreground's share of the image, what a map
#   spread evenly would score, so `concentration / chance` above 1 means the map points at the
#   spine. `empty maps` counts images whose map is zero everywhere (no positive evidence, or no
#   predicted foreground), left out of the mean.
# - `concentration (randomised)`: the same for the randomised copy.
# - `Spearman ρ trained vs randomised`: the rank correlation between the two models' maps of the
#   same image, averaged; near 1, the map would not depend on the weights (an edge detector of
#   the input, not an explanation); near 0, it does.

# %% tags=["remove-input"]
sanity = explain.gradcam_sanity(maps, reference)
page.format_counts(sanity, 3)

# %% tags=["remove-cell"]
decoder = sanity.iloc[-1]
glue("dice_here", float(scored["per_image"]["dice"]), display=False)
glue("dice_recorded", float(card["test"]["dice"]), display=False)
glue("decoder_mass", float(100 * decoder["concentration"]), display=False)
glue("decoder_ratio", float(decoder["concentration / chance"]), display=False)
glue("decoder_mass_randomised", float(100 * decoder["concentration (randomised)"]), display=False)
glue("decoder_rho", float(decoder["Spearman ρ trained vs randomised"]), display=False)

# %% [markdown]
# At the decoder layer, {glue:text}`decoder_mass:.0f` % of the map's mass lies on the spine,
# {glue:text}`decoder_ratio:.1f` times what chance gives, against
# {glue:text}`decoder_mass_randomised:.0f` % for the randomised copy; the two models' maps have a
# mean rank correlation of {glue:text}`decoder_rho:.2f`.

# %% [markdown]
# ## Where we differ from the study, and why
# - **Method stated.** The study names Grad-CAM without its segmentation details; we state ours
#   (logit score over the predicted foreground, two named layers) so that the maps can be
#   recomputed, and add two checks the study does not report.
# - **Model and data.** The maps explain the shipped model, named by its card above (the study
#   explains its proposed network), trained on SPIDER's T2-SPACE slices, not the study's T1 model. On the phantom it
#   explains a model outside the data it learned from.
# - **Layer.** The bottleneck map has 1/16 of the input's resolution, so it cannot follow the
#   outline of a vertebra however good the model is; the decoder map can.
#
# ## Summary
# The shipped binary model, scored again on this page's images, gives a Dice of
# {glue:text}`dice_here:.3f` (its card records {glue:text}`dice_recorded:.3f` on its own test
# patients). Its Seg-Grad-CAM map at the decoder layer puts {glue:text}`decoder_mass:.0f` % of
# its mass on the spine, {glue:text}`decoder_ratio:.1f` times chance, and changes when the
# weights are replaced by random ones (rank correlation {glue:text}`decoder_rho:.2f`); the
# bottleneck's map is coarse by construction. A map is evidence about the model only where both
# checks pass, as the table above shows layer by layer.
#
# ## What's next
# Chapter 8 trains the same five models for four classes (vertebrae, discs, spinal canal and
# background) and reports each structure separately.
