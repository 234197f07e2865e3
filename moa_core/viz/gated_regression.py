"""Figures of paper 002's gated regression on the plane: where each gate sends the points,
what the mixture predicts there, how each expert fits, and the test error per epoch.

Every builder takes run label → `RegressionPlane` (or history), so DVMoE and DeepMoE draw
side by side through the same code, on shared colour scales. The gate maps are an extension:
paper 002 has no gate-region figure (spec §3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from moa_core.analysis.gated_regression import (
    ExpertFit,
    RegressionPlane,
    expert_outputs,
    gate_entropy,
)
from moa_core.viz.density import cluster_colorscale
from moa_core.viz.latent import category_color
from moa_core.viz.training import epoch_trace, log_ticks, run_color

FIGURE_WIDTH = 820  # px: the main column at 1280 px with the sidebar open
MARGIN = {"l": 70, "r": 10, "t": 60, "b": 40}
COLORBAR_PX, GAP_PX, ROW_GAP_PX = 70, 70, 70
PANEL_MAX_PX = 380
FONT = {"size": 14}
POINT = {"size": 5, "color": "#111111", "line": {"width": 0.5, "color": "white"}}
ENTROPY_SCALE = ((0.0, "#ffffff"), (1.0, "#333333"))  # white: sure; charcoal: undecided
BASELINE_DASH = ("dash", "dot")
SUBSCRIPTS = "₁₂₃₄₅₆₇₈₉"
TARGET_SCALE = "RdBu_r"  # diverging: a target's sign reads at a glance


def gate_maps(planes: Mapping[str, RegressionPlane]) -> go.Figure:
    """A row per run: the expert q(c|x) picks over the plane (argmax, coloured by expert) and
    how sure it is (entropy, white = sure, on one scale 0…log K), the training points on top."""
    k = _shared_experts(planes)
    rows = len(planes)
    titles = [t for name in planes for t in (f"{name}: argmax q(c|x)", f"{name}: H(q(c|x))")]
    fig = _grid(rows, 2, titles, colorbar=True)
    for r, plane in enumerate(planes.values(), start=1):
        regions = plane["gate_probs"].argmax(0)
        fig.add_trace(
            go.Heatmap(
                x=plane["xs"],
                y=plane["ys"],
                z=regions,
                zmin=-0.5,
                zmax=k - 0.5,
                colorscale=cluster_colorscale(k),
                showscale=False,
                opacity=0.75,
                customdata=regions + 1,
                hovertemplate="expert %{customdata}<extra></extra>",
            ),
            r,
            1,
        )
        fig.add_trace(
            go.Heatmap(
                x=plane["xs"],
                y=plane["ys"],
                z=gate_entropy(plane["gate_probs"]),
                zmin=0.0,
                zmax=math.log(k),
                colorscale=[list(stop) for stop in ENTROPY_SCALE],
                showscale=r == 1,
                colorbar={"title": {"text": "H (nats)"}, "thickness": 16, "len": 0.8},
                hovertemplate="H=%{z:.2f}<extra></extra>",
            ),
            r,
            2,
        )
        for c in (1, 2):
            names = np.asarray(plane["class_names"])[plane["classes"]]
            fig.add_trace(_points(plane, names, "%{customdata}"), r, c)
    for index in range(k):  # a legend of the expert colours
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"size": 12, "symbol": "square", "color": category_color(index, k)},
                name=f"expert {index + 1}",
            )
        )
    panels = [plane for plane in planes.values() for _ in range(2)]
    return _finish(fig, panels, legend=True)


def prediction_maps(planes: Mapping[str, RegressionPlane], output: int = 0) -> go.Figure:
    """One panel per run: ŷ(x) = Σ_k q(c=k|x)(W_k x + b_k) over the plane (paper 002, §4.1),
    with each training point coloured by its target y on the same scale, so a point that
    vanishes into the background is predicted right and one that stands out is not."""
    _check_output(planes, output)
    targets = np.concatenate([plane["targets"][:, output] for plane in planes.values()])
    low, high = np.percentile(targets, [1, 99])
    bound = float(max(abs(low), abs(high)))
    scale = {"zmin": -bound, "zmax": bound, "colorscale": TARGET_SCALE}
    columns = len(planes)
    label = f"ŷ{_sub(output, planes)}(x)"
    fig = _grid(1, columns, [f"{name}: {label}" for name in planes], colorbar=True)
    for c, plane in enumerate(planes.values(), start=1):
        fig.add_trace(
            go.Heatmap(
                x=plane["xs"],
                y=plane["ys"],
                z=plane["predictions"][output],
                showscale=c == 1,
                colorbar={"title": {"text": "y, ŷ"}, "thickness": 16, "len": 0.9},
                hovertemplate="ŷ=%{z:.2f}<extra></extra>",
                **scale,
            ),
            1,
            c,
        )
        y = plane["targets"][:, output]
        fig.add_trace(
            go.Scatter(
                x=plane["points"][:, 0],
                y=plane["points"][:, 1],
                mode="markers",
                marker={
                    "size": 7,
                    "color": y,
                    "cmin": -bound,
                    "cmax": bound,
                    "colorscale": TARGET_SCALE,
                    "line": {"width": 0.8, "color": "#222222"},
                },
                customdata=y,
                hovertemplate="target y=%{customdata:.2f}<extra></extra>",
                showlegend=False,
            ),
            1,
            c,
        )
    return _finish(fig, list(planes.values()), legend=False)


def expert_parity(planes: Mapping[str, RegressionPlane], output: int = 0) -> go.Figure:
    """One panel per run: at each training point, the output of the expert the gate picks
    (W_k x + b_k) against the target y, coloured by expert. On the diagonal the expert has
    learned the per-class map that made the target (spec §2.1); a cloud off it is an expert
    averaging over classes."""
    _check_output(planes, output)
    k = _shared_experts(planes)
    fig = make_subplots(
        1, len(planes), subplot_titles=list(planes), horizontal_spacing=GAP_PX / FIGURE_WIDTH
    )
    values = []
    for c, plane in enumerate(planes.values(), start=1):
        picked = plane["point_experts"]
        fitted = expert_outputs(plane)[np.arange(len(picked)), output, picked]
        target = plane["targets"][:, output]
        values += [fitted, target]
        for expert in range(k):
            won = picked == expert
            fig.add_trace(
                go.Scatter(
                    x=target[won],
                    y=fitted[won],
                    mode="markers",
                    marker={"size": 6, "color": category_color(expert, k), "opacity": 0.8},
                    name=f"expert {expert + 1}",
                    legendgroup=f"expert {expert + 1}",
                    showlegend=c == 1,
                    hovertemplate="y=%{x:.2f}, expert's ŷ=%{y:.2f}<extra></extra>",
                ),
                1,
                c,
            )
    target_values = np.concatenate(values[1::2])
    low, high = np.percentile(target_values, [0, 100])
    pad = 0.1 * (high - low or 1.0)
    span = [float(low - pad), float(high + pad)]
    for c in range(1, len(planes) + 1):
        fig.add_trace(
            go.Scatter(
                x=span,
                y=span,
                mode="lines",
                line={"color": "#555555", "dash": "dash"},
                name="ŷ = y",
                showlegend=c == 1,
            ),
            1,
            c,
        )
        fig.update_xaxes(range=span, title_text=f"target y{_sub(output, planes)}", row=1, col=c)
        fig.update_yaxes(range=span, row=1, col=c)
    fig.update_yaxes(title_text="picked expert's W_k x + b_k", row=1, col=1)
    fig.update_layout(
        height=420,
        margin=MARGIN,
        font=FONT,
        plot_bgcolor="white",
        legend={"orientation": "h", "yanchor": "top", "y": -0.2},
    )
    fig.update_xaxes(gridcolor="#e5e5e5", zeroline=False)
    fig.update_yaxes(gridcolor="#e5e5e5", zeroline=False)
    return fig


def error_curves(
    histories: Mapping[str, Sequence[Mapping]], baselines: Mapping[str, float]
) -> go.Figure:
    """Test error Σ_outputs (ŷ − y)² after each epoch, one colour per run, on a log axis, with
    the in-run baselines (`label` → error) as dashed lines: below "constant" the model has
    learned something, below "one affine map" the mixture pays off (spec §5.2)."""
    fig = go.Figure()
    values = list(baselines.values())
    for i, (label, history) in enumerate(histories.items()):
        rows = [row for row in history if row.get("regression_mse") is not None]
        values += [row["regression_mse"] for row in rows]
        fig.add_trace(
            epoch_trace(
                rows, "regression_mse", name=label, line={"color": run_color(i), "width": 3}
            )
        )
    last = max((row["epoch"] for h in histories.values() for row in h), default=1)
    for dash, (label, value) in zip(BASELINE_DASH, baselines.items(), strict=False):
        fig.add_trace(  # a trace, not a shape: shapes on a log axis need log coordinates
            go.Scatter(
                x=[0, last],
                y=[value, value],
                mode="lines",
                line={"color": "#444444", "dash": dash, "width": 2},
                name=f"{label}: {value:.3g}",
            )
        )
    positive = [v for v in values if v and v > 0]
    ticks = log_ticks(min(positive), max(positive)) if positive else None
    fig.update_layout(
        title="Test error after each epoch (lower is better)",
        xaxis_title="epoch",
        yaxis={"type": "log", "title": "Σ (ŷ − y)², test mean", "tickvals": ticks},
        xaxis={"rangemode": "tozero"},
        height=360,
        margin={**MARGIN, "t": 50},
        font=FONT,
        legend={"orientation": "h", "yanchor": "top", "y": -0.25},
    )
    return fig


def expert_fit_table(fits: Sequence[ExpertFit], output: int = 0) -> dict[str, list]:
    """Rows for st.dataframe: each expert's share of the points, the class it serves, and
    its map W_k x + b_k (output `output`) beside that class's true W_c x + b_c, written out."""
    table: dict[str, list] = {
        "expert": [],
        "points": [],
        "serves": [],
        "its map": [],
        "the class's map": [],
    }
    for fit in fits:
        table["expert"].append(fit.expert + 1)
        table["points"].append(f"{fit.share:.0%}")
        table["serves"].append(fit.class_name or "nothing")
        table["its map"].append(affine_text(fit.weights[output], fit.bias[output]))
        known = fit.true_weights is not None and fit.true_bias is not None
        truth = affine_text(fit.true_weights[output], fit.true_bias[output]) if known else ""
        table["the class's map"].append(truth)
    return table


