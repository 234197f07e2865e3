"""2-D point sets generated on the fly, for watching experts carve up a plane."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_blobs, make_moons

from moa_core.data.dataset import RawSplit

TRAIN_POINTS = 1500
TEST_POINTS = 500
# The test split uses a different seed so its points are new draws from the same shapes.
TEST_SEED_OFFSET = 10_000

SPIRAL_ARMS = 5
RING_RADII = (1.0, 2.0, 3.0)
# Fixed centers: seeding make_blobs' centers would give train and test different shapes.
BLOB_CENTERS = np.array([[-4.0, -4.0], [-4.0, 4.0], [4.0, -4.0], [4.0, 4.0]])


def _spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % SPIRAL_ARMS
    t = rng.uniform(0.05, 1.0, size=n)
    angle = 2 * np.pi * labels / SPIRAL_ARMS + 1.5 * np.pi * t
    radius = t + rng.normal(0.0, 0.02, size=n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points, labels


def _rings(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % len(RING_RADII)
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    radius = np.asarray(RING_RADII)[labels] + rng.normal(0.0, 0.1, size=n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points, labels


def _moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    seed = int(rng.integers(2**31 - 1))
    return make_moons(n_samples=n, noise=0.08, random_state=seed)


def _blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    seed = int(rng.integers(2**31 - 1))
    return make_blobs(n_samples=n, centers=BLOB_CENTERS, cluster_std=1.0, random_state=seed)


# name -> (generator, class-name prefix, number of classes)
_TOYS = {
    "spiral": (_spiral, "arm", SPIRAL_ARMS),
    "rings": (_rings, "ring", len(RING_RADII)),
    "moons": (_moons, "class", 2),
    "blobs": (_blobs, "class", len(BLOB_CENTERS)),
}

TOY_NAMES = tuple(sorted(_TOYS))


def load_toy_split(name: str, split: str, seed: int) -> RawSplit:
    """Points of one toy set, standardized per column, as float32 [N, 2].

    spiral: 5 arms (labels 0..4); rings: 3 concentric noisy rings of radius 1, 2, 3 (labels
    0..2, chosen over make_circles' two rings for a harder clustering); moons: sklearn's
    make_moons; blobs: sklearn's make_blobs around 4 fixed centers. Same seed, same points.
    """
    make, prefix, n_classes = _TOYS[name]
    n, offset = (TRAIN_POINTS, 0) if split == "train" else (TEST_POINTS, TEST_SEED_OFFSET)
    points, labels = make(n, np.random.default_rng(seed + offset))
    points = (points - points.mean(axis=0)) / points.std(axis=0)
    return RawSplit(
        x=points.astype(np.float32),
        y=labels.astype(np.int64),
        kind="points",
        class_names=tuple(f"{prefix} {i}" for i in range(n_classes)),
    )
