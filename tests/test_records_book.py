"""The book from the records alone: finding the store's real-data records without the data, the
stored predictions matched to the committed inputs, and the sentences and banner a page shows."""

import json

import numpy as np
import pandas as pd
import pytest

from spine import benchmark_tables, book_data, sentences
from spine.training import predictions
from spine.training.config import RECORD_VERSION, RunConfig, resolve_profile
from spine.training.store import Record, code_version, inputs_path, recorded_data_id_of, recorded_source


def _record(store, data_id, profile="cpu", version=RECORD_VERSION, model="U-Net", fold=0, finished=True):
    settings = resolve_profile(profile)
    config = RunConfig(model=model, loss="Dice", task="binary", data="somewhere", data_id=data_id, profile=profile,
                       settings=settings, fold=fold, record_version=version)
    folder = store / config.run_id
    folder.mkdir(parents=True)
    payload = config.to_dict()
    if version == 1:
        payload.pop("record_version")
    (folder / "config.json").write_text(json.dumps(payload))
    if finished:
        (folder / "metrics.json").write_text("{}")
    return config


def test_recorded_source_names_the_stores_current_real_records(tmp_path):
    store = tmp_path / "results"
    assert recorded_source(store) is None  # no store at all
    _record(store, "slices-a-1", model="U-Net")
    _record(store, "slices-a-1", model="Proposed")
    _record(store, "slices-b-2", model="U-Net")
    _record(store, "slices-b-2", model="ResUNet", version=1)  # the first format: not counted
    _record(store, "slices-b-2", model="Proposed", profile="book")  # another profile
    _record(store, "slices-b-2", model="TransUNet", finished=False)  # unfinished
    _record(store, "phantom-3", model="U-Net")
    _record(store, "phantom-3", model="Proposed")
    _record(store, "phantom-3", model="ResUNet")  # the phantom never counts
    assert recorded_source(store) == "recorded:slices-a-1"
    assert recorded_data_id_of("recorded:slices-a-1") == "slices-a-1"
    assert recorded_data_id_of("../shared/data/x") is None
    assert recorded_source(store, "book") == "recorded:slices-b-2"


def test_a_recorded_source_finds_the_same_runs_as_the_data():
    """The run id depends on the data's content id, not its path: naming the id finds the records."""
    from spine.errors import DataError
    from spine.training import engine

    loaded = engine.make_config("Proposed", "Dice", "binary", "phantom:4", "smoke", fold=0)
    named = engine.make_config("Proposed", "Dice", "binary", f"recorded:{loaded.data_id}", "smoke")
    given = engine.make_config("Proposed", "Dice", "binary", "elsewhere", "smoke", data_id=loaded.data_id)
    assert named.run_id == given.run_id == loaded.run_id
    with pytest.raises(DataError, match="content id only"):
        engine.split_data(named)


def test_recorded_predictions_match_the_committed_inputs_by_case(tmp_path):
    store = tmp_path / "results"
    config = _record(store, "slices-a-1")
    inputs = inputs_path(config, store)
    inputs.parent.mkdir(parents=True)
    structures = np.zeros((3, 8, 8), np.uint8)
    structures[:, 2:4, 2:4] = np.array([1, 2, 3])[:, None, None]  # case c<k>: structure k, foreground in binary
    np.savez(inputs, images=np.arange(3 * 64, dtype=np.uint8).reshape(3, 8, 8), structures=structures,
             case_ids=np.array(["c1", "c2", "c3"]), patients=np.array(["1", "2", "3"]),
             slice_index=np.arange(3), spacing=np.full((3, 2), np.nan))
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[0, 0, 0] = 1
    np.savez(store / config.run_id / "predictions.npz", labels=labels, case_ids=np.array(["c3", "c1", "c2"]))
    record = Record(store / config.run_id, config, {})
    maps = predictions.recorded_predictions(record, store)
    assert list(maps["case_ids"]) == ["c3", "c1", "c2"]
    assert maps["prediction"][0, 0, 0] == 1  # the stored order is kept
    assert np.allclose(maps["images"][0, ..., 0], np.arange(128, 192).reshape(8, 8) / 255)  # c3's image
    assert maps["reference"].max() == 1 and maps["reference"][:, 2, 2].tolist() == [1, 1, 1]
    (store / config.run_id / "predictions.npz").unlink()
    assert predictions.recorded_predictions(record, store) is None  # a record that keeps none


def _table(trained=(True, True)):
    return pd.DataFrame({"model": ["U-Net", "Proposed"], "loss": ["Dice", "Dice"], "trained": list(trained),
                         "dice": [0.80, 0.85], "dice_ci": [(0.75, 0.84), (0.81, 0.88)], "test_patients": [12, 12],
                         "test_images": [60, 60], "run_ids": [["a", "b"], ["c", "d"]], "folds": [5, 5]})


PAIRS = pd.DataFrame({"comparison": ["Proposed - U-Net"], "patients": [12], "mean Δdice": [0.05],
                      "95% CI": [(0.02, 0.08)], "sign-flip p": [0.002], "Holm p": [0.004], "Wilcoxon p": [0.003],
                      "leave-one-out Δ": [(0.04, 0.06)], "influential": [""], "without it (Δ, CI, Holm p)": [None],
                      "smallest Holm p": [0.0005], "verdict": ["ahead"]})


