"""Paper 002's spiral (`spiral25k`): the generator facts of spec §5.1.8, on the paper's scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moa_core.data import load_dataset, point_set_names
from moa_core.data.toy import PAPER_SPIRAL


@pytest.fixture(scope="module")
def sides():
    return load_dataset(PAPER_SPIRAL), load_dataset(PAPER_SPIRAL, "test")


def test_shapes_and_kind(sides) -> None:
    train, test = sides
    assert train.x.shape == (25_000, 2) and test.x.shape == (5_000, 2)
    assert train.kind == test.kind == "points" and train.x.dtype == torch.float32
    assert train.class_names == [f"arm {arm}" for arm in range(5)]
    assert PAPER_SPIRAL in point_set_names()


def test_radii_span_the_paper_range_and_each_arm_starts_at_2_5(sides) -> None:
    for data, per_arm in zip(sides, (5_000, 1_000), strict=True):
        radius = data.x.double().norm(dim=1)
        assert radius.min() == pytest.approx(2.5, abs=1e-6)
        assert radius.max() == pytest.approx(10.0, abs=1e-6)
        # Noise is on the angle only, so the radii are linspace(2.5, 10, N) in every arm.
        expected = torch.linspace(2.5, 10.0, per_arm, dtype=torch.float64).repeat(5)
        assert torch.allclose(radius, expected, atol=1e-5)
        assert torch.allclose(radius[::per_arm], torch.full((5,), 2.5, dtype=torch.float64))


def test_not_standardized(sides) -> None:
    """The loader's per-column standardization is off: Table 1's errors are on this scale."""
    train, _ = sides
    assert train.x.std(dim=0).min() > 3.0  # a standardized column has std 1


def test_labels_are_blocks_of_one_arm(sides) -> None:
    for data, per_arm in zip(sides, (5_000, 1_000), strict=True):
        expected = torch.arange(5).repeat_interleave(per_arm)
        assert torch.equal(data.y, expected)


def test_arm_angles_follow_the_formula(sides) -> None:
    """Arm j's first point sits at t ≈ 1.25 j and its last at t ≈ 1.25 (j + 1), x = (r sin t,
    r cos t), give or take the 0.05·N(0, 1) angle noise (5 σ = 0.25)."""
    train, _ = sides
    t = np.arctan2(train.x[:, 0].numpy(), train.x[:, 1].numpy())
    first, last = t[::5_000], t[4_999::5_000]
    assert _angle_gap(first, 1.25 * np.arange(5)).max() < 0.25
    assert _angle_gap(last, 1.25 * np.arange(1, 6)).max() < 0.25


def test_seeded(sides) -> None:
    train, test = sides
    assert torch.equal(load_dataset(PAPER_SPIRAL).x, train.x)
    assert not torch.equal(load_dataset(PAPER_SPIRAL, seed=1).x, train.x)
    assert not torch.equal(test.x, train.x[:5_000])


def _angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| on the circle, in [0, π]."""
    return np.abs(np.angle(np.exp(1j * (a - b))))
