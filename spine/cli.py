"""The ``spine`` command: one sub-command per task, each a thin layer over a library function.

Conventions, the same for every sub-command: ``--out`` is where outputs go, ``--store`` the
results store, ``--json`` prints the result as one JSON document, ``--quiet`` / ``--verbose``
set how much the library logs (on stderr). Exit status: 0 success, 1 a runtime error (a bad
file, bad data, a failed download: :class:`spine.errors.SpineError` or an OS error, printed as
one line on stderr), 2 a usage error (one line: every value is checked where it is parsed, against
the registries it names), 130 interrupted (Ctrl-C). Anything else is a bug: one line that says so,
with the file holding its traceback (the traceback itself with ``--verbose``), and status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from spine import __version__
from spine.errors import ConfigError, DataError, SpineError

# Not built from docstrings: under ``python -OO`` they are None.
DESCRIPTION = "Lumbar spine segmentation in sagittal MRI: data, models, training, evaluation, inference."
DATA_HELP = "'phantom', 'spider' (after `spine fetch spider`), a SPIDER archive or a slice folder"
STORE_HELP = "the results store (default: results/)"
TASKS = ("binary", "multiclass")
log = logging.getLogger("spine")


def _emit(args, result, text: str | None = None) -> None:
    """The command's result on stdout: one JSON document with ``--json``, else ``text`` (or
    ``key: value`` lines)."""
    if args.json:
        print(json.dumps(result, default=float))
    else:
        print(text if text is not None else _as_lines(result))


def _as_lines(result: dict) -> str:
    return "\n".join(f"{key}: {_plain(value)}" for key, value in result.items())


def _plain(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, default=float) if isinstance(value, (dict, list, tuple)) else str(value)


def _cmd_data(args) -> int:
    from spine.data import load_dataset

    dataset = load_dataset(args.data, sequence=args.sequence, size=args.size)
    _emit(args, {
        "source": dataset.source,
        "slices": len(dataset),
        "patients": len(set(dataset.patients)),
        "size": dataset.size,
        "class_fractions": {name: round(float((dataset.structures == i).mean()), 4)
                            for i, name in enumerate(("background", "vertebra", "disc", "canal"))},
        "skipped": dataset.skipped,
    })
    return 0


def _cmd_fetch(args) -> int:
    from spine.data import fetch

    folder = fetch.fetch_spider(args.dest, progress=not args.quiet)
    _emit(args, {"dataset": args.dataset, "folder": str(folder)}, text=str(folder))
    return 0


def _cmd_models(args) -> int:
    from spine.models import report

    if args.table and not args.json:
        _emit(args, None, text=report.parameter_table().to_string(index=False))
    else:
        _emit(args, report.parameter_counts())
    return 0


def _cmd_metrics(args) -> int:
    from spine.evaluation import compare_files

    result = compare_files(args.pred, args.true, spacing=args.spacing, classes=args.task)
    if "per_image" in result:  # folders: their means, and how many images they hold
        _emit(args, result, text=_as_lines({**{k: v for k, v in result.items() if k != "per_image"},
                                            "images": len(result["per_image"])}))
    else:
        _emit(args, result)
    return 0


def _cmd_train(args) -> int:
    from spine.losses import canonical_loss_name
    from spine.training.engine import make_config, train
    from spine.training.studies import fold_numbers

    overrides = _overrides(args)
    with _usage(args, "--loss"):
        canonical_loss_name(args.loss, args.task)
    with _usage(args, "--fold"):
        fold_numbers(args.profile, _profile_overrides(overrides), (args.fold,))
    config = make_config(args.model, args.loss, args.task, args.data, args.profile, args.seed, args.augment,
                         overrides, fold=args.fold, partial=args.partial, init=args.init)
    record = train(config, args.store, force=args.force, resume=not args.restart, verbose=not args.quiet)
    _emit(args, {"run": str(record.path), **_headline(record.metrics["test"])})
    return 0


def _headline(summary: dict) -> dict:
    keys = ("dice", "fg_iou", "miou", "accuracy", "precision", "recall", "hd", "hd95", "assd")
    return {"test_images": summary["n_images"], **{k: summary["per_image"].get(k) for k in keys}}


def _cmd_evaluate(args) -> int:
    from spine.training.engine import evaluate_run

    _, summary = evaluate_run(args.run, args.data)
    _emit(args, {"scored": summary["scored"], **_headline(summary)})
    return 0


def _cmd_predict(args) -> int:
    from spine import inference
    from spine.data.labels import num_classes

    model = inference.load_model(args.model, args.task or "binary")
    if args.model and args.task and inference.output_classes(model) != num_classes(args.task):
        args.error(f"argument --task: {args.model} segments {inference.output_classes(model)} classes, "
                   f"not {num_classes(args.task)} ({args.task})")
    levels_with = inference.levels_model(model) if args.levels else None
    written, failed = [], []
    for path in args.inputs:
        try:
            written.append(str(inference.predict_file(path, args.out, model, overwrite=args.overwrite,
                                                      series=args.series, levels_with=levels_with)))
        except DataError as error:
            if not args.keep_going:
                raise
            failed.append(str(error))
    _emit(args, {"written": written, "failed": failed}, text="\n".join(written))
    if failed:
        print(f"spine predict: error: {len(failed)} of {len(args.inputs)} inputs failed:", *failed,
              sep="\n  ", file=sys.stderr)
    return 1 if failed else 0


def _cmd_export(args) -> int:
    from spine.training import export

    choice = export.best_record(args.store, args.data, args.profile, args.task)
    path = export.export_model(choice, args.out, overwrite=args.overwrite, t1t2_folder=args.check)
    _emit(args, {"model": str(path), **export.card(choice)["test"]})
    return 0


def _cmd_transfer(args) -> int:
    from spine import transfer
    from spine.training import export, load_record

    written = []
    for run in args.runs:
        record = load_record(run)
        export.check_transfer(record, args.check)
        written.append(str(record.path / export.CHECK_FILE))
        if args.bodies:
            export.check_bodies(record, args.bodies)
            written.append(str(record.path / transfer.BODY_CHECK_FILE))
    _emit(args, {"written": written}, text="\n".join(written))
    return 0


def _cmd_study(args) -> int:
    import pandas as pd

    from spine.training.studies import fold_numbers, run_plan, run_study

    overrides = _overrides(args)
    with _usage(args, "--folds"):
        fold_numbers(args.profile, overrides, args.folds)
    settings = dict(jobs=args.jobs, shard=args.shard, overrides=overrides, verbose=not args.quiet, folds=args.folds)
    if args.name == "plan":
        runs = run_plan(args.data, args.profile, args.store, **settings)
        counts = runs.groupby("grid", sort=False)["recorded"].agg(runs="size", recorded="sum").reset_index()
        _emit(args, json.loads(runs.to_json(orient="records")), text=counts.to_string(index=False))
        return 0
    table = run_study(args.name, args.data, args.profile, args.store, **settings)
    shown = table.drop(columns=[c for c in table.columns if c.endswith("_ci")])
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
        _emit(args, json.loads(table.to_json(orient="records")), text=shown.to_string(index=False))
    return 0


def _cmd_book(args) -> int:
    from spine.book import build

    index = build(args.root, data=args.data, profile=args.profile, store=args.store,
                  max_new_runs=None if args.max_new_runs < 0 else args.max_new_runs, real_data=args.real_data,
                  only=args.only, html=not args.no_html)
    _emit(args, {"book": str(index)}, text=str(index))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, status 2 (argparse's own print the whole usage first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@contextlib.contextmanager
def _usage(args, flag: str):
    """A ConfigError raised here is a bad value of ``flag`` that only the library can judge (a fold
    of the profile, a loss of the task): a usage error, as if argparse had found it."""
    try:
        yield
    except ConfigError as error:
        args.error(f"argument {flag}: {error}")


def _one_of(registry):
    """An argparse type: a value of ``registry()``, read only when the flag is given."""

    def check(value: str) -> str:
        valid = tuple(registry())
        if value not in valid:
            raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(map(repr, valid))})")
        return value

    return check


def _model_names():
    _import_tensorflow()
    from spine.models import MODEL_NAMES

    return MODEL_NAMES


def _profile_names():
    _import_tensorflow()
    from spine.training.config import profiles

    return profiles()


def _study_names():
    _import_tensorflow()
    from spine.training.studies import STUDIES

    return (*STUDIES, "plan")


def _sequences():
    from spine.data.spider import SEQUENCES

    return SEQUENCES


def _number(kind: type, minimum: float, maximum: float = math.inf, strict: bool = False):
    """An argparse type: a finite ``kind`` from ``minimum`` (excluded if ``strict``) to ``maximum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not (-math.inf < value < math.inf and minimum <= value <= maximum and not (strict and value == minimum)):
            bound = f"> {minimum}" if strict else f">= {minimum}" if maximum == math.inf else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'} {bound}")
        return value

    return parse


