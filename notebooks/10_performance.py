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
data = "phantom"  # unused here: the measurements are made by benchmarks/performance.py
profile = "book"  # unused here
store = records("results")  # unused here
max_new_runs = None  # unused here
real_data = None  # unused here
measurements = records("benchmarks/results")  # where benchmarks/performance.py wrote its tables
TARGET_SLICES_PER_S = 25  # the project's inference target on 2 cores (issue 7)

# %% tags=["remove-cell"]
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from spine import benchmark_tables, book_data, page, plots

folder = Path(measurements)
tables = benchmark_tables.read_tables(folder)
machine, peak = benchmark_tables.machine(tables)


def show(name: str, digits: int = 2):
    """A measured table without its machine column, or a note that it was not measured."""
    if name in tables:
        display(page.format_counts(tables[name].drop(columns="machine", errors="ignore"), digits))
    else:
        display(Markdown(f"*`{name}.csv` is not in `{folder}`: run `python benchmarks/performance.py`.*"))


# %% [markdown]
# # Performance on a laptop-class CPU

# %% tags=["remove-input"]
book_data.Banner("Data: the benchmark tables.", "Measurements read from `benchmarks/results/`, each with the machine it was made on; nothing is measured while the book is built.")

# %% [markdown]
# ## Overview
# The study trained on a GPU; this book's runs are made on a small CPU machine. What that costs decides
# which profile a reader can afford, and whether the shipped models are fast enough to use. This
# chapter reads the measurements of `benchmarks/performance.py`, all made in one run on one
# machine, and answers:
#
# 1. How many images per second does each model train at, at the study's width and at the `cpu`
#    profile's?
# 2. How much of the machine's arithmetic peak does training use?
# 3. Does the engine (its input pipeline, per-epoch validation) cost more than a plain
#    `model.fit` on arrays in memory?
# 4. How fast do the shipped models segment a slice and a whole volume, and with how much memory?
# 5. Why did some epochs take twice (or four times) as long as their neighbours?
# 6. How long does the proposed model take to reach a validation Dice of 0.90 on real slices,
#    with the recipe the first real-data study used and with the `cpu` profile's?
#
# ## Prerequisites
# | concept | importance | where |
# |---|---|---|
# | the architectures and their widths | helpful | {doc}`02_architectures` |
# | the profiles (`paper`, `cpu`, `book`, `smoke`) | helpful | the README |
# | the real-data runs | helpful | {doc}`09_beyond` |
#
# Time to run: seconds (it reads the measurements). To measure again on your machine:
# `python benchmarks/performance.py` (every model at two widths: allow the better part of an hour
# on a laptop CPU).

# %% [markdown]
# ## What the study reports
# The study gives parameter counts (Table 8, chapter 2) and its GPU, but no training or
# inference times: nothing here can be set beside the study's figures.
#
# ## How we ran it

# %% tags=["remove-input"]
if "machine" in tables:
    size, repeats = tables["machine"][["matmul_n", "matmul_repeats"]].iloc[0]
    display(Markdown(f"Machine: **{machine}**. Dense float32 matmul peak ({size} x {size}, best of {repeats}, "
                     f"all cores): **{peak:.0f} GFLOP/s**, measured in the same run."))

# %% [markdown]
# Every measurement runs in a fresh process, so its peak memory is its own and graph tracing is
# counted once (`first_step_s`), outside the rates. Training images are 128 x 128 phantom slices
# (the speed of a step does not depend on what the image shows). FLOPs are counted by
# TensorFlow's profiler on one forward pass (2 per multiply-add); a training step is taken as
# 3 forward passes, the usual estimate.
#
# ## What we found
# ### Training throughput

# %% tags=["remove-input"]
show("training")

# %% tags=["remove-input"]
if "training" in tables:
    plots.throughput_bars(tables["training"], peak)
    plt.show()
    s = benchmark_tables.width_speedup(tables["training"])
    display(Markdown(f"From the study's setting (width {s['study_width']}, batch {s['study_batch']}) to the "
                     f"`cpu` profile's (width {s['reduced_width']}, batch {s['reduced_batch']}), training "
                     f"is {s['speedup_min']:.1f}x to {s['speedup_max']:.1f}x faster across the models (batch size barely "
                     f"changes the cost per image on a CPU, so this is the width). At the study's setting, 100 "
                     f"training images cost {s['seconds_per_100_min']:.0f} to {s['seconds_per_100_max']:.0f} s here."))

# %% [markdown]
# ### The engine against a plain `model.fit`
# The proposed model trained by `spine.training.train` (an epoch's fit from the engine's input
# pipeline, plus the validation scoring it adds to select the best epoch; its checkpoint saves
# are not timed) against one epoch of `model.fit` on the same images held in memory as NumPy
# arrays, batch 2 as in the study. `engine_vs_plain` is the plain epoch's time over the engine's:
# below 1, the engine is slower by that factor.

