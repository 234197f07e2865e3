"""Presenter mode's figures (issue 13, item 4): `enlarge` makes every font, marker and height
larger on a copy, for figures with subplots, annotations and colour bars alike. No browser."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from moa_core.analysis.density import DensityGrid, PlaneSnapshot
from moa_core.viz.density import density_contours
from moa_core.viz.projector import MIN_FONT_PX, enlarge
from moa_core.viz.training import usage_figure


@pytest.fixture
def subplots() -> go.Figure:
    """Two panels with titles (annotations), a colour bar, a legend and sized markers."""
    fig = make_subplots(1, 2, subplot_titles=("left", "right"))
    fig.add_trace(
        go.Heatmap(z=[[0, 1], [1, 0]], colorbar={"title": {"text": "h", "font": {"size": 14}}}),
        1,
        1,
    )
    fig.add_trace(go.Scatter(x=[0, 1, 2], y=[1, 0, 1], marker={"size": [4, 8, 12]}), 1, 2)
    fig.update_layout(
        height=300,
        margin={"l": 40, "r": 10, "t": 50, "b": 20},
        font={"size": 14},
        legend={"font": {"size": 10}},
        xaxis={"title": {"text": "x", "font": {"size": 16}}, "tickfont": {"size": 12}},
    )
    return fig


def test_fonts_grow_to_at_least_18_px_everywhere(subplots: go.Figure) -> None:
    big = enlarge(subplots)
    assert big.layout.font.size == round(14 * 1.4)  # 20
    assert big.layout.legend.font.size == MIN_FONT_PX  # 10 × 1.4 = 14, raised to 18
    assert big.layout.xaxis.title.font.size == round(16 * 1.4)  # 22
    assert big.layout.xaxis.tickfont.size == MIN_FONT_PX  # 12 × 1.4 = 17
    assert [a.font.size for a in big.layout.annotations] == [22, 22]  # subplot titles: 16 px
    assert big.data[0].colorbar.title.font.size == 20  # a trace's own font: 14 px
    assert big.layout.hoverlabel.font.size == MIN_FONT_PX  # Plotly's 13 px default


def test_height_margins_and_markers_grow_by_a_third(subplots: go.Figure) -> None:
    big = enlarge(subplots)
    assert big.layout.height == 390
    assert (big.layout.margin.l, big.layout.margin.t) == (52, 65)
    assert list(big.data[1].marker.size) == pytest.approx([5.2, 10.4, 15.6])


def test_a_figure_without_sizes_gets_explicit_projector_sizes() -> None:
    """Where a figure leaves sizes to its template, Streamlit's theme would draw them small:
    each is set (Plotly's 12 px text, 14 px axis titles, 17 px title, 450 px chart, enlarged)."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], marker={"size": 6}, xaxis="x2"))
    fig.update_layout(title="loss", xaxis2={"title": {"text": "step"}})
    big = enlarge(fig)
    assert big.layout.font.size == MIN_FONT_PX
    assert big.layout.xaxis2.tickfont.size == MIN_FONT_PX  # the axis the trace draws on
    assert big.layout.xaxis2.title.font.size == 20
    assert big.layout.yaxis.tickfont.size == MIN_FONT_PX
    assert big.layout.title.font.size == 20
    assert big.layout.legend.font.size == MIN_FONT_PX
    assert big.layout.height == round(450 * 1.3)
    assert big.data[0].marker.size == pytest.approx(7.8)


def test_the_input_figure_is_left_as_it_was(subplots: go.Figure) -> None:
    before = subplots.to_json()
    enlarge(subplots)
    enlarge(subplots)
    assert subplots.to_json() == before


def test_a_page_figure_keeps_its_content() -> None:
    """The real contour comparison (2 runs × 2 clusters) and usage bars: same traces and
    values, larger type; per-point marker sizes keep their ratios."""
    rng = np.random.default_rng(0)
    grid = DensityGrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8), rng.random((2, 8, 8)), "h")
    plane = PlaneSnapshot(
        grid=grid,
        points=rng.normal(size=(20, 2)),
        assignments=np.arange(20) % 2,
        mean_density=np.array([0.5, 0.5]),
    )
    contours = density_contours({"normalized": plane, "plain": plane}, [0, 1])
    big = enlarge(contours)
    assert [trace.type for trace in big.data] == [trace.type for trace in contours.data]
    assert (
        json.loads(big.to_json())["data"][0]["z"] == json.loads(contours.to_json())["data"][0]["z"]
    )
    assert np.allclose(
        np.asarray(big.data[1].marker.size), np.asarray(contours.data[1].marker.size) * 1.3
    )
    assert all(a.font.size >= MIN_FONT_PX for a in big.layout.annotations)
    assert big.layout.height == round(contours.layout.height * 1.3)
    bars = usage_figure({"moa": [0.9, 0.1], "moa_plus": [0.5, 0.5]})
    assert enlarge(bars).layout.title.text.replace("<br>", " ") == bars.layout.title.text


def test_a_long_title_is_broken_in_two_with_room_above() -> None:
    """At 20 px a 50-character title outgrows a half column of a 1280 px screen."""
    fig = go.Figure(layout={"title": {"text": "Loss per batch (each run its own objective)"}})
    fig.update_layout(margin={"t": 40})
    big = enlarge(fig)
    assert big.layout.title.text == "Loss per batch (each<br>run its own objective)"
    assert big.layout.margin.t == pytest.approx(40 * 1.3 + 2 * 20 * 1.3)
    short = go.Figure(layout={"title": {"text": "Scores after each epoch"}})
    assert enlarge(short).layout.title.text == "Scores after each epoch"