def _shard(text: str) -> tuple[int, int]:
    """``I/N`` -> ``(I, N)``, 1 <= I <= N."""
    match = re.fullmatch(r"(\d+)/(\d+)", text, re.ASCII)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 1 <= I <= N, e.g. 1/4")
    return int(match[1]), int(match[2])


def _folds(text: str) -> tuple[int, ...] | None:
    """``all`` -> None, ``0,2`` -> ``(0, 2)`` (whether the profile has them is checked later)."""
    if text == "all":
        return None
    if not re.fullmatch(r"\d+(,\d+)*", text, re.ASCII):
        raise argparse.ArgumentTypeError(f"{text!r} is not 'all' or a comma list of fold numbers, e.g. 0 or 0,1")
    return tuple(dict.fromkeys(int(k) for k in text.split(",")))


def _common() -> argparse.ArgumentParser:
    """The options every sub-command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as one JSON document")
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    loudness.add_argument("-v", "--verbose", action="store_true", help="also debugging messages")
    return common


def _settings_args(parser, profile_default="cpu") -> None:
    _data_arg(parser)
    _profile_arg(parser, profile_default)
    parser.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                        help="override a profile field, e.g. --set epochs=3 (repeatable)")
    _store_arg(parser)


def _data_arg(parser) -> None:
    parser.add_argument("--data", default="phantom", help=DATA_HELP)


def _store_arg(parser, text: str = STORE_HELP) -> None:
    parser.add_argument("--store", default="results", help=text)


def _profile_arg(parser, default) -> None:
    parser.add_argument("--profile", default=default, type=_one_of(_profile_names),
                        help=f"paper, cpu, book or smoke (spine/profiles.toml; default: {default})")


def _overrides(args) -> dict:
    """``--set`` as a dict, every field checked against the profile's (a usage error otherwise)."""
    from spine.training.config import parse_overrides, resolve_profile

    with _usage(args, "--set"):
        overrides = parse_overrides(args.overrides)
        resolve_profile(args.profile, overrides, partial=getattr(args, "partial", None) is not None)
    return overrides


