"""The maximization engine (paper 004, Fig. 8): dataset extremes, synthesis, figures, page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from moa_core.analysis.maximize import (
    SynthesisSettings,
    dataset_scores,
    gate_scores,
    maximize_units,
    rank_dataset,
    synthesize,
    total_variation,
)
from moa_core.checkpoint import save_run
from moa_core.train.jobs import job_manager
from moa_core.train.run import train_model
from moa_core.viz.maximize import activation_figure, maximization_grid

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "maximize.py")
SMALL_EM = {"conv_channels": [8, 16], "fc_units": 16, "mode": "em_only"}
FAST = SynthesisSettings(steps=128)


@pytest.fixture(scope="module")
def em_run():
    """A small neural-EM CNN trained briefly on 400 digits, 5 clusters."""
    overrides = {**SMALL_EM, "num_clusters": 5, "epochs": 2, "max_samples": 400, "device": "cpu"}
    return train_model("neural_em", "digits", overrides)


def test_ranking_returns_the_true_extremes() -> None:
    scores = torch.tensor([[0.0, 5.0], [3.0, -1.0], [1.0, 2.0], [-2.0, 4.0]])
    extremes = rank_dataset(scores, k=2)
    np.testing.assert_array_equal(extremes.top, [[1, 2], [0, 3]])
    np.testing.assert_array_equal(extremes.bottom, [[3, 0], [1, 2]])
    np.testing.assert_array_equal(extremes.top_scores, [[3.0, 1.0], [5.0, 4.0]])


def test_gate_scores_are_the_units_before_the_softmax(em_run) -> None:
    model = em_run.model.eval()
    x = em_run.dataset.x[:16]
    scores = gate_scores(model)(x)
    out = model(x)
    torch.testing.assert_close(scores, out.gate_logits)
    # Each unit's density is a monotone function of that unit in eval mode, so ranking the
    # images by the unit or by its cluster's density gives the same order.
    with torch.no_grad():
        assert torch.equal(scores.argsort(0), model.cluster_density(x).argsort(0))


def test_synthesized_image_beats_the_best_dataset_image(em_run) -> None:
    """Every cluster's synthesized input excites its unit more than any of the 400 images."""
    em_run.model.train()
    report = maximize_units(em_run.model, em_run.dataset.x, k=10, settings=FAST)
    assert report.units == [0, 1, 2, 3, 4]
    assert report.synthesis.images.shape == (5, 1, 16, 16)
    assert (report.synthesis.images >= 0).all() and (report.synthesis.images <= 1).all()
    assert (report.synthesis.final_scores > report.best_dataset_scores).all()
    history = report.synthesis.history
    assert history.shape == (FAST.steps + 1, 5)
    assert (history[-1] > history[0] + 0.25).all()  # the activation grew from the noise
    assert em_run.model.training  # the caller's mode is restored
    all_scores = dataset_scores(gate_scores(em_run.model.eval()), em_run.dataset.x)
    np.testing.assert_allclose(report.best_dataset_scores, all_scores.max(0).values, rtol=1e-5)


def test_synthesis_is_deterministic_and_leaves_weights_alone(em_run) -> None:
    model = em_run.model.eval()
    model.zero_grad(set_to_none=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    score_fn = gate_scores(model)
    settings = SynthesisSettings(steps=12, seed=3)
    first = synthesize(score_fn, [1, 4], (1, 16, 16), settings)
    second = synthesize(score_fn, [1, 4], (1, 16, 16), settings)
    other = synthesize(score_fn, [1, 4], (1, 16, 16), SynthesisSettings(steps=12, seed=4))
    np.testing.assert_array_equal(first.images, second.images)
    assert not np.allclose(first.images, other.images)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.parameters())
    em_run.model.train()


def test_fourier_parametrization_also_climbs(em_run) -> None:
    settings = SynthesisSettings(steps=128, fourier=True)
    report = maximize_units(em_run.model, em_run.dataset.x, units=[2], settings=settings)
    assert report.units == [2] and report.extremes.top.shape == (1, 10)
    assert report.synthesis.final_scores[0] > report.best_dataset_scores[0]


