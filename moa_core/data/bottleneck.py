"""2-D point sets made from image sets the way paper 004 (Sec. 8.1, Fig. 4a) made its plane.

A small CNN with a 2-unit bottleneck before its 10-way classifier is trained on the image
set's training split with labels; the bottleneck outputs of every image are the points.
Supervision makes the classes visible groups on the plane, so an unsupervised method can be
judged by eye. Built once per set, then read from `MOA_CACHE_DIR` (default ~/.cache/moa_lab),
whose total size `MOA_CACHE_MAX_MB` bounds (a build that would go past it is refused in one
line and writes nothing).
"""

from __future__ import annotations

import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moa_core.data.cache import cache_dir, check_cache_room, write_atomic
from moa_core.data.dataset import Dataset, DatasetError, RawSplit

BOTTLENECK_SETS = {"digits2d": "digits", "mnist2d": "mnist", "usps2d": "usps"}
FORMAT_VERSION = 1  # bump when the recipe changes, so stale caches are rebuilt
EPOCHS, MIN_STEPS, BATCH_SIZE, SEED = 8, 1000, 128, 0
# One lock per set: two jobs asking for one set build it once, and a set being built (a
# minute for MNIST) holds up neither another set's build nor the loading of a built one.
_BUILD_LOCKS = {name: threading.Lock() for name in BOTTLENECK_SETS}

ImageLoader = Callable[[str, str], Dataset]
Progress = Callable[[int, int], None]  # (training steps done, steps in all)
PROGRESS_REPORTS = 50  # how many times a build reports its progress


def cache_path(name: str) -> Path:
    return cache_dir() / f"{name}-v{FORMAT_VERSION}.npz"


def is_built(name: str) -> bool:
    """Whether `name`'s points are cached, i.e. loading it trains nothing."""
    return cache_path(name).exists()


def build_bottleneck(
    name: str, load_images: ImageLoader, on_progress: Progress | None = None
) -> Path:
    """Build and cache `name` unless it is cached already; return the cache file.

    `on_progress` may raise to abandon the build: then nothing is written.
    """
    path = cache_path(name)
    if path.exists():  # built: read without waiting on any build
        return path
    with _BUILD_LOCKS[name]:
        if not path.exists():
            check_cache_room(0)  # a full cache: refused before a minute of training
            write_atomic(path, build_points(BOTTLENECK_SETS[name], load_images, on_progress))
    return path


def load_bottleneck_split(name: str, split: str, load_images: ImageLoader) -> RawSplit:
    """The points of `name` ("mnist2d") for `split`, building the cached file on first use."""
    path = build_bottleneck(name, load_images)
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data[f"x_{split}"], data[f"y_{split}"]
            names = tuple(str(n) for n in data["class_names"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DatasetError(
            f"unreadable 2-D point cache {path} ({err}); delete it to rebuild"
        ) from None
    return RawSplit(x=x.astype(np.float32), y=y.astype(np.int64), kind="points", class_names=names)


class BottleneckNet(nn.Module):
    """conv-pool-conv-pool → 64 → 2 (the bottleneck, linear) → classes.

    The classifier scores a class by the negative squared distance to its learned centre on
    the plane, so each class becomes one round group (a linear softmax layer would spread
    the classes into rays from the origin that touch at the centre).
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int) -> None:
        super().__init__()
        side = image_size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * side * side, 64),
            nn.ReLU(),
            nn.Linear(64, 2),
        )
        self.centres = nn.Parameter(torch.randn(num_classes, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self.encoder(x), self.centres).pow(2)


def build_points(
    base: str, load_images: ImageLoader, on_progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Train the bottleneck CNN on `base`'s training split and map both splits to 2-D.

    `on_progress(done, total)` hears about the training steps, from 0 to `total`.
    """
    report = on_progress or (lambda done, total: None)
    train, test = load_images(base, "train"), load_images(base, "test")
    print(f"building {base}2d: training a 2-unit bottleneck CNN (once)", file=sys.stderr)
    labels = torch.unique(train.y)
    targets = torch.searchsorted(labels, train.y)
    total = max(MIN_STEPS, EPOCHS * len(train) // BATCH_SIZE)
    every = -(-total // PROGRESS_REPORTS)
    report(0, total)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        channels, side, _ = train.image_shape
        net = BottleneckNet(channels, side, len(labels))
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        for step in range(1, total + 1):
            batch = torch.randint(0, len(train), (BATCH_SIZE,))
            loss = F.cross_entropy(net(train.x[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % every == 0 or step == total:
                report(step, total)
    net.eval()
    with torch.no_grad():
        points = {split: _embed(net, data.x) for split, data in (("train", train), ("test", test))}
    # One shift and one scale for both splits: the plane keeps its shape, near unit spread.
    center, scale = points["train"].mean(0), points["train"].std()
    return {
        "x_train": (points["train"] - center) / scale,
        "y_train": train.y.numpy(),
        "x_test": (points["test"] - center) / scale,
        "y_test": test.y.numpy(),
        "class_names": np.array(train.class_names),
    }


def _embed(net: BottleneckNet, x: torch.Tensor) -> np.ndarray:
    return torch.cat([net.encoder(chunk) for chunk in x.split(2048)]).numpy()