def _profile_overrides(overrides: dict) -> dict:
    """The overrides of profile fields, without those of a partially labelled source (``--partial``)."""
    from spine.training.config import PARTIAL_FIELDS

    return {key: value for key, value in overrides.items() if key not in PARTIAL_FIELDS}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spine", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"spine {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    def command(name, func, summary, description=None, tensorflow=True):
        """A sub-command; ``tensorflow``: it needs TensorFlow (imported before it runs, quietly)."""
        sub = commands.add_parser(name, help=summary, description=description or summary, parents=[common])
        sub.set_defaults(func=func, error=sub.error, tensorflow=tensorflow)
        return sub

    data = command("data", _cmd_data, "prepare a data source and summarise it", tensorflow=False)
    _data_arg(data)
    data.add_argument("--sequence", default="t1", type=_one_of(_sequences),
                      help="the SPIDER sequence: t1 (default, the study's), t2 or t2_SPACE")
    data.add_argument("--size", type=_number(int, 16, 1024), default=128,
                      help="side in pixels of the square slices prepared (default: 128, the study's)")

    fetch = command("fetch", _cmd_fetch, "download a dataset, verify its checksums and unpack it",
                    tensorflow=False)
    fetch.add_argument("dataset", choices=("spider",), help="SPIDER from its Zenodo record (10159290)")
    fetch.add_argument("--dest", help="unpack here instead of the cache (then give this folder as --data)")

    models = command("models", _cmd_models, "parameter counts of the study's models")
    models.add_argument("--table", action="store_true", help="a table beside the study's counts")

    metrics = command("metrics", _cmd_metrics, "compare predicted and reference masks", tensorflow=False)
    metrics.add_argument("--pred", required=True, help="a mask file (PNG, .mha, .nii.gz) or a folder")
    metrics.add_argument("--true", required=True, help="the reference: a file or a folder of the same names")
    metrics.add_argument("--spacing", type=_number(float, 0, strict=True), nargs=2, metavar=("SY", "SX"),
                         help="pixel spacing in mm (volumes carry their own)")
    metrics.add_argument("--task", choices=TASKS, default="binary",
                         help="binary (foreground; default) or multiclass (vertebra, disc, canal)")
    metrics.add_argument("--classes", dest="task", choices=TASKS, help=argparse.SUPPRESS,  # the former spelling
                         type=lambda value: {"4": "multiclass"}.get(value, value))

    train = command("train", _cmd_train, "train one run (or return its record if it exists)")
    train.add_argument("--model", required=True, type=_one_of(_model_names),
                       help="a model name, e.g. 'Proposed', 'U-Net + SAM' (`spine models` lists them)")
    train.add_argument("--loss", required=True, help="BCE, Dice, Focal, BCE-Dice (binary); CCE, Dice, Focal, CCE-Dice")
    train.add_argument("--task", choices=TASKS, default="binary")
    _settings_args(train)
    train.add_argument("--seed", type=_number(int, 0, 2**32 - 1), default=0)
    train.add_argument("--fold", type=_number(int, 0), default=0,
                       help="the cross-validation fold tested (profiles with folds)")
    train.add_argument("--augment", nargs="?", const="study", default="none",
                       choices=("none", "study", "robust", "robust-half", "robust-lateral"),
                       help="--augment alone: the study's augmentation; --augment robust: contrast, resolution "
                            "and field-of-view randomisation of every image, phantom T1/T2 slices mixed in, for "
                            "other sequences; robust-half: the same on half the images; robust-lateral: robust-half with "
                            "phantom slices from every sagittal position, lateral ones too (spine/training/robust.py)")
    train.add_argument("--partial", metavar="FOLDER",
                       help="also train on the vertebral-body volumes of FOLDER (vertebral-bodies-t1t2: every "
                            "--set partial_stride=K-th sagittal slice, default 2, of its training patients, "
                            "unlabelled pixels ignored unless known background; --set partial_fold=K holds out fold K "
                            "of its exams, default the run's --fold; --set partial_select=last keeps the last epoch, "
                            "not the one best on the T2-SPACE validation patients); its validation and test exams "
                            "get the body check, stored as bodies.json in the record (spine/data/bodies.py)")
    train.add_argument("--init", metavar="RUN_ID",
                       help="start from the selected weights of this finished run of the store (the same model, "
                            "task and width; its record's model file, or the shipped file made from it): a fine-tuning; "
                            "refused where that run trained on patients this run validates or tests on (a run of "
                            "another seed drew other validation patients)")
    restart = train.add_mutually_exclusive_group()
    restart.add_argument("--force", action="store_true", help="train again even if the record exists")
    restart.add_argument("--restart", action="store_true",
                         help="discard an unfinished run instead of resuming it (resuming is the default)")

    evaluate = command("evaluate", _cmd_evaluate, "score a finished run's model on patients it never saw")
    evaluate.add_argument("run", help="the run's folder in the results store")
    evaluate.add_argument("--data", help="another data source: all its patients are scored, except any the "
                                         "run trained or validated on (default: the run's test patients)")

    predict = command("predict", _cmd_predict, "segment 2D images or 3D volumes in their own geometry",
                      description="Segment 2D sagittal images (read with the head at the top), "
                                  "3D volumes or DICOM series in their own geometry. Each 2D image (or sagittal "
                                  "slice) is taken whole, whatever its size, field of view and aspect: min-max "
                                  "scaled and resized to the model's square input, as in training; the class "
                                  "probabilities are resized back bilinearly and each pixel takes its most "
                                  "probable class, which keeps edges finer than the model's grid (chosen on "
                                  "validation: benchmarks/resize_back.py; it costs a resize per class). The "
                                  "shipped models were trained on T2-SPACE slices and the vertebral bodies of "
                                  "real T1/T2 volumes: their cards, spine/weights/<task>.json, say how each was "
                                  "trained and chosen and how it transfers. "
                                  f"{_shipped_inputs()} One model per task, no fold ensemble and no flip "
                                  "averaging (benchmarks/resize_back.py): a slice costs "
                                  "one forward pass (each ensemble member or flip would add one).")
    predict.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="PNG slices, .mha / .nii.gz volumes or folders of one DICOM series")
    predict.add_argument("--out", required=True, help="output folder (masks keep the input names)")
    predict.add_argument("--model", help="a .keras model (default: the model shipped with the package)")
    predict.add_argument("--task", choices=TASKS,
                         help="the shipped model to use: binary (default) or multiclass; with --model, what "
                              "the model must segment (checked)")
    predict.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    predict.add_argument("--keep-going", action="store_true",
                         help="segment every good input, then list the failures (exit status 1)")
    predict.add_argument("--series", metavar="UID", help="the DICOM series to read from a folder holding several")
    predict.add_argument("--levels", action="store_true",
                         help="also write <name>_levels.<format> (SPIDER instance numbers) and <name>_levels.csv "
                              "(one row per level); made with the 4-class model (--model if it has 4 classes, "
                              "else the shipped one)")

    exported = command("export", _cmd_export, "write the recorded run the export rule chooses on validation as "
                                              "a model file with its card (how the shipped models are made)",
                       "write the recorded run the export rule chooses as a model file with its card (how the "
                       "shipped models are made): the best fold-0, seed-0 validation Dice, unless runs trained for "
                       "other sequences come within VALIDATION_TOLERANCE of it; then the best of those on the body "
                       "check of the validation exams (averaged over every fold of the exams where a recipe was "
                       "cross-validated with --set partial_fold=K, its fold-0 run shipped), else on the held-out "
                       "phantom T1/T2 cases (spine/training/export.py)")
    exported.add_argument("task", choices=TASKS)
    exported.add_argument("--data", required=True, help="the data source of the candidate runs")
    _profile_arg(exported, "cpu")
    _store_arg(exported)
    exported.add_argument("--out", required=True,
                          help="output folder (the shipped models: spine/weights of a source checkout)")
    exported.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    exported.add_argument("--check", metavar="FOLDER",
                          help="also score the real T1/T2 vertebra slices of FOLDER (spider-t1t2-vertebrae) on the "
                               "card (reported, never chosen on); the held-out phantom cases are always scored")

    checked = command("transfer", _cmd_transfer, "store the transfer check of recorded runs' models beside "
                                                 "their records (transfer.json: held-out phantom T1/T2 cases)")
    checked.add_argument("runs", nargs="+", metavar="RUN", help="run folders in the results store, with their model")
    checked.add_argument("--check", metavar="FOLDER",
                         help="also score the real T1/T2 vertebra slices of FOLDER (spider-t1t2-vertebrae): "
                              "reported, never chosen on")
    checked.add_argument("--bodies", metavar="FOLDER",
                         help="also run the body check on the vertebral-body volumes of FOLDER "
                              "(vertebral-bodies-t1t2), stored as bodies.json with each exam's subset in the "
                              "run's fold of the exams (the export rule chooses on its validation exams)")

    study = command("study", _cmd_study, "run one of the study's grids and print its table")
    study.add_argument("name", type=_one_of(_study_names),
                       help="loss, ablation, attention, augmentation, comparison, comparison-seeds, stability, "
                            "multiclass; or plan: every grid in the real-data study's order (studies.PLAN)")
    _settings_args(study)
    study.add_argument("--jobs", type=_number(int, 1), default=1, help="runs in parallel processes")
    study.add_argument("--shard", type=_shard, help="I/N: run only every N-th run starting at the I-th")
    study.add_argument("--folds", type=_folds, default="all",
                       help="'all' (default) or a comma list of folds, e.g. 0 or 0,1 (in the plan: of each grid's)")

    book = command("book", _cmd_book, "execute every chapter (papermill) and render the HTML book",
                   tensorflow=False)
    book.add_argument("--root", default=".", help="the repository (where _config.yml and _toc.yml are)")
    book.add_argument("--data", default="recorded",
                      help="'recorded' (default: the store's real-data records, nothing trained), 'phantom' "
                           "(the study re-executed on the phantom), or a data folder (its records, filled)")
    book.add_argument("--profile", type=_one_of(_profile_names),
                      help="the chapters' profile (default: book on the phantom, else cpu)")
    _store_arg(book, "the results store the chapters read and fill (default: the committed records)")
    book.add_argument("--max-new-runs", type=_number(int, -1), default=1,
                      help="train at most this many missing runs per chapter (default 1, so a build "
                           "from committed records stays within minutes; -1: all; never with --data recorded)")
    book.add_argument("--real-data", help="a slice folder or SPIDER archive for the real-data sections")
    book.add_argument("--only", nargs="+", help="execute only chapters whose name contains one of these")
    book.add_argument("--no-html", action="store_true", help="execute the notebooks, skip the HTML build")
    return parser


