"""What a 2-D model says about every point of the plane: cluster densities on a grid.

Paper 004, Fig. 5 draws each cluster's density h_j(x) as contours over the plane, and
Table 1 its batch mean. Any model works: one with `cluster_density(x)` (neural EM's
h_j = sigmoid(a*_j/γ)) gives densities, any other its posterior (gate probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch
from torch import nn

from moa_core.analysis.eval_mode import eval_mode

GRID_RESOLUTION = 60
GRID_MARGIN = 0.15  # fraction of the data's extent added on every side
TABLE_BATCH = 128  # paper 004, Table 1: "for a given batch of 128 samples"
SNAPSHOT_POINTS = 300  # points per panel on the live plot: SVG markers are most of its cost


@dataclass
class DensityGrid:
    """values[j, r, c] = cluster j's density (or posterior) at (xs[c], ys[r])."""

    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    kind: str  # "density" or "posterior"


def density_kind(model: nn.Module) -> str:
    return "density" if hasattr(model, "cluster_density") else "posterior"


@torch.no_grad()
def cluster_densities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[N, K] densities h_j(x), or posteriors for models without densities, in eval mode."""
    with eval_mode(model):
        if hasattr(model, "cluster_density"):
            return model.cluster_density(x).float()
        return model(x).gate_probs.float()


def square_grid(
    points: torch.Tensor, resolution: int = GRID_RESOLUTION
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A resolution² grid over a square around `points` [N, 2] plus a margin: its x and y
    axes [R] and its points [R², 2] row by row (y outer), on the points' device.

    Square, so a panel drawn at equal scale on both axes is square and the plane undistorted.
    """
    low, high = points.min(0).values.float(), points.max(0).values.float()
    centre, half = (low + high) / 2, float((high - low).max()) * (0.5 + GRID_MARGIN)
    axes = [
        torch.linspace(float(c) - half, float(c) + half, resolution, device=points.device)
        for c in centre
    ]
    gy, gx = torch.meshgrid(axes[1], axes[0], indexing="ij")
    plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(points.dtype)
    return axes[0], axes[1], plane


def density_grid(model: nn.Module, points: torch.Tensor, resolution: int = GRID_RESOLUTION):
    """Evaluate the model on the `square_grid` around `points` [N, 2]."""
    xs, ys, plane = square_grid(points, resolution)
    values = cluster_densities(model, plane).T.reshape(-1, resolution, resolution)
    return DensityGrid(
        xs=xs.cpu().numpy(),
        ys=ys.cpu().numpy(),
        values=values.cpu().numpy(),
        kind=density_kind(model),
    )


def mean_density(model: nn.Module, points: torch.Tensor, seed: int = 0) -> np.ndarray:
    """(1/n) Σ_i h_j(x_i) per cluster over one seeded batch of 128 (paper 004, Table 1, Eq. 3).

    ≈ 0.5 for every cluster when the relevance scores are normalized.
    """
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randperm(len(points), generator=generator)[:TABLE_BATCH].to(points.device)
    return cluster_densities(model, points[batch]).mean(0).cpu().numpy()


class PlaneSnapshot(TypedDict):
    grid: DensityGrid
    points: np.ndarray  # [n, 2], a seeded sample of at most SNAPSHOT_POINTS
    assignments: np.ndarray  # [n], each point's most likely cluster
    mean_density: np.ndarray  # [K], Table 1's row


def plane_snapshot(model: nn.Module, points: torch.Tensor, seed: int = 0) -> PlaneSnapshot:
    """What the live contour plot needs: the grid, a sample of points, their assignments."""
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(points), generator=generator)[:SNAPSHOT_POINTS].sort().values
    shown = points[keep.to(points.device)]
    return PlaneSnapshot(
        grid=density_grid(model, points),
        points=shown.float().cpu().numpy(),
        assignments=cluster_densities(model, shown).argmax(1).cpu().numpy(),
        mean_density=mean_density(model, points, seed),
    )
