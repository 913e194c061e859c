"""Why some training epochs take about twice as long as their neighbours: step-level timings.

    python benchmarks/epoch_stalls.py [--epochs 12] [--data ../shared/data/spider-t2space-slices]

Trains the proposed network through the engine's own input pipeline (``epoch_dataset``) with
the ``cpu`` profile's model on fold 0's training patients, 7 slices each (the recorded recipe),
and times every step with a callback (which makes Keras wait for each step: the per-step times
are exact, the epoch a little slower than without it). For every epoch it writes the wall
seconds, the median and slowest step, and the steps slower than 3x the median, to
``benchmarks/results/epoch_stalls.csv`` with the process's CPU seconds (user + system) over the
epoch (a stall that burns no CPU is waiting, one that burns CPU is work or contention), and the
CPU seconds of the three busiest threads by name (``/proc/self/task``): which thread works when
an epoch is slow.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

OUT = Path(__file__).parent / "results"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_seconds() -> dict[str, float]:
    """CPU seconds per thread of this process, keyed ``name/tid`` (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended
            continue
        out[f"{name}/{task.name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def busiest(before: dict, after: dict, count: int = 3) -> str:
    used = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return "; ".join(f"{k} {v:.1f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1])[:count])


def main() -> None:
    import keras
    import tensorflow as tf

    from spine.data.io import atomic_path
    from spine.models import has_dual_output
    from spine.training import engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--data", default="../shared/data/spider-t2space-slices")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--autotune", action="store_true",
                        help="switch tf.data's autotuner back on (the engine before the fix): writes "
                             "epoch_stalls_before.csv")
    args = parser.parse_args()
    overrides = {"train_slices_per_patient": 7, "precision": args.precision}
    config = engine.make_config("Proposed", "Dice", "binary", str(Path(args.data).resolve()), "cpu", overrides=overrides)
    train = engine.split_data(config)["train"]
    settings = config.settings
    keras.utils.set_random_seed(0)
    model = engine.compile_model(config, int(np.ceil(len(train) / settings["batch_size"])), args.precision)
    steps: list[float] = []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            steps.append(time.perf_counter() - self.started)

    rows = []
    for epoch in range(args.epochs):
        data = engine.epoch_dataset(train, "binary", settings["batch_size"], 0, epoch, False, has_dual_output(model))
        if args.autotune:
            options = tf.data.Options()
            options.autotune.enabled = True
            data = data.with_options(options)
        steps.clear()
        threads, cpu, wall = thread_seconds(), cpu_seconds(), time.perf_counter()
        model.fit(data, epochs=1, verbose=0, callbacks=[StepTimes()])
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        threads = busiest(threads, thread_seconds())
        median = float(np.median(steps))
        rows.append({"epoch": epoch + 1, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "cpu_per_wall": round(cpu / wall, 2), "steps": len(steps), "median_step_s": round(median, 3),
                     "slowest_step_s": round(max(steps), 3), "steps_over_3x_median": int(sum(s > 3 * median for s in steps)),
                     "seconds_in_those_steps": round(sum(s for s in steps if s > 3 * median), 2),
                     "busiest_threads_cpu_s": threads})
        print(rows[-1], flush=True)
    with atomic_path(OUT / ("epoch_stalls_before.csv" if args.autotune else "epoch_stalls.csv")) as tmp:
        pd.DataFrame(rows).assign(precision=args.precision, cpu_count=os.cpu_count()).to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
