"""Pictures of what a unit likes: top/bottom images beside the synthesized one (paper 004,
Fig. 8), and how the unit's activation grew while the image was synthesized."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from moa_core.viz.images import GAP_COLOR, image_grid
from moa_core.viz.latent import category_color

GROUP_GAP = 3  # extra tiles' worth of white between top | bottom | synthesized


def maximization_grid(
    top: np.ndarray, bottom: np.ndarray, synthesized: np.ndarray, scale: int = 3, gap: int = 2
) -> np.ndarray:
    """One row per unit: its k top images, its k bottom images, then the synthesized image.

    `top` and `bottom` are `[U, k, C, H, W]`, `synthesized` `[U, C, H, W]`; returns uint8
    `[H', W', 3]` with wide white gaps between the three groups.
    """
    top, bottom, synthesized = np.asarray(top), np.asarray(bottom), np.asarray(synthesized)
    if top.ndim != 5 or top.shape != bottom.shape or synthesized.shape != top[:, 0].shape:
        raise ValueError(
            f"expected top/bottom [U, k, C, H, W] and synthesized [U, C, H, W], got "
            f"{top.shape}, {bottom.shape}, {synthesized.shape}"
        )
    units, k = top.shape[:2]
    parts = [
        image_grid(top.reshape(units * k, *top.shape[2:]), k, scale, gap),
        image_grid(bottom.reshape(units * k, *bottom.shape[2:]), k, scale, gap),
        image_grid(synthesized, 1, scale, gap),
    ]
    spacer = np.full((parts[0].shape[0], GROUP_GAP * gap * scale, 3), GAP_COLOR, np.uint8)
    return np.concatenate([parts[0], spacer, parts[1], spacer, parts[2]], axis=1)


def activation_figure(
    history: np.ndarray, best_dataset: np.ndarray, units: list[int], height: int = 320
) -> go.Figure:
    """One line per unit: its activation at each synthesis step; a dotted level marks the
    unit's best dataset image, so the crossing point is visible."""
    history = np.asarray(history)
    steps = np.arange(history.shape[0])
    fig = go.Figure()
    for column, unit in enumerate(units):
        color = category_color(unit, max(units) + 1)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=history[:, column],
                mode="lines",
                line={"color": color},
                name=f"cluster {unit + 1}",
                legendgroup=str(unit),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[steps[0], steps[-1]],
                y=[best_dataset[column]] * 2,
                mode="lines",
                line={"color": color, "dash": "dot", "width": 1},
                name=f"cluster {unit + 1}: best dataset image",
                legendgroup=str(unit),
                showlegend=False,
            )
        )
    fig.update_layout(
        height=height,
        xaxis_title="synthesis step",
        yaxis_title="unit activation (before the activation function)",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig
