"""scikit-learn's bundled digits: the image set that works with no files and no network."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from moa_core.data.dataset import RawSplit

DIGIT_NAMES = tuple(str(d) for d in range(10))


@lru_cache(maxsize=1)
def _digits_16() -> RawSplit:
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    # Bilinear blends of values in [0, 1] stay in [0, 1]; 16x16 matches USPS for comparisons.
    resized = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    x = resized.numpy()
    y = bunch.target.astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return RawSplit(x=x, y=y, kind="image", class_names=DIGIT_NAMES)


def load_digits_split(split: str) -> RawSplit:
    """All 1,797 digits as [N, 1, 16, 16] in [0, 1].

    The set has no held-out part, so "test" returns the same images as "train"; scores on it
    measure fit, not generalization.
    """
    del split  # both splits are the whole set (see docstring)
    return _digits_16()
