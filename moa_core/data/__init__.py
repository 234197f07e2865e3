"""Dataset registry: the embedded digits, 2-D toy sets and image sets behind one call.

`load_dataset("mnist:3,5", split="train", limit=2000)` returns a `Dataset`; anything that
goes wrong is a one-line `DatasetError` meant for the user. See `image_sets` for where the
image files are looked for.
"""

from moa_core.data.dataset import Dataset, DatasetError
from moa_core.data.image_sets import data_dir
from moa_core.data.registry import (
    build_point_set,
    dataset_names,
    labelled_splits,
    load_dataset,
    parse_spec,
    point_set_names,
    unbuilt_point_set,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "build_point_set",
    "data_dir",
    "dataset_names",
    "labelled_splits",
    "load_dataset",
    "parse_spec",
    "point_set_names",
    "unbuilt_point_set",
]
