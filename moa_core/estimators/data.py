"""NumPy arrays from a Python user → the `Dataset` every training takes, checked first so a
wrong shape or a NaN is one line, not a traceback from inside a model."""

from __future__ import annotations

import numpy as np
import torch

from moa_core.data.convert import as_images
from moa_core.data.dataset import Dataset, DatasetError

IN_MEMORY = "array"  # the dataset name a run trained on an array records


def as_dataset(X: object, labels: np.ndarray | None = None) -> Dataset:
    """Images [N, H, W] / [N, H, W, C] / [N, C, H, W] (uint8, or floats in [0, 1], [-1, 1]
    or 0..255) or points [N, 2]; `labels` are class positions 0 … K − 1 (a classifier's) or
    None (a clusterer's, which learns without them)."""
    x = np.asarray(X)
    if x.ndim == 2:
        kind, tensor = "points", _points(x)
    elif x.ndim in (3, 4):
        kind, tensor = "image", _images(x)
    else:
        raise DatasetError(
            f"X has shape {x.shape}; expected images [N, H, W], [N, C, H, W] or points [N, 2]"
        )
    if len(tensor) < 2:
        raise DatasetError(f"X holds {len(tensor)} sample(s); a batch needs at least 2")
    y = np.zeros(len(tensor), dtype=np.int64) if labels is None else labels.astype(np.int64)
    values = range(int(y.max()) + 1)
    return Dataset(
        name=IN_MEMORY,
        x=tensor,
        y=torch.from_numpy(y),
        kind=kind,
        class_names=[str(v) for v in np.unique(y)],
        label_values=tuple(values),
    )


def _images(x: np.ndarray) -> torch.Tensor:
    """Float32 [N, C, H, W] in [0, 1], as the dataset loaders make them."""
    images = as_images(x, "X")
    tensor = torch.from_numpy(np.array(images))  # a writable copy
    return tensor.float().div_(255.0) if images.dtype == np.uint8 else tensor


def _points(x: np.ndarray) -> torch.Tensor:
    if x.shape[1] != 2:
        raise DatasetError(f"X has shape {x.shape}; points must be [N, 2] (images: [N, H, W])")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DatasetError("X must hold finite numbers")
    return torch.from_numpy(x.astype(np.float32))
