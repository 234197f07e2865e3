"""Pictures of what a unit likes: top/bottom images beside the synthesized one (paper 004,
Fig. 8), and how the unit's activation grew while the image was synthesized."""

from __future__ import annotations

from collections.abc import Sequence

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


LEGEND_ROW_PX = 32  # a legend entry's height at the figure's font size


def activation_figure(
    history: np.ndarray,
    best_dataset: np.ndarray,
    names: list[str],
    blur_steps: Sequence[int] = (),
    total_steps: int | None = None,
    height: int = 380,
) -> go.Figure:
    """One line per unit: its activation at each synthesis step; a dotted level marks the
    unit's best dataset image, so the crossing point is visible. Grey verticals mark the steps
    where the image was blurred: each one explains a dip of the sawtooth.

    The legend sits at the right, one entry per unit named as the page's table names it. With
    `total_steps` the axis spans the whole run, so a synthesis in progress draws lines that grow.
    """
    history = np.asarray(history)
    steps = np.arange(history.shape[0])
    fig = go.Figure()
    for column, name in enumerate(names):
        color = category_color(column, len(names))
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=history[:, column],
                mode="lines",
                line={"color": color, "width": 2},
                name=name,
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[steps[0], steps[-1]],
                y=[best_dataset[column]] * 2,
                mode="lines",
                line={"color": color, "dash": "dot", "width": 1.5},
                name=f"{name}: best dataset image",
                legendgroup=name,
                showlegend=False,
            )
        )
    shown = [s for s in blur_steps if s <= steps[-1]]
    if shown:
        low = float(min(history.min(), np.min(best_dataset)))
        high = float(max(history.max(), np.max(best_dataset)))
        fig.add_trace(
            go.Scatter(
                x=[x for s in shown for x in (s, s, None)],
                y=[y for _ in shown for y in (low, high, None)],
                mode="lines",
                line={"color": "rgba(120,120,120,0.5)", "width": 1},
                name="blur (dips the line)",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        # Tall enough for every legend entry (units and the blur) without a scroll bar.
        height=max(height, LEGEND_ROW_PX * (len(names) + 1) + 120),
        xaxis={"title": "synthesis step", "range": [0, total_steps or steps[-1]]},
        yaxis_title="activation (before the nonlinearity)",
        legend={"x": 1.02, "y": 1, "xanchor": "left", "font": {"size": 14}},
        font={"size": 14},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig
