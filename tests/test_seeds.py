"""The comparison over patients and training seeds: the grid that trains the seeds (its plan), and
the verdicts with and without every seed in the store (records written by hand, no training)."""

import pandas as pd
import pytest

from spine import sentences
from spine.cli import build_parser
from spine.training import comparisons, make_config, studies
from spine.training.config import RunConfig
from tests.test_analysis import _write_record

PATIENTS = {0: ["1", "2", "3", "4"], 1: ["5", "6", "7", "8"]}
# each model's value on patient p under seed s in fold f: base(p) + shift + effect[f][s]
SHIFT = {"Proposed": 0.02, "U-Net": 0.0, "ResUNet": 0.0}
EFFECT = {"Proposed": [[0.001, -0.001, 0.0]] * 2, "U-Net": [[0.0, 0.002, -0.002]] * 2,
          "ResUNet": [[0.1, -0.1, 0.0], [-0.1, 0.0, 0.1]]}  # ResUNet's seeds swing by 0.1


def _record(store, model, seed, fold):
    config = RunConfig(model=model, loss="Dice", task="binary", data="phantom", data_id="toy", profile="smoke",
                       settings={"width": 4, "folds": 2}, seed=seed, fold=fold)
    folder = _write_record(store, config, {"dice": 0.9}, {"dice": 0.9})
    dice = [0.8 + 0.001 * int(p) ** 2 + SHIFT[model] + EFFECT[model][fold][seed] for p in PATIENTS[fold]]
    pd.DataFrame({"patient": PATIENTS[fold], "images": 1, "dice": dice}).to_csv(folder / "per_patient.csv", index=False)
    return config.run_id


@pytest.fixture
def seed_records(tmp_path):
    """Three models, seeds 0-2 in two folds of four patients: the proposed network 0.02 ahead of both
    others in every patient's seed mean; U-Net's seeds agree, ResUNet's swing by 0.1 from fold to fold.
    Returns the store, the seed-0 table (the comparison grid's) and the seeds grid's table."""
    runs = {(m, s): [_record(tmp_path, m, s, f) for f in PATIENTS] for m in SHIFT for s in range(3)}
    seeds = pd.DataFrame([{"model": m, "loss": "Dice", "seed": s, "trained": True, "run_ids": r, "folds": 2}
                          for (m, s), r in runs.items()])
    return tmp_path, seeds[seeds["seed"] == 0].drop(columns="seed"), seeds


def test_a_complete_seeds_grid_puts_the_seeds_into_the_verdicts(seed_records):
    store, table, seeds = seed_records
    assert comparisons.seeds_complete(seeds, ["Proposed", "U-Net", "ResUNet"])
    pairs = comparisons.paired_comparisons(table, store, seeds=seeds).set_index("comparison")
    unet, resunet = pairs.loc["Proposed - U-Net"], pairs.loc["Proposed - ResUNet"]
    assert unet["mean Δdice"] == pytest.approx(0.02) and resunet["mean Δdice"] == pytest.approx(0.02)
    assert (pairs["seeds"] == 3).all() and (pairs["patients"] == 8).all()
    assert (pairs["verdict over patients"] == "ahead").all()
    assert unet["verdict"] == "ahead" and unet["95% CI, patients and seeds"][0] > 0
    low, high = resunet["95% CI, patients and seeds"]
    assert low < 0 < high and resunet["verdict"] == "not distinguishable"
    sentence = sentences.verdict(resunet, "Proposed", "ResUNet")
    assert "mean of 3 seeds, 95 % CI over patients and seeds" in sentence
    assert sentence.endswith("over patients alone the proposed network would be ahead of ResUNet, but the interval "
                             "over patients and seeds holds 0)")
    assert sentences.verdict(unet, "Proposed", "U-Net").endswith(": the proposed network is ahead of U-Net")
    note = comparisons.seed_note(seeds, pairs.reset_index())
    assert note.startswith("Seed variation is included: every compared model has seeds 0, 1 and 2 recorded in "
                           "each of the 2 folds; each patient's value is the mean over its 3 seeds")


