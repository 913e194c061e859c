"""The real T1/T2 chapter's tables (spine.training.bodies_study), from a store written here with known
body checks: what the records say is what the tables show."""

import json

import pandas as pd
import pytest

from spine.training import bodies_study
from spine.transfer import BODY_CHECK_FILE

from conftest import ROOT

SHIPPED_BEFORE = "2b6e94e75bb9"  # a committed record with a stored body check


def test_the_committed_check_of_the_model_shipped_before_reads_back_as_stored():
    stored = json.loads((ROOT / "results" / SHIPPED_BEFORE / BODY_CHECK_FILE).read_text())
    table = bodies_study.runs_table(ROOT / "results", "multiclass").set_index("run")
    row = table.loc[SHIPPED_BEFORE]
    assert row["body_dice_val"] == stored["val"]["dice"]["mean"]
    assert list(row["body_dice_test_ci95"]) == stored["test"]["dice"]["ci95"]
    assert row["trained"].endswith("T2-SPACE only, 24 epochs")
    assert row["image_steps"] == row["train_images"] * 24


def test_slices_are_grouped_by_distance_from_the_mid_line(monkeypatch):
    check = {"exams": [{"exam": "a", "subset": "val"}, {"exam": "b", "subset": "train"}],
             "slices": [{"exam": "a", "offset_mm": -3.0, "dice": 0.8, "false_pixels": 2},
                        {"exam": "a", "offset_mm": 4.9, "dice": 0.6, "false_pixels": 4},
                        {"exam": "a", "offset_mm": -22.0, "dice": 0.0, "false_pixels": 9},
                        {"exam": "b", "offset_mm": 0.0, "dice": 0.0, "false_pixels": 100}]}  # a training exam: left out

    record = type("Record", (), {"path": type("Path", (), {"name": "run"})()})
    monkeypatch.setattr(bodies_study, "checked_records", lambda store, task=None: [(record, check)])
    table = bodies_study.by_position("store", ["run"]).set_index("band")
    first = table.iloc[0]
    assert (first["dice"], first["false_pixels"], first["slices"]) == (pytest.approx(0.7), 3, 2)
    assert table.loc[table.index[table.index.map(lambda b: b.left == 20)][0], "false_pixels"] == 9
    assert len(table) == 2


def test_the_finding_names_both_runs_and_says_when_nothing_compares():
    table = bodies_study.runs_table(ROOT / "results", "multiclass")
    partial = table[table["trained"].str.contains("bodies")]
    sentence = bodies_study.finding(table, SHIPPED_BEFORE, "multiclass")
    if partial.empty:
        assert sentence.startswith("*No multiclass partial-label run")
    else:
        best = partial.loc[partial["body_dice_val"].idxmax()]
        assert SHIPPED_BEFORE in sentence and best["run"] in sentence and f"{best['body_dice_val']:.3f}" in sentence
        other = table[table["run"] != best["run"]].iloc[-1]  # a run shipped now that is not the best one
        named = bodies_study.finding(table, SHIPPED_BEFORE, "multiclass", shipped=other["run"])
        assert named.startswith(sentence) and f"ships **{other['run']}**: body Dice {other['body_dice_val']:.3f}" in named
        assert bodies_study.finding(table, SHIPPED_BEFORE, "multiclass", shipped=best["run"]) == sentence
    assert bodies_study.finding(table.iloc[0:0], SHIPPED_BEFORE, "binary").startswith("*No binary")


def test_a_binary_finding_compares_only_checks_of_the_same_reference():
    from spine import transfer

    def row(run, trained, scored_on, val):
        return {"run": run, "trained": trained, "scored on": scored_on, "body_dice_val": val, "body_dice_test": val - 0.1,
                "t2space_val_dice": 0.9, "t2space_test_dice": 0.9, "image_steps": 1000, "wall_min": 5}

    table = pd.DataFrame([row("old", "T2-SPACE only", "bodies", 0.4),
                          row("tuned", "T2-SPACE + bodies", "bodies", 0.9),  # an older check: higher, not comparable
                          row("new", "T2-SPACE + bodies", transfer.BINARY_REFERENCE, 0.7)])
    sentence = bodies_study.finding(table, "old", "binary")
    assert "does not compare" in sentence and "is new: body Dice **0.700**" in sentence and "tuned" not in sentence
    same = table.assign(**{"scored on": transfer.BINARY_REFERENCE})
    assert bodies_study.finding(same, "old", "binary").startswith("On the validation exams, the body Dice went from **0.400** (old")



def test_a_store_without_body_checks_reads_the_committed_ones(tmp_path):
    assert bodies_study.checks_store(tmp_path, ROOT / "results") == ROOT / "results"
    assert bodies_study.checks_store(ROOT / "results", tmp_path) == ROOT / "results"
    assert bodies_study.best_validation(tmp_path, SHIPPED_BEFORE) is None
    assert bodies_study.best_validation(ROOT / "results", SHIPPED_BEFORE) >= 0.903  # the shipped run's own