# %% tags=["remove-input"]
show("engine", 3)

# %% [markdown]
# The same measurement before the one change it led to (`engine_before.csv`, measured with the
# code of that time, **on another, slower machine**: compare its two columns with each other, not
# with the table above): the engine's validation predicted every set padded to a multiple of 16
# images, so a validation set of 10 cost the work of 16. Removing the padding made the
# validation pass proportionally cheaper.

# %% tags=["remove-input"]
show("engine_before", 3)

# %% [markdown]
# ### The epochs that took twice as long
# Some epochs of the same run took 2x, 4x or even 8x as long as their neighbours, with no other
# load on the machine. `benchmarks/epoch_stalls.py` times every training step of 12 epochs
# (the proposed network, the recipe of the first real-data study), with the CPU seconds of the
# process over each epoch. First with tf.data's autotuner on, as the engine had it:

# %% tags=["remove-input"]
show("epoch_stalls_before", 3)

# %% tags=["remove-input"]
if "epoch_stalls_before" in tables:
    stalls = benchmark_tables.stall_summary(tables["epoch_stalls_before"])
    display(Markdown(f"The steps of every epoch add up to about the same time (median step {stalls['median_step_s']:.2f} s); "
                     f"the slow epochs are slow **after** their last step: {stalls['slow_epochs']} of "
                     f"{stalls['epochs']} epochs took {stalls['slow_wall_s']:.1f} s against {stalls['fast_wall_s']:.1f} s, "
                     f"and in those the process used {stalls['slow_cpu_per_wall']:.2f} cores on average against "
                     f"{stalls['fast_cpu_per_wall']:.2f}: it was waiting, not working. Each epoch's `model.fit` "
                     "tears its tf.data iterator down at the end, and that waits for the autotuner's background "
                     "thread to wake up; its sleep doubles up to about 10 s, so epochs end on its ticks (10.3, 20.5, "
                     "41 s). The engine now switches the autotuner off (its input pipeline is a fixed "
                     "`map` and `prefetch(2)` with nothing to tune). The same 12 epochs since:"))
    show("epoch_stalls", 3)

# %% [markdown]
# ### Inference with the shipped models
# The models in `spine/weights` (chapter 9 says how they were chosen), one call per slice
# (batch 1, as an interactive user would) and per 16 slices (as `spine predict` does for a
# volume), and a whole phantom volume through `spine.inference.segment_volume` (every sagittal
# slice, resampled back onto the volume's grid), against the project's target rate.

# %% tags=["remove-input"]
show("inference")
if "inference" in tables:
    best, verdict = benchmark_tables.inference_verdict(tables["inference"], TARGET_SLICES_PER_S)
    display(Markdown(f"Best rate (batch 1 or 16): {', '.join(f'{task} {rate:.0f}' for task, rate in best.items())} slices/s; the "
                     f"shipped models {verdict} the target of {TARGET_SLICES_PER_S} slices/s."))

# %% [markdown]
# ### Time to accuracy on real slices
# `benchmarks/recipe.py` trains the proposed network with each recipe on fold 0 of the `cpu`
# profile's cross-validation, in one run on one machine, and scores it after every epoch on
# fold 0's **validation** patients (5 central slices each, averaged per patient): `recorded` is
# the recipe of the first real-data study (7 slices per training patient, 30 epochs, constant
# Adam 1e-3, float32, a checkpoint every epoch), `cpu` the `cpu` profile as shipped (every slice,
# a warm-up and cosine schedule, mixed precision where the CPU has bfloat16, a checkpoint every
# 5 epochs), and variants of it. Wall seconds count fit, validation and checkpoints (the first
# epoch's tracing included); "–" means never reached. The machine, measured in the same run:

# %% tags=["remove-input"]
show("recipe_machine", 1)
show("recipe", 4)

# %% tags=["remove-input"]
if "recipe" in tables:
    recipe = benchmark_tables.recipe_summary(tables["recipe"])
    display(Markdown(recipe))

# %% [markdown]
# ## Where we differ from the study, and why
# The study reports no timings, so there is nothing to differ from. What it implies: its 50
# epochs at width 64 and batch 2 cost, on a machine like this one, 50 times its training set at
# the width-64 rate above, which is why the book's own runs use the narrower `cpu` and `book`
# profiles and say so beside every figure.
#
# ## Summary
# The tables above say what a run costs here, how much of the machine it uses, that the engine's
# bookkeeping is (or is not) a cost worth removing, and whether the shipped models are fast
# enough for interactive use.
#
# ## What's next
# The reference page documents the library; `benchmarks/performance.py` re-measures all of this
# on the reader's machine.
