"""The Generative mixtures page (paper 002, §8.1): its analysis and figures without a browser,
then the page under AppTest, trained live and on two saved runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from moa_core.analysis.generative import (
    GenerativeSettings,
    GenerativeSnapshots,
    generative_view,
    mean_loss,
    project_2d,
    subset_indices,
)
from moa_core.checkpoint import list_runs, save_run
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.run import prepare, train_model
from moa_core.viz.generative import (
    cluster_samples_figure,
    cluster_scatter,
    image_scale,
    progress_figure,
    reconstruction_pairs_figure,
    square_extent,
)

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "generative.py")
TINY = {
    "latent_dim": 3,
    "encoder_units": [16],
    "decoder_units": [16],
    "num_clusters": 5,
    "device": "cpu",
    "batch_size": 100,
    "max_samples": 300,
}


# --- analysis --------------------------------------------------------------------------------


def test_a_latent_of_two_dims_is_drawn_as_it_is_and_a_line_has_one_principal_axis() -> None:
    codes = np.array([[1.0, 2.0], [3.0, 4.0]])
    drawn, others, words = project_2d(codes, np.zeros((3, 4, 2)))
    assert np.array_equal(drawn, codes) and others.shape == (3, 4, 2)
    assert words == "the latent itself"
    line = np.outer(np.arange(5.0), [1.0, 2.0, 2.0])  # 5 points on a line of slope |(1,2,2)| = 3
    drawn, _, words = project_2d(line, line[:1])
    assert words == "PCA of μ̃, 100% of its variance"
    assert np.allclose(np.abs(np.diff(drawn[:, 0])), 3.0) and np.allclose(drawn[:, 1], 0.0)


def test_the_spiral_subset_spans_every_arm() -> None:
    """spiral25k is stored arm by arm: the first 1,000 points would all be arm 0."""
    keep = subset_indices(25_000, 1_000, seed=0)
    assert len(keep) == 1_000 and torch.equal(keep, keep.sort().values)
    assert set((keep // 5_000).tolist()) == {0, 1, 2, 3, 4}
    assert torch.equal(subset_indices(10, 1_000, seed=0), torch.arange(10))


@pytest.mark.parametrize(("model_type", "dataset"), [("dmvae", "spiral25k"), ("vade", "digits")])
def test_the_view_holds_every_figure_and_is_repeatable(model_type: str, dataset: str) -> None:
    model, config, _, data = prepare(model_type, dataset, TINY)
    noise_state = model.noise.generator(torch.device("cpu")).get_state()
    first, again = generative_view(model, data, seed=3), generative_view(model, data, seed=3)
    sample = tuple(data.x.shape[1:])
    n = 200 if data.kind == "points" else 10
    assert first.generated.shape == (5, n, *sample)  # row k = cluster k (Figs. 6, 10)
    shown = 300 if data.kind == "points" else 40
    assert first.originals.shape == first.reconstructions.shape == (shown, *sample)
    assert first.prior_2d.shape == (5, 100, 2) and first.encoded_2d.shape == (300, 2)
    assert len(first.clusters) == 300
    assert first.usage.sum() == pytest.approx(1.0)
    for name in ("generated", "reconstructions", "prior_2d"):  # the page's seed, nothing else
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert torch.equal(
        model.noise.generator(torch.device("cpu")).get_state(), noise_state
    )  # its own noise untouched
    keep = subset_indices(len(data), 1000, seed=3)
    assert first.elbo == pytest.approx(-mean_loss(model, data.x[keep]))
    assert first.pretraining == (model_type == "vade")  # VaDE starts as a plain VAE


def test_the_snapshot_hook_keeps_one_elbo_per_epoch_and_marks_pretraining() -> None:
    hook = GenerativeSnapshots()
    settings = {**TINY, "epochs": 2, "pretrain_epochs": 1}
    run = train_model("vade", "spiral25k", settings, snapshot_hooks=[hook])
    assert run.result.status == "finished"
    # The initial weights, then one per epoch; the GMM fit starts epoch 2 (spec §4.6).
    assert [row["epoch"] for row in hook.history] == [0, 1, 2]
    assert [row["pretraining"] for row in hook.history] == [True, True, False]
    assert all(np.isfinite(row["elbo"]) for row in hook.history)


def test_settings_train_vade_beside_dmvae_on_the_same_data_and_seed() -> None:
    settings = GenerativeSettings(dataset="spiral25k", epochs=7, seed=4, pretrain_epochs=3)
    vade, dmvae = settings.job_specs()
    assert (vade.model_type, vade.label, dmvae.model_type, dmvae.label) == (
        "vade",
        "VaDE",
        "dmvae",
        "DMVAE",
    )
    assert vade.overrides == {**dmvae.overrides, "pretrain_epochs": 3}
    assert dmvae.overrides["seed"] == 4 and "num_clusters" not in dmvae.overrides
    assert vade.snapshot_hooks[0] is not dmvae.snapshot_hooks[0]  # each job its own ELBO list
    settings.pretraining = False
    vade, _ = settings.job_specs()
    assert vade.label == "VaDE without pretraining" and vade.overrides["pretrain_epochs"] == 0


# --- figures ---------------------------------------------------------------------------------


def test_image_scale_is_the_largest_that_fits() -> None:
    # 10 tiles of 16 px at ×2 with 2 px gaps: 10·34 + 2·2 = 344 px.
    assert image_scale(16, 10, 344) == 2 and image_scale(16, 10, 343) == 1
    assert image_scale(8, 10, 10_000) == 4  # never more than ×4
    assert image_scale(28, 10, 100) == 1  # too narrow still draws at ×1


def test_sample_and_reconstruction_grids_are_drawn_at_their_pixel_size() -> None:
    samples = np.random.default_rng(0).random((3, 4, 1, 8, 8))
    fig = cluster_samples_figure(samples, scale=2, title="VaDE")
    grid = fig.data[0].z
    assert grid.shape[:2] == (3 * 16 + 2 * 2 + 2 * 2, 4 * 16 + 3 * 2 + 2 * 2)
    assert list(fig.layout.yaxis.ticktext) == ["cluster 1", "cluster 2", "cluster 3"]
    assert fig.layout.width == grid.shape[1] + 80
    pairs = reconstruction_pairs_figure(samples[0], samples[1], scale=1, columns=2)
    half = 2 * 8 + 2 + 2 * 2  # two tiles, one gap, the border
    assert pairs.data[0].z.shape[1] == 2 * half + 16
    assert list(pairs.layout.xaxis.ticktext) == ["original", "reconstruction"]


def test_scatter_panels_share_one_window_and_one_legend() -> None:
    points = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 0.0]])
    clusters = np.array([0, 1, 1])
    extent = square_extent(points, margin=0.0)
    assert extent == ((0.0, 2.0), (0.0, 2.0))
    fig = cluster_scatter([("data", points, clusters), ("recon", points, clusters)], 2, extent)
    assert len(fig.data) == 4  # one trace per cluster per panel
    assert [trace.showlegend for trace in fig.data] == [True, True, False, False]
    assert fig.data[0].marker.color == fig.data[2].marker.color  # cluster 1 alike in both
    assert fig.layout.xaxis.range == fig.layout.xaxis2.range == (0.0, 2.0)
    assert len(fig.data[1].x) == 2


def test_progress_marks_pretraining_epochs_and_leaves_the_initial_weights_out() -> None:
    scores = {"VaDE": [{"epoch": 1, "acc": 0.2, "nmi": 0.1}, {"epoch": 2, "acc": 0.5, "nmi": 0.4}]}
    elbos = {
        "VaDE": [
            {"epoch": 0, "elbo": -900.0, "pretraining": True},
            {"epoch": 1, "elbo": -120.0, "pretraining": True},
            {"epoch": 2, "elbo": -100.0, "pretraining": False},
        ]
    }
    fig = progress_figure(scores, elbos)
    acc, nmi, elbo = fig.data
    assert list(acc.y) == [0.2, 0.5] and nmi.line.dash == "dot"
    assert list(elbo.x) == [1, 2] and list(elbo.y) == [-120.0, -100.0]
    assert list(elbo.marker.symbol) == ["circle-open", "circle"]
    assert elbo.xaxis == "x2"


# --- the page --------------------------------------------------------------------------------


def open_page(**params: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def test_the_page_trains_both_models_live_and_draws_every_figure(
    trained_on_page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    at = open_page(dataset="spiral25k", samples="300", epochs="2", latent="3", pretrain_epochs="1")
    assert not at.exception and at.title[0].value == "Generative mixtures"
    assert at.expander[0].label == lesson_title("generative") and "E4" in lesson_text("generative")
    jobs = trained_on_page(at)
    assert [job.spec.label for job in jobs] == ["VaDE", "DMVAE"]
    assert [m.label for m in at.metric].count("NMI") == 2
    keys = [chart.key for chart in at.get("plotly_chart")]
    runs = ("VaDE", "DMVAE")
    expected = ["gen_progress"]
    for figure in ("generated", "recon", "latent"):
        expected += [f"gen_{figure}_{label}" for label in runs]
    assert keys == expected
    assert at.query_params["dataset"] == "spiral25k" and at.query_params["epochs"] == "2"
    history = jobs[0].state.view()["snapshot"]["elbo_history"]
    assert [row["pretraining"] for row in history] == [True, True, False]
    saves = [b for b in at.button if b.label == "Save as run"]
    assert len(saves) == 2
    saves[0].click().run()
    assert [run.model_type for run in list_runs(tmp_path)] == ["vade"]


@pytest.fixture(scope="module")
def generative_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run registry with a tiny VaDE and a tiny DMVAE on 300 digits."""
    directory = tmp_path_factory.mktemp("generative_runs")
    for model_type, more in (("vade", {"pretrain_epochs": 1}), ("dmvae", {})):
        run = train_model(model_type, "digits", {**TINY, "epochs": 2, **more})
        save_run(run.model, run.config, run.checkpoint_meta(), directory)
    return directory


def test_two_saved_runs_draw_side_by_side(
    generative_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(generative_runs))
    at = open_page(source="saved")  # opens on the gallery's pair
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.label for s in at.selectbox] == ["Left run", "Right run"]
    assert [s.value for s in at.selectbox] == ["gallery/vade_digits", "gallery/dmvae_digits"]
    saved = {run.model_type: run.run_id for run in list_runs(generative_runs)}
    at = open_page(source="saved", run_a=saved["vade"], run_b=saved["dmvae"])
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value.split("-")[0] for s in at.selectbox] == ["vade", "dmvae"]
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert keys == [
        f"gen_{figure}_{side}: {model}"
        for figure in ("samples", "pairs", "latent")
        for side, model in (("Left", "vade"), ("Right", "dmvae"))
    ]
    assert [m.label for m in at.metric].count("ELBO per sample") == 2
