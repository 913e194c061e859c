"""What the input size alone costs the shipped models: the Dice of a perfect prediction made at
``size`` x ``size`` and brought back to the real masks, as a label map (nearest neighbour) and as
``spine predict`` brings it back (probabilities, bilinear).

    python benchmarks/input_size.py [--data ../shared/data/spider-t2space-slices] [--sizes 128 256]

Writes ``benchmarks/results/input_size.csv`` (size, way back, binary and 4-class mean Dice over the
slices' full-size masks; :func:`spine.transfer.input_size_ceiling`), which chapter 11 reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from spine.transfer import input_size_ceiling

OUT = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).parents[1].parent / "shared/data/spider-t2space-slices"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    args = parser.parse_args()
    ceiling = input_size_ceiling(args.data, args.sizes)
    table = pd.DataFrame([{"size": size, "resize_back": way, "data": Path(args.data).name, **dice}
                          for (size, way), dice in ceiling.items()])
    table.to_csv(OUT / "input_size.csv", index=False, float_format="%.4f")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
