"""Performance on this machine, measured in one run and reported as ratios where a ratio fits.

    python benchmarks/performance.py [--models ...] [--widths 64 16] [--quick] [--only SECTION ...]

Each measurement runs in a fresh process, so that its peak resident memory is its own and
graph tracing is counted once, in ``first_step_s`` (excluded from the rates):

- ``machine.csv``: the CPU model, core count and vector flags, and the dense float32 and
  bfloat16 matmul peaks of this machine (GFLOP/s, best of repeats).
- ``training.csv``: per model and width, images/s of a training step through the engine's input
  pipeline (``epoch_dataset``) at the profile's batch (the study's width: 2, the ``cpu`` width: 8);
  the forward FLOPs of one 128 x 128 image (TensorFlow's profiler, 2 FLOPs per multiply-add) and
  the achieved GFLOP/s of training (3 x forward per image, the usual estimate for the backward
  pass) as a fraction of the matmul peak of its precision (float32 at every width; the ``cpu``
  profile's mixed precision at the ``cpu`` width where this machine has it); the process's peak
  memory.
- ``engine.csv``: per width, the proposed model trained by the engine (``spine.training.train``,
  batch 2: the second epoch's fit from its input pipeline plus the validation scoring it adds to
  select an epoch; its two checkpoint saves are not timed) against a plain ``model.fit`` of one
  epoch on the same images held in memory as NumPy arrays, batch 2 (the study's setup).
- ``inference.csv``: the shipped models (``spine/weights``): ms per slice (at the model's input
  size, 128 x 128 for the study's protocol), one ``predict_on_batch`` call per slice (batch 1) or
  per 16 slices, slices/s, seconds per whole volume (``spine.inference.segment_volume`` on a
  phantom volume), peak memory.
Time to accuracy is measured by ``benchmarks/recipe.py`` (recipes side by side) and the epochs
that took twice as long by ``benchmarks/epoch_stalls.py``.

Every file is written atomically to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

OUT = Path(__file__).parent / "results"
MODELS = ("U-Net", "ResUNet", "Attention U-Net", "TransUNet", "Proposed")
BATCH_AT_WIDTH = {64: 2, 16: 8}  # the paper profile's batch at its width, the cpu profile's at its own
SIZE = 128
SECTIONS = ("machine", "inference", "engine", "training")


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _in_child(function, *args):
    """Run ``function(*args)`` in a fresh process and return its result (a dict)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


# --------------------------------------------------------------------------- machine


def matmul_peak(n: int = 2048, repeats: int = 8) -> dict:
    """The float32 matmul peak (the training rates' yardstick), the bfloat16 one, and the CPU."""
    import tensorflow as tf

    from spine.training import device

    row = {"cpu_model": device.cpu_model(), "cpu_count": os.cpu_count(), "simd_flags": device.simd_flags(),
           "matmul_n": n, "matmul_repeats": repeats}
    for dtype, key in ((tf.float32, "matmul_gflop_per_s"), (tf.bfloat16, "matmul_bf16_gflop_per_s")):
        a, b = tf.cast(tf.random.normal((n, n)), dtype), tf.cast(tf.random.normal((n, n)), dtype)
        (a @ b).numpy()  # warm-up
        best = min(_seconds(lambda: (a @ b).numpy()) for _ in range(repeats))
        row[key] = round(2 * n**3 / best / 1e9, 1)
    return row


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- training


def forward_flops(model, size: int = SIZE) -> int:
    """FLOPs of one forward pass of one image, counted by TensorFlow's profiler on a frozen graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((1, size, size, 1), tf.float32)
    frozen = convert_variables_to_constants_v2(tf.function(lambda x: model(x, training=False)).get_concrete_function(spec))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops)


def train_rate(model_name: str, width: int, batch: int, steps: int, precision: str = "float32") -> dict:
    """Images/s of training steps through the engine's input pipeline, after a traced first step."""
    from spine.data import load_dataset
    from spine.training import engine, make_config

    config = make_config(model_name, "Dice", "binary", "phantom:12", "cpu", overrides={"width": width, "batch_size": batch})
    model = engine.compile_model(config, precision=precision)
    subset = load_dataset("phantom:12", size=SIZE)
    dual = "aux" in model.output
    data = engine.epoch_dataset(subset, "binary", batch, 0, 0, False, dual).repeat()
    first = _seconds(lambda: model.fit(data.take(1), epochs=1, verbose=0, shuffle=False))
    model.fit(data.take(1), epochs=1, verbose=0, shuffle=False)
    seconds = _seconds(lambda: model.fit(data.take(steps), epochs=1, verbose=0, shuffle=False))
    rate = batch * steps / seconds
    flops = forward_flops(model)
    return {"model": model_name, "width": width, "batch": batch, "precision": precision, "params": model.count_params(),
            "first_step_s": round(first, 2), "train_img_per_s": round(rate, 2),
            "forward_gflop_per_img": round(flops / 1e9, 3), "train_gflop_per_s": round(3 * flops * rate / 1e9, 1),
            "peak_rss_mb": _peak_mb()}


