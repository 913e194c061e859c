"""Analyses of the study grids' records (spine.training.analysis), on records written by hand
(chosen figures, no training); and the grids' own helpers the chapters call on those records
(spine.training.studies: paired comparisons, one record of a grid)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spine import paper
from spine.errors import ConfigError
from spine.training import analysis, comparisons, make_config, predictions, provenance, shipped, studies
from spine.training.engine import split_data
from spine.training.config import RunConfig
from spine.training.folds import fold_overview, fold_patients, split_overview
from spine.training.store import inputs_path, load_record, records, run_dir, write_json

DATA = "phantom:12"


# --------------------------------------------------------------------------- fake records


def _write_record(store, config, val: dict, test: dict, per_image: pd.DataFrame | None = None,
                  history: dict | None = None):
    """A finished run's files, with chosen figures (no training): what the analyses read."""
    per_image = pd.DataFrame({"image": []}) if per_image is None else per_image
    folder = run_dir(store, config)
    folder.mkdir(parents=True)
    write_json(folder / "config.json", config.to_dict())
    write_json(folder / "metrics.json", {"selected_epoch": 1, "val": {"per_image": val},
                                         "test": {"per_image": test}, "test_ci95": {},
                                         "subsets": {"test": {"images": len(per_image)}}})
    write_json(folder / "environment.json", {"wall_seconds": 1.0})
    per_image.to_csv(folder / "per_image.csv", index=False)
    if history is not None:
        pd.DataFrame(history).to_csv(folder / "history.csv", index=False)
    return folder


def fake_store(tmp_path, cells):
    """A results store holding finished records (config, metrics, history) and the study table over it."""
    rows = []
    for i, (model, loss, trained, val, test, history) in enumerate(cells):
        config = RunConfig(model=model, loss=loss, task="binary", data="phantom", data_id="toy", profile="smoke",
                           settings={"width": 4}, seed=0)
        if trained:
            _write_record(tmp_path, config, {"dice": val}, {"dice": test}, history=history)
        rows.append({"model": model, "loss": loss, "trained": trained, "run_id": config.run_id,
                     "f1": test if trained else np.nan, "study_f1": 0.9 + 0.01 * i})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def loss_records(tmp_path_factory):
    """The loss grid at the smoke profile with three recorded cells (U-Net with BCE and Dice,
    ResUNet with Dice), their figures chosen, no training."""
    store = tmp_path_factory.mktemp("loss-store")
    chosen = {("U-Net", "BCE"): (0.70, 0.80), ("U-Net", "Dice"): (0.75, 0.78), ("ResUNet", "Dice"): (0.60, 0.65)}
    for (model, loss), (val, test) in chosen.items():
        config = make_config(model, loss, "binary", DATA, "smoke")
        per_image = pd.DataFrame({"image": ["a", "b"], "dice": [test, test]})
        _write_record(store, config, {"dice": val}, {"dice": test, "hd": 4.0, "hd_mm": 6.0, "hd95": 3.0,
                                                     "hd95_mm": 4.5, "assd": 1.0, "assd_mm": None}, per_image)
    return store, studies.study_table("loss", DATA, "smoke", store)


def test_a_relative_data_path_is_found_beside_the_store(tmp_path, monkeypatch):
    """A record made with ``--data slices --out results`` from a folder still finds its data
    when read from elsewhere (a chapter runs in notebooks/), and keeps its run id."""
    (tmp_path / "slices").mkdir()
    config = RunConfig(model="U-Net", loss="Dice", task="binary", data="slices", data_id="toy", profile="smoke",
                       settings={"width": 4}, seed=0)
    folder = _write_record(tmp_path / "results", config, {"dice": 0.5}, {"dice": 0.5})
    monkeypatch.chdir(tmp_path / "results")
    record = load_record(folder)
    assert record.config.data == str(tmp_path / "slices") and record.config.run_id == config.run_id
    monkeypatch.chdir(tmp_path)
    assert load_record(folder).config.data == "slices"  # found from here as it is

# --------------------------------------------------------------------------- beside the study, selection


def test_beside_study_difference_and_interval_text():
    table = pd.DataFrame({"model": ["A", "B"], "loss": ["Dice", "BCE"], "f1": [0.90, np.nan],
                          "study_f1": [0.94, 0.93], "dice_ci": [(0.88, 0.92), np.nan]})
    out = analysis.beside_study(table, metrics=(("f1", "study_f1", "dice_ci"), ("fg_iou", "study_mIoU", "iou_ci")))
    assert out.loc[0, "Δ f1"] == pytest.approx(-0.04)
    assert out.loc[0, "f1 95% CI"] == "0.880–0.920" and out.loc[1, "f1 95% CI"] == "–"
    assert np.isnan(out.loc[1, "Δ f1"]) and out["fg_iou"].isna().all()



