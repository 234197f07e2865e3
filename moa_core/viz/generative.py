"""Paper 002's figures of a generative mixture (VaDE, DMVAE), redrawn live: samples per
cluster (Figs. 6, 7, 10, 11), originals beside reconstructions (Figs. 4, 5, 8, 9), a latent
scatter of prior samples and encoded data, and ACC / NMI / ELBO per epoch (§8.1.2).

Pure functions: arrays in, plotly figures out. Image grids are drawn at exact pixel sizes
(`image_scale` fits them to a column); scatters take a shared `extent` so two runs' panels
read on one scale, and colour cluster k alike everywhere (`category_color`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moa_core.viz.images import GAP_COLOR, grid_border, image_grid
from moa_core.viz.latent import category_color
from moa_core.viz.training import MARGIN, epoch_trace, run_color

GAP = 2  # grey pixels between tiles
SEPARATOR = 16  # grey pixels between the originals and the reconstructions
PAIR_COLUMNS = 5  # images per row of each half of the reconstruction figure
MARGIN_SHARE = 0.08  # of the data's extent, added on every side of a scatter
MARKER_PX = 4
Extent = tuple[tuple[float, float], tuple[float, float]]


def image_scale(tile: int, columns: int, max_width: int, largest: int = 4) -> int:
    """The largest whole enlargement (1 … `largest`) at which `columns` tiles of `tile` px and
    their gaps fit in `max_width` px."""
    for scale in range(largest, 1, -1):
        if columns * (tile * scale + GAP) + 2 * grid_border(GAP) <= max_width:
            return scale
    return 1


def _image_figure(grid: np.ndarray, top: int, left: int) -> go.Figure:
    fig = go.Figure(go.Image(z=grid, hoverinfo="skip"))
    fig.update_layout(
        width=grid.shape[1] + left, height=grid.shape[0] + top, margin=dict(l=left, r=0, t=top, b=0)
    )
    return fig


def cluster_samples_figure(samples: np.ndarray, scale: int, title: str = "") -> go.Figure:
    """Row k = images decoded from z ~ N(μ_k, σ²_k) of cluster k (Figs. 6, 7): `samples`
    [K, n, C, H, W]; each row is labelled with its cluster on the left."""
    k, n, _, height, _ = samples.shape
    grid = image_grid(samples.reshape(k * n, *samples.shape[2:]), n, scale, GAP)
    tile = height * scale + GAP
    fig = _image_figure(grid, top=30 if title else 0, left=80)
    fig.update_yaxes(
        tickvals=[grid_border(GAP) + r * tile + tile / 2 for r in range(k)],
        ticktext=[f"cluster {r + 1}" for r in range(k)],
        tickfont_size=13,
        showgrid=False,
        zeroline=False,
        ticks="",
    )
    fig.update_xaxes(visible=False)
    fig.update_layout(title=dict(text=title, x=0, font_size=14))
    return fig


def reconstruction_pairs_figure(
    originals: np.ndarray, reconstructions: np.ndarray, scale: int, columns: int = PAIR_COLUMNS
) -> go.Figure:
    """Originals (left) and their reconstructions (right) in the same places (Figs. 4, 5):
    [N, C, H, W] each, two grids of `columns` images per row side by side."""
    left = image_grid(originals, columns, scale, GAP)
    right = image_grid(reconstructions, columns, scale, GAP)
    separator = np.full((left.shape[0], SEPARATOR, 3), 255 - GAP_COLOR // 3, np.uint8)
    grid = np.concatenate([left, separator, right], axis=1)
    fig = _image_figure(grid, top=30, left=0)
    half = left.shape[1]
    fig.update_xaxes(
        tickvals=[half / 2, half + SEPARATOR + half / 2],
        ticktext=["original", "reconstruction"],
        side="top",
        tickfont_size=14,
        showgrid=False,
        zeroline=False,
        ticks="",
    )
    fig.update_yaxes(visible=False)
    return fig


def square_extent(points: np.ndarray, margin: float = MARGIN_SHARE) -> Extent:
    """A square window around `points` [..., 2] with a margin, for equal axes."""
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    low, high = flat.min(0), flat.max(0)
    centre, half = (low + high) / 2, max(float((high - low).max()), 1e-6) * (0.5 + margin)
    x, y = centre
    return (x - half, x + half), (y - half, y + half)


def cluster_scatter(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
    num_clusters: int,
    extent: Extent | None = None,
    title: str = "",
    height: int = 360,
) -> go.Figure:
    """Side-by-side panels of 2-D points coloured by cluster: `(panel title, points [N, 2],
    cluster [N])` each, one legend entry per cluster, the same square window for every panel
    (`extent`, else one around all the points)."""
    extent = extent or square_extent(np.concatenate([points for _, points, _ in panels]))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _, _ in panels])
    for column, (_, points, clusters) in enumerate(panels, start=1):
        for k in range(num_clusters):
            mine = points[clusters == k]
            fig.add_trace(
                go.Scatter(
                    x=mine[:, 0],
                    y=mine[:, 1],
                    mode="markers",
                    name=f"cluster {k + 1}",
                    legendgroup=str(k),
                    showlegend=column == 1,
                    marker=dict(size=MARKER_PX, color=category_color(k, num_clusters)),
                    hovertemplate=f"cluster {k + 1}<extra></extra>",
                ),
                row=1,
                col=column,
            )
        axis = dict(range=extent[0], showticklabels=False, zeroline=False)
        fig.update_xaxes(axis, row=1, col=column)
        anchor = "x" if column == 1 else f"x{column}"
        fig.update_yaxes(
            range=extent[1],
            showticklabels=False,
            zeroline=False,
            scaleanchor=anchor,
            row=1,
            col=column,
        )
    fig.update_layout(
        title=dict(text=title, x=0, font_size=14),
        height=height,
        margin=dict(l=10, r=10, t=60 if title else 40, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.02, itemsizing="constant"),
    )
    return fig


def progress_figure(
    scores: Mapping[str, Sequence[Mapping]], elbos: Mapping[str, Sequence[Mapping]]
) -> go.Figure:
    """Left: ACC (solid) and NMI (dotted) after each epoch; right: the ELBO per sample after
    each epoch, on one axis for every run (the same data, so the bounds compare). Epochs a
    run spent pretraining (a plain VAE, `pretraining` rows) are drawn as open markers.

    `scores[label]`: `JobState.epochs` rows (`epoch`, `acc`, `nmi`); `elbos[label]`: rows of
    `epoch`, `elbo`, `pretraining`, epoch 0 (the initial weights) left out."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "ACC and NMI (dotted) after each epoch",
            "ELBO per sample (higher: better)",
        ),
        horizontal_spacing=0.1,
    )
    for i, (label, rows) in enumerate(scores.items()):
        for metric, dash in (("acc", "solid"), ("nmi", "dot")):
            fig.add_trace(
                epoch_trace(
                    rows,
                    metric,
                    name=f"{label} {metric.upper()}",
                    legendgroup=label,
                    showlegend=False,
                    line=dict(color=run_color(i), dash=dash),
                ),
                row=1,
                col=1,
            )
    for i, (label, rows) in enumerate(elbos.items()):
        shown = [row for row in rows if row["epoch"] >= 1]
        fig.add_trace(
            epoch_trace(
                shown,
                "elbo",
                name=label,
                legendgroup=label,
                line=dict(color=run_color(i)),
                marker=dict(
                    symbol=["circle-open" if row["pretraining"] else "circle" for row in shown],
                    size=7,
                ),
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(range=[0, 1.02], title_text="score", row=1, col=1)
    fig.update_yaxes(title_text="ELBO", row=1, col=2)
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_layout(
        height=340,
        margin=MARGIN,
        legend=dict(orientation="h", yanchor="top", y=-0.25),
    )
    return fig
