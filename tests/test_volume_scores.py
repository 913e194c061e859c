"""3D figures of a predicted volume against its reference (spine.metrics.volume_scores)."""

import pytest
import SimpleITK as sitk

from spine import metrics
from spine.data import phantom
from spine.data.labels import label_values_to_classes
from spine.errors import ConfigError


def test_volume_scores_of_a_perfect_and_an_eroded_prediction():
    _, mask = phantom.make_case(7, permuted=True)
    classes = sitk.GetImageFromArray(label_values_to_classes(sitk.GetArrayFromImage(mask), "binary"))
    classes.CopyInformation(mask)
    perfect = metrics.volume_scores(classes, mask)
    assert perfect["dice"] == 1.0 and perfect["hd_mm"] == 0.0
    assert perfect["voxels_predicted"] == perfect["voxels_reference"]
    eroded = sitk.BinaryErode(classes, [1, 1, 1])
    worse = metrics.volume_scores(eroded, mask)
    assert 0 < worse["dice"] < 1 and worse["hd_mm"] > 0 and worse["hd"] >= 1
    with pytest.raises(ConfigError):
        metrics.volume_scores(classes[:, :, :-1], mask)