def _import_tensorflow() -> None:
    """Import TensorFlow with the process's stderr closed while TF_CPP_MIN_LOG_LEVEL is 3 (the
    default here): its native libraries log a start-up line (oneDNN) before that setting applies,
    and TF_ENABLE_ONEDNN_OPTS=0, the other way to silence it, would change the numerics."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _bug(command: str, argv, verbose: bool) -> int:
    """An exception that no check anticipated: one line saying it is a bug, with the file that
    holds its traceback (under ``--verbose``, the traceback itself); status 1."""
    error = sys.exc_info()[1]
    text = traceback.format_exc()
    what = f"{type(error).__name__}: {error}".splitlines()[0]
    if verbose:
        print(text, end="", file=sys.stderr)
        where = "the traceback above"
    else:
        where = _save_traceback(f"spine {__version__}: spine {' '.join(argv)}\n\n{text}")
    print(f"{command}: internal error, a bug in spine ({what}); please report it with {where}", file=sys.stderr)
    return 1


def _save_traceback(text: str) -> Path:
    """``text`` in a new file of the cache's ``errors/`` (of the temporary folder if that cannot be written)."""
    from spine.data import cache_dir

    name = f"{time.strftime('%Y%m%d-%H%M%S')}-"
    try:
        (cache_dir() / "errors").mkdir(parents=True, exist_ok=True)
        handle, path = tempfile.mkstemp(prefix=name, suffix=".txt", dir=cache_dir() / "errors")
    except OSError:
        handle, path = tempfile.mkstemp(prefix=f"spine-error-{name}", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return Path(path)


def _configure_logging(args) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)


def _shipped_inputs() -> str:
    """The shipped models' input sizes, from their cards, in words."""
    from spine.inference import shipped_input_sizes

    sizes = [f"{'4-class' if task == 'multiclass' else task} {size} x {size}" for task, size in shipped_input_sizes().items()]
    return f"Shipped inputs: {', '.join(sizes)}." if sizes else ""


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users
    argv = sys.argv[1:] if argv is None else list(argv)
    command, verbose = "spine", False
    try:
        args = build_parser().parse_args(argv)  # usage errors exit here with status 2
        command, verbose = f"spine {args.command}", args.verbose
        _configure_logging(args)
        if args.tensorflow:
            _import_tensorflow()
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except (SpineError, OSError) as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 1
    except Exception:
        return _bug(command, argv, verbose)


if __name__ == "__main__":
    sys.exit(main())
