"""How ``spine predict`` brings a map at the model's size back to the image's (spine.inference)."""

import numpy as np
import pytest

from spine import inference


def _shares(columns) -> np.ndarray:
    """A 4 x 4 two-class probability map whose class-1 probability is ``columns`` in every row."""
    vertebra = np.tile(np.asarray(columns, np.float32), (4, 1))
    return np.stack([1 - vertebra, vertebra], axis=-1)


def test_probabilities_brought_back_bilinearly_move_the_edge_inside_a_coarse_pixel():
    """Class 1 has probability 0.45 in column 1, 1 beyond. Doubled, output column 3 sits a quarter of
    the way from input column 1 to 2: 0.45 + 0.25 * 0.55 = 0.59, class 1; nearest neighbour gives it
    input column 1's class, 0."""
    probabilities = _shares([0, 0.45, 1, 1])
    linear = inference.labels_back_linear(probabilities, (8, 8))
    nearest = inference.labels_back_nearest(probabilities, (8, 8))
    assert linear.dtype == nearest.dtype == np.uint8 and linear.shape == nearest.shape == (8, 8)
    assert (linear[0] == [0, 0, 0, 1, 1, 1, 1, 1]).all() and (linear == linear[0]).all()
    assert (nearest[0] == [0, 0, 0, 0, 1, 1, 1, 1]).all()


@pytest.mark.parametrize("way", sorted(inference.RESIZERS))
def test_a_certain_map_comes_back_the_same_either_way(way):
    """Where every pixel is certain and each class fills whole coarse pixels, both ways agree."""
    probabilities = _shares([0, 0, 1, 1])
    back = inference.RESIZERS[way](probabilities, (8, 12))
    assert back.shape == (8, 12) and (back[:, :6] == 0).all() and (back[:, 6:] == 1).all()


def test_spine_predict_brings_probabilities_back_bilinearly():
    assert inference.RESIZE_BACK == "linear"
