"""Cluster densities over the plane (paper 004, Fig. 5) and their batch means (Table 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moa_core.analysis.density import DensityGrid, PlaneSnapshot
from moa_core.viz.latent import category_color

# Greys from white (low) to charcoal (high): the clusters' colours on top stay apart from it.
DENSITY_COLORSCALE = ((0.0, "#ffffff"), (0.5, "#b0b0b0"), (1.0, "#333333"))
OUTLINE = "#000000"
MAX_COLUMNS = 4  # clusters per row of panels; more wrap onto further rows
FIGURE_WIDTH = 820  # px: the main column at 1280 px, sidebar open (the narrowest target)
PANEL_PX = (200, 340)  # smallest and largest side of a square panel
MARGIN = {"l": 60, "r": 10, "t": 60, "b": 30}  # t: room for the mode bar
COLORBAR_PX, COLUMN_GAP_PX, ROW_GAP_PX = 60, 50, 90


def density_contours(planes: Mapping[str, PlaneSnapshot], clusters: list[int]) -> go.Figure:
    """One figure per comparison: a row of square panels per run, a column per chosen cluster.

    Each panel draws that cluster's density over the plane as filled contours; the points on
    top are coloured by their assigned cluster, the panel's own members larger and opaque.
    All panels share one colour scale (one colour bar), so a colour means the same density in
    both runs: after the collapse one cluster is dark everywhere, the others pale (paper 004,
    Fig. 5).
    """
    if not clusters:
        raise ValueError("choose at least one cluster to draw")
    for plane in planes.values():
        k = plane["grid"].values.shape[0]
        if any(not 0 <= c < k for c in clusters):
            raise ValueError(f"clusters must lie in 0..{k - 1}, got {clusters}")
    grids = [plane["grid"] for plane in planes.values()]
    label = "h" if grids[0].kind == "density" else "p"
    low = min(float(grid.values[clusters].min()) for grid in grids)
    high = max(float(grid.values[clusters].max()) for grid in grids)
    columns = min(MAX_COLUMNS, len(clusters))
    blocks = math.ceil(len(clusters) / columns)
    rows = blocks * len(planes)
    free = FIGURE_WIDTH - MARGIN["l"] - MARGIN["r"] - COLORBAR_PX - (columns - 1) * COLUMN_GAP_PX
    panel = int(np.clip(free / columns, *PANEL_PX))
    height = MARGIN["t"] + MARGIN["b"] + rows * panel + (rows - 1) * ROW_GAP_PX
    cells = [[None] * columns for _ in range(rows)]
    for index, cluster in enumerate(clusters):
        block, col = divmod(index, columns)
        for run in range(len(planes)):
            cells[block * len(planes) + run][col] = cluster
    fig = make_subplots(
        rows,
        columns,
        specs=[[{} if c is not None else None for c in row] for row in cells],
        subplot_titles=[
            f"cluster {c + 1}: {label}_{c + 1}(x)" for r in cells for c in r if c is not None
        ],
        horizontal_spacing=COLUMN_GAP_PX / FIGURE_WIDTH,
        vertical_spacing=ROW_GAP_PX / height,
    )
    axes: dict = {}
    for r, row in enumerate(cells):
        name, plane = list(planes.items())[r % len(planes)]
        for c, cluster in enumerate(row):
            if cluster is not None:
                _add_panel(fig, plane, cluster, (r + 1, c + 1), (low, high), label)
                axes.update(_square_axes(fig.data[-1], plane["grid"], name if c == 0 else None))
    # The layout is rebuilt once as plain data: updating a subplot figure's axes in place
    # costs Plotly ~0.1 s per panel, and this figure is redrawn every two seconds.
    layout = fig.layout.to_plotly_json()
    for name, settings in axes.items():
        layout[name] = {**layout.get(name, {}), **settings}
    for annotation in layout["annotations"]:
        annotation["font"] = {"size": 15}
    layout.update(
        height=height, margin=MARGIN, showlegend=False, plot_bgcolor="white", font={"size": 14}
    )
    return go.Figure(data=fig.data, layout=layout)


def _add_panel(
    fig: go.Figure,
    plane: PlaneSnapshot,
    cluster: int,
    cell: tuple[int, int],
    scale: tuple[float, float],
    label: str,
) -> None:
    grid = plane["grid"]
    fig.add_trace(
        go.Contour(
            x=grid.xs,
            y=grid.ys,
            z=grid.values[cluster],
            zmin=scale[0],
            zmax=scale[1],
            colorscale=[list(stop) for stop in DENSITY_COLORSCALE],
            ncontours=12,
            line={"width": 0.5, "color": "rgba(0,0,0,0.25)"},
            showscale=not fig.data,
            colorbar={"title": {"text": f"{label}(x)"}, "thickness": 18, "len": 0.9},
            hovertemplate=f"x=%{{x:.2f}}, y=%{{y:.2f}}<br>{label}=%{{z:.3f}}<extra></extra>",
            name=f"cluster {cluster + 1}",
        ),
        *cell,
    )
    points, assignments = plane["points"], plane["assignments"]
    members = assignments == cluster
    k = grid.values.shape[0]
    fig.add_trace(
        go.Scatter(  # SVG: no WebGL context per panel, fast without a GPU too
            x=points[:, 0],
            y=points[:, 1],
            mode="markers",
            marker={
                "size": np.where(members, 8, 5),
                "opacity": np.where(members, 1.0, 0.45),
                # Numbers on a stepped scale, not a list of colour names: the figure is rebuilt
                # every redraw and Plotly checks each name in a list one by one.
                "color": assignments,
                "colorscale": cluster_colorscale(k),
                "cmin": -0.5,
                "cmax": k - 0.5,
                "showscale": False,
                "line": {"width": np.where(members, 1.5, 1.0), "color": OUTLINE},
            },
            customdata=assignments + 1,
            hovertemplate="assigned to cluster %{customdata}<extra></extra>",
        ),
        *cell,
    )


def cluster_colorscale(k: int) -> list[list]:
    """A stepped colour scale over 0..k-1 whose step j is cluster j's colour."""
    scale = []
    for j in range(k):
        color = category_color(j, k)
        scale += [[j / k, color], [(j + 1) / k, color]]
    return scale


def _square_axes(trace: go.Contour | go.Scatter, grid: DensityGrid, title: str | None) -> dict:
    """Layout updates for `trace`'s panel: equal units on both axes over the grid's square,
    with ticks to read positions from."""
    x_name = "xaxis" + trace.xaxis[1:]  # "x2" → "xaxis2"
    y_name = "yaxis" + trace.yaxis[1:]
    ticks = {"showticklabels": True, "ticks": "outside", "nticks": 5, "tickfont": {"size": 12}}
    return {
        x_name: {
            "range": [grid.xs[0], grid.xs[-1]],
            "scaleanchor": trace.yaxis,
            "constrain": "domain",
            **ticks,
        },
        y_name: {
            "range": [grid.ys[0], grid.ys[-1]],
            "constrain": "domain",
            "title": {"text": title, "font": {"size": 15}} if title else None,
            **ticks,
        },
    }


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
