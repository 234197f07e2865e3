"""Routing figures of paper 003: the routing diagram of one input (Fig. 3.7), class-wise gate
histograms (Fig. 3.9), weight histograms of parallel paths (Fig. 3.10) and one gate's
response with and without regularization (Fig. 5.1). Arrays in, plotly figures out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moa_core.analysis.routing import LayerView
from moa_core.viz.latent import category_color

LAYER_SPACING = 3.4  # x distance from one routing layer's inputs to the next one's
GATE_SPAN = 2.0  # x distance from a routing layer's inputs to its outputs, where the gates are
BOX_WIDTH, BOX_HEIGHT = 0.6, 0.4  # a tensor box in data units; parallel rows are 1 apart
FORWARD_WIDTH = 0.36  # the gray box of the parallel forward layers
MIN_HALF_RANGE = 4.0  # x half-range at least, so a mixture's one layer keeps boxes box-shaped
EDGE_WIDTH = (0.5, 12.0)  # line width at gate 0 and at gate 1
FONT_SIZE = 16  # read from the back of a classroom
INK, PAPER = "#1a1a1a", "#ffffff"  # label colours on light and on strongly red boxes
FORWARD_GRAY = "#b8b8b8"


def _rows(count: int) -> np.ndarray:
    """y of `count` parallel tensors, centred on 0, first on top."""
    return (count - 1) / 2 - np.arange(count, dtype=float)


def _red(strength: float) -> str:
    """White to red by relative strength (paper 003, Sec. 3.5.1)."""
    fade = int(round(255 * (1 - float(np.clip(strength, 0, 1)))))
    return f"rgb(255,{fade},{fade})"


def _blue(gate: float) -> str:
    g = float(np.clip(gate, 0, 1))
    return f"rgba(20,60,220,{0.15 + 0.85 * g:.3f})"


def edge_width(gate: float) -> float:
    low, high = EDGE_WIDTH
    return low + (high - low) * float(np.clip(gate, 0, 1))


def diagram_height(rows: int) -> int:
    """Pixels for `rows` parallel tensors: roomy for a few paths, tighter for many experts, so
    a ten-expert mixture still fits a projector's screen."""
    return 170 + max(100 * min(rows, 3), 55 * rows)


