"""The README's main command (``spine book``) from fresh clones of two commits, side by side.

Each commit is cloned from this repository into a temporary folder (``git clone`` + ``git
checkout``: no ``../shared`` beside it, no results other than the committed ones, an empty
prepared-data cache), and its main command runs there with the Python of this environment and the
clone first on ``PYTHONPATH`` (nothing is installed). The commits run one after the other, in
the order given, on the same machine; the wall time of each is written to
``benchmarks/results/book_speed.csv`` with the machine (CPU model, count and vector flags, as
``spine.training.device`` reads them). The README's generated figures state the ratio from that
file (``spine.readme.readme_block``).

    python benchmarks/book_speed.py                      # 6c3cc35 (before issue 12) against HEAD
    python benchmarks/book_speed.py --old A --new B      # any two commits
    python benchmarks/book_speed.py --book-args=--help --out /tmp/speed.csv    # a trivial pair: checks the script

The default pair takes the better part of an hour on 2 cores (the old book trains); run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "book_speed.csv"
OLD = "6c3cc35"  # the last commit before the book read its records by default (issue 12)
MAIN_COMMAND = ("-m", "spine.cli", "book")  # `spine book`, as the README runs it, without an install


def machine() -> dict:
    sys.path.insert(0, str(ROOT))
    from spine.training import device

    return {"cpu_model": device.cpu_model(), "cpu_count": os.cpu_count(), "simd_flags": device.simd_flags()}


def clone(commit: str, folder: Path, repo: Path = ROOT) -> str:
    """A fresh clone of ``repo`` at ``commit`` (resolved in ``repo``, so that ``HEAD`` is its HEAD) in
    ``folder``; returns the full commit id."""
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", commit], check=True, capture_output=True,
                            text=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(repo), str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "checkout", "--quiet", commit], check=True)
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def time_book(folder: Path, book_args: list[str], timeout: float | None, log: Path) -> tuple[float, int]:
    """Run the main command in the clone ``folder``; (wall seconds, exit status)."""
    env = dict(os.environ, PYTHONPATH=str(folder), SPINE_CACHE=str(folder.parent / f"{folder.name}-cache"),
               TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("SPINE_SHARED_DATA", None)
    started = time.perf_counter()
    with open(log, "w") as handle:
        try:
            status = subprocess.run([sys.executable, *MAIN_COMMAND, *book_args], cwd=folder, env=env, stdout=handle,
                                    stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            status = 124
    return time.perf_counter() - started, status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=OLD, help=f"the commit to compare against (default {OLD})")
    parser.add_argument("--new", default="HEAD", help="the commit measured (default HEAD)")
    parser.add_argument("--repo", default=str(ROOT), help="the repository to clone (default: this one)")
    parser.add_argument("--book-args", default="", help="extra arguments of `spine book`, the same for both")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a build is stopped")
    parser.add_argument("--out", default=str(OUT), help=f"the CSV written (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    book_args = shlex.split(args.book_args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spine-book-speed-") as scratch:
        for role, commit in (("old", args.old), ("new", args.new)):
            folder = Path(scratch) / role
            full = clone(commit, folder, Path(args.repo))
            log = Path(scratch) / f"{role}.log"
            load_before = os.getloadavg()[0]
            seconds, status = time_book(folder, book_args, args.timeout, log)
            print(f"{role} {full[:8]}: {seconds:.0f} s, exit {status}", flush=True)
            if status != 0:
                print(log.read_text()[-3000:], file=sys.stderr)
            rows.append({"role": role, "commit": full, "command": "spine book " + " ".join(book_args),
                         "wall_s": round(seconds, 1), "exit_status": status,
                         # other work on the machine (e.g. a training job) slows both builds: say how much there was
                         "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2)})
    table = pd.DataFrame(rows)
    table["ratio_to_old"] = (table["wall_s"] / table.loc[table["role"] == "old", "wall_s"].iloc[0]).round(3)
    facts = machine() | {"measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    table = table.assign(**facts)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    return int((table["exit_status"] != 0).any())


if __name__ == "__main__":
    sys.exit(main())
