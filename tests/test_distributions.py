"""Cluster densities over the plane (paper 004, Fig. 5 / Table 1): analysis, figure, page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from moa_core.analysis.density import (
    TABLE_BATCH,
    cluster_densities,
    density_grid,
    mean_density,
    plane_snapshot,
)
from moa_core.models import build_model
from moa_core.models.neural_em import NeuralEMConfig
from moa_core.train.run import train_model
from moa_core.ui_state import PlaneSettings, point_model_types
from moa_core.viz.density import density_contours, mean_density_table

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "distributions.py")
POINTS = NeuralEMConfig(input_kind="points", num_clusters=4, hidden_units=(16, 16))


@pytest.fixture(scope="module")
def blobs_run():
    """neural_em on the 4 blobs, trained long enough to find them."""
    return train_model("neural_em", "blobs", {"epochs": 15, "seed": 0, "device": "cpu"})


def test_grid_covers_the_data_and_matches_pointwise_densities(blobs_run) -> None:
    points = blobs_run.dataset.x
    grid = density_grid(blobs_run.model, points, resolution=20)
    assert grid.values.shape == (4, 20, 20) and grid.kind == "density"
    assert grid.xs[0] < points[:, 0].min() and grid.xs[-1] > points[:, 0].max()
    assert grid.ys[0] < points[:, 1].min() and grid.ys[-1] > points[:, 1].max()
    # values[j, r, c] is h_j at (xs[c], ys[r]): check one off-diagonal cell by hand.
    r, c = 3, 11
    here = torch.tensor([[grid.xs[c], grid.ys[r]]], dtype=torch.float32)
    expected = cluster_densities(blobs_run.model, here)[0].numpy()
    np.testing.assert_allclose(grid.values[:, r, c], expected, atol=1e-5)
    assert ((grid.values > 0) & (grid.values < 1)).all()


def test_each_blob_has_its_own_bright_cluster(blobs_run) -> None:
    """Fig. 5b: each cluster's density is high where its members are, low elsewhere."""
    data = blobs_run.dataset
    densities = cluster_densities(blobs_run.model, data.x).numpy()
    labels = data.y.numpy()
    # Per true blob, the mean density of every cluster: the best cluster differs per blob.
    table = np.stack([densities[labels == b].mean(0) for b in range(4)])
    assert sorted(table.argmax(1).tolist()) == [0, 1, 2, 3]
    # h stays in sigmoid's near-linear band (|a*/γ| ≤ 2.25 at n = 128), so margins are modest.
    ranked = np.sort(table, axis=1)
    assert (ranked[:, -1] - ranked[:, -2] > 0.05).all()


def test_mean_density_is_half_with_normalization(blobs_run) -> None:
    """Table 1 / Eq. 3: the batch mean of every h_j is ≈ 0.5 when scores are normalized."""
    means = mean_density(blobs_run.model, blobs_run.dataset.x)
    assert means.shape == (4,)
    np.testing.assert_allclose(means, 0.5, atol=0.06)


def test_without_normalization_one_cluster_takes_the_plane() -> None:
    run = train_model(
        "neural_em", "blobs", {"epochs": 15, "seed": 0, "device": "cpu", "normalize": False}
    )
    snapshot = plane_snapshot(run.model, run.dataset.x)
    assert len(np.unique(snapshot["assignments"])) <= 2
    means = snapshot["mean_density"]
    assert np.abs(means - 0.5).max() > 0.2  # Table 1's un-normalized row: far from 0.5


def test_models_without_densities_fall_back_to_posteriors() -> None:
    """The page asks the model: a model with no `cluster_density` shows its gate posterior."""

    class PosteriorOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = build_model(POINTS)

        def forward(self, x):
            return self.inner(x)

    model = PosteriorOnly()
    points = torch.randn(50, 2)
    grid = density_grid(model, points, resolution=8)
    assert grid.kind == "posterior"
    np.testing.assert_allclose(grid.values.sum(0), 1.0, atol=1e-5)


