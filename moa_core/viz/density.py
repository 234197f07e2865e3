"""Cluster densities over the plane (paper 004, Fig. 5) and their batch means (Table 1)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moa_core.analysis.density import DensityGrid
from moa_core.viz.latent import category_color

PANEL_COLUMNS = 3


def density_contours(
    grid: DensityGrid,
    clusters: list[int],
    points: np.ndarray | None = None,
    assignments: np.ndarray | None = None,
    title: str = "",
    height_per_row: int = 260,
) -> go.Figure:
    """One panel per chosen cluster: filled contours of its density, points on top.

    All panels share one colour scale spanning the drawn values, so they compare: after the
    collapse one cluster is bright everywhere and the others dark. (Normalized densities stay
    in the sigmoid's near-linear band around 0.5 by design, so a fixed 0..1 scale would show
    them flat.) Points are coloured by their assigned cluster; the panel's members are ringed.
    """
    if not clusters:
        raise ValueError("choose at least one cluster to draw")
    k = grid.values.shape[0]
    if any(not 0 <= c < k for c in clusters):
        raise ValueError(f"clusters must lie in 0..{k - 1}, got {clusters}")
    columns = min(PANEL_COLUMNS, len(clusters))
    rows = math.ceil(len(clusters) / columns)
    label = "h" if grid.kind == "density" else "p"
    drawn = grid.values[clusters]
    low, high = float(drawn.min()), float(drawn.max())
    fig = make_subplots(
        rows,
        columns,
        subplot_titles=[f"cluster {c + 1}: {label}_{c + 1}(x)" for c in clusters],
        horizontal_spacing=0.06,
        vertical_spacing=0.12 / rows,
    )
    for index, cluster in enumerate(clusters):
        row, col = divmod(index, columns)
        fig.add_trace(
            go.Contour(
                x=grid.xs,
                y=grid.ys,
                z=grid.values[cluster],
                zmin=low,
                zmax=high,
                colorscale="Viridis",
                ncontours=12,
                showscale=index == 0,
                colorbar={"title": label, "len": 0.8},
                hovertemplate=f"x=%{{x:.2f}}, y=%{{y:.2f}}<br>{label}=%{{z:.3f}}<extra></extra>",
                name=f"cluster {cluster + 1}",
            ),
            row + 1,
            col + 1,
        )
        if points is not None and assignments is not None:
            _add_points(fig, points, assignments, cluster, k, (row + 1, col + 1))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(
        title=title,
        height=80 + height_per_row * rows,
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        showlegend=False,
    )
    return fig


def _add_points(
    fig: go.Figure,
    points: np.ndarray,
    assignments: np.ndarray,
    cluster: int,
    num_clusters: int,
    cell: tuple[int, int],
) -> None:
    members = assignments == cluster
    fig.add_trace(
        go.Scattergl(
            x=points[:, 0],
            y=points[:, 1],
            mode="markers",
            marker={
                "size": np.where(members, 6, 3),
                "color": [category_color(int(a), num_clusters) for a in assignments],
                "line": {"width": np.where(members, 1, 0), "color": "white"},
            },
            hovertemplate="assigned to cluster %{text}<extra></extra>",
            text=[str(int(a) + 1) for a in assignments],
        ),
        *cell,
    )


def mean_density_table(means: dict[str, np.ndarray]) -> dict[str, list]:
    """Rows for st.dataframe: one column per run, one row per cluster (paper 004, Table 1)."""
    lengths = {len(values) for values in means.values()}
    if len(lengths) != 1:
        raise ValueError("every run needs the same number of clusters")
    k = lengths.pop()
    table: dict[str, list] = {"cluster": [j + 1 for j in range(k)]}
    for name, values in means.items():
        table[name] = [round(float(v), 4) for v in values]
    return table