def affine_text(weights: np.ndarray, bias: float) -> str:
    """(0.5, −1.25), 0.3 → "0.50 x₁ − 1.25 x₂ + 0.30": a map as a teacher writes it."""
    text = ""
    for index, (weight, sub) in enumerate(zip(weights, SUBSCRIPTS, strict=False)):
        sign = "−" if weight < 0 else ("+" if index else "")
        text += f"{' ' if index else ''}{sign}{' ' if index else ''}{abs(weight):.2f} x{sub}"
    return f"{text} {'−' if bias < 0 else '+'} {abs(bias):.2f}"


def _sub(output: int, planes: Mapping[str, RegressionPlane]) -> str:
    """ "_2" when the targets have several outputs (1-based), "" for a single one."""
    return f"_{output + 1}" if _outputs(planes) > 1 else ""


def _outputs(planes: Mapping[str, RegressionPlane]) -> int:
    return int(next(iter(planes.values()))["targets"].shape[1])


def _check_output(planes: Mapping[str, RegressionPlane], output: int) -> None:
    if not planes:
        raise ValueError("no runs to draw")
    if not 0 <= output < _outputs(planes):
        raise ValueError(f"output must lie in 0..{_outputs(planes) - 1}, got {output}")


def _shared_experts(planes: Mapping[str, RegressionPlane]) -> int:
    if not planes:
        raise ValueError("no runs to draw")
    return max(plane["gate_probs"].shape[0] for plane in planes.values())


