"""Figures of a training in progress: loss per batch, clustering scores per epoch, expert usage.

Every builder takes a mapping run label → data, so compare mode (MoA next to MoA+) and a
single run draw through the same code, and each run keeps its colour across figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.Plotly
METRIC_NAMES = {
    "nmi": "NMI",
    "acc": "ACC",
    "ari": "ARI",
    "usage_entropy": "usage balance",
    "accuracy": "held-out accuracy",
    "dead_gate_fraction": "dead gates",
}
METRIC_DASH = ("solid", "dot", "dash", "dashdot")
MARGIN = dict(l=10, r=10, t=40, b=10)


def run_color(index: int) -> str:
    """The colour of the `index`-th run, the same in every figure."""
    return PALETTE[index % len(PALETTE)]


def downsample(points: Sequence[tuple[int, float]], max_points: int) -> np.ndarray:
    """`[(step, loss)]` → at most `max_points` rows of bin means, so long runs stay light.

    Means of consecutive bins (not every k-th point) keep the curve's level honest when the
    loss is noisy batch to batch.
    """
    data = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(data) <= max_points:
        return data
    bins = np.array_split(data, max_points)
    return np.stack([chunk.mean(0) for chunk in bins])


def loss_figure(
    losses: Mapping[str, Sequence[tuple[int, float]]],
    max_points: int = 1500,
    log_y: bool | None = None,
) -> go.Figure:
    """Training loss against batch step, one line per run.

    `log_y=None` picks a log axis when every loss is positive (the early drop then does not
    flatten the rest); MoA+'s weighted objective can go negative, and then the axis stays linear.
    """
    fig = go.Figure()
    all_values = []
    for i, (label, points) in enumerate(losses.items()):
        data = downsample(points, max_points)
        all_values.append(data[:, 1])
        fig.add_trace(
            go.Scatter(
                x=data[:, 0],
                y=data[:, 1],
                mode="lines" if len(data) > 30 else "lines+markers",  # one point shows too
                name=label,
                line=dict(color=run_color(i), width=1.5),
            )
        )
    values = np.concatenate(all_values) if all_values else np.zeros(0)
    if log_y is None:
        log_y = bool(values.size) and bool(np.all(values > 0))
    fig.update_layout(
        title="Loss per batch",
        xaxis_title="step (batch)",
        yaxis_title="loss",
        yaxis_type="log" if log_y else "linear",
        yaxis_tickformat="~g",  # full labels (0.5, 0.2) instead of log axes' bare "5", "2"
        margin=MARGIN,
        height=300,
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def metrics_figure(
    histories: Mapping[str, Sequence[Mapping]],
    metrics: Sequence[str] = ("nmi", "acc"),
) -> go.Figure:
    """Scores after each epoch (clustering or classification), one colour per run and one dash
    per metric.

    `histories[label]` is a list of per-epoch dicts with `epoch` and the metric keys (what
    `JobState.epochs` holds). Scores live in [0, 1], so the axis is fixed and runs compare.
    """
    fig = go.Figure()
    for i, (label, history) in enumerate(histories.items()):
        epochs = [row["epoch"] for row in history]
        for j, metric in enumerate(metrics):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[row.get(metric) for row in history],
                    mode="lines+markers",
                    name=f"{label} {METRIC_NAMES.get(metric, metric)}",
                    line=dict(color=run_color(i), dash=METRIC_DASH[j % len(METRIC_DASH)]),
                )
            )
    fig.update_layout(
        title="Scores after each epoch",
        xaxis_title="epoch",
        yaxis_title="score",
        yaxis_range=[0, 1.02],
        xaxis=dict(rangemode="tozero", dtick=1 if _max_epoch(histories) <= 20 else None),
        margin=MARGIN,
        height=300,
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _max_epoch(histories: Mapping[str, Sequence[Mapping]]) -> int:
    return max((row["epoch"] for history in histories.values() for row in history), default=0)


def usage_figure(usages: Mapping[str, Sequence[float]], height: int = 280) -> go.Figure:
    """Share of samples each expert wins (gate argmax), grouped bars per run.

    Bar heights are the given fractions; a dashed line at 1/M marks perfect balance (drawn
    when every run has the same M), so collapse (one bar at 1) is obvious at a glance.
    """
    fig = go.Figure()
    sizes = {len(usage) for usage in usages.values()}
    for i, (label, usage) in enumerate(usages.items()):
        fig.add_trace(
            go.Bar(
                x=[str(k + 1) for k in range(len(usage))],
                y=list(map(float, usage)),
                name=label,
                marker_color=run_color(i),
            )
        )
    if len(sizes) == 1 and (m := sizes.pop()) > 0:
        fig.add_hline(y=1.0 / m, line_dash="dash", line_color="grey")
    fig.update_layout(
        title="Expert usage (dashed: balanced, 1/M each)",
        xaxis=dict(title="expert", type="category"),
        yaxis_title="share",
        yaxis_range=[0, 1.02],
        barmode="group",
        showlegend=len(usages) > 1,
        margin=MARGIN,
        height=height,
    )
    return fig