def test_target_check_reads_the_right_rows_and_says_when_a_target_is_reached():
    binary = pd.DataFrame({"model": ["U-Net", "Proposed"], "loss": ["Dice", "Dice"], "trained": [True, True],
                           "f1": [0.95, 0.905], "fg_iou": [0.91, 0.85], "dice_ci": [(0.9, 1.0), (0.88, 0.93)],
                           "iou_ci": [(0.8, 0.9), (0.80, 0.89)]})
    multiclass = pd.DataFrame({"model": ["Proposed", "Proposed"], "loss": ["CCE", "CCE-Dice"], "trained": [True, False],
                               "f1": [0.90, np.nan]})
    out = analysis.target_check({"binary": binary, "multiclass": multiclass}, loss={"multiclass": "CCE-Dice"})
    assert out["ours"].iloc[0] == 0.905 and out["reached"].tolist() == ["yes", "no", "–"]
    assert out["95% CI"].tolist() == ["0.880–0.930", "0.800–0.890", "–"]
    assert analysis.target_check({"binary": binary})["reached"].iloc[2] == "–"  # no multiclass table at all
    with pytest.raises(ConfigError, match="name the loss"):  # two trained rows of the proposed model
        analysis.target_check({"multiclass": multiclass.assign(trained=True)})

def test_loss_grid_keeps_the_grid_order_and_marks_missing_cells(loss_records):
    _, table = loss_records
    grid = analysis.loss_grid(table, "f1").set_index("model")
    assert list(grid.index) == list(dict.fromkeys(table["model"]))
    assert list(grid.columns) == ["BCE", "Dice", "Focal", "BCE-Dice"]
    assert grid.isna().all().all()  # the fake records carry no f1
    dice = analysis.loss_grid(table.assign(f1=np.where(table["trained"], 0.5, np.nan)), "f1").set_index("model")
    assert dice.loc["U-Net", "BCE"] == 0.5 and np.isnan(dice.loc["TransUNet", "Dice"])
    without = table.drop(columns=[c for c in table if c == "f1"])
    assert analysis.loss_grid(without, "f1").shape == grid.reset_index().shape


def test_selection_table_picks_on_validation_and_on_test(tmp_path):
    history = {"epoch": [1, 2], "loss": [0.5, 0.3], "val_dice": [0.6, 0.7]}
    table = fake_store(tmp_path, [("U-Net", "BCE", True, 0.80, 0.70, history),
                                  ("U-Net", "Dice", True, 0.75, 0.72, history),
                                  ("Proposed", "BCE", False, 0, 0, history),
                                  ("Proposed", "Dice", True, 0.9, 0.8, history)])
    out = analysis.selection_table(table, tmp_path).set_index("model")
    assert out.loc["U-Net", "picked on validation"] == "BCE" and out.loc["U-Net", "best on test"] == "Dice"
    assert out.loc["U-Net", "same pick"] == "no" and out.loc["U-Net", "its test dice"] == pytest.approx(0.70)
    assert out.loc["U-Net", "study's pick (on test)"] == "Dice"  # study_f1 grows with the row
    assert out.loc["Proposed", "trained"] == 1 and out.loc["Proposed", "same pick"] == "–"


def test_histories_give_the_main_head_loss_of_every_model(tmp_path):
    single = {"epoch": [1, 2, 3], "loss": [0.5, 0.4, 0.3], "val_dice": [0.5, 0.6, 0.7]}
    dual = {**single, "mask_loss": [0.3, 0.2, 0.1], "aux_loss": [0.2, 0.2, 0.2]}
    table = fake_store(tmp_path, [("U-Net", "BCE", True, 0.8, 0.7, single), ("Proposed", "BCE", True, 0.9, 0.8, dual),
                                  ("U-Net", "Dice", False, 0, 0, single)])
    curves = analysis.histories(table, tmp_path)
    unet, proposed, untrained = table["run_id"]
    assert set(curves) == {unet, proposed}
    assert list(curves[proposed]["mask_loss"]) == [0.3, 0.2, 0.1]  # the main head's loss, not the total
    assert list(curves[unet]["mask_loss"]) == [0.5, 0.4, 0.3]  # a single output: its loss is the main head's
    assert analysis.histories(table.assign(trained=False), tmp_path) == {}


