"""Tracing against eager execution for short runs: where ``spine.training.engine.EAGER_STEPS`` comes from.

    python benchmarks/eager_training.py [--models U-Net Proposed TransUNet] [--epochs 1 4 16 32]

Each run is a ``smoke``-profile training on the phantom (8 training images, batch 4: 2 steps an
epoch) through ``spine.training.train``, in a fresh process, once with the training and
prediction steps traced into graphs (Keras' default) and once eagerly. It records the CPU
seconds of the process (every thread, so that it counts the work whatever else runs on the
machine) and the wall seconds, and the ratio graph / eager of each, measured in the same run on
the same machine. Written atomically to ``benchmarks/results/eager_training.csv`` with the CPU
model and flags.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from spine.data.io import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"
STEPS_PER_EPOCH = 2  # 8 training images (the smoke profile's cap), batch 4


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _train(model: str, epochs: int, eager: bool, queue) -> None:
    from spine.training import engine, make_config

    engine.EAGER_STEPS = 10**9 if eager else 0
    config = make_config(model, "Dice", "binary", "phantom:12", "smoke", overrides={"epochs": epochs})
    engine.split_data(config)  # the phantom made and cached before the clock starts
    cpu, wall = _cpu_seconds(), time.perf_counter()
    with tempfile.TemporaryDirectory() as store:
        engine.train(config, store, verbose=False)
    queue.put({"cpu_s": _cpu_seconds() - cpu, "wall_s": time.perf_counter() - wall})


def measure(model: str, epochs: int, eager: bool) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_train, args=(model, epochs, eager, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main(argv=None) -> None:
    from spine.training import device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["U-Net", "Proposed", "TransUNet"])
    parser.add_argument("--epochs", nargs="+", type=int, default=[1, 4, 16, 32])
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        for epochs in args.epochs:
            graph, eager = measure(model, epochs, False), measure(model, epochs, True)
            rows.append({"model": model, "epochs": epochs, "steps": epochs * STEPS_PER_EPOCH,
                         "graph_cpu_s": graph["cpu_s"], "eager_cpu_s": eager["cpu_s"],
                         "cpu_ratio_graph_to_eager": graph["cpu_s"] / eager["cpu_s"],
                         "graph_wall_s": graph["wall_s"], "eager_wall_s": eager["wall_s"],
                         "wall_ratio_graph_to_eager": graph["wall_s"] / eager["wall_s"]})
            print(f"{model}, {epochs} epoch(s): graph {graph['cpu_s']:.1f} CPU s, eager {eager['cpu_s']:.1f}", flush=True)
    print(pd.DataFrame(rows).round(2).to_string(index=False))
    table = pd.DataFrame(rows).round(3).assign(cpu_model=device.cpu_model(), cpu_count=multiprocessing.cpu_count(),
                                               simd_flags=device.simd_flags())
    with atomic_path(RESULTS / "eager_training.csv") as tmp:
        table.to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