def test_snapshot_samples_at_most_the_cap() -> None:
    model = build_model(POINTS)
    points = torch.randn(3000, 2)
    snapshot = plane_snapshot(model, points)
    assert snapshot["points"].shape == (300, 2) and snapshot["assignments"].shape == (300,)
    kept = {tuple(p) for p in snapshot["points"].tolist()}
    assert kept <= {tuple(p) for p in points.tolist()}  # a sample of the data, not new points


def test_table_mean_covers_one_batch_of_128() -> None:
    """Up to 128 points the mean is over all of them; beyond, over a seeded 128-subset."""
    model = build_model(POINTS)
    points = torch.randn(TABLE_BATCH + 72, 2)
    per_point = cluster_densities(model, points)
    np.testing.assert_allclose(
        mean_density(model, points[:TABLE_BATCH]), per_point[:TABLE_BATCH].mean(0), rtol=1e-5
    )
    # With 200 points it is not the mean over all of them, and the same on every call.
    whole = mean_density(model, points)
    assert not np.allclose(whole, per_point.mean(0).numpy(), atol=1e-7)
    np.testing.assert_allclose(whole, mean_density(model, points), rtol=0)  # seeded


def test_contour_figure_has_one_panel_per_chosen_cluster(blobs_run) -> None:
    snapshot = plane_snapshot(blobs_run.model, blobs_run.dataset.x)
    figure = density_contours({"run": snapshot}, [0, 2, 3])
    contours = [t for t in figure.data if t.type == "contour"]
    assert len(contours) == 3
    drawn = snapshot["grid"].values[[0, 2, 3]]
    assert {(t.zmin, t.zmax) for t in contours} == {(drawn.min(), drawn.max())}  # one scale
    np.testing.assert_array_equal(contours[1].z, snapshot["grid"].values[2])
    assert [a.text for a in figure.layout.annotations] == [
        "cluster 1: h_1(x)",
        "cluster 3: h_3(x)",
        "cluster 4: h_4(x)",
    ]
    with pytest.raises(ValueError, match="0..3"):
        density_contours({"run": snapshot}, [4])
    with pytest.raises(ValueError, match="at least one"):
        density_contours({"run": snapshot}, [])


def test_mean_density_table_has_a_column_per_run() -> None:
    table = mean_density_table({"a": np.array([0.5, 0.49]), "b": np.array([0.9, 0.1])})
    assert table == {"cluster": [1, 2], "a": [0.5, 0.49], "b": [0.9, 0.1]}
    with pytest.raises(ValueError):
        mean_density_table({"a": np.zeros(2), "b": np.zeros(3)})


def test_plane_settings_add_the_ablation_side_by_side() -> None:
    assert "neural_em" in point_model_types() and "moa" not in point_model_types()
    specs = PlaneSettings(dataset="blobs", epochs=3).job_specs()
    assert [s.overrides.get("normalize", True) for s in specs] == [True, False]
    assert specs[0].dataset == specs[1].dataset == "blobs"
    assert specs[1].overrides["seed"] == specs[0].overrides["seed"]
    assert len(PlaneSettings(side_by_side=False).job_specs()) == 1


def test_page_trains_both_runs_and_draws_contours_and_table(trained_on_page) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception
    at.selectbox(key="dist_dataset").set_value("blobs").run()
    at.number_input(key="dist_epochs").set_value(4).run()
    assert len(trained_on_page(at, timeout=120)) == 2
    assert len(at.success) == 2
    assert all(s.value.startswith("finished — 4 epochs") for s in at.success)
    (chart,) = at.get("plotly_chart")  # one figure compares both runs: 2 rows × 3 clusters
    traces = json.loads(chart.proto.spec)["data"]
    assert [t["type"] for t in traces].count("contour") == 6
    table = at.dataframe[0].value
    assert list(table.columns) == ["cluster", "neural_em", "neural_em without normalization"]
    assert len(table) == 4
    assert (table["neural_em"] - 0.5).abs().max() < 0.1