def engine_vs_plain(width: int, images: int, epochs: int = 2) -> dict:
    """The engine's training (two epochs, batch 2, the second's fit and validation timed) against
    plain ``fit`` on arrays, both at the ``cpu`` profile's precision on this machine."""
    import keras

    from spine.training import device, engine, make_config

    overrides = {"width": width, "batch_size": 2, "epochs": epochs, "max_train_images": images}
    config = make_config("Proposed", "Dice", "binary", "phantom", "cpu", overrides=overrides)  # 60 patients
    precision = device.resolve_precision(config.settings["precision"])
    with tempfile.TemporaryDirectory() as store:
        record = engine.train(config, store, verbose=False)
        last = record.history().iloc[-1]
        engine_s = float(last["fit_seconds"] + last["val_seconds"])
    train = engine.split_data(config)["train"]
    keras.utils.set_random_seed(0)
    model = engine.compile_model(config, precision=precision)
    # the same targets as the engine's (the mask and the 8 x 8 auxiliary one), all in memory
    images, targets = next(iter(engine.epoch_dataset(train, "binary", len(train), 0, 0, False, dual=True)))
    images, targets = images.numpy(), {k: v.numpy() for k, v in targets.items()}
    model.fit(images[:4], {k: v[:4] for k, v in targets.items()}, batch_size=2, epochs=1, verbose=0, shuffle=False)
    plain_s = _seconds(lambda: model.fit(images, targets, batch_size=2, epochs=1, verbose=0, shuffle=False))
    return {"model": "Proposed", "width": width, "batch": 2, "precision": precision, "images": len(train),
            "validation_images": len(engine.split_data(config)["val"]),
            "engine_epoch_s": round(engine_s, 2), "plain_fit_epoch_s": round(plain_s, 2),
            "engine_img_per_s": round(len(train) / engine_s, 2), "plain_fit_img_per_s": round(len(train) / plain_s, 2),
            "engine_vs_plain": round(plain_s / engine_s, 3), "peak_rss_mb": _peak_mb()}


# --------------------------------------------------------------------------- inference


def inference_rate(task: str, repeats: int) -> dict:
    """The shipped model's ms per slice (batch 1 and 16) and seconds per whole phantom volume."""
    from spine import inference
    from spine.data import phantom

    model = inference.load_model(task=task)
    size = int(model.input_shape[1])
    images = np.random.default_rng(0).random((32, size, size, 1), dtype=np.float32)
    row = {"task": task, "model": inference.default_model_path(task).name, "input": size, "params": model.count_params()}
    for batch in (1, 16):  # one call per batch, as a caller segmenting slice by slice (or 16 at a time) pays
        model.predict_on_batch(images[:batch])
        seconds = min(_seconds(lambda: [model.predict_on_batch(images[i:i + batch]) for i in range(0, len(images), batch)])
                      for _ in range(repeats))
        row[f"ms_per_slice_b{batch}"] = round(1000 * seconds / len(images), 1)
        row[f"slices_per_s_b{batch}"] = round(len(images) / seconds, 1)
    volume, _ = phantom.make_case(2025, permuted=True)
    inference.segment_volume(model, volume)
    row["volume_size"] = "x".join(str(s) for s in volume.GetSize())
    row["volume_s"] = round(min(_seconds(lambda: inference.segment_volume(model, volume)) for _ in range(repeats)), 2)
    row["peak_rss_mb"] = _peak_mb()
    return row


# --------------------------------------------------------------------------- the run


def _write(table: pd.DataFrame, name: str, machine: str) -> None:
    from spine.data.io import atomic_path

    with atomic_path(OUT / name) as tmp:
        table.assign(machine=machine).to_csv(tmp, index=False)
    print(f"\n{name}\n{table.to_string(index=False)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--widths", nargs="+", type=int, default=[64, 16])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (a check that it runs)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="measure only these (e.g. engine, after a change to it)")
    args = parser.parse_args()
    steps, repeats, images = (2, 1, 8) if args.quick else (4, 3, 32)

    from spine.training.store import environment

    env = environment(0.0)
    machine = f"{env['processor']} x{env['cpu_count']}, TF {env['tensorflow']}, Keras {env['keras']}"
    peak = _in_child(matmul_peak)  # always: the training rates are fractions of it
    if "machine" in args.only:
        _write(pd.DataFrame([peak]), "machine.csv", machine)
    from spine import inference

    shipped = [task for task in inference.DEFAULT_MODELS if inference.default_model_path(task, required=False)]
    if "inference" in args.only and shipped:
        _write(pd.DataFrame([_in_child(inference_rate, task, repeats) for task in shipped]), "inference.csv", machine)
    if "engine" in args.only:
        _write(pd.DataFrame([_in_child(engine_vs_plain, width, images) for width in sorted(args.widths)]),
               "engine.csv", machine)
    if "training" in args.only:
        from spine.training import device, resolve_profile

        mixed = device.resolve_precision(resolve_profile("cpu")["precision"])
        runs = [(name, width, "float32") for width in args.widths for name in args.models]
        if mixed != "float32":  # the cpu profile's own precision, at its width
            runs += [(name, min(args.widths), mixed) for name in args.models]
        rows = [_in_child(train_rate, name, width, BATCH_AT_WIDTH.get(width, 8), steps, precision)
                for name, width, precision in runs]
        training = pd.DataFrame(rows)
        # a mixed-precision step is measured against the bfloat16 peak, a float32 step against float32's
        yardstick = training["precision"].map(lambda p: peak["matmul_gflop_per_s" if p == "float32"
                                                               else "matmul_bf16_gflop_per_s"])
        training["fraction_of_matmul_peak"] = (training["train_gflop_per_s"] / yardstick).round(3)
        _write(training, "training.csv", machine)

if __name__ == "__main__":
    main()
