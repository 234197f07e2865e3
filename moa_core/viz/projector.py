"""A figure made readable on a projector: larger fonts, markers and height (presenter mode).

One generic pass over the figure's plain data rather than a rule per figure builder, so every
page's figures grow alike and a new builder needs nothing. The input is never changed: pages
draw cached figures, and presenter mode is switched on and off between runs.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import plotly.graph_objects as go

SCALE = 1.3  # heights, margins and marker sizes
FONT_SCALE = 1.4  # type grows a little more than shapes: it is what the back row reads
MIN_FONT_PX = 18
# Plotly's sizes where a figure sets none, which a template (Streamlit's theme) may replace
# by its own small ones: each is set explicitly, enlarged.
PLOTLY_FONT_PX, TITLE_PX, AXIS_TITLE_PX, HOVER_FONT_PX = 12, 14, 14, 13
WRAP_CHARS = 40  # a longer figure title is broken in two: at 20 px it outgrows a half column
STREAMLIT_HEIGHT_PX = 450  # st.plotly_chart's height where a figure sets none
CARTESIAN = {"scatter", "scattergl", "bar", "histogram", "box", "violin", "heatmap", "contour"}
CARTESIAN |= {"image", "histogram2d", "histogram2dcontour", "waterfall", "funnel"}


def enlarge(fig: go.Figure) -> go.Figure:
    """A copy of `fig` for a projector: every font ×1.4 and at least 18 px (titles, axes,
    ticks, legend, hover labels, annotations, colour bars), marker sizes, margins and
    height ×1.3; a title longer than 40 characters in two lines."""
    spec = fig.to_plotly_json()  # a deep copy, as plain data
    traces = [_scaled_fonts(trace) for trace in spec.get("data", [])]
    layout = _scaled_fonts(spec.get("layout", {}))
    _default(layout, ("font", "size"), PLOTLY_FONT_PX)
    _default(layout, ("hoverlabel", "font", "size"), HOVER_FONT_PX)
    _default(layout, ("legend", "font", "size"), PLOTLY_FONT_PX)
    for axis in _axes(layout, traces):
        _default(layout, (axis, "tickfont", "size"), PLOTLY_FONT_PX)
        _default(layout, (axis, "title", "font", "size"), AXIS_TITLE_PX)
    for annotation in layout.get("annotations", []):
        _default(annotation, ("font", "size"), PLOTLY_FONT_PX)
    layout["height"] = round((layout.get("height") or STREAMLIT_HEIGHT_PX) * SCALE)
    if "margin" in layout:
        layout["margin"] = {
            side: value * SCALE if side in ("l", "r", "t", "b") and _is_number(value) else value
            for side, value in layout["margin"].items()
        }
    if isinstance(layout.get("title"), dict):
        _wrap_title(layout)
    for trace, source in zip(traces, fig.data, strict=True):
        marker = trace.get("marker")
        if isinstance(marker, dict) and "size" in marker:  # from the figure: JSON encodes arrays
            trace["marker"] = {**marker, "size": _times(source.marker.size, SCALE)}
        if "colorbar" in trace:
            _default(trace, ("colorbar", "tickfont", "size"), PLOTLY_FONT_PX)
            _default(trace, ("colorbar", "title", "font", "size"), AXIS_TITLE_PX)
    return go.Figure({"data": traces, "layout": layout})


def _wrap_title(layout: dict) -> None:
    """The title at a projector's size; a long one in two lines, the top margin one taller."""
    title = layout["title"]
    _default(layout, ("title", "font", "size"), TITLE_PX)
    text = title.get("text") or ""
    if len(text) <= WRAP_CHARS or "<br>" in text or " " not in text:
        return
    cut = min((i for i, c in enumerate(text) if c == " "), key=lambda i: abs(i - len(text) / 2))
    title["text"] = f"{text[:cut]}<br>{text[cut + 1 :]}"
    margin = layout.get("margin")
    if isinstance(margin, dict) and _is_number(margin.get("t")):
        # Plotly centres the title in the top margin: one more line there on either side.
        margin["t"] += 2 * title["font"]["size"] * SCALE


def _axes(layout: dict, traces: list[dict]) -> set[str]:
    """The layout names of every cartesian axis: those the layout sets and those its
    traces draw on ("x2" → "xaxis2")."""
    named = {key for key in layout if re.fullmatch(r"[xy]axis\d*", key)}
    for trace in traces:
        if trace.get("type", "scatter") in CARTESIAN:
            named |= {f"xaxis{trace.get('xaxis', 'x')[1:]}", f"yaxis{trace.get('yaxis', 'y')[1:]}"}
    return named


def _default(node: dict, path: tuple[str, ...], size: float) -> None:
    """Set the font size at `path` to `size` enlarged, unless the figure sets one itself."""
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(path[-1], _font(size))


def _scaled_fonts(node: Any) -> Any:
    """`node` with every font size under a `…font` key (font, tickfont, textfont, …) scaled."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key.endswith("font") and isinstance(value, dict) and "size" in value:
                value = {**value, "size": _font(value["size"])}
            out[key] = _scaled_fonts(value)
        return out
    if isinstance(node, list | tuple):
        return [_scaled_fonts(item) for item in node]
    return node


def _font(size: Any) -> Any:
    """A font size (or a list of them) ×FONT_SCALE, never under MIN_FONT_PX."""
    if _is_number(size):
        return max(MIN_FONT_PX, round(size * FONT_SCALE))
    if isinstance(size, list | tuple):
        return [_font(item) for item in size]
    return size


def _times(size: Any, factor: float) -> Any:
    if _is_number(size):
        return size * factor
    if isinstance(size, list | tuple | np.ndarray):
        return np.asarray(size, float) * factor
    return size


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
