"""Figures and tables of the pretraining pipeline (paper 001, Fig. 4, Tables II–IV): each takes
plain arrays or a `PipelineRecord`, so a fresh run and a saved one draw alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from moa_core.analysis.latent_size import CLUSTERING, RECONSTRUCTION
from moa_core.train.pipeline_record import PipelineRecord
from moa_core.viz.latent import category_color

NOISE_COLOR = "#b0b0b0"
MARGIN = dict(l=10, r=10, t=50, b=10)

# Paper 001, Tables II–IV: (MNIST, Fashion-MNIST).
PAPER_PRETRAINING = {
    "Number of experts": (10, 11),
    "Fraction of the dataset labelled": (0.96, 0.48),
    "Accuracy on the labelled samples": (0.978, 0.673),
    "GMM accuracy on the dataset": (0.956, 0.583),
}
PAPER_MANAGER = {"ACC": (0.967, 0.623), "NMI": (0.922, 0.685), "ARI": (0.927, 0.528)}
PAPER_FINAL_ACC = (0.97, 0.68)


def explained_variance_figure(cumulative: Sequence[float], chosen: int) -> go.Figure:
    """Cumulative explained variance per component, the 90 % and 95 % lines and the size the
    finder chose (paper 001, Fig. 4)."""
    components = np.arange(1, len(cumulative) + 1)
    fig = go.Figure(
        go.Scatter(x=components, y=np.asarray(cumulative), mode="lines+markers", name="cumulative")
    )
    # The two levels lie 5 % apart: one label under its line, one above, both at the right,
    # and the chosen size's label low down, clear of both.
    levels = (
        (CLUSTERING, "clustering", "bottom right"),
        (RECONSTRUCTION, "reconstruction", "top right"),
    )
    for level, use, where in levels:
        fig.add_hline(
            y=level,
            line_dash="dot",
            line_color="grey",
            annotation_text=f"{level:.0%}: {use}",
            annotation_position=where,
            annotation_font_size=13,
        )
    fig.add_vline(
        x=chosen,
        line_color="crimson",
        line_width=2,
        annotation_text=f"chosen: {chosen}",
        annotation_position="bottom right",
        annotation_font_size=13,
    )
    fig.update_layout(
        title="Explained variance of the large VAE's codes",
        xaxis_title="principal components",
        yaxis=dict(title="cumulative explained variance", range=[0, 1.02]),
        height=360,
        margin=MARGIN,
        showlegend=False,
    )
    return fig


def cluster_figure(points: np.ndarray, k: int) -> go.Figure:
    """The UMAP of the retrained VAE's codes coloured by HDBSCAN's label, noise in grey."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 4)
    labels = points[:, 2].astype(int)
    fig = go.Figure()
    noise = labels < 0
    fig.add_trace(
        go.Scatter(
            x=points[noise, 0],
            y=points[noise, 1],
            mode="markers",
            name="noise",
            marker=dict(size=4, color=NOISE_COLOR),
        )
    )
    for label in range(k):
        mine = labels == label
        fig.add_trace(
            go.Scatter(
                x=points[mine, 0],
                y=points[mine, 1],
                mode="markers",
                name=f"cluster {label + 1}",
                marker=dict(size=5, color=category_color(label, k)),
            )
        )
    share = 1 - noise.mean() if len(labels) else 0.0
    fig.update_layout(
        title=f"HDBSCAN found K = {k} clusters; {share:.0%} of the points labelled",
        height=480,
        margin=MARGIN,
        xaxis=dict(showticklabels=False, title="UMAP 1"),
        yaxis=dict(showticklabels=False, title="UMAP 2"),
    )
    return fig


def confusion_figure(
    table: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], title: str
) -> go.Figure:
    """Counts as a heatmap with the numbers written in, row r = the reference label."""
    values = np.asarray(table, dtype=np.int64)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(columns),
            y=list(rows),
            text=values,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    fig.update_layout(
        title=title,
        height=120 + 28 * len(rows),
        margin=MARGIN,
        yaxis=dict(autorange="reversed", type="category"),
        xaxis=dict(type="category", title="manager's cluster"),
    )
    return fig


def cluster_names(k: int) -> list[str]:
    return [f"cluster {c + 1}" for c in range(k)]


def paper_tables(record: PipelineRecord, final_acc: float | None) -> dict[str, list[dict]]:
    """Paper 001's Tables II–IV with a column for this run next to the paper's numbers."""
    run = f"this run ({record.dataset})"
    mine = (
        record.k_found,
        record.labeled_fraction,
        record.acc_labeled,
        record.gmm_acc,
    )
    pretraining = [
        {"": name, run: value, "paper: MNIST": paper[0], "paper: FMNIST": paper[1]}
        for (name, paper), value in zip(PAPER_PRETRAINING.items(), mine, strict=True)
    ]
    scores = (record.manager_acc, record.manager_nmi, record.manager_ari)
    manager = [
        {"": name, run: value, "paper: MNIST": paper[0], "paper: FMNIST": paper[1]}
        for (name, paper), value in zip(PAPER_MANAGER.items(), scores, strict=True)
    ]
    final = [
        {
            "": "MoE ACC",
            run: final_acc,
            "paper: MNIST": PAPER_FINAL_ACC[0],
            "paper: FMNIST": PAPER_FINAL_ACC[1],
        }
    ]
    return {
        "Table II: clustering the pretrained codes": pretraining,
        "Table III: the pretrained manager": manager,
        "Table IV: the trained mixture": final,
    }