# --------------------------------------------------------------------------- stability


def test_position_among():
    p = analysis.position_among(5.0, [1.0, 2.0, 3.0, np.nan])
    assert p["runs"] == 3 and p["mean"] == 2.0 and p["sd"] == 1.0 and p["z"] == 3.0
    assert (p["runs_below"], p["runs_above"], p["min"], p["max"]) == (3, 0, 1.0, 3.0)
    # t prediction: (5 - 2) / (1 * sqrt(1 + 1/3)) = 2.598 with 2 degrees of freedom -> one-sided p 0.0608
    assert p["p_new"] == pytest.approx(0.0608, abs=5e-4)
    assert analysis.position_among(-1.0, [1.0, 2.0, 3.0])["p_new"] == pytest.approx(p["p_new"])  # same distance below
    assert analysis.position_among(2.0, [1.0, 2.0, 3.0])["p_new"] == pytest.approx(0.5)
    assert math.isnan(analysis.position_among(1.0, [1.0])["z"])  # one run: no SD
    assert math.isnan(analysis.position_among(1.0, [2.0, 2.0])["z"])  # SD 0
    assert analysis.position_among(1.0, [])["runs"] == 0


def test_headline_vs_stability_from_the_study_tables_and_ours():
    study = analysis.headline_vs_stability()
    assert len(study) == 1
    runs = paper.table("stability")["mIoU"]
    row = study.iloc[0]
    assert row["headline"] == paper.table("comparison").set_index("model").loc["Proposed", "mIoU"]
    assert row["runs mean"] == pytest.approx(runs.mean()) and row["runs SD"] == pytest.approx(runs.std(ddof=1))
    assert row["z"] > 5 and row["runs below"] == 10  # the headline lies above every stability run
    assert row["p (a new run this far out)"] < 1e-3

    stability = pd.DataFrame({"trained": [True, True, True, False], "seed": [1, 2, 3, 4],
                              "fg_iou": [0.5, 0.6, 0.7, np.nan]})
    comparison = pd.DataFrame({"model": ["U-Net", "Proposed"], "trained": [True, True], "seed": [0, 0],
                               "fg_iou": [0.1, 0.8]})
    ours = analysis.headline_vs_stability(stability, comparison).iloc[1]
    assert ours["headline"] == 0.8 and ours["runs"] == 3 and ours["z"] == pytest.approx(2.0)
    assert ours["headline run"] == "seed 0"
    untrained = analysis.headline_vs_stability(stability.assign(trained=False).drop(columns="fg_iou"),
                                               comparison.assign(trained=False)).iloc[1]
    assert math.isnan(untrained["headline"]) and untrained["runs"] == 0
    with pytest.raises(ConfigError):
        analysis.headline_vs_stability(metric="dice_vertebra")


def test_stability_summary_ours_beside_the_study():
    table = pd.DataFrame({"trained": [True, True, False], "f1": [0.8, 0.9, np.nan],
                          "dice_ci": [(0.7, 0.9), (0.8, 1.0), np.nan], "study_f1": [0.94, 0.95, 0.96]})
    row = analysis.stability_summary(table, metrics=("f1",)).iloc[0]
    assert row["seeds"] == 2 and row["mean"] == pytest.approx(0.85) and row["SD"] == pytest.approx(0.0707, abs=1e-4)
    assert row["one run's CI half-width"] == pytest.approx(0.1)
    assert row["study_mean"] == pytest.approx(0.95) and row["study_SD"] == pytest.approx(0.01)
    empty = analysis.stability_summary(pd.DataFrame({"trained": [False]}), metrics=("f1", "fg_iou"))
    assert empty["seeds"].tolist() == [0, 0] and empty["mean"].isna().all()


