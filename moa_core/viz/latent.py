"""The latent-space scatter and a self-contained HTML page that shows images on hover/select.

Plotly hover labels cannot hold images and Streamlit sends no hover events, so the figure is
rendered to standalone HTML (plotly.js inlined: works offline) whose points carry their
thumbnail as a PNG data URI in `customdata`; a small script shows the hovered point's image
beside the plot and a grid of the box/lasso-selected images under it. All in the browser, no
round trip to Python per mouse move.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

PLOT_HEIGHT = 520
SELECTION_HEIGHT = 230
MAX_GRID_IMAGES = 400  # the selection grid shows at most this many thumbnails


def latent_scatter(
    xy: np.ndarray,
    color: np.ndarray | Sequence,
    *,
    categorical: bool,
    color_title: str,
    hover_text: Sequence[str] | None = None,
    thumbnails: Sequence[str] | None = None,
    categories: Sequence | None = None,
) -> go.Figure:
    """2-D points coloured by a category (one legend entry each) or a continuous value.

    `thumbnails[i]` (a data URI) goes into point i's `customdata`, which the HTML page's
    script reads; plotly's own hover label then shows `hover_text[i]`. `categories` (all
    possible values, e.g. experts 1…M) fixes each category's colour, so expert 3 keeps its
    colour whether or not expert 2 wins any point.
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    color = np.asarray(color)
    texts = np.asarray(hover_text if hover_text is not None else [""] * n, dtype=object)
    thumbs = np.asarray(thumbnails if thumbnails is not None else [""] * n, dtype=object)
    if not (len(color) == len(texts) == len(thumbs) == n):
        raise ValueError("xy, color, hover_text and thumbnails need one entry per point")
    fig = go.Figure()
    marker = dict(size=6, opacity=0.85, line=dict(width=0))
    if categorical:
        order = list(categories) if categories is not None else _sorted_categories(color)
        present = set(color.tolist())
        for i, value in enumerate(order):
            if value not in present:
                continue
            mask = color == value
            fig.add_trace(
                go.Scatter(
                    x=xy[mask, 0],
                    y=xy[mask, 1],
                    mode="markers",
                    name=str(value),
                    marker={**marker, "color": category_color(i, len(order))},
                    hovertext=texts[mask].tolist(),
                    customdata=thumbs[mask].tolist(),
                    hoverinfo="text",
                )
            )
        legend_title = color_title
    else:
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                name=color_title,
                marker={
                    **marker,
                    "color": color.astype(np.float64),
                    "colorscale": "Viridis",
                    "colorbar": dict(title=color_title),
                    "showscale": True,
                },
                hovertext=texts.tolist(),
                customdata=thumbs.tolist(),
                hoverinfo="text",
            )
        )
        legend_title = None
    fig.update_layout(
        template="plotly_white",
        dragmode="select",
        hovermode="closest",
        legend=dict(title=legend_title, itemsizing="constant"),
        margin=dict(l=10, r=10, t=30, b=10),
        height=PLOT_HEIGHT,
        xaxis=dict(title="UMAP 1", showticklabels=False, zeroline=False),
        yaxis=dict(title="UMAP 2", showticklabels=False, zeroline=False),
        title=dict(text=f"UMAP of the latent codes, coloured by {color_title}", x=0.01),
    )
    return fig


def category_color(index: int, count: int) -> str:
    """Plotly's 10 colours when they suffice, else a 26-colour palette (M up to 26 distinct)."""
    palette = qualitative.Plotly if count <= len(qualitative.Plotly) else qualitative.Alphabet
    return palette[index % len(palette)]


def _sorted_categories(values: np.ndarray) -> list:
    """Categories in natural order (numbers numerically, so cluster 10 follows 9)."""
    unique = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(unique, key=float)
    except (TypeError, ValueError):
        return sorted(unique, key=str)


