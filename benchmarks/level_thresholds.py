"""The thresholds of ``spine.levels`` chosen on one half of the real SPIDER masks, by patient, and
their figures on the other half (``spine.level_thresholds``), written to
``benchmarks/results/level_thresholds.csv``: every candidate on the choosing half (the chosen one
marked), then the chosen one on the reporting half. The README's generated figures state both
halves from that file; ``tests/test_levels.py`` checks that the library uses the chosen rules and
that the reporting half's figures are still what the file says.

    python benchmarks/level_thresholds.py                         # the masks in ../shared/data
    python benchmarks/level_thresholds.py --masks DIR --out FILE

Deterministic (no random draws); 45 candidates on about 24 slices take a few CPU minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spine import level_thresholds  # noqa: E402

MASKS = ROOT.parent / "shared" / "data" / "spider-masks-3d"
OUT = ROOT / "benchmarks" / "results" / level_thresholds.TABLE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masks", type=Path, default=MASKS, help="the folder of SPIDER .mha masks")
    parser.add_argument("--out", type=Path, default=OUT, help="the CSV written")
    args = parser.parse_args(argv)
    table = level_thresholds.split_study(args.masks)
    table.to_csv(args.out, index=False)
    print(table[table["chosen"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
