"""Find the image sets (MNIST, Fashion-MNIST, USPS, CIFAR-10) on disk, or download them.

Lookup order, first hit wins:
  1. `MOA_DATA_DIR/<name>.npz` (x_train, y_train, x_test, y_test);
  2. IDX files in `MOA_DATA_DIR/<name>/` or torchvision's `MNIST/raw`, `FashionMNIST/raw`;
  3. torchvision's own files for USPS (`usps.bz2`, `usps.t.bz2`, plain text) and CIFAR-10
     (`cifar-10-batches-py/`), read by torchvision, which checks the official MD5s before
     it unpickles CIFAR's batches, so only the genuine files are ever unpickled;
  4. Fashion-MNIST only: Debian's `dataset-fashion-mnist` IDX files;
  5. a torchvision download into `MOA_DATA_DIR`, or `~/.cache/moa_lab` when it is unset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from moa_core.data.convert import as_images, as_labels
from moa_core.data.dataset import DatasetError, RawSplit
from moa_core.data.idx import find_idx_pair, read_idx
from moa_core.data.npz import read_npz_split

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_CACHE = Path.home() / ".cache" / "moa_lab"
_DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class _ImageSet:
    class_names: tuple[str, ...]
    idx_dirs: tuple[str, ...]  # folders under MOA_DATA_DIR that may hold IDX files
    torchvision_class: str  # attribute of torchvision.datasets
    torchvision_files: tuple[str, str] | None = None  # (train, test) files torchvision reads


IMAGE_SETS = {
    "mnist": _ImageSet(_DIGITS, ("mnist", "MNIST/raw"), "MNIST"),
    "fashion_mnist": _ImageSet(
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        ("fashion_mnist", "FashionMNIST/raw"),
        "FashionMNIST",
    ),
    "usps": _ImageSet(_DIGITS, ("usps",), "USPS", ("usps.bz2", "usps.t.bz2")),
    "cifar10": _ImageSet(
        (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        ("cifar10",),
        "CIFAR10",
        ("cifar-10-batches-py", "cifar-10-batches-py"),
    ),
}


def data_dir() -> Path | None:
    """The folder named by MOA_DATA_DIR, or None when the variable is unset or empty."""
    value = os.environ.get("MOA_DATA_DIR", "").strip()
    return Path(value).expanduser() if value else None


def load_image_split(name: str, split: str) -> RawSplit:
    """One split of an image set, read once per process and data folder, then cached."""
    return _load_cached(name, split, data_dir())


@lru_cache(maxsize=8)
def _load_cached(name: str, split: str, root: Path | None) -> RawSplit:
    info = IMAGE_SETS[name]
    found = _read_local(name, split, root)
    if found is None:
        found = _download(name, split, root)
    x, y, source = found
    images = as_images(x, source)
    labels = as_labels(y, images.shape[0], len(info.class_names), source)
    return RawSplit(x=images, y=labels, kind="image", class_names=info.class_names)


def _read_local(
    name: str, split: str, root: Path | None
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(x, y, where) from the first local source in the module docstring's order, or None."""
    info = IMAGE_SETS[name]
    if root is not None:
        npz = root / f"{name}.npz"
        if npz.is_file():
            return (*read_npz_split(npz, split), str(npz))
        for sub in info.idx_dirs:
            pair = find_idx_pair(root / sub, split)
            if pair is not None:
                return read_idx(pair[0]), read_idx(pair[1]), str(pair[0])
        if info.torchvision_files is not None:
            marker = root / info.torchvision_files[split == "test"]
            if marker.exists():
                try:
                    x, y = _torchvision(name, split, root, download=False)
                except Exception as exc:  # torchvision raises RuntimeError, OSError, ...
                    raise DatasetError(
                        f"{name}: torchvision could not read {marker}: {exc}"
                    ) from exc
                return x, y, str(marker)
    if name == "fashion_mnist":
        pair = find_idx_pair(DEBIAN_FASHION_MNIST, split)
        if pair is not None:
            return read_idx(pair[0]), read_idx(pair[1]), str(pair[0])
    return None


def _torchvision(
    name: str, split: str, root: Path, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Arrays from torchvision's dataset class (imported lazily: it is slow to import)."""
    from torchvision import datasets

    cls = getattr(datasets, IMAGE_SETS[name].torchvision_class)
    ds = cls(str(root), train=split == "train", download=download)
    return np.asarray(ds.data), np.asarray(ds.targets)


def _download(name: str, split: str, root: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    target = root if root is not None else DOWNLOAD_CACHE
    try:
        x, y = _torchvision(name, split, target, download=True)
    except Exception as exc:  # offline, proxy, disk full, read-only folder: all mean "not found"
        raise DatasetError(_not_found_message(name, root, exc)) from exc
    return x, y, f"{name} downloaded to {target}"


def _not_found_message(name: str, root: Path | None, exc: Exception) -> str:
    if root is None:
        where = "currently unset"
    elif root.is_dir():
        where = f"currently {root}"
    else:
        where = f"currently {root}, which is not a folder"
    debian = " or apt-get install dataset-fashion-mnist" if name == "fashion_mnist" else ""
    offline = isinstance(exc, OSError) or "urlopen" in str(exc) or "download" in str(exc)
    reason = "no network" if offline else type(exc).__name__
    return (
        f"{name}: no data found — put {name}.npz (x_train, y_train, x_test, y_test) "
        f"in MOA_DATA_DIR ({where}){debian}; download failed: {reason}"
    )