def _points(plane: RegressionPlane, custom: np.ndarray, hover: str) -> go.Scatter:
    return go.Scatter(
        x=plane["points"][:, 0],
        y=plane["points"][:, 1],
        mode="markers",
        marker=POINT,
        customdata=custom,
        hovertemplate=f"{hover}<extra></extra>",
        showlegend=False,
    )


def _grid(rows: int, columns: int, titles: list[str], colorbar: bool) -> go.Figure:
    """Subplots of square panels that fit `FIGURE_WIDTH`, at most `PANEL_MAX_PX` a side."""
    free = FIGURE_WIDTH - MARGIN["l"] - MARGIN["r"] - (COLORBAR_PX if colorbar else 0)
    panel = int((free - (columns - 1) * GAP_PX) / columns)
    panel = min(panel, PANEL_MAX_PX)
    height = MARGIN["t"] + MARGIN["b"] + rows * panel + (rows - 1) * ROW_GAP_PX
    fig = make_subplots(
        rows,
        columns,
        subplot_titles=titles,
        horizontal_spacing=GAP_PX / FIGURE_WIDTH,
        vertical_spacing=ROW_GAP_PX / height,
    )
    fig.update_layout(height=height)
    return fig


def _finish(fig: go.Figure, panels: list[RegressionPlane], legend: bool) -> go.Figure:
    """Equal units on both axes over the grid of each panel's run (`panels`, in subplot
    order), set in one pass over the layout as plain data (Plotly's per-axis updates of a
    subplot figure cost ~0.1 s a panel, and this redraws live)."""
    layout = fig.layout.to_plotly_json()
    for index, plane in enumerate(panels):
        suffix = "" if index == 0 else str(index + 1)
        ticks = {"ticks": "outside", "nticks": 5, "tickfont": {"size": 12}, "showgrid": False}
        layout[f"xaxis{suffix}"] = {
            **layout.get(f"xaxis{suffix}", {}),
            "range": [float(plane["xs"][0]), float(plane["xs"][-1])],
            "scaleanchor": f"y{suffix}",
            "constrain": "domain",
            **ticks,
        }
        layout[f"yaxis{suffix}"] = {
            **layout.get(f"yaxis{suffix}", {}),
            "range": [float(plane["ys"][0]), float(plane["ys"][-1])],
            "constrain": "domain",
            **ticks,
        }
    for annotation in layout.get("annotations", []):
        annotation["font"] = {"size": 15}
    layout.update(
        margin=MARGIN,
        font=FONT,
        plot_bgcolor="white",
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "top", "y": -0.04, "x": 0},
    )
    return go.Figure(data=fig.data, layout=layout)
