"""How ``spine predict`` brings a label map at the model's size back to the image's, chosen on
validation: each shipped model's selection Dice on its run's T2-SPACE validation patients at full
size (512 x 640, :func:`spine.transfer.full_size_scores`) and its body Dice on its run's validation
exams (:func:`spine.transfer.body_check`), once per way back (:data:`spine.inference.RESIZERS`).
Test patients and test exams are not touched. The real T1/T2 slices' vertebra Dice is reported
beside (a check, not chosen on), and the T2-SPACE figure once more with flip averaging (each slice's
probabilities averaged with its mirror image's).

    python benchmarks/resize_back.py       # ../shared/data beside the checkout, the shipped models

Writes ``benchmarks/results/resize_back.csv`` (task, run, way back, flip averaged, data, figure,
mean over patients, interval); the chapter on real T1/T2 and the README read it.
A few CPU minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from spine import inference, stats, transfer  # noqa: E402
from spine.training import engine, load_record  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "resize_back.csv"


def figures(task: str, data: Path, store: Path) -> list[dict]:
    """The shipped ``task`` model's validation figures, once per way back."""
    model = inference.load_model(task=task)
    record = load_record(store / inference.model_card(task)["run_id"])
    split = pd.read_csv(record.path / "split.csv", dtype={"patient": str})
    validation = split.loc[split["subset"] == "val", "patient"]
    exams = engine.partial_split(record.config, data / "vertebral-bodies-t1t2")
    rows = []
    for way in inference.RESIZERS:
        t2space = transfer.full_size_scores(model, data / "spider-t2space-slices", validation,
                                            record.config.settings["eval_slices_per_patient"], resize_back=way)
        rows.append(_row(task, record, way, "spider-t2space-slices", "selection dice",
                         stats.per_patient_means(t2space[["patient", "dice"]])["dice"]))
        bodies = transfer.body_check(model, data / "vertebral-bodies-t1t2", exams, ("val",), resize_back=way)
        rows.append(_row(task, record, way, "vertebral-bodies-t1t2", "body dice",
                         stats.per_patient_means(pd.DataFrame(bodies["exams"])[["patient", "dice"]])["dice"]))
        slices = transfer.t1t2_scores(model, data / "spider-t1t2-vertebrae", resize_back=way)
        summary = transfer.summarize(slices)
        rows.append({"task": task, "run_id": record.path.name, "resize_back": way, "data": "spider-t1t2-vertebrae",
                     "flip_averaged": False, "subset": "check only", "figure": "vertebra dice (series)", "patients": summary["series"],
                     "mean": summary["dice"]["mean"], "ci_low": summary["dice"]["ci95"][0],
                     "ci_high": summary["dice"]["ci95"][1]})
    flipped = transfer.full_size_scores(FlipAveraged(model), data / "spider-t2space-slices", validation,
                                        record.config.settings["eval_slices_per_patient"])
    rows.append(_row(task, record, inference.RESIZE_BACK, "spider-t2space-slices", "selection dice",
                     stats.per_patient_means(flipped[["patient", "dice"]])["dice"], flip=True))
    return rows


class FlipAveraged:
    """A model's probabilities averaged with those of the mirrored slice (anterior and posterior
    swapped), mirrored back: flip averaging at test time."""

    def __init__(self, model):
        self.model, self.input_shape, self.output_shape = model, model.input_shape, model.output_shape

    def predict(self, images, batch_size=16, verbose=0):
        mirrored = inference.predict_probabilities(self.model, images[:, :, ::-1], batch_size)[:, :, ::-1]
        return (inference.predict_probabilities(self.model, images, batch_size) + mirrored) / 2


def _row(task, record, way, data, figure, per_patient, flip: bool = False) -> dict:
    estimate, low, high = stats.bootstrap_ci(per_patient.to_numpy())
    return {"task": task, "run_id": record.path.name, "resize_back": way, "flip_averaged": flip, "data": data,
            "subset": "val",
            "figure": figure, "patients": len(per_patient), "mean": estimate, "ci_low": low, "ci_high": high}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the folder holding the shared data sets")
    parser.add_argument("--store", type=Path, default=ROOT / "results", help="the results store")
    parser.add_argument("--out", type=Path, default=OUT, help="the CSV written")
    args = parser.parse_args(argv)
    table = pd.DataFrame([row for task in inference.DEFAULT_MODELS for row in figures(task, args.data, args.store)])
    table.to_csv(args.out, index=False, float_format="%.4f")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