def test_pair_sentence_states_the_verdict_with_the_computed_numbers():
    text = sentences.pair_sentence(_table(), PAIRS, "Proposed", "U-Net")
    assert text.startswith("On 12 test patients (2 of 5 folds), the proposed network reaches a Dice of 0.850 "
                           "(95 % CI 0.810–0.880) against 0.800 (0.750–0.840) for U-Net.")
    assert ("+0.050 (95 % BCa CI +0.020 to +0.080 over 12 patients; sign-flip p = 0.002, 0.004 after Holm; "
            "Wilcoxon p = 0.003)") in text
    assert text.endswith("the proposed network is ahead of U-Net.") and "the grid's only comparison" in text
    tied = PAIRS.assign(**{"95% CI": [(-0.0004, 0.08)], "verdict": ["not distinguishable"]})
    text = sentences.pair_sentence(_table(), tied, "Proposed", "U-Net")
    assert "(95 % BCa CI +0.000 to +0.080" in text and text.endswith(": not distinguishable.")  # no "-0.000"
    assert sentences.pair_sentence(_table((False, False)), pd.DataFrame(), "Proposed", "U-Net").startswith(
        "Not recorded yet: the runs of the comparison grid on real data are in the plan")
    assert sentences.pair_sentence(_table((True, False)), pd.DataFrame(), "Proposed", "U-Net").startswith(
        "Not recorded yet: the proposed network (the comparison grid has 1 of 2 rows recorded)")


def test_a_verdict_names_the_patient_it_rests_on_and_the_floor_of_p():
    resting = PAIRS.assign(influential=["141"], verdict=["not distinguishable"],
                           **{"without it (Δ, CI, Holm p)": [(0.001, -0.004, 0.006, 0.6)]})
    text = sentences.verdict(resting.iloc[0], "Proposed", "U-Net")
    assert text.endswith(": not distinguishable; leaving out patient 141 alone changes the outcome: without it the "
                         "difference is +0.001 (-0.004 to +0.006; Holm p = 0.6)")
    small = PAIRS.assign(patients=[7], verdict=["not distinguishable"], **{"smallest Holm p": [0.047 * 3]})
    assert ("not distinguishable (with 7 patients no sign-flip or Wilcoxon p can fall below 0.016, 0.14 after Holm, so "
            "no verdict is possible at this size)") in sentences.verdict(small.iloc[0], "Proposed", "U-Net")
    floor = PAIRS.assign(patients=[7], **{"sign-flip p": [2 / 2 ** 7]})
    assert "sign-flip p = 0.016 (all on one side: the smallest p 7 patients allow)," in sentences.verdict(
        floor.iloc[0], "Proposed", "U-Net")
    assert ("With 7 patients, no sign-flip or Wilcoxon p can fall below 0.016, 0.14 after Holm: this grid cannot "
            "reach a verdict at this size.") in sentences.grid_finding(_table(), small)
    finding = sentences.grid_finding(_table(), resting)
    assert finding.endswith("none gives a verdict. Leaving out patient 141 alone changes the outcome of "
                            "Proposed - U-Net.")


def test_grid_finding_counts_the_verdicts():
    text = sentences.grid_finding(_table(), PAIRS)
    assert text == ("2 of the comparison grid's 2 rows are recorded. The highest mean Dice is the proposed "
                    "network's, 0.850; the lowest U-Net's, 0.800. Of 1 paired comparison (sign-flip tests of the mean "
                    "difference, Holm-adjusted over the 1; a verdict needs adjusted p < 0.05, a 95 % interval that "
                    "excludes 0, and no single patient who changes either), 1 gives a verdict: Proposed is ahead of "
                    "U-Net.")
    assert "None" not in sentences.grid_finding(_table((False, False)), pd.DataFrame())


def test_the_banner_says_which_data_a_page_shows(tmp_path):
    store = tmp_path / "results"
    _record(store, "slices-a-1")
    records = book_data.resolve("recorded", "book", store)
    assert (records.kind, records.data, records.profile, records.trains) == ("records", "recorded:slices-a-1", "cpu",
                                                                             False)
    banner = str(book_data.banner(records))
    assert banner.startswith("Data: real SPIDER slices, from the records.") and "slices-a-1" in banner
    assert "CC BY 4.0" in banner and "nothing is trained" in banner
    empty = book_data.resolve("recorded", "cpu", tmp_path / "none")
    assert not empty.recorded and "holds no real-data record" in str(book_data.banner(empty))
    phantom = book_data.resolve("phantom", "book", store)
    assert phantom.trains and str(book_data.banner(phantom)).startswith("Data: the synthetic phantom.")
    assert '<div class="admonition note' in book_data.banner(phantom)._repr_html_()


def test_the_book_speed_line_comes_from_the_table():
    speed = pd.DataFrame({"role": ["old", "new"], "commit": ["6c3cc35aaaa", "1234567bbbb"],
                          "command": ["spine book ", "spine book "], "wall_s": [1000.0, 250.0], "exit_status": [0, 0],
                          "cpu_model": ["AMD EPYC", "AMD EPYC"], "cpu_count": [2, 2]})
    line = benchmark_tables.book_speed_line(speed)
    assert "took 250 s at commit 1234567 against 1000 s at 6c3cc35: 0.25x the time" in line
    assert "not measured yet" in benchmark_tables.book_speed_line(None)


def test_the_environment_names_the_code_that_made_a_record():
    version = code_version()
    kept_when_dirty = {"git_diff", "git_diff_sha256"} if version["git_dirty"] else set()  # a checkout being edited
    assert set(version) == {"spine_version", "record_version", "git_commit", "git_dirty"} | kept_when_dirty
    assert version["record_version"] == RECORD_VERSION