def test_regularizer_prefers_smooth_images() -> None:
    smooth = torch.linspace(0, 1, 16).repeat(1, 1, 16, 1)
    noisy = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert total_variation(smooth) < total_variation(noisy) / 5


def test_works_for_a_mixture_gate_too(saved_run_dir: Path) -> None:
    """Any family's gate units: MoA+'s gate logits rank and synthesize the same way."""
    from moa_core.checkpoint import list_runs, load_checkpoint
    from moa_core.explore import run_dataset

    run = list_runs(saved_run_dir)[0]
    loaded = load_checkpoint(run.path, "cpu")
    data = run_dataset(loaded.meta)
    report = maximize_units(loaded.model, data.x, settings=FAST)
    assert len(report.units) == loaded.config.num_clusters
    assert (report.synthesis.final_scores > report.best_dataset_scores).all()


def test_grid_lays_out_top_bottom_and_synthesized() -> None:
    top = np.zeros((2, 3, 1, 4, 4))
    bottom = np.ones((2, 3, 1, 4, 4))
    synth = np.full((2, 1, 4, 4), 0.5)
    grid = maximization_grid(top, bottom, synth, scale=1, gap=1)
    # rows: 2 tiles + 1 gap + a 1-pixel frame above and below; columns: 3 + 3 tiles with gaps
    # and each group's frame, two group gaps of 3, one framed tile.
    assert grid.shape == (11, (3 * 4 + 2 + 2) * 2 + 2 * 3 + 4 + 2, 3)
    assert grid[1, 1, 0] == 0 and grid[1, 20, 0] == 255 and grid[1, -2, 0] == 128
    with pytest.raises(ValueError):
        maximization_grid(top, bottom[:, :2], synth)


def test_activation_figure_draws_a_line_and_a_level_per_unit() -> None:
    history = np.cumsum(np.ones((11, 2)), axis=0)
    figure = activation_figure(history, np.array([3.0, 4.0]), ["unit 1", "unit 4"])
    assert len(figure.data) == 4
    assert list(figure.data[0].y) == list(history[:, 0])
    assert list(figure.data[3].y) == [4.0, 4.0]


def test_page_shows_rows_for_every_cluster(em_run, tmp_path, monkeypatch) -> None:
    path = save_run(em_run.model, em_run.config, em_run.checkpoint_meta(), tmp_path)
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = path.stem  # a link to the run, not the gallery's default
    at.run()
    assert not at.exception and not at.error
    at.slider(key="max_steps").set_value(64).run()
    assert not at.exception and not at.error
    for job in list(job_manager().jobs.values()):
        job.wait(120)
    at.run()  # the finished synthesis is taken into the page
    assert len(at.get("image")) == 3 * 5  # per unit: its top, its bottom, its synthesized
    assert any("of **5**" in m.value or "of 5" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table["unit"]) == [f"unit {u}" for u in range(1, 6)]
    assert (table["synthesized"] > table["best dataset image"]).all()


def test_page_refuses_a_points_model(tmp_path) -> None:
    """Not in its run list (`moa_core.run_menu`), and uploaded: one line."""
    run = train_model("neural_em", "blobs", {"epochs": 1, "device": "cpu"})
    path = save_run(run.model, run.config, run.checkpoint_meta(), tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["max_source"] = "Upload a checkpoint"
    at.run()
    at.file_uploader(key="max_upload").set_value((path.name, path.read_bytes(), "")).run()
    assert not at.exception
    assert len(at.error) == 1 and "needs an image model" in at.error[0].value


def test_page_reports_a_run_whose_data_does_not_fit(em_run, tmp_path, monkeypatch) -> None:
    """A checkpoint recording a dataset its model cannot take: one line, no traceback."""
    meta = {**em_run.checkpoint_meta(), "dataset": "blobs"}
    path = save_run(em_run.model, em_run.config, meta, tmp_path)
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = path.stem
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "needs image data" in at.error[0].value
