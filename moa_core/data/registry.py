"""Dataset specs ("mnist:3,5") -> Dataset: parsing, dispatch to sources, subset and limit."""

from __future__ import annotations

import operator

import numpy as np
import torch

from moa_core.data.bottleneck import (
    BOTTLENECK_SETS,
    Progress,
    build_bottleneck,
    is_built,
    load_bottleneck_split,
)
from moa_core.data.dataset import Dataset, DatasetError, RawSplit
from moa_core.data.embedded import load_digits_split
from moa_core.data.image_sets import IMAGE_SETS, load_image_split
from moa_core.data.toy import TOY_NAMES, load_toy_split
from moa_core.data.user_sets import PREFIX, UserSet, add_upload, find, load_user_set, user_sets

SPLITS = ("train", "test")


def dataset_names() -> list[str]:
    """The built-in datasets (`user_set_names` lists the user's own)."""
    return sorted(["digits", *TOY_NAMES, *IMAGE_SETS, *BOTTLENECK_SETS])


def point_set_names() -> list[str]:
    """Built-in datasets whose samples are 2-D points rather than images."""
    return sorted([*TOY_NAMES, *BOTTLENECK_SETS])


def user_datasets() -> list[UserSet]:
    """The user's own sets (uploads and `MOA_DATA_DIR` folders), see `user_sets`."""
    return user_sets(dataset_names())


def user_set_names(kind: str | None = None) -> list[str]:
    """Specs (`folder:NAME`) of the user's own sets, those of one `kind` if given."""
    return [s.spec for s in user_datasets() if kind is None or s.kind == kind]


def read_user_set(user_set: UserSet) -> RawSplit:
    """A user set's stored samples (uint8 images, or points) without the float copy
    `load_dataset` makes: for counts and previews of sets of any size."""
    return load_user_set(user_set.name, dataset_names())


def add_user_set(name: str, file_name: str, data: bytes) -> UserSet:
    """Validate, convert and cache an uploaded zip or CSV as `folder:name` (one-line
    DatasetError for anything wrong; nothing is written outside `MOA_CACHE_DIR`)."""
    return add_upload(name, file_name, data, dataset_names())


def unbuilt_point_set(spec: str) -> str | None:
    """The 2-D bottleneck set `spec` names when it is not built yet (loading it would first
    train a CNN, seconds to minutes); None for every other spec, valid or not."""
    try:
        name, _ = parse_spec(spec)
    except DatasetError:
        return None
    return name if name in BOTTLENECK_SETS and not is_built(name) else None


def build_point_set(name: str, on_progress: Progress | None = None) -> None:
    """Build and cache the 2-D bottleneck set `name` ("mnist2d") now, reporting progress."""
    build_bottleneck(name, load_dataset, on_progress)


def parse_spec(spec: str) -> tuple[str, list[int] | None]:
    """Split a spec: "mnist:3,5" -> ("mnist", [3, 5]); "digits" -> ("digits", None);
    "folder:shapes:0,2" -> ("folder:shapes", [0, 2]).

    Names are case-insensitive; classes come back sorted without repeats.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError("empty dataset spec (expected a name such as digits or mnist:3,5)")
    name, sep, classes = spec.strip().partition(":")
    name = name.strip().lower()
    if name == PREFIX and sep:
        user_name, sep, classes = classes.partition(":")
        name = find(user_name.strip().lower(), dataset_names()).spec
    elif name not in dataset_names():
        known = ", ".join([*dataset_names(), *user_set_names()])
        raise DatasetError(f"unknown dataset '{name}' (known: {known})")
    if not sep:
        return name, None
    parts = [part.strip() for part in classes.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise DatasetError(
            f"bad class list '{classes}' in '{spec.strip()}' "
            "(expected comma-separated labels, e.g. mnist:3,5)"
        )
    return name, sorted({int(part) for part in parts})


def load_dataset(
    spec: str,
    split: str = "train",
    device: str | torch.device = "cpu",
    limit: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load `spec` on `device`; `limit` keeps a seeded random sample after the class subset.

    The sample keeps the dataset's order, and the same (spec, split, limit, seed) always
    gives the same samples. `seed` also seeds the toy sets' generators.
    """
    name, classes = parse_spec(spec)
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}' (use train or test)")
    seed = _whole_number(seed, "seed", minimum=0)
    raw = _load_raw(name, split, seed)
    keep = _class_indices(raw, name, classes)
    if limit is not None:
        limit = _whole_number(limit, "limit", minimum=1)
        if limit < keep.size:
            keep = seeded_subset(keep, limit, seed)
    x = torch.from_numpy(raw.x[keep])  # fancy indexing copies: the cache stays untouched
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    labels = raw.y[keep]
    canonical = name if classes is None else f"{name}:{','.join(map(str, classes))}"
    return Dataset(
        name=canonical,
        x=x,
        y=torch.from_numpy(labels),
        kind=raw.kind,
        class_names=[raw.class_names[c] for c in np.unique(labels)],
        label_values=tuple(classes) if classes is not None else tuple(range(len(raw.class_names))),
    ).to(device)


HELD_OUT_FRACTION = 0.2


def labelled_splits(spec: str, limit: int | None = None, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Train and test samples for a classifier, `limit` and `seed` applying to the train side.

    The embedded digits and the user's own sets have no test split ("test" is "train"), so
    a fixed fifth of them (the same for every seed) is held out as the test side and never
    trained on.
    """
    name = parse_spec(spec)[0]
    if name != "digits" and not name.startswith(f"{PREFIX}:"):
        return load_dataset(spec, "train", limit=limit, seed=seed), load_dataset(spec, "test")
    whole = load_dataset(spec, "train")
    held_out = np.random.default_rng(0).random(len(whole)) < HELD_OUT_FRACTION
    keep = np.flatnonzero(~held_out)
    if limit is not None and _whole_number(limit, "limit", minimum=1) < keep.size:
        keep = seeded_subset(keep, limit, seed)
    test = whole.take(torch.from_numpy(np.flatnonzero(held_out)))
    return whole.take(torch.from_numpy(keep)), test


def seeded_subset(keep: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """`limit` of the indices `keep`, chosen by `seed`, in their original order."""
    return np.sort(np.random.default_rng(seed).permutation(keep)[:limit])


def _load_raw(name: str, split: str, seed: int) -> RawSplit:
    if name == "digits":
        return load_digits_split(split)
    if name in TOY_NAMES:
        return load_toy_split(name, split, seed)
    if name in BOTTLENECK_SETS:
        return load_bottleneck_split(name, split, load_dataset)
    if name.startswith(f"{PREFIX}:"):
        return load_user_set(name.partition(":")[2], dataset_names())
    return load_image_split(name, split)


def _class_indices(raw: RawSplit, name: str, classes: list[int] | None) -> np.ndarray:
    if classes is None:
        return np.arange(raw.y.shape[0])
    valid = np.unique(raw.y).tolist()
    unknown = [c for c in classes if c not in valid]
    if unknown:
        labels = ", ".join(
            str(c) if raw.class_names[c] == str(c) else f"{c} ({raw.class_names[c]})" for c in valid
        )
        missing = ", ".join(map(str, unknown))
        raise DatasetError(f"{name} has no class {missing} (valid labels: {labels})")
    return np.flatnonzero(np.isin(raw.y, classes))


def _whole_number(value: object, what: str, minimum: int) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise DatasetError(f"{what} must be a whole number, got {value!r}") from None
    if number < minimum or isinstance(value, bool):
        raise DatasetError(f"{what} must be a whole number ≥ {minimum}, got {value!r}")
    return number
