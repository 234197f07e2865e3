"""A paper's table against ours as bars: the paper's number and our mean ± std per row."""

from __future__ import annotations

import plotly.graph_objects as go

from moa_core.results import ResultTable

PAPER_COLOR, OURS_COLOR = "#8c8c8c", "#1f77b4"
ROW_PX = 46  # height per row: two bars and a readable label


def paper_vs_ours_figure(table: ResultTable) -> go.Figure:
    """Horizontal bars per row (dataset · method): the paper's value in grey, ours in blue
    with its std over seeds; a row we have not measured says so instead of a blue bar. Error
    values spanning decades (a regression's MSE) get a log axis."""
    labels = table.labels()
    ours = [row.ours.mean if row.ours else None for row in table.rows]
    spread = [row.ours.std if row.ours else 0.0 for row in table.rows]
    fig = go.Figure()
    fig.add_bar(
        y=labels, x=[row.paper for row in table.rows], name="paper", orientation="h",
        marker_color=PAPER_COLOR,
    )  # fmt: skip
    fig.add_bar(
        y=labels, x=ours, name="ours (mean ± std over seeds)", orientation="h",
        marker_color=OURS_COLOR, error_x=dict(type="data", array=spread, visible=True),
    )  # fmt: skip
    values = [v for v in [row.paper for row in table.rows] + ours if v]
    log = table.metric == "mse" and max(values) / min(values) > 100
    missing = [label for label, value in zip(labels, ours, strict=True) if value is None]
    for label in missing:
        fig.add_annotation(
            y=label, x=0, xref="paper", text="  ours: not measured yet", showarrow=False,
            xanchor="left", yshift=-10, font=dict(size=13, color="#555"),
        )  # fmt: skip
    fig.update_layout(
        barmode="group",
        height=120 + ROW_PX * len(labels),
        margin=dict(l=10, r=20, t=50, b=40),
        title=dict(text=table.metric_label, font=dict(size=16)),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
        font=dict(size=14),
    )
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont=dict(size=14))
    fig.update_xaxes(type="log" if log else "linear", title=table.metric_label)
    return fig
