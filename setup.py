"""Ships the recorded runs with the package: a chapter run outside the checkout (on Colab, after
``pip install git+...``) reads the same records as the book (``spine.colab.records``).

The metadata is in ``pyproject.toml``; this only adds the record folders to a built package as
``spine/_records/<folder>``, without model files and unfinished runs (as ``.gitignore``). An
editable install reads them from the checkout instead.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RECORDS = ("results", "benchmarks/results")
LEFT_OUT = ("*.keras", "checkpoint*", "state.json", "split.csv.tmp", "best.npz")  # .gitignore's


class BuildWithRecords(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder in RECORDS:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file() and not any(path.match(pattern) for pattern in LEFT_OUT):
                    target = Path(self.build_lib, "spine", "_records", path)
                    self.mkpath(str(target.parent))
                    self.copy_file(str(path), str(target))


setup(cmdclass={"build_py": BuildWithRecords})