def test_the_level_order_table_reads_each_runs_stored_check_and_leaves_out_runs_without(tmp_path):
    order = {"pairs": 10, "slices": 3, "found": {"mean": 0.8, "ci95": [0.6, 0.9], "pairs": 10, "series": 2},
             "right": {"mean": 0.75, "ci95": [0.5, 0.875], "pairs": 8, "series": 2}}
    for run, check in (("a", {"t1t2_level_order": order}), ("b", {"phantom": {}})):
        (tmp_path / run).mkdir()
        (tmp_path / run / "transfer.json").write_text(json.dumps(check))
    table = bodies_study.level_order_table(tmp_path, {"before": "a", "now": "b", "gone": "c"})
    assert table.to_dict("records") == [{"model": "before", "run": "a", "slices": "as stored (feet up)", "level rules": 1,
                                         "pairs": 10, "found": 0.8, "right of found": 0.75,
                                         "right, 95 % CI": "0.500–0.875", "series": 2}]
    (tmp_path / "a" / "transfer.json").write_text(json.dumps({"t1t2_level_order": order | {"rules_version": 2},
                                                              "t1t2_vertebrae": {"version": 2}}))
    again = bodies_study.level_order_table(tmp_path, {"now": "a"})
    assert again[["slices", "level rules"]].values.tolist() == [["head up", 2]]


def test_the_readme_says_which_level_rules_numbered_a_stored_check():
    from spine import readme
    from spine.levels import RULES_VERSION

    order = {"found": {"mean": 0.8}, "right": {"mean": 0.75, "ci95": [0.5, 0.875]}}
    assert readme._level_order({"t1t2_level_order": order | {"rules_version": RULES_VERSION}}).endswith("/ 0.80")
    assert readme._level_order({"t1t2_level_order": order}).endswith("/ 0.80 (level rules 1)")
    assert readme._level_order({}) == "–"


def test_the_readme_row_says_the_level_order_of_the_validation_exams_in_words():
    nan = float("nan")
    assert bodies_study._levels({"levels_right_val": 0.8333, "levels_found_val": 1.0}) == "0.83 / 1.00"
    assert bodies_study._levels({"levels_right_val": nan, "levels_found_val": 0.0}) == "no pair found / 0.00"
    assert bodies_study._levels({"levels_right_val": nan, "levels_found_val": nan}) == "–"  # binary, or checked before


def test_a_cross_validated_recipe_states_its_level_order_with_the_interval_over_patients():
    row = {"levels_right_val": 0.8, "levels_right_val_ci95": [0.74, 0.94]}
    assert bodies_study._level_order_words(row).startswith(" (`--levels` numbers 0.80 [0.74, 0.94] of the")
    assert bodies_study._level_order_words({"levels_right_val": float("nan")}) == ""  # a binary recipe


def test_the_readme_transfer_table_names_the_partial_label_rules_a_run_trained_under():
    from types import SimpleNamespace

    from spine import readme
    from spine.data.bodies import RULES_OF_DATA_ID

    older = next(data_id for data_id, version in RULES_OF_DATA_ID.items() if version == 2)
    assert readme._rules_note(SimpleNamespace(partial="bodies/", partial_id=older)) == ", bodies rules 2"
    assert readme._rules_note(SimpleNamespace(partial=None, partial_id=None)) == ""


def test_a_run_that_kept_its_last_epoch_says_so():
    from types import SimpleNamespace

    from spine.data.bodies import PARTIAL_LABELS_VERSION, RULES_OF_DATA_ID

    current = next(data_id for data_id, version in RULES_OF_DATA_ID.items() if version == PARTIAL_LABELS_VERSION)
    config = SimpleNamespace(model="Attention U-Net", augment=False, partial="bodies/", partial_id=current,
                             init="36bb7e96bb59", profile="cpu",
                             settings={"partial_stride": 4, "epochs": 4, "learning_rate": 1e-4, "size": 128})
    best = bodies_study.describe(SimpleNamespace(config=config))
    assert best == (f"Attention U-Net, none, T2-SPACE + bodies every 4 mm (rules {PARTIAL_LABELS_VERSION}), 4 epochs, "
                    "fine-tuning 36bb7e96bb59 at 0.0001")
    config.settings["partial_select"] = "last"
    assert bodies_study.describe(SimpleNamespace(config=config)) == best.replace("4 epochs", "4 epochs, the last kept")
    config.settings["size"] = 256  # not the profile's input size: said
    assert bodies_study.describe(SimpleNamespace(config=config)).startswith("Attention U-Net at 256 x 256, none, ")
