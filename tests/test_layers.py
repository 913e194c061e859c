"""The package's layers point down only, and nothing depends on docstrings at run time.

Every import in ``spine/`` (module level or inside a function) is read with ``ast`` and must go
to a module of the same layer or a lower one:
errors, paper, stats < data < models < losses, metrics < inference, levels, level_thresholds, explain, evaluation,
transfer < training < plots, body_figures, sentences, page, book_data, readme, benchmark_tables, book, colab, cli.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spine"

LAYERS = (
    ("spine", "spine.errors", "spine.paper", "spine.paper_tables", "spine.stats"),
    ("spine.data",),
    ("spine.models",),
    ("spine.losses", "spine.metrics"),
    ("spine.inference", "spine.levels", "spine.level_thresholds", "spine.explain", "spine.evaluation", "spine.transfer"),
    ("spine.training",),
    ("spine.plots", "spine.body_figures", "spine.sentences", "spine.page", "spine.book_data", "spine.readme",
     "spine.benchmark_tables", "spine.book", "spine.colab", "spine.cli"),
)


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest prefix named in ``LAYERS``."""
    best = None
    for level, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (level, name)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def spine_imports(source: str) -> set[str]:
    """The ``spine`` modules a file's source imports anywhere (``from spine.data import io`` ->
    spine.data.io where that is a module, else spine.data)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "spine"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "spine":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").is_file() or \
                    (ROOT / Path(*candidate.split("."))).is_dir()
                found.add(candidate if is_module else node.module)
    return found


GRAPH = {module_name(path): spine_imports(path.read_text()) for path in PACKAGE.rglob("*.py")}


def upward_imports(module: str, imports: set[str]) -> list[str]:
    return sorted(target for target in imports if layer_of(target) > layer_of(module))


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_only(module):
    upward = upward_imports(module, GRAPH[module])
    assert not upward, f"{module} (layer {layer_of(module)}) imports a higher layer: {upward}"


def test_the_layer_check_sees_an_upward_import():
    """The data layer importing the engine, at module level or inside a function, is caught."""
    source = "import numpy\nfrom spine.errors import DataError\n\ndef f():\n    from spine.training import engine\n"
    assert upward_imports("spine.data.overview", spine_imports(source)) == ["spine.training.engine"]
    assert upward_imports("spine.metrics", spine_imports("import spine.cli")) == ["spine.cli"]
    assert upward_imports("spine.models.unet", spine_imports("from spine import losses")) == ["spine.losses"]  # one layer up
    assert upward_imports("spine.cli", spine_imports(source)) == []


def circular(graph: dict[str, set[str]]) -> list[str]:
    """The modules that an import chain of any length leads back to."""
    def reachable(starts) -> set[str]:
        seen, todo = set(), list(starts)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += graph.get(current, ())
        return seen

    return sorted(module for module, targets in graph.items() if module in reachable(targets - {module}))


def test_no_module_imports_itself_through_others():
    assert circular({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}) == ["a", "b", "c"]
    assert circular(GRAPH) == [], "import circles"


def closure(module: str) -> set[str]:
    """Every spine module reachable from ``module`` through imports (a package brings its __init__)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:k]) for k in range(1, len(parts))]  # importing a.b.c runs a and a.b
        todo += sorted(GRAPH.get(current, ()))
    return seen


def test_spine_predict_needs_no_training_code():
    reached = closure("spine.inference")
    assert not [m for m in reached if m.startswith("spine.training")]
    assert "spine.models" in reached and "spine.losses" in reached  # the model file's custom objects


def test_metrics_read_no_files():
    assert not [m for m in GRAPH["spine.metrics"] if m.startswith("spine.data.io")]
    source = (PACKAGE / "metrics.py").read_text()
    for library in ("SimpleITK", "nibabel", "PIL"):
        assert f"import {library}" not in source


@pytest.mark.slow
def test_importing_and_recording_need_no_docstrings():
    """Under ``python -OO`` docstrings are None: the modules still import and the conventions a
    record stores are still there."""
    code = ("import spine.cli, spine.evaluation, spine.explain, spine.inference, spine.metrics, spine.plots, "
            "spine.page, spine.sentences, spine.book_data, spine.training.analysis, spine.training.engine, "
            "spine.training.export\n"
            "assert spine.metrics.__doc__ is not None or sys.flags.optimize < 2\n"
            "print(spine.metrics.CONVENTIONS.strip().splitlines()[0])")
    done = subprocess.run([sys.executable, "-OO", "-c", "import sys\n" + code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("- **Confusion counts** per class")