def test_seed_vs_model_spread():
    study = analysis.seed_vs_model_spread().iloc[0]
    table6 = paper.table("comparison")["mIoU"].sort_values(ascending=False).to_numpy()
    assert study["models"] == 5 and study["model range"] == pytest.approx(table6[0] - table6[-1])
    assert study["best - second, in seed SDs"] == pytest.approx((table6[0] - table6[1]) / study["seed SD"])
    stability = pd.DataFrame({"trained": [True, True, True], "fg_iou": [0.5, 0.6, 0.7]})
    comparison = pd.DataFrame({"trained": [True, True, False], "fg_iou": [0.9, 0.7, np.nan]})
    fair = analysis.seed_vs_model_spread().iloc[1]  # the proposed model at its stability mean
    runs = paper.table("stability")["mIoU"]
    others = paper.table("comparison").query("model != 'Proposed'")["mIoU"].sort_values(ascending=False).to_numpy()
    assert fair["best - second"] == pytest.approx(runs.mean() - others[0])
    assert fair["best - second, in seed SDs"] < study["best - second, in seed SDs"]
    ours = analysis.seed_vs_model_spread(stability, comparison).iloc[2]
    assert (ours["seeds"], ours["models"]) == (3, 2) and ours["best - second, in seed SDs"] == pytest.approx(2.0)
    nothing = analysis.seed_vs_model_spread(pd.DataFrame({"trained": [False]}), pd.DataFrame({"trained": [False]}))
    assert nothing.iloc[2]["models"] == 0 and math.isnan(nothing.iloc[2]["best - second"])


# --------------------------------------------------------------------------- distances, structures


def test_distance_units_give_pixels_millimetres_and_the_pixel_size(loss_records):
    store, table = loss_records
    units = analysis.distance_units(table, store)
    assert len(units) == 3 and set(units["model"]) == {"U-Net", "ResUNet"}
    assert (units["hd"] == 4.0).all() and (units["hd_mm"] == 6.0).all() and units["assd_mm"].isna().all()
    assert (units["mm per pixel (min)"] > 0).all()
    assert (units["mm per pixel (max)"] >= units["mm per pixel (min)"]).all()


def test_structure_scores_per_structure_with_intervals(tmp_path):
    config = make_config("U-Net", "CCE-Dice", "multiclass", DATA, "smoke")
    per_image = pd.DataFrame({"image": list("abc"), "dice_vertebra": [0.8, 0.9, 1.0], "iou_vertebra": [0.6, 0.7, 0.8],
                              "dice_disc": [0.5, np.nan, 0.7], "iou_disc": [0.3, np.nan, 0.5],
                              "dice_canal": [0.4, 0.4, 0.4], "iou_canal": [0.2, 0.2, 0.2]})
    _write_record(tmp_path, config, {}, {}, per_image)
    table = studies.study_table("multiclass", DATA, "smoke", tmp_path)
    scores = analysis.structure_scores(table, tmp_path)
    assert len(scores) == len(table) and scores["trained"].sum() == 1
    row = scores[(scores["model"] == "U-Net") & (scores["loss"] == "CCE-Dice")].iloc[0]
    assert row["dice_vertebra"] == pytest.approx(0.9) and row["iou_vertebra"] == pytest.approx(0.7)
    assert row["dice_disc"] == pytest.approx(0.6) and row["dice_canal_ci"] == (0.4, 0.4)
    low, high = row["dice_vertebra_ci"]
    assert low <= 0.9 <= high
    assert scores[~scores["trained"]]["dice_vertebra"].isna().all()


def test_structure_scores_average_patients_where_the_record_has_them(tmp_path):
    """A record with a per-patient table is scored over patients (the protocol's unit), not images."""
    config = make_config("U-Net", "CCE-Dice", "multiclass", DATA, "smoke")
    per_image = pd.DataFrame({"image": list("abc"), "dice_vertebra": [0.0, 0.0, 0.0], "iou_vertebra": [0.0] * 3})
    folder = _write_record(tmp_path, config, {}, {}, per_image)
    pd.DataFrame({"patient": ["1", "2"], "images": [2, 1], "dice_vertebra": [0.6, 0.9],
                  "iou_vertebra": [0.4, 0.8]}).to_csv(folder / "per_patient.csv", index=False)
    table = studies.study_table("multiclass", DATA, "smoke", tmp_path)
    row = analysis.structure_scores(table[table["trained"]], tmp_path).iloc[0]
    assert row["dice_vertebra"] == pytest.approx(0.75) and row["iou_vertebra"] == pytest.approx(0.6)


# --------------------------------------------------------------------------- the grids' helpers (studies)


def test_paired_comparisons_keyed_by_another_column(loss_records):
    store, table = loss_records
    pairs = comparisons.paired_comparisons(table[table["model"] == "U-Net"], store, reference="Dice", label="loss")
    assert pairs["comparison"].tolist() == ["Dice - BCE"] and pairs["images"].tolist() == [2]
    assert pairs["mean Δdice"].iloc[0] == pytest.approx(0.78 - 0.80)
    # two images, both 0.02 behind: sign-flip p = 2 / 2**2, a family of one, no verdict possible
    assert pairs["sign-flip p"].iloc[0] == pairs["Holm p"].iloc[0] == pytest.approx(0.5)
    assert pairs["smallest Holm p"].iloc[0] == pytest.approx(0.5) and pairs["verdict"].iloc[0] == "not distinguishable"
    assert comparisons.paired_comparisons(table[table["loss"] == "Dice"], store, reference="Proposed").empty  # not trained



