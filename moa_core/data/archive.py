"""The image files of a user set, from a zip upload (read in memory) or a folder on disk.

Everything that can be judged without decoding an image is judged first, each problem one
`DatasetError` line naming the file: a zip is checked by its magic bytes, then from its
directory alone for paths that escape it (`../`, absolute paths, drive letters, symbolic
links), too many files (`MOA_DATA_MAX_FILES`), too many bytes once unpacked
(`MOA_DATA_MAX_MB`) and absurd compression ratios (zip bombs). Nothing is ever extracted to
disk: a member is decompressed only when its image is converted, and zipfile stops at its
declared size and checks its CRC. OS junk (`__MACOSX/`, `.DS_Store`, `Thumbs.db`,
`desktop.ini`, `._*` resource forks) is skipped; any other file that is not named as an
image is refused by name.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moa_core.data.dataset import DatasetError
from moa_core.limits import env_number, size_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
JUNK_FOLDERS = frozenset({"__MACOSX"})
JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_MB = 512
# Deflate packs at most ~1,030:1 (a blank bitmap comes close); a member packed far tighter,
# by bzip2 or lzma, is a bomb, never an image.
MAX_RATIO = 2000
RATIO_MIN_BYTES = 2**20  # tiny members may have any ratio: they cannot hurt
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ImageFile:
    """One image of a set: its path inside the set and how to get its bytes."""

    parts: tuple[str, ...]
    read: Callable[[], bytes]

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def max_files() -> int:
    return int(_limit("MOA_DATA_MAX_FILES", DEFAULT_MAX_FILES))


def max_bytes() -> float:
    return _limit("MOA_DATA_MAX_MB", DEFAULT_MAX_MB) * 2**20


def zip_images(data: bytes, source: str) -> list[ImageFile]:
    """The image members of the zip `data` (named `source` in messages), checked as the
    module docstring says; their bytes are read from `data` only when asked for."""
    if data[:4] not in _ZIP_MAGIC:
        raise DatasetError(f"{source} is not a zip file (upload a .zip of images or a .csv)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{source} is not a readable zip file: {err}") from None
    _check_count(len(members), source)
    unpacked = sum(info.file_size for info in members)
    if unpacked > max_bytes():
        raise DatasetError(
            f"{source} unpacks to {size_text(unpacked)}, over the {size_text(max_bytes())} limit "
            "(MOA_DATA_MAX_MB): a zip bomb, or a set too large for this lab"
        )
    files = []
    for info in members:
        parts = _safe_parts(info, source)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and ratio > MAX_RATIO:
            raise DatasetError(
                f"{source}: '{info.filename}' unpacks to {ratio:,.0f}× its packed size, "
                "the mark of a zip bomb; nothing was read"
            )
        files.append(ImageFile(parts, _member_reader(archive, info, source)))
    return _images_only(files, source)


def folder_images(root: Path, source: str) -> list[ImageFile]:
    """The image files under the folder `root`, which may not hold symbolic links."""
    files: list[ImageFile] = []
    total = 0
    for folder, dirs, names in os.walk(root):
        for name in sorted([*dirs, *names]):
            path = Path(folder, name)
            if path.is_symlink():
                raise DatasetError(
                    f"{source}: '{path.relative_to(root)}' is a symbolic link; "
                    "copy the files in instead"
                )
        for name in names:
            path = Path(folder, name)
            files.append(ImageFile(path.relative_to(root).parts, path.read_bytes))
            total += path.stat().st_size
        _check_count(len(files), source)
    if total > max_bytes():
        raise DatasetError(
            f"{source} holds {size_text(total)}, over the {size_text(max_bytes())} limit "
            "(MOA_DATA_MAX_MB)"
        )
    return _images_only(files, source)


def _is_junk(parts: tuple[str, ...]) -> bool:
    name = parts[-1]
    return bool(JUNK_FOLDERS & set(parts[:-1])) or name in JUNK_FILES or name.startswith("._")


def _images_only(files: list[ImageFile], source: str) -> list[ImageFile]:
    kept = [file for file in files if not _is_junk(file.parts)]
    for file in kept:
        if not file.parts[-1].lower().endswith(IMAGE_SUFFIXES):
            raise DatasetError(
                f"{source}: '{file.path}' is not an image (expected PNG, JPEG, GIF, BMP, TIFF, "
                "WebP or PPM files only)"
            )
    if not kept:
        raise DatasetError(f"{source} holds no images")
    return sorted(kept, key=lambda file: file.parts)


def _safe_parts(info: zipfile.ZipInfo, source: str) -> tuple[str, ...]:
    """The member's path as parts, refusing any that could land outside the zip's folder."""
    name = info.filename.replace("\\", "/")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if name.startswith("/") or _DRIVE.match(name) or ".." in parts or not parts:
        raise DatasetError(
            f"{source}: '{info.filename}' points outside the zip's folder (an absolute path, "
            "a drive letter or ../); nothing was read"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DatasetError(
            f"{source}: '{info.filename}' is a symbolic link; zip the files themselves"
        )
    return parts


def _member_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str):
    def read() -> bytes:
        try:
            return archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as err:
            raise DatasetError(f"{source}: cannot unpack '{info.filename}': {err}") from None

    return read


def _check_count(count: int, source: str) -> None:
    if count > max_files():
        raise DatasetError(
            f"{source} holds more than {max_files():,} files (MOA_DATA_MAX_FILES); "
            "use a smaller sample"
        )


def _limit(name: str, default: float) -> float:
    try:
        return env_number(name, default)
    except ValueError as err:
        raise DatasetError(str(err)) from None
