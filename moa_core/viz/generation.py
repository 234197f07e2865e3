"""The latent walk as an animation: one frame per step, a slider and a play button, all in the
browser (paper 001, Figs. 9–10)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from moa_core.viz.images import to_rgb_uint8, upscale

FRAME_MS = 250


def walk_figure(
    images: np.ndarray, values: Sequence[float], title: str, scale: int = 8
) -> go.Figure:
    """Images [S, C, H, W], one per walk value; the slider reads `z = value`."""
    frames = np.stack([upscale(to_rgb_uint8(image), scale) for image in images])
    fig = px.imshow(frames, animation_frame=0, binary_string=True)
    labels = [f"z = {value:+.1f}" for value in values]
    for step, label in zip(fig.layout.sliders[0].steps, labels, strict=True):
        step.label = label
    fig.layout.sliders[0].currentvalue = dict(prefix="")
    menu = fig.layout.updatemenus[0]
    menu.buttons[0].args[1]["frame"]["duration"] = FRAME_MS
    menu.buttons[0].args[1]["transition"]["duration"] = 0
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        title=title,
        height=frames.shape[1] + 190,
        width=max(frames.shape[2] + 80, 420),
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig
