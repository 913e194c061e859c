"""Training and inference throughput on this machine, measured in one run and reported as ratios.

    python benchmarks/throughput.py [--widths 16 64] [--models U-Net Proposed] [--steps 6]

For each model and width: training images/s through the engine's input pipeline and through a
plain ``model.fit`` on in-memory NumPy arrays with batch 2 (the study's setup), inference ms
per 128 x 128 slice at batch 1 and batch 16, and the peak resident memory of the process.
Warm-up steps (graph tracing) are excluded from the rates and reported separately. Results go
to ``benchmarks/results/throughput.csv`` (written atomically) with the machine's description.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spine.data import load_dataset  # noqa: E402
from spine.data.io import atomic_path  # noqa: E402
from spine.training import engine, make_config  # noqa: E402
from spine.training.store import environment  # noqa: E402

OUT = Path(__file__).parent / "results" / "throughput.csv"


def _timed_fit(model, data, steps: int) -> float:
    """Seconds per step of ``steps`` training steps after one warm-up epoch of 2 steps."""
    model.fit(data.take(2), epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(data.take(steps), epochs=1, verbose=0)
    return (time.perf_counter() - started) / steps


def measure(model_name: str, width: int, steps: int, images: np.ndarray) -> dict:
    config = make_config(model_name, "Dice", "binary", "phantom:12", "cpu", overrides={"width": width})
    subset = load_dataset("phantom:12", size=128)
    row = {"model": model_name, "width": width}
    for batch in (2, 8):
        model = engine.compile_model(config)
        dual = "aux" in model.output
        data = engine.epoch_dataset(subset, "binary", batch, 0, 0, False, dual).repeat()
        started = time.perf_counter()
        model.fit(data.take(1), epochs=1, verbose=0)
        row[f"first_step_s_b{batch}"] = round(time.perf_counter() - started, 2)
        row[f"engine_img_per_s_b{batch}"] = round(batch / _timed_fit(model, data, steps), 2)
        keras.backend.clear_session()
    model = engine.compile_model(config)
    targets = subset.targets("binary")
    y = {k: np.repeat(v, 4, axis=0)[: len(images)] for k, v in targets.items() if k in model.output}
    model.fit(images[:4], {k: v[:4] for k, v in y.items()}, batch_size=2, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(images[: 2 * steps], {k: v[: 2 * steps] for k, v in y.items()}, batch_size=2, epochs=1, verbose=0)
    row["plain_fit_img_per_s_b2"] = round(2 * steps / (time.perf_counter() - started), 2)
    row["engine_vs_plain_b2"] = round(row["engine_img_per_s_b2"] / row["plain_fit_img_per_s_b2"], 3)
    for batch in (1, 16):
        model.predict(images[:batch], batch_size=batch, verbose=0)
        started = time.perf_counter()
        model.predict(images[:32], batch_size=batch, verbose=0)
        row[f"infer_ms_per_slice_b{batch}"] = round(1000 * (time.perf_counter() - started) / 32, 1)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    keras.backend.clear_session()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["U-Net", "ResUNet", "Attention U-Net", "TransUNet", "Proposed"])
    parser.add_argument("--widths", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    images = np.random.default_rng(0).random((64, 128, 128, 1), dtype=np.float32)
    rows = []
    for width in args.widths:
        for name in args.models:
            rows.append(measure(name, width, args.steps, images))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    machine = environment(0.0)
    table["machine"] = f"{machine['processor']} x{machine['cpu_count']}, TF {machine['tensorflow']}"
    with atomic_path(OUT) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
