"""The ``spine`` command: one sub-command per task, each a thin layer over a library function.

Errors that ``spine`` raises on purpose (:class:`spine.errors.SpineError`) print as one line
on stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpineError as error:
        print(f"spine {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