def test_a_missing_seed_leaves_the_verdicts_to_patients_and_says_so(seed_records):
    store, table, seeds = seed_records
    seeds.at[seeds.index[(seeds["model"] == "U-Net") & (seeds["seed"] == 2)][0], "run_ids"] = \
        seeds.loc[(seeds["model"] == "U-Net") & (seeds["seed"] == 2), "run_ids"].iloc[0][:1]
    assert not comparisons.seeds_complete(seeds, ["Proposed", "U-Net"])
    assert comparisons.seeds_complete(seeds, ["Proposed", "ResUNet"])
    pairs = comparisons.paired_comparisons(table, store, seeds=seeds)
    assert "seeds" not in pairs and pairs.equals(comparisons.paired_comparisons(table, store))
    # seed 0 alone: ResUNet's first seed lifts fold 0 by 0.1 and lowers fold 1 by 0.1
    assert pairs.set_index("comparison").loc["Proposed - ResUNet", "verdict"] == "not distinguishable"
    assert "seeds" not in sentences.verdict(pairs.iloc[0], "Proposed", "U-Net")
    note = comparisons.seed_note(seeds, pairs)
    assert note.startswith("Seed variation is not yet included: each model is trained once in each of the 2 folds "
                           "(seed 0), so these verdicts hold the variation between test patients only")
    assert "the folds recorded with seeds 0/1/2: Proposed 2/2/2; U-Net 2/2/1; ResUNet 2/2/2." in note
    assert "So far" not in note  # no store given
    # fold 0 alone is complete: patients 1-4 average 0.8075; each model's effects are its seeds' shifts
    means = comparisons.fold_seed_means(seeds, store).set_index("model")
    assert list(means["fold"].unique()) == [0] and (means["patients"] == 4).all()
    assert means.loc["ResUNet", [0, 1, 2]].tolist() == pytest.approx([0.9075, 0.7075, 0.8075])
    assert means.loc["Proposed", [0, 1, 2]].tolist() == pytest.approx([0.8285, 0.8265, 0.8275])
    assert comparisons.seed_note(seeds, pairs, store).endswith(
        "So far fold 0 holds every seed of every model: in fold 0 (4 test patients), a model's mean test Dice "
        "moved between its seeds by 0.002 (Proposed) to 0.200 (ResUNet), while the models' seed-0 runs "
        "lay 0.100 apart from lowest to highest (`spine.training.comparisons.fold_seed_means`).")
    two = seeds[seeds["seed"] < 2]  # seeds 0 and 1 of U-Net are in both folds: both folds complete
    assert comparisons.fold_seed_means(two, store)["fold"].tolist() == [0, 0, 0, 1, 1, 1]
    note = comparisons._fold_seed_sentence(comparisons.fold_seed_means(two, store), "dice")  # two complete folds
    assert "So far folds 0 and 1 hold every seed of every model: in fold 0 (4 test patients)" in note
    # fold 1: ResUNet's seeds 0 and 1 move it by 0.1; the seed-0 runs lie from ResUNet's -0.1 to Proposed's +0.021
    assert "to 0.200 (ResUNet), while the models' seed-0 runs lay 0.100 apart from lowest to highest; in fold 1 (4 " \
           "test patients)" in note
    assert note.endswith("to 0.100 (ResUNet), while the models' seed-0 runs lay 0.121 apart from lowest to highest "
                         "(`spine.training.comparisons.fold_seed_means`).")
    first = (seeds["model"] == "Proposed") & (seeds["seed"] == 0)  # the phantom book's store: one run in all
    untrained = seeds.assign(trained=first, run_ids=[r if f else [] for r, f in zip(seeds["run_ids"], first)])
    assert comparisons.fold_seed_means(untrained, store).empty
    assert "So far" not in comparisons.seed_note(untrained, pairs, store)


def test_the_seeds_grid_plans_three_seeds_of_every_model_in_every_fold(tmp_path):
    """At the cpu profile (5 folds) the grid is 75 runs; with the comparison grid (seed 0) and the
    stability grid's fold 0 recorded, 48 are left to train, and `spine study comparison-seeds` trains them."""
    data = "recorded:toy"  # a data id without the data: configurations, no training
    runs = studies.configs("comparison-seeds", data, "cpu")
    assert len(runs) == 75 and len({c.run_id for c in runs}) == 75
    assert {(c.seed, c.fold) for c in runs} == {(s, f) for s in studies.COMPARISON_SEEDS for f in range(5)}
    assert {c.model for c in runs} == {c.model for c in studies.cells("comparison")}
    assert {c.loss for c in runs} == {"Dice"}
    for config in studies.configs("comparison", data, "cpu") + studies.configs("stability", data, "cpu", folds=(0,)):
        _write_record(tmp_path, config, {"dice": 0.9}, {"dice": 0.9})
    missing = studies.missing_runs("comparison-seeds", data, "cpu", tmp_path)
    assert len(missing) == 48 and {c.seed for c in missing} == {1, 2}
    assert not any(c.model == "Proposed" and c.fold == 0 for c in missing)  # the stability grid's seeds 1 and 2
    assert sum(len(studies.missing_runs("comparison-seeds", data, "cpu", tmp_path, shard=(i, 3))) for i in (1, 2, 3)) == 48
    args = build_parser().parse_args(["study", "comparison-seeds", "--data", data, "--profile", "cpu"])
    assert args.name == "comparison-seeds"


def test_the_seeds_grid_seed_0_is_the_comparison_grid():
    seed_0 = [c for c in studies.configs("comparison-seeds", "recorded:toy", "cpu") if c.seed == 0]
    assert {c.run_id for c in seed_0} == {c.run_id for c in studies.configs("comparison", "recorded:toy", "cpu")}
    assert make_config("U-Net", "Dice", data="recorded:toy", seed=1).run_id in {
        c.run_id for c in studies.configs("comparison-seeds", "recorded:toy", "cpu")}
