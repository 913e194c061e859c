"""Data: readers for SPIDER archives and slice folders, the study's preprocessing, the phantom,
patient splits and the prepared-dataset cache.

The usual entry point is :func:`load_dataset`; the modules hold one step each.
"""

from spine.data.dataset import (PHANTOM_CHECK_PATIENTS, PHANTOM_MIX_PATIENTS, SliceSet, concat, detect_layout,
                                load_dataset, phantom_archive, phantom_slices, resolve_source)
from spine.data.io import cache_dir
from spine.data.labels import CLASS_NAMES, TASKS, num_classes
from spine.data.splits import load_split, make_folds, make_split, save_split, subset_mask

__all__ = ["PHANTOM_CHECK_PATIENTS", "PHANTOM_MIX_PATIENTS", "SliceSet", "cache_dir", "concat", "detect_layout",
           "load_dataset", "phantom_archive", "phantom_slices", "resolve_source",
           "CLASS_NAMES", "TASKS", "num_classes", "load_split", "make_folds", "make_split", "save_split", "subset_mask"]
