"""2-D point sets generated on the fly, for watching experts carve up a plane."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import make_blobs, make_moons

from moa_core.data.dataset import RawSplit

TRAIN_POINTS = 1500
TEST_POINTS = 500
# The test split uses a different seed so its points are new draws from the same shapes.
TEST_SEED_OFFSET = 10_000

SPIRAL_ARMS = 5
# Paper 002's spiral ([REPO]): each arm turns 1.25 rad, angle noise 0.05·N(0, 1). Named for
# its size, which sets it apart from `spiral` in a dataset list and warns of the cost.
PAPER_SPIRAL = "spiral25k"
PAPER_SPIRAL_TURN, PAPER_SPIRAL_NOISE = 1.25, 0.05
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


def _paper_spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paper 002's spiral ([REPO] `utils.spiral`, spec §2.1): arm j has N = n/5 points with
    r = linspace(2.5, 10, N), t = linspace(1.25 j, 1.25 (j + 1), N) + 0.05 ε, x = (r sin t,
    r cos t); noise only on the angle, so ‖x‖ = r exactly. Labels come in blocks of N."""
    per_arm = n // SPIRAL_ARMS
    radius = np.tile(np.linspace(2.5, 10.0, per_arm), SPIRAL_ARMS)
    labels = np.repeat(np.arange(SPIRAL_ARMS), per_arm)
    start = PAPER_SPIRAL_TURN * np.arange(SPIRAL_ARMS)
    t = np.linspace(start, start + PAPER_SPIRAL_TURN, per_arm, axis=1).ravel()
    t = t + PAPER_SPIRAL_NOISE * rng.normal(size=t.shape)
    return np.stack([radius * np.sin(t), radius * np.cos(t)], axis=1), labels


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


@dataclass(frozen=True)
class ToySet:
    """How to make one toy set: `standardize` scales each column to mean 0 and std 1 (off for
    a set whose numbers a paper reports on its own scale)."""

    make: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    prefix: str  # class names are "{prefix} {label}"
    num_classes: int
    train_points: int = TRAIN_POINTS
    test_points: int = TEST_POINTS
    standardize: bool = True


_TOYS = {
    "spiral": ToySet(_spiral, "arm", SPIRAL_ARMS),
    # Paper 002's spiral, on its own scale: Table 1's regression errors are on it (spec §2.3).
    PAPER_SPIRAL: ToySet(
        _paper_spiral, "arm", SPIRAL_ARMS, 5_000 * SPIRAL_ARMS, 1_000 * SPIRAL_ARMS, False
    ),
    "rings": ToySet(_rings, "ring", len(RING_RADII)),
    "moons": ToySet(_moons, "class", 2),
    "blobs": ToySet(_blobs, "class", len(BLOB_CENTERS)),
}

TOY_NAMES = tuple(sorted(_TOYS))


def load_toy_split(name: str, split: str, seed: int) -> RawSplit:
    """Points of one toy set as float32 [N, 2], standardized per column but for spiral25k.

    spiral: 5 arms (labels 0..4); spiral25k: paper 002's 5-arm spiral, 25,000 / 5,000 points
    with radii 2.5–10 (see `_paper_spiral`); rings: 3 concentric noisy rings of radius 1, 2, 3
    (labels 0..2, chosen over make_circles' two rings for a harder clustering); moons:
    sklearn's make_moons; blobs: sklearn's make_blobs around 4 fixed centers. Same seed, same
    points.
    """
    toy = _TOYS[name]
    n, offset = (toy.train_points, 0) if split == "train" else (toy.test_points, TEST_SEED_OFFSET)
    points, labels = toy.make(n, np.random.default_rng(seed + offset))
    if toy.standardize:
        points = (points - points.mean(axis=0)) / points.std(axis=0)
    return RawSplit(
        x=points.astype(np.float32),
        y=labels.astype(np.int64),
        kind="points",
        class_names=tuple(f"{toy.prefix} {i}" for i in range(toy.num_classes)),
    )
