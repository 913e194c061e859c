"""Fine-tuning (``init``): a run starts from another run's selected weights, and says so in its id."""

import keras
import numpy as np
import pytest

from spine.errors import DataError
from spine.training import engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return store, engine.train(engine.make_config("U-Net", "Dice", data="phantom:6", profile="smoke"), store,
                               verbose=False)


def test_a_run_starts_from_the_named_runs_weights(first):
    store, record = first
    config = engine.make_config("U-Net", "Dice", data="phantom:6", profile="smoke", init=record.path.name)
    assert config.run_id != record.config.run_id
    model = engine.compile_model(config)
    engine._start_from(model, config, store)
    expected = keras.saving.load_model(record.model_path, compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), expected))


def test_another_architecture_or_a_missing_run_is_refused(first):
    store, record = first
    wider = engine.make_config("U-Net", "Dice", data="phantom:6", profile="smoke", init=record.path.name,
                               overrides={"width": 8})
    with pytest.raises(DataError, match="is not a U-Net of this task and width"):
        engine._start_from(engine.compile_model(wider), wider, store)
    with pytest.raises(DataError, match="no model file of run 000000000000"):
        engine.init_model_path(store, "000000000000")
