"""Reader for the IDX format of the original MNIST / Fashion-MNIST files (gzipped or not)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from moa_core.data.dataset import DatasetError

# Third magic byte -> element type (big-endian, as the format prescribes).
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """The array stored in one IDX file; a DatasetError names the file if it is not IDX."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # unreadable or corrupt gzip
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated (incomplete IDX header)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path} holds {len(raw) - header} data bytes but its header {shape} needs {expected}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _candidates(split: str, what: str, rank: int) -> list[str]:
    # "train-images-idx3-ubyte" is canonical; some downloads rename it "train-images.idx3-ubyte".
    prefix = _SPLIT_PREFIX[split]
    stems = [f"{prefix}-{what}-idx{rank}-ubyte", f"{prefix}-{what}.idx{rank}-ubyte"]
    return [stem + suffix for stem in stems for suffix in ("", ".gz")]


def find_idx_pair(directory: Path, split: str) -> tuple[Path, Path] | None:
    """(images, labels) IDX files of `split` in `directory`, or None when there are no images.

    Images without labels is a DatasetError naming the missing file, not a silent miss.
    """
    images = next(
        (directory / n for n in _candidates(split, "images", 3) if (directory / n).is_file()), None
    )
    if images is None:
        return None
    label_names = _candidates(split, "labels", 1)
    labels = next((directory / n for n in label_names if (directory / n).is_file()), None)
    if labels is None:
        raise DatasetError(f"found {images} but no labels file {label_names[0]}(.gz) beside it")
    return images, labels
