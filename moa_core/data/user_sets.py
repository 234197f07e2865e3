"""Your own data as datasets named `folder:NAME`: an uploaded zip of images or CSV of points,
or a folder / CSV in `MOA_DATA_DIR`.

Sources (see `image_folder` and `points_csv` for the formats and conversion):
- an upload, converted once and kept only as `<MOA_CACHE_DIR>/user_data/NAME.npz` (the
  uploaded bytes are read in memory and never written anywhere);
- `MOA_DATA_DIR/NAME/` (class folders or images) or `MOA_DATA_DIR/NAME.csv`, converted on
  first use into `<MOA_CACHE_DIR>/user_data/data_dir/NAME-<fingerprint>.npz`; the
  fingerprint covers every file's path, size and time, so an edited folder is converted
  again. An upload wins over a folder of the same name (a new upload may not take one).
Every write goes through `cache.write_atomic`, bounded by `MOA_CACHE_MAX_MB`. NAME is 1–40
lowercase letters, digits, `_` or `-`, and never a built-in dataset's name.

No test split: like the embedded digits, "test" is the whole set, and classifiers hold out
a fixed fifth of it (`registry.labelled_splits`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path

import numpy as np

from moa_core.data.archive import IMAGE_SUFFIXES, folder_images, zip_images
from moa_core.data.cache import cache_dir, write_atomic
from moa_core.data.dataset import DatasetError, RawSplit
from moa_core.data.image_folder import image_set
from moa_core.data.image_sets import data_dir
from moa_core.data.points_csv import read_points

PREFIX = "folder"
FORMAT_VERSION = 1  # bump when the conversion changes: folder sets are converted again
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
UPLOAD, DATA_DIR = "upload", "MOA_DATA_DIR"
_PEEK = 200  # entries looked at to decide whether a data-dir folder holds images
_UPLOAD_LOCK = threading.Lock()  # "is the name free?" and the write are one step


@dataclass(frozen=True)
class UserSet:
    name: str
    kind: str  # "image" or "points"
    origin: str  # UPLOAD or DATA_DIR
    where: str  # the uploaded file's name, or the folder / CSV path

    @property
    def spec(self) -> str:
        return f"{PREFIX}:{self.name}"


def user_sets(reserved: Collection[str]) -> list[UserSet]:
    """The uploads, then the data-dir sets not shadowed by one, each sorted by name. Cheap:
    nothing is converted (a broken folder is listed, and says what is wrong when loaded)."""
    uploads = [_upload_info(path) for path in sorted(_uploads_dir().glob("*.npz"))]
    taken = {s.name for s in uploads} | set(reserved)
    return [*uploads, *(s for s in _data_dir_sets() if s.name not in taken)]


def check_name(name: str, reserved: Collection[str]) -> str:
    """`name` as a set's name, or a DatasetError saying what a name may hold."""
    name = str(name).strip()
    if not NAME.fullmatch(name):
        raise DatasetError(
            f"'{name}' cannot name a set: use 1–40 lowercase letters, digits, _ or -, "
            "starting with a letter or digit"
        )
    if name in reserved:
        raise DatasetError(f"'{name}' is a built-in dataset's name; choose another")
    return name


def suggested_name(file_name: str) -> str:
    """A valid name made from an uploaded file's name: "My Shapes (2).zip" → "my_shapes_2"."""
    stem = Path(str(file_name)).stem.lower()
    return re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_-")[:40] or "my_data"


def find(name: str, reserved: Collection[str]) -> UserSet:
    for user_set in user_sets(reserved):
        if user_set.name == name:
            return user_set
    known = ", ".join(s.spec for s in user_sets(reserved)) or "none yet"
    raise DatasetError(
        f"unknown dataset '{PREFIX}:{name}' (your sets: {known}; add one on the Your data "
        "page or in MOA_DATA_DIR)"
    )


def load_user_set(name: str, reserved: Collection[str]) -> RawSplit:
    """The converted set `name`, read from the cache (converting a data-dir set first)."""
    user_set = find(name, reserved)
    if user_set.origin == UPLOAD:
        return _read(_uploads_dir() / f"{name}.npz")
    source = Path(user_set.where)
    path = _data_dir_cache(name, _fingerprint(source))
    if not path.exists():
        _write(path, _convert(source, user_set.kind))
        for old in path.parent.glob(f"{name}-*.npz"):
            if old != path and old.stem.rpartition("-")[0] == name:
                old.unlink(missing_ok=True)
    return _read(path)


