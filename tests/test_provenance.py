"""What a record says of the code that made it, and what a shipped card says of its record."""


def test_a_record_made_from_a_dirty_tree_keeps_the_diff_and_its_hash(monkeypatch):
    import hashlib
    import subprocess

    from spine.training import store

    answers = {"rev-parse": "abc123", "status": " M spine/cli.py", "diff": "--- a/spine/cli.py\n+++ b/spine/cli.py\n"}

    def git(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, stdout=answers[command[1]] + "\n")

    monkeypatch.setattr(store.subprocess, "run", git)
    version = store.code_version()
    assert version["git_dirty"] is True and version["git_diff"] == answers["diff"].strip()
    assert version["git_diff_sha256"] == hashlib.sha256(answers["diff"].strip().encode()).hexdigest()
    answers["status"] = ""
    assert "git_diff" not in store.code_version()


def test_the_export_rule_rerun_on_the_records_chooses_each_shipped_model():
    """Each shipped card names the run the export rule chooses from the committed records today, and
    says how in the rule's own words (the records alone: no data, no model files)."""
    from spine.inference import model_card
    from spine.training import export

    from conftest import ROOT

    for task in ("binary", "multiclass"):
        card = model_card(task)
        data = f"recorded:{card['config']['data_id']}"
        choice = export.best_record(ROOT / "results", data, card["config"]["profile"], task, need_model=False)
        assert choice.record.path.name == card["run_id"]
        assert card["selected_on"] == export.selection(choice)


def test_chapter_5_says_whether_the_study_settings_were_run(tmp_path):
    import json
    import shutil

    from spine import sentences
    from spine.training import load_record

    from conftest import ROOT

    comparison = next(r for r in (load_record(p) for p in sorted((ROOT / "results").iterdir())
                                  if (p / "metrics.json").is_file())
                      if (r.config.model, r.config.loss, r.config.task) == ("U-Net", "Dice", "binary"))
    assert "were not run" in sentences.paper_profile_note(ROOT / "results", "comparison")
    copy = tmp_path / comparison.path.name
    shutil.copytree(comparison.path, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"profile": "paper"}))
    assert sentences.paper_profile_note(tmp_path, "comparison").startswith(f"1 run(s) of this grid are recorded")


def test_no_committed_record_was_made_from_a_dirty_tree():
    """A record made from a working tree that differed from its commit keeps the diff and its hash
    (the engine stores them), but the book and the cards use only records made from committed code
    (issue 23): such a record is trained again from its commit before it is committed."""
    import json

    from conftest import ROOT

    environments = {path.parent.name: json.loads(path.read_text(encoding="utf-8"))
                    for path in sorted((ROOT / "results").glob("*/environment.json"))}
    assert len(environments) > 100
    assert [run for run, e in environments.items() if e.get("git_dirty")] == []
