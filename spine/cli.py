"""The ``spine`` command: one sub-command per task, each a thin layer over a library function.

Errors that ``spine`` raises on purpose (:class:`spine.errors.SpineError`) print as one line
on stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from spine.errors import SpineError


def _cmd_data(args) -> int:
    from spine.data import load_dataset

    dataset = load_dataset(args.data, sequence=args.sequence, size=args.size)
    summary = {
        "source": dataset.source,
        "slices": len(dataset),
        "patients": len(set(dataset.patients)),
        "size": dataset.size,
        "class_fractions": {name: round(float((dataset.structures == i).mean()), 4)
                            for i, name in enumerate(("background", "vertebra", "disc", "canal"))},
        "skipped": dataset.skipped,
    }
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_models(args) -> int:
    from spine.models import report

    if args.table:
        print(report.parameter_table().to_string(index=False))
    else:
        print(json.dumps(report.parameter_counts(), indent=2))
    return 0


def _cmd_metrics(args) -> int:
    from spine.metrics import compare_files

    result = compare_files(args.pred, args.true, spacing=args.spacing,
                           classes="binary" if args.classes == "binary" else "multiclass")
    print(json.dumps(result, indent=2 if not args.json else None, default=float))
    return 0


def _settings_args(parser, profile_default="cpu") -> None:
    parser.add_argument("--data", default="phantom", help="'phantom', a SPIDER archive or a slice folder")
    parser.add_argument("--profile", default=profile_default, help="paper, cpu, book or smoke (spine/profiles.toml)")
    parser.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                        help="override a profile field, e.g. --set epochs=3 (repeatable)")
    parser.add_argument("--out", default="results", help="the results store (default: results/)")


def _cmd_train(args) -> int:
    from spine.training import config as run_config
    from spine.training.engine import make_config, train

    config = make_config(args.model, args.loss, args.task, args.data, args.profile, args.seed, args.augment,
                         run_config.parse_overrides(args.overrides), fold=args.fold)
    record = train(config, args.out, force=args.force, resume=not args.restart, verbose=not args.quiet)
    print(json.dumps({"run": str(record.path), **_headline(record.metrics["test"])}, indent=2))
    return 0


def _headline(summary: dict) -> dict:
    keys = ("dice", "fg_iou", "miou", "accuracy", "precision", "recall", "hd", "hd95", "assd")
    return {"test_images": summary["n_images"], **{k: summary["per_image"].get(k) for k in keys}}


def _cmd_evaluate(args) -> int:
    from spine.training.engine import evaluate_run

    per_image, summary = evaluate_run(args.run, args.data)
    print(json.dumps(_headline(summary), indent=2, default=float))
    return 0


def _cmd_predict(args) -> int:
    from spine import inference

    model = inference.load_model(args.model, args.task)
    levels_with = inference.levels_model(model) if args.levels else None
    for path in args.inputs:
        print(inference.predict_file(path, args.out, model, overwrite=args.overwrite, series=args.series,
                                     levels_with=levels_with))
    return 0


def _cmd_export(args) -> int:
    from spine import inference
    from spine.training import export

    record, compared = export.best_record(args.store, args.data, args.profile, args.task)
    path = export.export_model(record, args.out or inference.WEIGHTS, compared=compared, overwrite=args.overwrite)
    print(json.dumps({"model": str(path), **export.card(record, compared)["test"]}, indent=2))
    return 0


def _cmd_study(args) -> int:
    import pandas as pd

    from spine.training import config as run_config
    from spine.training.studies import run_study

    if args.name == "plan":
        from spine.training.studies import run_plan

        run_plan(args.data, args.profile, args.out, verbose=not args.quiet)
        return 0
    shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else None
    folds = None if args.folds == "all" else tuple(int(k) for k in args.folds.split(","))
    table = run_study(args.name, args.data, args.profile, args.out, jobs=args.jobs, shard=shard,
                      overrides=run_config.parse_overrides(args.overrides), verbose=not args.quiet, folds=folds)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
        print(table.drop(columns=[c for c in table.columns if c.endswith("_ci")]).to_string(index=False))
    return 0


def _cmd_book(args) -> int:
    from spine.book import build

    index = build(args.root, data=args.data, profile=args.profile, store=args.store,
                  max_new_runs=None if args.max_new_runs < 0 else args.max_new_runs, real_data=args.real_data, only=args.only, html=not args.no_html)
    print(f"book: {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="prepare a data source and summarise it")
    data.add_argument("--data", default="phantom", help="'phantom', a SPIDER archive or a slice folder")
    data.add_argument("--sequence", default="t1", help="SPIDER sequence: t1, t2 or t2_SPACE")
    data.add_argument("--size", type=int, default=128)
    data.set_defaults(func=_cmd_data)

    models = commands.add_parser("models", help="parameter counts of the study's models")
    shown = models.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="one JSON object keyed by model name (default)")
    shown.add_argument("--table", action="store_true", help="a table beside the study's counts")
    models.set_defaults(func=_cmd_models)

    metrics = commands.add_parser("metrics", help="compare predicted and reference masks")
    metrics.add_argument("--pred", required=True, help="a mask file (PNG, .mha, .nii.gz) or a folder")
    metrics.add_argument("--true", required=True, help="the reference: a file or a folder of the same names")
    metrics.add_argument("--spacing", type=float, nargs=2, metavar=("SY", "SX"),
                         help="pixel spacing in mm (volumes carry their own)")
    metrics.add_argument("--classes", choices=("binary", "4"), default="binary")
    metrics.add_argument("--json", action="store_true", help="compact JSON on one line")
    metrics.set_defaults(func=_cmd_metrics)

    train = commands.add_parser("train", help="train one run (or return its record if it exists)")
    train.add_argument("--model", required=True, help="a model name, e.g. 'Proposed', 'U-Net + SAM'")
    train.add_argument("--loss", required=True, help="BCE, Dice, Focal, BCE-Dice (binary); CCE, Dice, Focal, CCE-Dice")
    train.add_argument("--task", choices=("binary", "multiclass"), default="binary")
    _settings_args(train)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--fold", type=int, default=0, help="the cross-validation fold tested (profiles with folds)")
    train.add_argument("--augment", action="store_true", help="the study's augmentation")
    train.add_argument("--force", action="store_true", help="train again even if the record exists")
    train.add_argument("--restart", action="store_true", help="discard an unfinished run instead of resuming")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run (the default)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a finished run's model")
    evaluate.add_argument("run", help="the run's folder in the results store")
    evaluate.add_argument("--data", help="another data source (all of its patients are scored)")
    evaluate.set_defaults(func=_cmd_evaluate)

    predict = commands.add_parser("predict", help="segment 2D images or 3D volumes in their own geometry",
                                  description="Segment 2D sagittal images (read with the head at the top), "
                                              "3D volumes or DICOM series in their own geometry.")
    predict.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="PNG slices, .mha / .nii.gz volumes or folders of one DICOM series")
    predict.add_argument("--out", required=True, help="output folder (masks keep the input names)")
    predict.add_argument("--model", help="a .keras model (default: the model shipped with the package)")
    predict.add_argument("--task", choices=("binary", "multiclass"), default="binary",
                         help="which shipped model to use when --model is not given")
    predict.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    predict.add_argument("--series", metavar="UID", help="the DICOM series to read from a folder holding several")
    predict.add_argument("--levels", action="store_true",
                         help="also write <name>_levels.<format> (SPIDER instance numbers) and <name>_levels.csv "
                              "(one row per level); made with the 4-class model (--model if it has 4 classes, "
                              "else the shipped one)")
    predict.set_defaults(func=_cmd_predict)

    exported = commands.add_parser("export", help="write the recorded run with the best validation Dice as a "
                                                  "model file with its card (how the shipped models are made)")
    exported.add_argument("task", choices=("binary", "multiclass"))
    exported.add_argument("--data", required=True, help="the data source of the candidate runs")
    exported.add_argument("--profile", default="cpu", help="the profile of the candidate runs (default: cpu)")
    exported.add_argument("--store", default="results", help="the results store (default: results/)")
    exported.add_argument("--out", help="output folder (default: the package's spine/weights)")
    exported.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    exported.set_defaults(func=_cmd_export)

    study = commands.add_parser("study", help="run one of the study's grids and print its table")
    study.add_argument("name", help="loss, ablation, attention, augmentation, comparison, stability, multiclass; "
                                    "or plan: every grid in the real-data study's order (studies.PLAN)")
    _settings_args(study)
    study.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    study.add_argument("--shard", help="I/N: run only every N-th cell starting at the I-th")
    study.add_argument("--folds", default="all", help="'all' (default) or a comma list of folds, e.g. 0 or 0,1")
    study.add_argument("--quiet", action="store_true")
    study.set_defaults(func=_cmd_study)

    book = commands.add_parser("book", help="execute every chapter (papermill) and render the HTML book")
    book.add_argument("--root", default=".", help="the repository (where _config.yml and _toc.yml are)")
    book.add_argument("--data", default="phantom", help="the chapters' data source (default: the phantom)")
    book.add_argument("--profile", default="book", help="the chapters' profile (default: book)")
    book.add_argument("--store", default="results",
                      help="the results store the chapters read and fill (default: the committed records)")
    book.add_argument("--max-new-runs", type=int, default=1,
                      help="train at most this many missing runs per chapter (default 1, so a build "
                           "from committed records stays within minutes; -1: all)")
    book.add_argument("--real-data", help="a slice folder or SPIDER archive for the real-data sections")
    book.add_argument("--only", nargs="+", help="execute only chapters whose name contains one of these")
    book.add_argument("--no-html", action="store_true", help="execute the notebooks, skip the HTML build")
    book.set_defaults(func=_cmd_book)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpineError as error:
        print(f"spine {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
