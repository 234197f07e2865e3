"""Figure builders and image arrays: known numbers in, properties a reader can check out."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from moa_core.viz.images import (
    GAP_COLOR,
    WINNER_COLOR,
    image_grid,
    png_data_uri,
    reconstruction_grid,
    thumbnails,
    to_rgb_uint8,
    upscale,
)
from moa_core.viz.latent import category_color, latent_html, latent_html_height, latent_scatter
from moa_core.viz.training import downsample, loss_figure, metrics_figure, run_color, usage_figure


def constant_images(values: list[float], channels: int = 1, size: int = 4) -> np.ndarray:
    """[N, C, size, size] images, image i filled with values[i]."""
    return np.stack([np.full((channels, size, size), v, dtype=np.float32) for v in values])


# --- images -----------------------------------------------------------------------------


def test_to_rgb_uint8_scales_clips_and_repeats_grey() -> None:
    image = np.array([[[0.0, 0.5], [-0.2, 1.7]]], dtype=np.float32)  # [1, 2, 2]
    rgb = to_rgb_uint8(image)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    # 0.5 · 255 = 127.5 rounds to 128; out-of-range values clip to 0 and 255.
    assert rgb[:, :, 0].tolist() == [[0, 128], [0, 255]]
    assert (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all()


def test_to_rgb_uint8_keeps_colour_channels_in_order() -> None:
    image = np.zeros((3, 1, 1), dtype=np.float32)
    image[0], image[2] = 1.0, 0.2  # red full, blue 0.2 → 51
    assert to_rgb_uint8(image)[0, 0].tolist() == [255, 0, 51]


def test_to_rgb_uint8_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="C = 1 or 3"):
        to_rgb_uint8(np.zeros((2, 4, 4)))


def test_upscale_repeats_each_pixel() -> None:
    image = np.arange(4, dtype=np.uint8).reshape(2, 2, 1).repeat(3, axis=2)
    big = upscale(image, 3)
    assert big.shape == (6, 6, 3)
    assert big[:3, :3, 0].tolist() == [[0] * 3] * 3 and big[3:, 3:, 0].tolist() == [[3] * 3] * 3


def test_image_grid_places_images_row_major_with_black_padding() -> None:
    grid = image_grid(constant_images([0.2, 0.4, 0.6]), columns=2)  # 2×2 cells of 4×4
    assert grid.shape == (8 + 2, 8 + 2, 3)  # plus a 1-pixel frame
    assert grid[1, 1, 0] == 51  # 0.2 · 255
    assert grid[1, 5, 0] == 102  # 0.4 · 255, second column
    assert grid[5, 1, 0] == 153  # 0.6 · 255, second row
    assert (grid[5:9, 5:9] == 0).all()  # no fourth image: black


def test_image_grid_gap_separates_tiles() -> None:
    grid = image_grid(constant_images([1.0, 1.0]), columns=2, scale=2, gap=3)
    assert grid.shape == (3 + 8 + 3, 3 + 8 + 3 + 8 + 3, 3)
    assert (grid[:, 11:14] == GAP_COLOR).all()


def test_a_white_tile_stays_visible_on_a_white_page() -> None:
    """The all-ones probe is a white tile: a frame that is not white must surround it."""
    for gap in (0, 2):
        grid = image_grid(constant_images([1.0]), columns=1, scale=3, gap=gap)
        frame = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
        assert (frame < 200).all()
        assert (grid[grid.shape[0] // 2, grid.shape[1] // 2] == 255).all()


def test_reconstruction_grid_shape_and_pixels() -> None:
    rows, experts, size = 2, 3, 4
    inputs = constant_images([0.0, 1.0], size=size)
    recon = np.stack(
        [
            constant_images([0.1 * (r * experts + k + 1) for k in range(experts)])
            for r in range(rows)
        ]
    )  # recon[r, k] = 0.1 · (3r + k + 1)
    grid = reconstruction_grid(inputs, recon)
    assert grid.shape == (rows * size + 2, (experts + 1) * size + 2, 3)
    assert grid[1, 1, 0] == 0 and grid[size + 1, 1, 0] == 255  # column 0: the inputs
    # Row 1, expert 2 (column 3): 0.1 · (3 + 2 + 1) = 0.6 → 153.
    assert grid[size + 2, 3 * size + 2, 0] == 153


def test_reconstruction_grid_frames_the_gate_choice() -> None:
    inputs = constant_images([0.5, 0.5])
    recon = np.stack([constant_images([0.5, 0.5, 0.5])] * 2)
    gates = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    grid = reconstruction_grid(inputs, recon, gates, scale=2)[1:-1, 1:-1]  # tiles 8×8, no frame
    framed_row0 = grid[0:8, 2 * 8 : 3 * 8]  # row 0 → expert 2 (column 2)
    assert framed_row0[0, 0].tolist() == list(WINNER_COLOR)
    assert framed_row0[4, 4].tolist() == [128, 128, 128]  # interior untouched
    framed_row1 = grid[8:16, 1 * 8 : 2 * 8]  # row 1 → expert 1 (column 1)
    assert framed_row1[-1, -1].tolist() == list(WINNER_COLOR)
    assert grid[0, 8].tolist() == [128, 128, 128]  # expert 1 in row 0 is not framed


def test_reconstruction_grid_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="reconstructions"):
        reconstruction_grid(constant_images([0.1, 0.2]), np.zeros((3, 2, 1, 4, 4)))


def test_png_data_uri_round_trips_pixels() -> None:
    image = np.array([[[0.0, 1.0], [0.5, 0.2]]], dtype=np.float32)
    uri = png_data_uri(image)
    assert uri.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert decoded.mode == "L"  # grey stays one channel
    assert np.asarray(decoded).tolist() == [[0, 255], [128, 51]]


def test_thumbnails_one_per_image() -> None:
    uris = thumbnails(constant_images([0.1, 0.2, 0.3], channels=3))
    assert len(uris) == 3 and len(set(uris)) == 3
    assert Image.open(io.BytesIO(base64.b64decode(uris[0].split(",")[1]))).mode == "RGB"


# --- training figures -------------------------------------------------------------------


def test_usage_bars_equal_the_fractions() -> None:
    usage = {"moa": [1.0, 0.0, 0.0, 0.0], "moa_plus": [0.25, 0.3, 0.2, 0.25]}
    fig = usage_figure(usage)
    bars = [trace for trace in fig.data if isinstance(trace, go.Bar)]
    assert [bar.name for bar in bars] == ["moa", "moa_plus"]
    assert list(bars[0].y) == [1.0, 0.0, 0.0, 0.0]
    assert list(bars[1].y) == [0.25, 0.3, 0.2, 0.25]
    assert list(bars[0].x) == ["1", "2", "3", "4"]  # experts numbered from 1
    balanced = [shape for shape in fig.layout.shapes if shape.y0 == shape.y1]
    assert len(balanced) == 1 and balanced[0].y0 == pytest.approx(0.25)  # 1/M
    assert tuple(fig.layout.yaxis.range) == (0, 1.02)
    assert bars[0].marker.color == run_color(0) != bars[1].marker.color


def test_a_run_drawn_alone_keeps_its_compare_colour() -> None:
    """Compare mode draws each run's usage in its own column: MoA+ stays MoA+'s colour."""
    (bar,) = usage_figure({"moa_plus": [0.5, 0.5]}, first_color=1).data
    assert bar.marker.color == run_color(1) != run_color(0)


def test_usage_without_common_m_has_no_balance_line() -> None:
    fig = usage_figure({"a": [0.5, 0.5], "b": [0.2, 0.3, 0.5]})
    assert len(fig.layout.shapes) == 0


def test_metrics_figure_one_line_per_run_and_metric() -> None:
    history = {
        "moa": [{"epoch": 1, "nmi": 0.05, "acc": 0.5}, {"epoch": 2, "nmi": 0.08, "acc": 0.51}],
        "moa_plus": [{"epoch": 1, "nmi": 0.6, "acc": 0.8}, {"epoch": 2, "nmi": 0.8, "acc": 0.9}],
    }
    fig = metrics_figure(history)
    assert [trace.name for trace in fig.data] == [
        "moa NMI",
        "moa ACC",
        "moa_plus NMI",
        "moa_plus ACC",
    ]
    assert list(fig.data[2].y) == [0.6, 0.8] and list(fig.data[2].x) == [1, 2]
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    assert fig.data[0].line.dash != fig.data[1].line.dash


def test_downsample_takes_bin_means() -> None:
    points = [(step, float(step)) for step in range(1, 11)]  # loss = step
    assert downsample(points, 20).tolist() == [[s, s] for s in range(1, 11)]
    binned = downsample(points, 2)  # [1..5] and [6..10]
    assert binned.tolist() == [[3.0, 3.0], [8.0, 8.0]]


def test_loss_figure_axis_type_follows_the_sign_of_the_losses() -> None:
    positive = loss_figure({"a": [(1, 2.0), (2, 1.0)]})
    negative = loss_figure({"a": [(1, 2.0), (2, -0.5)]})
    assert positive.layout.yaxis.type == "log" and negative.layout.yaxis.type == "linear"
    assert list(positive.data[0].y) == [2.0, 1.0]
    empty = loss_figure({"a": []})  # before the first batch: no crash, no points
    assert len(empty.data[0].x) == 0


# --- latent scatter and its HTML ---------------------------------------------------------


@pytest.fixture
def points() -> dict:
    rng = np.random.default_rng(0)
    n = 12
    return {
        "xy": rng.normal(size=(n, 2)),
        "clusters": np.array([1, 3, 3, 4, 1, 4, 4, 1, 3, 3, 1, 4]),
        "texts": [f"point {i}" for i in range(n)],
        "thumbs": thumbnails(rng.random((n, 1, 4, 4)).astype(np.float32)),
    }


def test_latent_scatter_categorical_keeps_point_data_together(points: dict) -> None:
    fig = latent_scatter(
        points["xy"],
        points["clusters"],
        categorical=True,
        color_title="predicted cluster",
        hover_text=points["texts"],
        thumbnails=points["thumbs"],
        categories=[1, 2, 3, 4],
    )
    assert [trace.name for trace in fig.data] == ["1", "3", "4"]  # expert 2 won nothing
    assert sum(len(trace.x) for trace in fig.data) == 12
    # Colours follow the category list, so expert 3 keeps colour #3 with expert 2 absent.
    assert fig.data[1].marker.color == category_color(2, 4)
    for trace in fig.data:
        for x, text, thumb in zip(trace.x, trace.hovertext, trace.customdata, strict=True):
            i = int(text.split()[1])
            assert x == points["xy"][i, 0] and thumb == points["thumbs"][i]


def test_latent_scatter_continuous_has_one_trace_with_a_colourbar(points: dict) -> None:
    entropy = np.linspace(0.0, 1.0, 12)
    fig = latent_scatter(
        points["xy"], entropy, categorical=False, color_title="gate entropy",
        hover_text=points["texts"], thumbnails=points["thumbs"],
    )  # fmt: skip
    assert len(fig.data) == 1
    assert list(fig.data[0].marker.color) == list(entropy)
    assert fig.data[0].marker.colorbar.title.text == "gate entropy"
    assert list(fig.data[0].customdata) == points["thumbs"]


def test_latent_scatter_rejects_length_mismatch(points: dict) -> None:
    with pytest.raises(ValueError, match="one entry per point"):
        latent_scatter(points["xy"], points["clusters"][:5], categorical=True, color_title="c")


def test_latent_html_is_self_contained_with_one_image_per_point(points: dict) -> None:
    fig = latent_scatter(
        points["xy"], points["clusters"], categorical=True, color_title="cluster",
        hover_text=points["texts"], thumbnails=points["thumbs"],
    )  # fmt: skip
    html = latent_html(fig)
    # plotly's JSON writes "/" as \u002f inside <script>; each thumbnail appears exactly once.
    for thumb in points["thumbs"]:
        assert html.count(json.dumps(thumb)[1:-1].replace("/", "\\u002f")) == 1
    assert html.count('"data:image\\u002fpng;base64,') == len(points["thumbs"])
    assert "plotly_hover" in html and "plotly_selected" in html
    assert 'id="moa-hover-img"' in html and 'id="moa-selection-grid"' in html
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js inlined: offline
    assert latent_html_height(fig) > fig.layout.height