def routing_diagram(layers: Sequence[LayerView], title: str = "") -> go.Figure:
    """Each routing layer's input and output tensors as labelled boxes (red = relative
    activation strength), each gate g_ij as an edge from box edge to box edge (thickness and
    blue = its value), the parallel forward layers between routing layers as gray boxes;
    hover shows the numbers. Edges stop at the boxes, so none crosses a label."""
    fig = go.Figure()
    for index, layer in enumerate(layers):
        x_in = index * LAYER_SPACING
        x_out = x_in + GATE_SPAN
        y_in, y_out = _rows(len(layer.input_strength)), _rows(len(layer.output_strength))
        if index > 0:
            y_before = _rows(len(layers[index - 1].output_strength))
            _forward_block(fig, x_in - LAYER_SPACING + GATE_SPAN, x_in, y_before, y_in)
        left, right = x_in + BOX_WIDTH / 2, x_out - BOX_WIDTH / 2
        for i, j in np.ndindex(layer.gates.shape):
            gate = float(layer.gates[i, j])
            fig.add_trace(
                go.Scatter(
                    x=[left, right],
                    y=[y_in[i], y_out[j]],
                    mode="lines",
                    line={"width": edge_width(gate), "color": _blue(gate)},
                    name="gate",
                    customdata=[[gate]] * 2,
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
        _gate_markers(fig, layer, index, left, right, y_in, y_out)
        _boxes(fig, x_in, y_in, layer.input_strength, "X", layer.name)
        _boxes(fig, x_out, y_out, layer.output_strength, "Y", layer.name)
        fig.add_annotation(
            x=x_in + GATE_SPAN / 2,
            y=max(y_in.max(), y_out.max()) + BOX_HEIGHT / 2 + 0.15,
            yanchor="bottom",
            text=layer.name.replace(": ", ":<br>"),  # "CC 1:<br>block 1" fits a narrow column
            showarrow=False,
            font={"size": FONT_SIZE},
            name="layer name",
        )
    rows = max(max(len(v.input_strength), len(v.output_strength)) for v in layers)
    x_max = (len(layers) - 1) * LAYER_SPACING + GATE_SPAN
    half = max(x_max / 2 + BOX_WIDTH, MIN_HALF_RANGE)
    fig.update_layout(
        title=title,
        height=diagram_height(rows),
        font={"size": FONT_SIZE, "color": INK},
        margin={"l": 10, "r": 10, "t": 50 if title else 10, "b": 10},
        plot_bgcolor="white",
        xaxis={"visible": False, "range": [x_max / 2 - half, x_max / 2 + half], "fixedrange": True},
        yaxis={
            "visible": False,
            "range": [-(rows - 1) / 2 - BOX_HEIGHT / 2 - 0.1, (rows - 1) / 2 + 1.2],
            "fixedrange": True,
        },
        showlegend=False,
    )
    return fig


def _gate_markers(
    fig: go.Figure,
    layer: LayerView,
    index: int,
    left: float,
    right: float,
    y_in: np.ndarray,
    y_out: np.ndarray,
) -> None:
    """A hover point a third of the way along each edge, where crossing edges stay apart."""
    points = list(np.ndindex(layer.gates.shape))
    fig.add_trace(
        go.Scatter(
            x=[left + (right - left) / 3 for _ in points],
            y=[y_in[i] + (y_out[j] - y_in[i]) / 3 for i, j in points],
            mode="markers",
            marker={"size": 9, "color": [_blue(layer.gates[i, j]) for i, j in points]},
            name="gate value",
            hovertext=[
                f"g{i + 1}{j + 1} (layer {index + 1}) = {layer.gates[i, j]:.3f}"
                f"<br>score a = {layer.scores[i, j]:.3f}"
                for i, j in points
            ],
            hoverinfo="text",
            showlegend=False,
        )
    )


def _rect(fig: go.Figure, x: float, y: float, width: float, fill: str, line: str) -> None:
    fig.add_shape(
        type="rect",
        x0=x - width / 2,
        x1=x + width / 2,
        y0=y - BOX_HEIGHT / 2,
        y1=y + BOX_HEIGHT / 2,
        fillcolor=fill,
        line={"color": line, "width": 1.5},
        layer="above",
        name="box",
    )


def _boxes(
    fig: go.Figure, x: float, ys: np.ndarray, strength: np.ndarray, what: str, layer: str
) -> None:
    """Tensor boxes `what`1, `what`2, … at (x, ys), labelled inside, hover on the whole box."""
    for k, (y, s) in enumerate(zip(ys, strength, strict=True)):
        _rect(fig, x, y, BOX_WIDTH, _red(s), "#7a1010")
        fig.add_annotation(
            x=x,
            y=y,
            text=f"{what}{k + 1}",
            showarrow=False,
            name="box label",
            font={"size": FONT_SIZE + 1, "color": PAPER if s > 0.6 else INK},
        )
    fig.add_trace(
        go.Scatter(
            x=[x] * len(ys),
            y=ys,
            mode="markers",
            marker={"symbol": "square", "size": 36, "opacity": 0},
            name="tensor",
            hovertext=[
                f"{layer}<br>{what}{k + 1}: relative strength {s:.3f}"
                for k, s in enumerate(strength)
            ],
            hoverinfo="text",
            showlegend=False,
        )
    )


def _forward_block(
    fig: go.Figure, x_from: float, x_to: float, y_from: np.ndarray, y_to: np.ndarray
) -> None:
    """Gray boxes for the parallel forward layers between the routing layer whose outputs sit
    at `x_from` and the next one's inputs at `x_to`, joined box edge to box edge."""
    x = (x_from + x_to) / 2
    for y_a, y_b in zip(y_from, y_to, strict=False):
        for xs, ys in (
            ([x_from + BOX_WIDTH / 2, x - FORWARD_WIDTH / 2], [y_a, y_b]),
            ([x + FORWARD_WIDTH / 2, x_to - BOX_WIDTH / 2], [y_b, y_b]),
        ):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": FORWARD_GRAY, "width": 3},
                    name="forward",
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
    for y in y_to:
        _rect(fig, x, y, FORWARD_WIDTH, FORWARD_GRAY, "#8a8a8a")
    fig.add_trace(
        go.Scatter(
            x=[x] * len(y_to),
            y=y_to,
            mode="markers",
            marker={"symbol": "square", "size": 24, "opacity": 0},
            name="forward layers",
            hovertext="parallel forward layers (one per path)",
            hoverinfo="text",
            showlegend=False,
        )
    )


def class_gate_histograms(values: Mapping[str, Mapping[str, np.ndarray]]) -> go.Figure:
    """Paper 003, Fig. 3.9: for each gate (`values[gate][class]` = its value per image of the
    class), overlaid histograms of the chosen classes over [0, 1]."""
    gates = list(values)
    fig = make_subplots(rows=1, cols=max(1, len(gates)), subplot_titles=gates)
    classes = sorted({c for per_class in values.values() for c in per_class}, key=str)
    for col, gate in enumerate(gates, start=1):
        for class_name, samples in values[gate].items():
            fig.add_trace(
                go.Histogram(
                    x=samples,
                    xbins={"start": 0.0, "end": 1.0, "size": 0.05},
                    histnorm="probability",
                    name=f"class {class_name}",
                    legendgroup=class_name,
                    showlegend=col == 1,
                    opacity=0.6,
                    marker_color=category_color(classes.index(class_name), len(classes)),
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="gate value", range=[0, 1], row=1, col=col)
    fig.update_yaxes(title_text="share of the class's images", row=1, col=1)
    fig.update_layout(barmode="overlay", height=360, margin={"t": 60, "b": 40})
    return fig


def path_weight_histograms(weights: np.ndarray, layer: str) -> go.Figure:
    """Paper 003, Fig. 3.10: one histogram per parallel path of a layer's weights [P, W]."""
    fig = go.Figure()
    for path, row in enumerate(weights):
        fig.add_trace(
            go.Histogram(
                x=row,
                nbinsx=60,
                name=f"path {path + 1}",
                opacity=0.6,
                marker_color=category_color(path, len(weights)),
            )
        )
    fig.update_layout(
        barmode="overlay",
        title=f"Weights of the parallel paths in {layer}",
        xaxis_title="weight",
        yaxis_title="count",
        height=340,
    )
    return fig


def gate_response_figure(responses: Mapping[str, np.ndarray], gate: str) -> go.Figure:
    """Paper 003, Fig. 5.1: one gate's value per sample (same samples, same order) for each
    run, one row per run, with the 0.1 and 0.9 lines a dead gate never crosses."""
    labels = list(responses)
    fig = make_subplots(rows=len(labels), cols=1, shared_xaxes=True, subplot_titles=labels)
    for row, label in enumerate(labels, start=1):
        values = np.asarray(responses[label])
        fig.add_trace(
            go.Bar(
                x=np.arange(1, len(values) + 1),
                y=values,
                marker_color=category_color(row - 1, len(labels)),
                name=label,
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        for level in (0.1, 0.5, 0.9):
            fig.add_hline(y=level, line_dash="dot", line_color="gray", row=row, col=1)
        fig.update_yaxes(range=[0, 1], title_text=gate, row=row, col=1)
    fig.update_xaxes(title_text="sample", row=len(labels), col=1)
    fig.update_layout(height=220 * len(labels) + 60, bargap=0, margin={"t": 60})
    return fig
