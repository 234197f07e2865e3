"""The dataset cache (`MOA_CACHE_DIR`, default ~/.cache/moa_lab): where built 2-D point sets
and converted user sets live, bounded in total by `MOA_CACHE_MAX_MB`.

Every file gets in by `write_atomic`: written to a hidden temp file beside its place, then
moved in only if the whole cache stays within the limit, so a crash or a full cache never
leaves a half-written file that a later load would trust.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from moa_core.data.dataset import DatasetError
from moa_core.limits import env_number, size_text

DEFAULT_CACHE_MAX_MB = 2048
STALE_TEMP_SECONDS = 600  # a temp file this old was left by a killed build
# Writes finish apart, but "check the cache's size, move the file in" is one step under this
# lock, so two of them never both squeeze past the limit.
_WRITE_LOCK = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("MOA_CACHE_DIR") or Path.home() / ".cache" / "moa_lab")


def cache_max_bytes() -> float:
    """`MOA_CACHE_MAX_MB` in bytes (unset or blank: 2048 MB); a bad value is a DatasetError."""
    try:
        return env_number("MOA_CACHE_MAX_MB", DEFAULT_CACHE_MAX_MB) * 2**20
    except ValueError as err:
        raise DatasetError(str(err)) from None


def write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` as an .npz to a hidden temp file beside `path` (under `cache_dir()`),
    then move it in if the cache has room; otherwise (or on any error) remove the temp
    file, so no half-written file stays."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            tmp = Path(handle.name)
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        with _WRITE_LOCK:
            check_cache_room(tmp.stat().st_size, exclude=tmp)
            os.replace(tmp, path)
    except OSError as err:
        raise DatasetError(f"cannot write the dataset cache {path}: {err}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def check_cache_room(new_bytes: int, exclude: Path | None = None) -> None:
    """Raise DatasetError unless the cache's files plus `new_bytes` stay within
    `MOA_CACHE_MAX_MB` (temp files of killed builds are removed first, when stale)."""
    folder = cache_dir()
    limit = cache_max_bytes()
    used = _cache_usage(folder, exclude)
    if used + new_bytes > limit or (new_bytes == 0 and used >= limit):
        raw = os.environ.get("MOA_CACHE_MAX_MB", "").strip() or str(DEFAULT_CACHE_MAX_MB)
        adding = f" + {size_text(new_bytes)} for this set" if new_bytes else ""
        raise DatasetError(
            f"the dataset cache {folder} is full: {size_text(used)} used{adding} "
            f"(MOA_CACHE_MAX_MB={raw}); delete files there or raise the limit"
        )


def _cache_usage(folder: Path, exclude: Path | None) -> int:
    """Bytes of the files under `folder`, after removing stale temp files of killed builds."""
    used, now = 0, time.time()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            file = Path(root, name)
            if file == exclude:
                continue
            try:
                info = file.stat()
                if name.startswith(".") and name.endswith(".tmp"):
                    if now - info.st_mtime > STALE_TEMP_SECONDS:
                        file.unlink()
                        continue
                used += info.st_size
            except OSError:
                continue
    return used