# Reads customdata (the data URI) and hovertext of hovered / selected points. Text goes in
# through textContent and images through createElement, never innerHTML, so labels such as
# "T-shirt/top" or anything from a checkpoint's metadata cannot inject markup.
_SCRIPT = """
(function () {
  // The panels come after the plot in the page, so look them up when an event fires.
  var plot = document.getElementById('{plot_id}');
  var maxImages = __MAX_IMAGES__;
  function byId(id) { return document.getElementById(id); }
  function clearGrid(text) {
    var grid = byId('moa-selection-grid');
    while (grid.firstChild) { grid.removeChild(grid.firstChild); }
    byId('moa-selection-count').textContent = text;
  }
  plot.on('plotly_hover', function (event) {
    if (!event || !event.points || !event.points.length) { return; }
    var point = event.points[0];
    if (!point.customdata) { return; }
    var img = byId('moa-hover-img');
    img.src = point.customdata;
    img.style.visibility = 'visible';
    byId('moa-hover-caption').textContent = point.hovertext || '';
  });
  plot.on('plotly_selected', function (event) {
    var points = (event && event.points) ? event.points : [];
    if (!points.length) { clearGrid('No points selected.'); return; }
    var shown = Math.min(points.length, maxImages);
    clearGrid(points.length + ' points selected' +
      (shown < points.length ? ' (showing the first ' + shown + ')' : '') + '.');
    var grid = byId('moa-selection-grid');
    for (var i = 0; i < shown; i++) {
      var img = document.createElement('img');
      img.className = 'moa-thumb';
      img.src = points[i].customdata;
      img.title = points[i].hovertext || '';
      grid.appendChild(img);
    }
  });
  plot.on('plotly_deselect', function () {
    clearGrid('Drag a box (or pick the lasso in the toolbar) to select points.');
  });
})();
"""

# The panels' style: `latent_html` puts it in its own page; `moa export` in the run's page.
LATENT_CSS = """
  body { margin: 0; font-family: "Source Sans Pro", sans-serif; color: #262730; }
  /* Explicit grid tracks: the plot measures its width while the page is still parsing. */
  .moa-row { display: grid; grid-template-columns: minmax(0, 1fr) 180px; gap: 12px; }
  .moa-plot { grid-column: 1; grid-row: 1; min-width: 0; }
  .moa-side { grid-column: 2; grid-row: 1; text-align: center; padding-top: 40px; }
  .moa-side-title { font-weight: 600; margin-bottom: 6px; }
  #moa-hover-img { width: 160px; height: 160px; image-rendering: pixelated;
                   border: 1px solid #ccc; visibility: hidden; background: #000; }
  #moa-hover-caption { font-size: 13px; margin-top: 6px; overflow-wrap: anywhere; }
  #moa-selection-count { font-size: 14px; margin: 6px 0; }
  #moa-selection-grid { max-height: __GRID_HEIGHT__px; overflow-y: auto; line-height: 0; }
  .moa-thumb { width: 48px; height: 48px; margin: 1px; image-rendering: pixelated; }
""".replace("__GRID_HEIGHT__", str(SELECTION_HEIGHT))

_BODY = """<div class="moa-row">
  <div class="moa-side">
    <div class="moa-side-title">Hovered point</div>
    <img id="moa-hover-img" alt="image of the hovered point">
    <div id="moa-hover-caption">Hover over a point to see its image.</div>
  </div>
  <div class="moa-plot">__PLOT__</div>
</div>
<div id="moa-selection-count">Drag a box (or pick the lasso in the toolbar) to select points.</div>
<div id="moa-selection-grid"></div>
"""


def latent_body(fig: go.Figure, include_plotlyjs: bool = True) -> str:
    """The figure, its hover image panel and selection grid, styled by `LATENT_CSS`;
    without plotly.js when the page around it already holds a copy."""
    script = _SCRIPT.replace("__MAX_IMAGES__", json.dumps(MAX_GRID_IMAGES))
    plot = fig.to_html(
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        post_script=script,
        config={"displaylogo": False, "scrollZoom": False, "responsive": True},
        default_width="100%",
        default_height=f"{fig.layout.height or PLOT_HEIGHT}px",
    )
    return _BODY.replace("__PLOT__", plot)


def latent_html(fig: go.Figure) -> str:
    """A standalone page: the figure (plotly.js inlined), a hover image panel, a selection grid.

    Show it with `st.iframe(html, height=latent_html_height())`.
    """
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<style>{LATENT_CSS}</style>\n</head>\n<body>\n{latent_body(fig)}</body>\n</html>\n"
    )


def latent_html_height(fig: go.Figure) -> int:
    """Pixels the iframe needs: the plot, the selection caption and the selection grid."""
    return int((fig.layout.height or PLOT_HEIGHT) + SELECTION_HEIGHT + 50)