def test_paired_comparisons_within_families(loss_records):
    """Each family's rows against the family's own row: U-Net's BCE row against the U-Net row;
    ResUNet has no second row, so no pair of its own."""
    store, table = loss_records
    table = table.assign(model=table["model"] + " " + table["loss"].where(table["loss"] != "Dice", "")).assign(
        model=lambda t: t["model"].str.strip())
    pairs = comparisons.paired_comparisons(table, store, families=("U-Net", "ResUNet"))
    assert pairs["comparison"].tolist() == ["U-Net - U-Net BCE"]
    assert pairs["mean Δdice"].iloc[0] == pytest.approx(0.78 - 0.80)
    assert comparisons.paired_comparisons(table, store, families=("TransUNet",)).empty
    with pytest.raises(ConfigError, match="one row per 'model'"):  # U-Net twice in the loss grid
        comparisons.paired_comparisons(loss_records[1], store)


def test_grid_section_shows_what_the_chapters_show(loss_records):
    import matplotlib

    from spine import page

    store, table = loss_records
    unet = table[table["model"] == "U-Net"].assign(dice_ci=None)
    shown = page.grid_section(unet.assign(model=unet["loss"]), store, reference="Dice")
    assert shown["pairs"]["comparison"].tolist() == ["Dice - BCE"]
    assert list(shown["table"]["loss"]) == list(unet["loss"])
    ax = shown["figure"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(unet["loss"])
    matplotlib.pyplot.close(shown["figure"])
    lonely = page.grid_section(unet.head(1), store)  # no reference row: a note, no pairs
    assert lonely["pairs"].empty
    untrained = page.grid_section(table[~table["trained"]].drop(columns="f1"), store)  # as study_table gives it
    assert untrained["figure"] is None and untrained["pairs"].empty


def test_table_or_note_never_shows_an_empty_table(loss_records):
    """A grid with no recorded run has an empty provenance: the page gets one sentence instead;
    with recorded runs it gets the table, rows included."""
    from IPython.display import Markdown

    from spine import page

    store, table = loss_records
    absent = page.table_or_note(provenance.provenance(table[~table["trained"]], store))
    assert isinstance(absent, Markdown) and absent.data == f"*{page.NOT_RECORDED}*"
    shown = page.table_or_note(provenance.provenance(table, store)).to_html()
    assert "<tbody>" in shown and ">profile<" in shown and ">smoke<" in shown


def test_coverage_and_plan_budget_count_shared_runs_once(loss_records):
    store, _ = loss_records
    table = provenance.coverage(DATA, "smoke", store).set_index("grid")
    assert table.loc["loss", "recorded"] == 3 and table.loc["loss", "runs"] == 20
    assert table.loc["comparison", "recorded"] == 2  # U-Net and ResUNet with Dice: the loss grid's runs
    assert table.loc["comparison", "missing"] == "Attention U-Net, TransUNet, Proposed"
    assert table.loc["stability", "missing"] == "10 runs"
    cost = provenance.plan_budget(DATA, "smoke", store).set_index("grid").loc["all"]  # at the recorded runs' mean time
    distinct = len({run for name in studies.STUDIES for run in studies.study_table(name, DATA, "smoke", store)["run_id"]})
    assert cost["recorded"] == 3 and cost["runs"] == distinct < sum(table["runs"])
    assert cost["hours"] == round(distinct * (1.0 / 60) / 60, 1)


def test_budget_note_says_whether_the_study_fits_and_in_what_order_it_ran():
    from spine import sentences

    plan = (("comparison", None), ("ablation", None), ("multiclass", (0,)), ("loss", (0,)), ("stability", (0,)))
    assert sentences.plan_order(plan) == ("comparison and ablation in every fold, "
                                          "then multiclass, loss and stability in fold 0")
    assert sentences.budget_note(5.5, 8, plan).startswith("5.5 machine hours: that fits within the 8 hours")
    over = sentences.budget_note(10.24, 8, plan)
    assert over.startswith("10.2 machine hours: that is more than the 8 hours")
    assert over.endswith("then multiclass, loss and stability in fold 0.")


def test_plan_budget_counts_each_run_once_in_plan_order(loss_records):
    store, _ = loss_records
    table = provenance.plan_budget(DATA, "smoke", store, minutes_per_run=3.0).set_index("grid")
    # the smoke profile has no folds: fold 0 only; a run two grids share counts in the first one
    assert table.loc["comparison", "runs"] == 5 and table.loc["comparison", "recorded"] == 2
    assert table.loc["ablation", "runs"] == 2  # U-Net and Proposed are the comparison's
    assert table.loc["loss", "runs"] == 15 and table.loc["loss", "recorded"] == 1  # U-Net BCE
    assert table.loc["comparison-seeds", "runs"] == 8  # seeds 1 and 2 of all 5 but the proposed network (stability's)
    assert table.loc["all", "runs"] == 5 + 2 + 20 + 1 + 15 + 7 + 10 + 8
    assert table.loc["all", "hours"] == round(table.loc["all", "runs"] * 3 / 60, 1)
    folded = studies.plan_runs(DATA, "smoke", plan=(("comparison", None),))
    assert len(folded) == 5 and set(folded["fold"]) == {0}


def test_provenance_side_by_side_has_a_column_per_table(loss_records):
    store, table = loss_records
    unet = table[table["model"] == "U-Net"]
    both = provenance.provenance_side_by_side({"all": table, "U-Net": unet, "none": table.assign(trained=False)}, store)
    assert list(both.columns) == ["setting", "all", "U-Net"]  # a table with no trained run adds nothing
    facts = both.set_index("setting")
    assert facts.loc["runs", "all"] == "3 of 20" and facts.loc["runs", "U-Net"] == "2 of 4"
    assert facts.loc["profile"].tolist() == ["smoke", "smoke"]
    assert list(facts.index[:2]) == ["data", "profile"]  # in provenance's order


def test_run_studies_shares_one_budget_and_trains_a_shared_run_once(loss_records, monkeypatch):
    store, _ = loss_records
    trained = []
    monkeypatch.setattr("spine.training.engine.train", lambda config, store, verbose: trained.append(config.run_id))
    tables = studies.run_studies(("comparison", "loss"), DATA, "smoke", store, max_new_runs=4, verbose=False)
    assert list(tables) == ["comparison", "loss"] and len(trained) == 4 == len(set(trained))
    trained.clear()
    studies.run_studies(("comparison", "loss"), DATA, "smoke", store, verbose=False)
    assert len(trained) == len(set(trained)) == 20 - 3  # the comparison's runs are the loss grid's Dice column

@pytest.mark.slow
def test_study_record_trains_only_the_cell_asked_for(tmp_path):
    assert studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", train_missing=False) is None
    record = studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", "Dice")
    assert record is not None and record.config.model == "Proposed" and record.config.loss == "Dice"
    assert [r.config.model for r in records(tmp_path)] == ["Proposed"]  # the rest of the grid untouched
    again = studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", train_missing=False)
    assert again.path == record.path
    table = studies.study_table("comparison", DATA, "smoke", tmp_path)
    images = np.zeros((2, 64, 64, 1), np.float32)
    predicted = predictions.model_predictions(table, tmp_path, images)
    assert list(predicted) == ["Proposed"] and predicted["Proposed"].shape == (2, 64, 64)
    assert list(predictions.model_predictions(studies.study_table("multiclass", DATA, "smoke", tmp_path), tmp_path,
                                     images)) == []
    sample, rows = predictions.sample_predictions(table, tmp_path, count=2)
    assert len(sample) == 2 and list(rows) == ["reference", "Proposed"]
    assert rows["reference"].shape == rows["Proposed"].shape == sample.images.shape[:3]
    with pytest.raises(ConfigError):
        studies.study_record("comparison", DATA, "smoke", tmp_path, "Proposed", "BCE")


# --------------------------------------------------------------------------- the split


def test_split_overview_counts_the_engines_split():
    config = make_config("U-Net", "Dice", "binary", "phantom:5", "smoke")
    table = split_overview(config).set_index("subset")
    assert list(table.index) == ["train", "val", "test", "all"]
    assert table.loc["all", "patients"] == 5 and table.loc["all", "share of patients (%)"] == pytest.approx(100.0)
    assert (table.loc[["train", "val", "test"], "patients"] >= 1).all()
    used = split_data(config)
    assert table.loc["test", "slices a run uses"] == len(used["test"])
    assert table.loc["all", "slices in the data"] == 5  # the phantom: one central slice per patient
    folds = fold_overview("phantom:5", "smoke")  # no folds at smoke: fold 0, the split above
    assert set(folds["fold"]) == {0} and folds.drop(columns="fold").equals(table.reset_index())


# --------------------------------------------------------------------------- the shipped models


def test_shipped_runs_pair_each_card_with_its_record(tmp_path):
    cards, behind = shipped.shipped_runs(tmp_path)
    assert set(cards) == {"binary", "multiclass"} and behind == {}  # an empty store holds no record of them
    _, behind = shipped.shipped_runs(Path(__file__).resolve().parents[1] / "results")  # the committed records
    assert {name: record.path.name for name, record in behind.items()} == {
        f"{task}.keras": card["run_id"] for task, card in cards.items()}


# --------------------------------------------------------------------------- the shipped model


def test_card_table_states_the_shipped_models_card():
    from spine.inference import model_card

    card = model_card("binary")
    facts = dict(shipped.card_table(card).itertuples(index=False))
    assert facts["run"] == card["run_id"] and facts["model"] == card["config"]["model"]
    assert facts["data"] == card["config"]["data_id"] and facts["selected on"] == card["selected_on"]
    assert float(facts["recorded test dice"]) == pytest.approx(card["test"]["dice"], abs=5e-5)


@pytest.mark.real
def test_shipped_model_rescored_on_its_own_test_patients_matches_its_card(t2space_slices):
    """The images chapter 7 explains are the shipped model's own test patients: scored again here,
    the model gives the test Dice its card recorded when it was trained."""
    from spine.inference import load_model, model_card
    from spine.training.engine import score

    card = model_card("binary")
    test, own = shipped.shipped_test_images(card, t2space_slices)
    assert own and len(test) == card["test"]["images"]
    _, scored = score(load_model(task="binary"), test, "binary")
    assert scored["per_image"]["dice"] == pytest.approx(card["test"]["dice"], abs=1e-6)


def test_the_shipped_models_split_applies_to_the_phantom_from_any_folder(tmp_path, monkeypatch):
    """Chapter 7 on the phantom: the split of the shipped run (trained also on partial labels, named
    by a path relative to the repository) is a choice of phantom images, not that run's data."""
    from spine.inference import model_card

    monkeypatch.chdir(tmp_path)
    test, own = shipped.shipped_test_images(model_card("binary"), "phantom")
    assert len(test) > 0 and not own


def test_code_summary_names_the_most_frequent_versions_and_counts_the_rest():
    codes = ["spine 0.1.0, aaaa"] * 3 + ["spine 0.1.0, bbbb"] * 2 + ["spine 0.1.0, cccc", "not recorded"]
    assert provenance.code_summary(codes) == "spine 0.1.0, aaaa (3 runs); spine 0.1.0, bbbb (2 runs); 2 other commits"
    assert provenance.code_summary(["spine 0.1.0, aaaa"]) == "spine 0.1.0, aaaa (1 run)"


@pytest.fixture
def patient_records(tmp_path):
    """Three models in two folds of four test patients each, with per-patient tables: the proposed
    network 0.02 behind U-Net on every patient but 0.3 behind on patient 8, level with ResUNet but for
    patient 8; the proposed network's fold-0 record names its validation patients (the recipe's)."""
    rows = []
    for model, shift in (("U-Net", 0.0), ("ResUNet", -0.02), ("Proposed", -0.02)):
        run_ids = []
        for fold, patients in ((0, ["1", "2", "3", "4"]), (1, ["5", "6", "7", "8"])):
            config = RunConfig(model=model, loss="Dice", task="binary", data="phantom", data_id="toy", profile="smoke",
                               settings={"width": 4}, seed=0, fold=fold)
            folder = _write_record(tmp_path, config, {"dice": 0.9}, {"dice": 0.9})
            dice = [0.9 + 0.01 * int(p) + shift - (0.28 if model == "Proposed" and p == "8" else 0) for p in patients]
            pd.DataFrame({"patient": patients, "images": 1, "dice": dice}).to_csv(folder / "per_patient.csv", index=False)
            pd.DataFrame({"patient": patients + ["5", "6"], "subset": ["test"] * 4 + ["val"] * 2}).to_csv(
                folder / "split.csv", index=False)
            run_ids.append(config.run_id)
        rows.append({"model": model, "loss": "Dice", "trained": True, "run_ids": run_ids})
    return tmp_path, pd.DataFrame(rows)


def test_paired_comparisons_are_one_holm_family_with_patients_left_out(patient_records):
    store, table = patient_records
    pairs = comparisons.paired_comparisons(table, store).set_index("comparison")
    unet, resunet = pairs.loc["Proposed - U-Net"], pairs.loc["Proposed - ResUNet"]
    assert unet["patients"] == 8 and unet["mean Δdice"] == pytest.approx(-0.02 - 0.28 / 8)
    assert unet["sign-flip p"] == pytest.approx(2 / 2 ** 8) and unet["Holm p"] == pytest.approx(2 * 2 / 2 ** 8)
    assert resunet["Holm p"] == pytest.approx(1.0)  # one difference (patient 8) of 0.28, the rest 0: p = 1
    assert unet["leave-one-out Δ"] == pytest.approx((-0.06, -0.02), abs=1e-4)  # with and without patient 8
    # every patient behind: Holm p < 0.05 with any one left out (7 of one sign: 2 * 2 / 2**7), a verdict
    assert unet["verdict"] == "behind" and unet["influential"] == ""
    assert resunet["verdict"] == "not distinguishable"
    # without patients 5-8 (a sensitivity analysis), U-Net's four differences of one sign: p = 2 / 2**4
    fewer = comparisons.paired_comparisons(table, store, exclude=["5", "6", "7", "8"]).set_index("comparison")
    assert fewer.loc["Proposed - U-Net", "patients"] == 4
    assert fewer.loc["Proposed - U-Net", "sign-flip p"] == pytest.approx(2 / 2 ** 4)
    assert fewer.loc["Proposed - U-Net", "smallest Holm p"] == pytest.approx(2 * 2 / 2 ** 4)  # no verdict possible
    assert fewer.loc["Proposed - U-Net", "verdict"] == "not distinguishable"


def test_recipe_patients_are_the_fold_0_validation_patients_with_their_test_fold(patient_records):
    store, table = patient_records
    seen = comparisons.recipe_patients(table, store)
    assert seen["patient"].tolist() == ["5", "6"] and seen["test fold"].tolist() == [1, 1]
    assert comparisons.recipe_patients(table[table["model"] != "Proposed"], store).empty


def test_recorded_patient_draws_one_patients_slices_from_the_store(tmp_path):
    """Each row's stored predictions of one patient, matched to the committed inputs by case."""
    rows = []
    for model, mark in (("U-Net", 1), ("Proposed", 0)):
        config = RunConfig(model=model, loss="Dice", task="binary", data="phantom", data_id="toy", profile="smoke",
                           settings={"width": 4, "folds": 2, "split_seed": 0, "eval_slices_per_patient": 1},
                           seed=0, fold=0)
        folder = _write_record(tmp_path, config, {"dice": 0.9}, {"dice": 0.9})
        labels = np.zeros((3, 8, 8), np.uint8)
        labels[:, 0, 0] = mark
        np.savez(folder / "predictions.npz", labels=labels, case_ids=np.array(["c3", "c1", "c2"]))
        rows.append({"model": model, "loss": "Dice", "trained": True, "run_ids": [config.run_id]})
    inputs = inputs_path(config, tmp_path)
    inputs.parent.mkdir(parents=True)
    structures = np.zeros((3, 8, 8), np.uint8)
    structures[1, 2:4, 2:4] = 1  # c2's reference
    np.savez(inputs, images=np.zeros((3, 8, 8), np.uint8), structures=structures, case_ids=np.array(["c1", "c2", "c3"]),
             patients=np.array(["1", "2", "2"]), slice_index=np.arange(3), spacing=np.full((3, 2), np.nan))
    images, case_ids, maps = predictions.recorded_patient(pd.DataFrame(rows), tmp_path, "2")
    assert case_ids == ["c3", "c2"] and images.shape == (2, 8, 8, 1)
    assert list(maps) == ["reference", "U-Net", "Proposed"]
    assert maps["reference"][:, 2, 2].tolist() == [0, 1] and maps["U-Net"][:, 0, 0].tolist() == [1, 1]
    assert predictions.recorded_patient(pd.DataFrame(rows), tmp_path, "9") is None


def test_fold_patients_reads_the_manifest_in_natural_order(tmp_path):
    (tmp_path / "folds").mkdir()
    pd.DataFrame({"patient": ["10", "9", "2", "11"], "fold": [0, 0, 1, 1]}).to_csv(
        tmp_path / "folds" / "data-k2-seed0.csv", index=False)
    table = fold_patients(tmp_path, "data")
    assert table.to_dict("list") == {"fold": [0, 1], "patients": [2, 2], "ids": ["9, 10", "2, 11"]}
    assert fold_patients(tmp_path, "other") is None
