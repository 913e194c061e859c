"""What a record says of the code that made it."""


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