def add_upload(name: str, file_name: str, data: bytes, reserved: Collection[str]) -> UserSet:
    """Validate and convert an uploaded zip or CSV, and cache it as `folder:name`."""
    name = _free_name(name, reserved)  # before minutes of converting, and again at the end
    source = Path(str(file_name)).name or "the upload"
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        converted, kind = read_points(data, source), "points"
    elif suffix == ".zip":
        converted, kind = image_set(zip_images(data, source), source, unwrap=True), "image"
    else:
        raise DatasetError(f"{source}: upload a .zip of images or a .csv of 2-D points")
    with _UPLOAD_LOCK:
        _write(_uploads_dir() / f"{_free_name(name, reserved)}.npz", converted, source)
    return UserSet(name, kind, UPLOAD, source)


def delete_upload(name: str) -> None:
    """Remove the uploaded set `name` (the data-dir sets belong to whoever put them there)."""
    path = _uploads_dir() / f"{check_name(name, ())}.npz"
    if not path.is_file():
        raise DatasetError(f"there is no uploaded set named '{name}'")
    path.unlink()


def _free_name(name: str, reserved: Collection[str]) -> str:
    name = check_name(name, reserved)
    if any(s.name == name for s in user_sets(reserved)):
        raise DatasetError(f"a set named '{name}' exists already; delete it or choose another name")
    return name


def _uploads_dir() -> Path:
    return cache_dir() / "user_data"


def _data_dir_cache(name: str, fingerprint: str) -> Path:
    return _uploads_dir() / "data_dir" / f"{name}-{fingerprint}.npz"


def _data_dir_sets() -> list[UserSet]:
    root = data_dir()
    if root is None or not root.is_dir():
        return []
    found: dict[str, UserSet] = {}
    for entry in sorted(root.iterdir()):
        name, suffix = (entry.stem, entry.suffix.lower()) if entry.is_file() else (entry.name, "")
        if not NAME.fullmatch(name) or name in found:
            continue
        if entry.is_dir() and _holds_images(entry):
            found[name] = UserSet(name, "image", DATA_DIR, str(entry))
        elif entry.is_file() and suffix == ".csv":  # after a folder of the same name
            found[name] = UserSet(name, "points", DATA_DIR, str(entry))
    return sorted(found.values(), key=lambda s: s.name)


def _holds_images(folder: Path) -> bool:
    """Whether an image file sits in `folder` or one of its sub-folders (a peek, not a walk:
    IDX or torchvision folders beside user sets are not mistaken for them)."""
    try:
        with os.scandir(folder) as top:
            entries = list(islice(top, _PEEK))
        for sub in [entry for entry in entries if entry.is_dir(follow_symlinks=False)]:
            with os.scandir(sub.path) as inner:
                entries += islice(inner, _PEEK)
    except OSError:
        return False
    return any(e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES) for e in entries)


def _fingerprint(source: Path) -> str:
    """A hash of the path, size and time of every file of a data-dir set."""
    digest = hashlib.sha256(f"v{FORMAT_VERSION}".encode())
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        info = path.lstat()
        digest.update(
            f"{path.relative_to(source.parent)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


def _convert(source: Path, kind: str) -> RawSplit:
    try:
        if kind == "points":
            return read_points(source.read_bytes(), str(source))
        return image_set(folder_images(source, str(source)), str(source))
    except OSError as err:
        raise DatasetError(f"cannot read {source}: {err}") from None


def _write(path: Path, data: RawSplit, source: str = "") -> None:
    write_atomic(
        path,
        {
            "x": data.x,
            "y": data.y,
            "class_names": np.asarray(data.class_names, dtype=str),
            "kind": np.asarray(data.kind),
            "source": np.asarray(source),
            "version": np.asarray(FORMAT_VERSION),
        },
    )


def _upload_info(path: Path) -> UserSet:
    info = path.stat()
    kind, source = _meta(str(path), info.st_mtime_ns, info.st_size)
    return UserSet(path.stem, kind, UPLOAD, source)


@lru_cache(maxsize=256)
def _meta(path: str, mtime_ns: int, size: int) -> tuple[str, str]:
    """(kind, uploaded file's name) of a cached upload; keyed by its time and size, so a
    replaced file is read again."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["kind"]), str(data["source"])
    except (OSError, ValueError, KeyError, EOFError):
        return "unreadable", ""


def _read(path: Path) -> RawSplit:
    try:
        info = path.stat()
    except OSError:
        raise DatasetError(f"the converted set {path} is gone; upload it again") from None
    return _read_cached(str(path), info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> RawSplit:
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != FORMAT_VERSION:
                raise DatasetError(
                    f"{path} was made by another Mixture Lab version; upload it again"
                )
            x, y = data["x"], data["y"].astype(np.int64)
            names = tuple(str(n) for n in data["class_names"])
            kind = str(data["kind"])
    except (OSError, ValueError, KeyError, EOFError) as err:
        if isinstance(err, DatasetError):
            raise
        raise DatasetError(f"unreadable converted set {path} ({err}); delete it") from None
    x.flags.writeable = False
    y.flags.writeable = False
    return RawSplit(x=x, y=y, kind=kind, class_names=names)
