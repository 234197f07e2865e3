"""Figures of a training in progress: loss per batch, clustering scores per epoch, expert usage.

Every builder takes a mapping run label → data, so compare mode (MoA next to MoA+) and a
single run draw through the same code, and each run keeps its colour across figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from moa_core.viz.images import grid_border, reconstruction_grid

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
LABEL_PX_PER_CHAR = 7  # width of a 13 px tick label's character, to keep labels apart


def run_color(index: int) -> str:
    """The colour of the `index`-th run, the same in every figure."""
    return PALETTE[index % len(PALETTE)]


def epoch_trace(rows: Sequence[Mapping], key: str, **style) -> go.Scatter:
    """One run's `key` after each epoch as lines and markers (`rows`: per-epoch dicts with
    `epoch`, as `JobState.epochs` holds; a row without `key` leaves a gap). Every per-epoch
    curve draws through it, so they read alike; `style`: the trace's name, line, marker."""
    return go.Scatter(
        x=[row["epoch"] for row in rows],
        y=[row.get(key) for row in rows],
        mode="lines+markers",
        **style,
    )


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


def log_ticks(low: float, high: float, most: int = 5) -> list[float] | None:
    """Tick values for a log axis over [`low`, `high`]: 1-2-5 steps when they fit in `most`
    ticks, else powers of ten (every k-th one if still too many), so labels never crowd.
    None when the range is too narrow for two such ticks (plotly's own then read well)."""
    if not 0 < low <= high:
        return None
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for mantissas in ((1, 2, 5), (1,)):
        candidates = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
        ticks = [tick for tick in candidates if low <= tick <= high]
        if len(ticks) < 2:
            return None
        if len(ticks) <= most:
            return ticks
    return ticks[:: math.ceil(len(ticks) / most)]


def loss_figure(
    losses: Mapping[str, Sequence[tuple[int, float]]],
    lr_changes: Mapping[str, Sequence[tuple[int, float]]] | None = None,
    max_points: int = 1500,
    log_y: bool | None = None,
) -> go.Figure:
    """Training loss against batch step: one run, or one row per run on a shared step axis
    (compare mode trains different objectives, e.g. MoA's weighted error and MoA+'s bound,
    whose values must not be read off one scale).

    `log_y=None` picks a log axis for a row whose losses are all positive (the early drop then
    does not flatten the rest); MoA+'s weighted objective can go negative, and then that row
    stays linear. `lr_changes[label]` holds `(step, lr)` pairs the user set mid-run, drawn as
    dotted vertical markers labelled with the new rate.
    """
    rows = max(1, len(losses))
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12 if rows > 1 else 0.0,
        subplot_titles=list(losses) if rows > 1 else None,
    )
    for i, (label, points) in enumerate(losses.items()):
        data = downsample(points, max_points)
        fig.add_trace(
            go.Scatter(
                x=data[:, 0],
                y=data[:, 1],
                mode="lines" if len(data) > 30 else "lines+markers",  # one point shows too
                name=label,
                line=dict(color=run_color(i), width=1.5),
            ),
            row=i + 1,
            col=1,
        )
        values = data[:, 1]
        row_log = (bool(values.size) and bool(np.all(values > 0))) if log_y is None else log_y
        ticks = log_ticks(values.min(), values.max()) if row_log and values.size else None
        fig.update_yaxes(
            title_text="loss",
            type="log" if row_log else "linear",
            tickvals=ticks,
            tickformat="~g",  # full labels (0.5, 0.2) instead of log axes' bare "5", "2"
            row=i + 1,
            col=1,
        )
        for step, lr in (lr_changes or {}).get(label, ()):
            fig.add_vline(
                x=step,
                line=dict(color="grey", dash="dot", width=1.5),
                annotation=dict(text=f"lr {lr:g}", font_size=13, bgcolor="rgba(255,255,255,0.7)"),
                annotation_position="top right",
                row=i + 1,
                col=1,
            )
    for i, title in enumerate(fig.layout.annotations[:rows] if rows > 1 else ()):
        title.update(x=0, xanchor="left", font=dict(color=run_color(i), size=14))
    fig.update_xaxes(title_text="step (batch)", row=rows, col=1)
    fig.update_layout(
        title="Loss per batch" + (" (each run its own objective and scale)" if rows > 1 else ""),
        margin=MARGIN,
        height=300 if rows == 1 else 110 + 150 * rows,
        showlegend=False,  # one run, or one row per run titled with its label
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
        for j, metric in enumerate(metrics):
            fig.add_trace(
                epoch_trace(
                    history,
                    metric,
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
        height=320,
        legend=dict(orientation="h", yanchor="top", y=-0.3),  # below the "epoch" title
    )
    return fig


def epoch_loss_figure(histories: Mapping[str, Sequence[Mapping]]) -> go.Figure:
    """Mean training loss after each epoch, one colour per run: the loss chart of a run that
    reports per epoch only (one trained in processes of its own). `histories[label]`: dicts
    with `epoch` and `loss`."""
    fig = go.Figure(
        [
            epoch_trace(history, "loss", name=label, line=dict(color=run_color(i)))
            for i, (label, history) in enumerate(histories.items())
        ]
    )
    fig.update_layout(
        title="Mean training loss per epoch",
        xaxis_title="epoch",
        yaxis_title="loss",
        xaxis=dict(rangemode="tozero", dtick=1 if _max_epoch(histories) <= 20 else None),
        margin=MARGIN,
        height=320,
        legend=dict(orientation="h", yanchor="top", y=-0.3),
    )
    return fig


def _max_epoch(histories: Mapping[str, Sequence[Mapping]]) -> int:
    return max((row["epoch"] for history in histories.values() for row in history), default=0)


def usage_figure(
    usages: Mapping[str, Sequence[float]], height: int = 280, first_color: int = 0
) -> go.Figure:
    """Share of samples each expert wins (gate argmax), grouped bars per run; run i is drawn
    in `run_color(first_color + i)`, so a run drawn alone keeps its colour from the others.

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
                marker_color=run_color(first_color + i),
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


def reconstruction_figure(
    inputs: np.ndarray,
    reconstructions: np.ndarray,
    gate_probs: np.ndarray | None,
    scale: int,
    gap: int = 2,
) -> go.Figure:
    """`images.reconstruction_grid` as a plotly image whose columns are labelled ("input",
    "expert 1" …, or bare numbers when tiles are narrow), so a class can name the expert it
    sees. The figure is sized to the grid's pixels so every tile stays sharp."""
    grid = reconstruction_grid(inputs, reconstructions, gate_probs, scale, gap)
    experts, tile = reconstructions.shape[1], inputs.shape[3] * scale
    left = grid_border(gap) + tile / 2
    centres = [left + c * (tile + gap) for c in range(experts + 1)]
    wide = LABEL_PX_PER_CHAR * len(f"expert {experts}") <= tile + gap
    names = ["input"] + [f"expert {k}" if wide else str(k) for k in range(1, experts + 1)]
    fig = go.Figure(go.Image(z=grid, hoverinfo="skip"))
    fig.update_xaxes(
        tickvals=centres,
        ticktext=names,
        side="top",
        showgrid=False,
        zeroline=False,
        tickfont_size=13,
        ticks="",
        title=None if wide else dict(text="input, then experts 1…M", font_size=13),
    )
    fig.update_yaxes(visible=False)
    top = 30 if wide else 60
    fig.update_layout(
        width=grid.shape[1],
        height=grid.shape[0] + top,
        margin=dict(l=0, r=0, t=top, b=0),
    )
    return fig
