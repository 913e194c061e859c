"""The shipped models (``spine/weights``) as the book shows them: their cards and the records behind
them, a card as a table, and the test images a shipped model is explained and re-scored on. How
they are chosen and written: :mod:`spine.training.export`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from spine.data import TASKS
from spine.errors import ConfigError
from spine.inference import model_card
from spine.training.config import RunConfig
from spine.training.engine import source_data_id, split_data
from spine.training.store import is_finished, load_record


def shipped_runs(store) -> tuple[dict, dict]:
    """The shipped models' cards by task (``spine.inference.model_card``; a task with no shipped model
    is left out) and the records behind them that ``store`` holds, by file name (``binary.keras``...)."""
    cards = {}
    for task in TASKS:
        try:
            cards[task] = model_card(task)
        except ConfigError:  # none shipped for this task
            continue
    records = {f"{task}.keras": load_record(Path(store) / card["run_id"]) for task, card in cards.items()
               if is_finished(Path(store) / card["run_id"])}
    return cards, records


def card_table(card: dict) -> pd.DataFrame:
    """A shipped model's card (``spine.inference.model_card``), one fact per row: the run it comes
    from, what it is, what it was trained on, how it was chosen, and its recorded test Dice."""
    config, test = card["config"], card["test"]
    facts = {"run": card["run_id"], "model": config["model"], "loss": config["loss"], "task": config["task"],
             "data": config["data_id"], "profile": config["profile"], "image size": config["settings"]["size"],
             "epochs": config["settings"]["epochs"], "seed": config["seed"], "selected epoch": card["selected_epoch"],
             "selected on": card["selected_on"], "validation dice": f"{card['validation']['dice']:.4f}",
             "test images": test["images"], "recorded test dice": f"{test['dice']:.4f}"}
    return pd.DataFrame({"card": list(facts), "value": [str(v) for v in facts.values()]})


def shipped_test_images(card: dict, data) -> tuple:
    """The test slices of ``data`` under the split of the shipped model's run, and whether they are
    that run's own test patients (``data`` is the data it was trained on: same ``data_id``), i.e.
    images it never saw in training. On other data (the phantom) the split is only a choice of
    images. Returns ``(SliceSet, own)``; the slices are prepared at the model's input size."""
    recorded = RunConfig.from_dict(card["config"])
    # the split of ``data`` as the run would make it; partial labels only add training slices
    config = dataclasses.replace(recorded, data=str(data), data_id=source_data_id(data, recorded.settings["size"]),
                                 partial=None, partial_id=None)
    test = split_data(config)["test"]
    return test, test.data_id == recorded.data_id
