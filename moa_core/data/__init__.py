"""Dataset registry: the embedded digits, 2-D toy sets, image sets and the user's own sets
behind one call.

`load_dataset("mnist:3,5", split="train", limit=2000)` returns a `Dataset`; anything that
goes wrong is a one-line `DatasetError` meant for the user. See `image_sets` for where the
image files are looked for, and `user_sets` for `folder:NAME` (uploads and MOA_DATA_DIR).
"""

from moa_core.data.dataset import Dataset, DatasetError
from moa_core.data.image_sets import data_dir
from moa_core.data.registry import (
    add_user_set,
    build_point_set,
    dataset_names,
    labelled_splits,
    load_dataset,
    parse_spec,
    point_set_names,
    read_user_set,
    unbuilt_point_set,
    user_datasets,
    user_set_names,
)
from moa_core.data.user_sets import UserSet, delete_upload, suggested_name

__all__ = [
    "Dataset",
    "DatasetError",
    "UserSet",
    "add_user_set",
    "build_point_set",
    "data_dir",
    "dataset_names",
    "delete_upload",
    "labelled_splits",
    "load_dataset",
    "parse_spec",
    "point_set_names",
    "read_user_set",
    "suggested_name",
    "unbuilt_point_set",
    "user_datasets",
    "user_set_names",
]
