"""Reader for `<name>.npz` archives with x_train, y_train, x_test, y_test (never unpickles)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

from moa_core.data.dataset import DatasetError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)


def read_npz_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of `split`; every key is required so a half-written archive fails up front.

    `allow_pickle=False` makes numpy refuse object arrays, whose loading could run code.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:  # numpy's answer to anything it could only unpickle
        raise DatasetError(f"{path} is not an .npz archive (pickled data is not loaded)") from exc
    if not isinstance(loaded, NpzFile):
        raise DatasetError(
            f"{path} holds a single array, not an .npz archive with {', '.join(NPZ_KEYS)}"
        )
    with loaded as archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise DatasetError(f"{path} has no {', '.join(missing)} (needs {', '.join(NPZ_KEYS)})")
        return _read(archive, f"x_{split}", path), _read(archive, f"y_{split}", path)


def _read(archive: NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except _READ_ERRORS as exc:
        raise DatasetError(f"cannot read '{key}' from {path}: {exc}") from exc
    except ValueError as exc:  # raised for object arrays when allow_pickle=False
        raise DatasetError(
            f"{path}: array '{key}' is an object array (pickled); not loaded for safety "
            "— save plain numeric arrays"
        ) from exc
