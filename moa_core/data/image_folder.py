"""Image files in the ImageFolder layout (or one flat folder) → one image set the models take.

Layout: `class_a/*.png, class_b/*.png` are labelled, the class folders sorted by name giving
labels 0..K-1 and their names; images all at one level are unlabelled (one class, named
`UNLABELLED`). A zip may wrap either in one top folder (`shapes/class_a/…`). Mixing the two,
or deeper folders, is refused in one line.

Size and channels: every image goes through `image_input.to_model_input` (any mode and size:
transparency filled, padded to a square with its own border colour, box-resized), to
greyscale 28×28 (MNIST's size) when every image is greyscale-like, else RGB 32×32 (CIFAR's);
greyscale images are contrast-stretched like the digit sets. Nothing is inverted: the data
keep their own colours. Stored as uint8, like the other image sets.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from moa_core.data.archive import ImageFile
from moa_core.data.dataset import DatasetError, RawSplit
from moa_core.image_input import ImageInputError, read_image, to_model_input

GREY_SIZE, COLOUR_SIZE = 28, 32
GREY_TOLERANCE = 12 / 255  # channels this close everywhere: a grey picture saved as RGB
UNLABELLED = "(no labels)"
MIN_SAMPLES, MIN_PER_CLASS = 10, 2


def image_set(files: list[ImageFile], source: str, unwrap: bool = False) -> RawSplit:
    """The converted set; `unwrap` drops one top folder that holds everything (zips)."""
    names, labels = _labels(files, source, unwrap)
    grey, colour, greyish = [], [], True
    for file in files:
        g, c = _convert(file, source)
        greyish = greyish and float(np.ptp(c, axis=0).max()) <= GREY_TOLERANCE
        grey.append(_bytes(g))  # both kept until every image is seen: 4 kB an image
        colour.append(_bytes(c))
    return RawSplit(
        x=np.stack(grey if greyish else colour),
        y=np.asarray(labels, dtype=np.int64),
        kind="image",
        class_names=names,
    )


def _labels(files: list[ImageFile], source: str, unwrap: bool) -> tuple[tuple[str, ...], list[int]]:
    paths = [file.parts for file in files]
    tops = {parts[0] for parts in paths}
    if unwrap and len(tops) == 1 and all(len(parts) > 1 for parts in paths):
        paths = [parts[1:] for parts in paths]
    depths = {len(parts) for parts in paths}
    if max(depths) > 2:
        deep = next("/".join(parts) for parts in paths if len(parts) > 2)
        raise DatasetError(
            f"{source}: '{deep}' is too deep; expected class folders holding images "
            "(class_a/1.png) or images at one level"
        )
    if depths == {1, 2}:
        flat = next("/".join(p) for p in paths if len(p) == 1)
        nested = next("/".join(p) for p in paths if len(p) == 2)
        raise DatasetError(
            f"{source} mixes loose images ('{flat}') with class folders ('{nested}'); use "
            "class folders only, or one folder of images without labels"
        )
    if len(files) < MIN_SAMPLES:
        raise DatasetError(
            f"{source} holds {len(files)} images; a set needs at least {MIN_SAMPLES}"
        )
    if depths == {1}:
        return (UNLABELLED,), [0] * len(paths)
    names = tuple(sorted({parts[0] for parts in paths}))
    counts = Counter(parts[0] for parts in paths)
    small = [name for name in names if counts[name] < MIN_PER_CLASS]
    if small:
        raise DatasetError(
            f"{source}: class '{small[0]}' has {counts[small[0]]} image; every class needs at "
            f"least {MIN_PER_CLASS}"
        )
    index = {name: i for i, name in enumerate(names)}
    return names, [index[parts[0]] for parts in paths]


def _convert(file: ImageFile, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The image as greyscale 28×28 and RGB 32×32 floats, decoded once."""
    name = f"{source}/{file.path}"
    try:
        image = read_image(name, file.read())
        return (
            to_model_input(image, 1, GREY_SIZE, dark_background=False, name=name),
            to_model_input(image, 3, COLOUR_SIZE, dark_background=False, name=name),
        )
    except ImageInputError as err:
        raise DatasetError(str(err)) from None


def _bytes(image: np.ndarray) -> np.ndarray:
    return np.rint(image * 255.0).astype(np.uint8)
