"""Bring image arrays from any source to one layout: [N, C, H, W], uint8 or float32 in [0, 1]."""

from __future__ import annotations

import numpy as np

from moa_core.data.dataset import DatasetError

_CHANNELS = (1, 3)


def _to_nchw(x: np.ndarray, source: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in _CHANNELS:
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4 and x.shape[1] in _CHANNELS:
        return x
    raise DatasetError(
        f"{source}: images have shape {tuple(x.shape)}; expected [N, H, W], [N, H, W, C] "
        "or [N, C, H, W] with 1 or 3 channels"
    )


def _scale(x: np.ndarray, source: str) -> np.ndarray:
    """uint8 stays uint8 (4x smaller to cache); anything else becomes float32 in [0, 1].

    Floats are read by their range: [0, 1] as is, [-1, 1] (USPS's original scaling) shifted,
    up to 255 divided by 255. Integers must lie in 0..255.
    """
    if x.dtype == np.uint8:
        return x
    if x.size == 0:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DatasetError(f"{source}: integer pixels span {lo}..{hi}; expected 0..255")
        return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(f"{source}: images have dtype {x.dtype}; expected uint8 or float")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"{source}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return x
    if lo >= -1.0 and hi <= 1.0:
        return (x + 1.0) / 2.0
    if lo >= 0.0 and hi <= 255.0:
        return x / 255.0
    raise DatasetError(
        f"{source}: float pixels span {lo:g}..{hi:g}; expected [0, 1], [-1, 1] or 0..255"
    )


def as_images(x: np.ndarray, source: str) -> np.ndarray:
    """`x` as a contiguous, read-only [N, C, H, W] array (uint8, or float32 in [0, 1])."""
    out = np.ascontiguousarray(_scale(_to_nchw(np.asarray(x), source), source))
    out.flags.writeable = False  # cached and shared between calls
    return out


def as_labels(y: np.ndarray, n: int, n_classes: int, source: str) -> np.ndarray:
    """`y` as a read-only int64 [N] of labels in 0..n_classes-1."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # some exports store labels as a column
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise DatasetError(f"{source}: labels have shape {tuple(y.shape)}; expected [{n}]")
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{source}: labels have dtype {y.dtype}; expected integers")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise DatasetError(
            f"{source}: labels span {y.min()}..{y.max()}; expected 0..{n_classes - 1}"
        )
    out = y.astype(np.int64)
    out.flags.writeable = False
    return out
