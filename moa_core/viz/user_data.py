"""Previews of a user's own set for the Your data page: a row of sample images per class, or
the points coloured by label, so a wrong layout (classes mixed up, a stray folder) shows at a
glance before anything is trained."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from moa_core.data.dataset import RawSplit
from moa_core.data.image_folder import UNLABELLED
from moa_core.viz.images import image_grid
from moa_core.viz.latent import category_color

PER_CLASS = 8  # images shown per class
PREVIEW_PIXELS = 84  # on-screen side of one sample: 28-px greyscale sets are drawn 3× larger
MAX_POINTS = 5000  # a seeded sample of bigger point sets is drawn (the counts are all of them)


@dataclass(frozen=True)
class ClassRow:
    name: str
    count: int
    picture: np.ndarray  # uint8 [H, W, 3]: the first PER_CLASS images of the class in a row


def class_rows(data: RawSplit) -> list[ClassRow]:
    """One row per class of an image set, in label order (classes without images left out)."""
    scale = max(1, PREVIEW_PIXELS // int(data.x.shape[-1]))
    rows = []
    for label, name in enumerate(data.class_names):
        mine = np.flatnonzero(data.y == label)
        if mine.size:
            images = data.x[mine[:PER_CLASS]]
            if images.dtype == np.uint8:
                images = images / 255.0
            picture = image_grid(images, columns=PER_CLASS, scale=scale, gap=2)
            rows.append(ClassRow(name, int(mine.size), picture))
    return rows


def points_figure(data: RawSplit, title: str) -> go.Figure:
    """The standardized points, one colour and legend entry per class (with its count)."""
    x, y = data.x, data.y
    shown = np.zeros(len(y), dtype=bool)
    shown[np.random.default_rng(0).permutation(len(y))[:MAX_POINTS]] = True
    fig = go.Figure()
    for label, name in enumerate(data.class_names):
        mine = y == label
        fig.add_trace(
            go.Scatter(
                x=x[mine & shown, 0],
                y=x[mine & shown, 1],
                mode="markers",
                name=f"{name} ({int(mine.sum())})",
                marker=dict(
                    size=5, color=category_color(label, len(data.class_names)), opacity=0.8
                ),
            )
        )
    fig.update_layout(
        title=dict(text=title, x=0.01),
        template="plotly_white",
        height=520,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(title="class (points)", itemsizing="constant"),
        xaxis=dict(title="x (standardized)", zeroline=False),
        yaxis=dict(title="y (standardized)", zeroline=False, scaleanchor="x", scaleratio=1),
    )
    return fig


def summary(data: RawSplit) -> str:
    """What a set holds, in one phrase: "60 images, 3 classes, greyscale 28×28"."""
    count = f"{len(data.y):,} {'images' if data.kind == 'image' else 'points'}"
    classes = f"{len(data.class_names)} classes"
    if data.class_names == (UNLABELLED,):
        classes = "no labels"
    if data.kind != "image":
        return f"{count}, {classes}"
    channels, side = data.x.shape[1], data.x.shape[2]
    return f"{count}, {classes}, {'greyscale' if channels == 1 else 'colour'} {side}×{side}"
