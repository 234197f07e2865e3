"""The Pretraining pipeline and Experts & latent walks pages under AppTest: the four steps run
one by one and save a run; a saved run's record is drawn; every experts view renders for a
pipeline MoE-VAE, a fixed-K MoE-VAE and a MoA, and a classifier gets one error line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tiny import TINY, TINY_PIPELINE, TINY_ROUTING

from moa_core.checkpoint import list_runs, load_checkpoint, save_run
from moa_core.train.jobs import job_manager
from moa_core.train.pipeline_record import PipelineRecord
from moa_core.train.run import train_model
from moa_core.ui_state import PIPELINE_RUN

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PRETRAINING_PAGE = str(ROOT / "app_pages" / "pretraining.py")
EXPERTS_PAGE = str(ROOT / "app_pages" / "experts.py")
TIMEOUT = 300
SESSION, PICK = "This session's pipeline", "A gallery, saved or uploaded run"


@pytest.fixture(scope="module")
def runs(pipeline_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A registry with the pipeline's MoE-VAE, a fixed-K MoE-VAE (latent sizes 2, 4, 3), a
    MoA, a two-path classifier and a MoE-VAE whose record is broken; kind → run id."""
    directory = tmp_path_factory.mktemp("page_runs")
    ids = {}
    for path in pipeline_run_dir.glob("*.safetensors"):
        shutil.copy(path, directory / path.name)
        ids["pipeline"] = path.stem
    small = {"max_samples": 300, "batch_size": 100, "device": "cpu", "epochs": 1}
    trained = {
        "fixed": ("moe_vae", {"num_clusters": 3, "latent_sizes": [2, 4, 3], "base_filters": 4}),
        "moa": ("moa", {k: v for k, v in TINY.items() if k not in small}),
        "multipath": ("multipath_cc", TINY_ROUTING),
    }
    for kind, (model_type, settings) in trained.items():
        run = train_model(model_type, "digits", {**settings, **small})
        ids[kind] = save_run(run.model, run.config, run.checkpoint_meta(), directory).stem
    meta = {**run_meta(directory / f"{ids['fixed']}.safetensors"), "pretraining": {"k_found": 3}}
    fixed = load_checkpoint(directory / f"{ids['fixed']}.safetensors")
    ids["broken"] = save_run(fixed.model, fixed.config, meta, directory).stem
    assert len(set(ids.values())) == len(ids) == 5
    ids["dir"] = str(directory)
    return ids


def run_meta(path: Path) -> dict:
    return load_checkpoint(path).meta


def open_page(page: str, runs_dir: str | Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(page, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def image_captions(at: AppTest) -> str:
    return " ".join(image.caption for element in at.get("image") for image in element.proto.imgs)


def run_step(at: AppTest, button: str) -> None:
    """Click a step's button: it becomes a job in a worker thread; wait for it, then rerun
    (in the browser the page's fragment polls and reruns by itself)."""
    at.button(key=button).click().run()
    assert not at.exception, at.exception
    for job in list(job_manager().jobs.values()):
        assert job.wait(TIMEOUT)
    at.run()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# --- Pretraining pipeline: run it here -------------------------------------------------


def test_the_four_steps_run_one_by_one_and_save_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(PRETRAINING_PAGE, tmp_path, monkeypatch)
    assert at.radio(key="pre_mode").value == "Run it here"
    assert at.button(key="pre_run_size")  # only the first step is offered at first
    assert not [b for b in at.button if b.key == "pre_run_clusters"]
    settings = {
        "pre_samples": TINY_PIPELINE["max_samples"],
        "pre_vae_ep": TINY_PIPELINE["vae_epochs"],
        "pre_man_ep": TINY_PIPELINE["manager_epochs"],
        "pre_final_ep": 1,
        "pre_mcs": TINY_PIPELINE["min_cluster_size"],
        "pre_start": TINY_PIPELINE["start_latent"],
        "pre_bf": TINY_PIPELINE["base_filters"],
        "pre_nn": TINY_PIPELINE["n_neighbors"],
    }
    for key, value in settings.items():
        at.number_input(key=key).set_value(value)
    at.run()
    assert not at.exception, at.exception

    run_step(at, "pre_run_size")
    assert not at.exception and not at.error, at.exception or at.error
    assert len(at.get("plotly_chart")) == 1  # the explained-variance curve
    assert "20-dimensional codes" in " ".join(m.value for m in at.markdown)

    run_step(at, "pre_run_clusters")
    assert not at.exception and not at.error, at.exception or at.error
    found = metrics(at)
    k = int(found["K found"])
    assert k >= 1 and {"Labelled (not noise)", "ACC on the labelled"} <= set(found)
    assert len(at.get("plotly_chart")) == 2  # + the UMAP coloured by cluster

    run_step(at, "pre_run_manager")
    assert not at.exception and not at.error, at.exception or at.error
    assert len(at.get("plotly_chart")) == 4  # + manager vs HDBSCAN and vs the true classes
    assert len(at.dataframe) == 3  # Tables II-IV
    assert "final ACC" not in metrics(at)

    run_step(at, "pre_run_mixture")
    assert not at.exception and not at.error, at.exception or at.error
    final = metrics(at)
    assert {"K found", "final ACC", "final NMI", "final ARI"} <= set(final)
    assert 0.0 <= float(final["final ACC"]) <= 1.0
    held = at.session_state[PIPELINE_RUN]  # what the Experts page shows next
    assert held.record.k_found == k == held.run.config.num_clusters
    assert "mixture" in held.record.seconds

    # A later setting keeps the steps before it: only the mixture's button is primary again.
    at.number_input(key="pre_final_ep").set_value(2).run()
    assert not at.exception
    kinds = {b.key: b.proto.type for b in at.button if b.key and b.key.startswith("pre_run_")}
    assert kinds == {
        "pre_run_size": "secondary",
        "pre_run_clusters": "secondary",
        "pre_run_manager": "secondary",
        "pre_run_mixture": "primary",
    }
    at.number_input(key="pre_final_ep").set_value(1).run()

    at.button(key="pre_save").click().run()
    assert not at.exception, at.exception
    assert "Saved as" in at.success[0].value
    (saved,) = list_runs(tmp_path)
    assert saved.model_type == "moe_vae"
    record = PipelineRecord.from_dict(saved.meta["pretraining"])
    assert record.k_found == k and record.samples == 300


# --- Pretraining pipeline: a saved run ------------------------------------------------------


def open_saved(runs: dict[str, str], run: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = open_page(PRETRAINING_PAGE, runs["dir"], monkeypatch)
    at.radio(key="pre_mode").set_value("A saved run").run()
    at.selectbox(key="pre_run").set_value(runs[run]).run()
    assert not at.exception, at.exception
    return at


def test_a_saved_pipeline_run_draws_its_recorded_decisions(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_saved(runs, "pipeline", monkeypatch)
    assert not at.error and not at.info
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # explained variance, UMAP, two confusion tables
    assert len(at.dataframe) == 3
    path = Path(runs["dir"]) / f"{runs['pipeline']}.safetensors"
    record = PipelineRecord.from_dict(run_meta(path)["pretraining"])
    assert f"K = {record.k_found}" in charts[1].proto.spec
    table_four = at.dataframe[2].value
    assert table_four.iloc[0]["paper: MNIST"] == 0.97
    final_acc = run_meta(path)["metrics"]["acc"]  # this run's own column, not only the paper's
    assert table_four.iloc[0]["this run (digits)"] == pytest.approx(final_acc)


@pytest.mark.parametrize("run", ["fixed", "moa"])
def test_a_run_trained_without_the_pipeline_gets_an_info(
    runs: dict[str, str], run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_saved(runs, run, monkeypatch)
    assert "trained without the pretraining pipeline" in at.info[0].value
    assert not at.error and not at.get("plotly_chart")


def test_a_broken_record_is_one_error_line(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_saved(runs, "broken", monkeypatch)
    assert len(at.error) == 1 and "pretraining record" in at.error[0].value
    assert not at.get("plotly_chart")


# --- Experts & latent walks -------------------------------------------------------------


def open_experts(runs: dict[str, str], run: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page on one saved run, named in the URL as a link would."""
    monkeypatch.setenv("MOA_RUNS_DIR", runs["dir"])
    at = AppTest.from_file(EXPERTS_PAGE, default_timeout=TIMEOUT)
    at.query_params["run"] = runs[run]
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="exp_mode").value == PICK  # no pipeline in this session
    assert at.selectbox(key="exp_run").value == runs[run]
    return at


def assert_every_view(at: AppTest, experts: int) -> None:
    assert not at.exception and not at.error, at.exception or at.error
    assert [t.label for t in at.tabs] == [
        "Samples",
        "Latent walk",
        "Interpolation",
        "All-ones probe",
    ]
    assert len(at.get("image")) == 4  # samples, the walk's frame, interpolation, probe
    assert len(at.get("plotly_chart")) == 1  # the animated walk
    assert at.selectbox(key="exp_walk_e").options == [f"expert {e + 1}" for e in range(experts)]


def test_experts_of_a_saved_pipeline_run_render_in_every_tab(
    runs: dict[str, str], tiny_pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_experts(runs, "pipeline", monkeypatch)
    k = tiny_pipeline.record.k_found
    assert_every_view(at, k)
    sizes = ", ".join(map(str, tiny_pipeline.record.latent_sizes))
    assert f"{k} experts, latent sizes {sizes}" in " ".join(c.value for c in at.caption)
    assert "Row k: 10 codes" in image_captions(at)
    at.slider(key="exp_walk_z").set_value(1.5).run()
    at.slider(key="exp_count").set_value(4).run()
    at.number_input(key="exp_sample_seed").set_value(3).run()
    assert_every_view(at, k)
    captions = image_captions(at)
    assert "Row k: 4 codes" in captions and "z1 = +1.50" in captions


def test_walk_and_interpolation_inputs_redraw_a_fixed_k_moe_vae(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_experts(runs, "fixed", monkeypatch)
    assert_every_view(at, 3)
    assert "N(0, I)" in image_captions(at)
    walk = at.selectbox(key="exp_walk_d")
    assert walk.options == ["z1", "z2"]  # expert 1 has two latent dimensions
    at.selectbox(key="exp_walk_e").set_value(1).run()  # four
    assert at.selectbox(key="exp_walk_d").options == ["z1", "z2", "z3", "z4"]
    at.selectbox(key="exp_walk_d").set_value(3).run()
    at.slider(key="exp_walk_z").set_value(-2.0).run()
    assert_every_view(at, 3)
    assert "z4 = -2.00" in image_captions(at)
    # Back to expert 1: its two dimensions, however far the last walk went.
    at.selectbox(key="exp_walk_e").set_value(0).run()
    assert_every_view(at, 3)
    assert at.selectbox(key="exp_walk_d").options == ["z1", "z2"]

    at.number_input(key="exp_i_a").set_value(5).run()
    at.number_input(key="exp_i_b").set_value(299).run()
    at.selectbox(key="exp_i_e").set_value(2).run()
    assert_every_view(at, 3)
    assert "expert 3's decoding" in image_captions(at)


def test_experts_of_a_saved_moa_run_walk_a_fitted_gaussian(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_experts(runs, "moa", monkeypatch)
    experts = TINY["num_clusters"]
    assert_every_view(at, experts)
    assert "Gaussian fitted to the codes" in image_captions(at)
    at.selectbox(key="exp_walk_e").set_value(experts - 1).run()
    at.selectbox(key="exp_walk_d").set_value(TINY["latent_dim"] - 1).run()
    at.slider(key="exp_walk_z").set_value(3.0).run()
    at.number_input(key="exp_i_b").set_value(7).run()
    at.selectbox(key="exp_i_e").set_value(1).run()
    assert_every_view(at, experts)
    assert " σ" in image_captions(at)


def test_a_classifier_run_is_one_error_not_an_exception(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_experts(runs, "multipath", monkeypatch)
    assert len(at.error) == 1 and "no decoding experts" in at.error[0].value
    assert not at.tabs and not at.get("image")


def test_this_sessions_pipeline_is_shown_without_a_saved_run(
    tiny_pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(EXPERTS_PAGE, default_timeout=TIMEOUT)
    at.query_params["mode"] = "session"  # a link to another browser's pipeline
    at.run()
    assert at.radio(key="exp_mode").value == SESSION
    assert "No pipeline has run in this session" in at.info[0].value
    assert not at.tabs

    at = AppTest.from_file(EXPERTS_PAGE, default_timeout=TIMEOUT)
    at.session_state[PIPELINE_RUN] = tiny_pipeline
    at.run()
    assert at.radio(key="exp_mode").value == SESSION  # the session's own pipeline first
    assert_every_view(at, tiny_pipeline.record.k_found)
    at.number_input(key="exp_i_a").set_value(10).run()
    assert_every_view(at, tiny_pipeline.record.k_found)


# --- Projector-ready: a word on the page when a model failed (issue 11, items 11, 12) ----


def test_a_manager_that_collapsed_is_named_on_the_page(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every sample counted in the manager's cluster 1: the page says so and what to try."""
    path = Path(runs["dir"]) / f"{runs['pipeline']}.safetensors"
    loaded = load_checkpoint(path)
    record = dict(loaded.meta["pretraining"])
    rows = record["confusion_clusters"]
    record["confusion_clusters"] = [[sum(row)] + [0] * (len(row) - 1) for row in rows]
    saved = save_run(loaded.model, loaded.config, {**loaded.meta, "pretraining": record}, tmp_path)
    at = open_page(PRETRAINING_PAGE, tmp_path, monkeypatch)
    at.query_params["run"] = saved.stem  # not the gallery's MoE-VAE the page opens on
    at.radio(key="pre_mode").set_value("A saved run").run()
    assert not at.exception and not at.error
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert warnings[0].startswith("The manager: Collapsed: cluster 1 takes 100% of the samples")
    assert "more manager epochs" in warnings[0]


def test_experts_that_never_learned_are_named_on_the_page(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A MoE-VAE whose decoders are all zeros draws the same grey tile for every code."""
    loaded = load_checkpoint(Path(runs["dir"]) / f"{runs['fixed']}.safetensors")
    for parameter in loaded.model.decoder.parameters():
        parameter.data.zero_()
    flat_id = save_run(loaded.model, loaded.config, loaded.meta, tmp_path).stem
    at = open_experts({"dir": str(tmp_path), "flat": flat_id}, "flat", monkeypatch)
    assert not at.exception and not at.error
    (warning,) = at.warning
    assert warning.value.startswith("All 3 experts decode every code into the same flat image")


def test_a_moa_run_says_its_codes_come_from_a_fitted_gaussian_not_a_prior(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_experts(runs, "moa", monkeypatch)
    page_text = image_captions(at)
    assert "Gaussian fitted to the codes of the images the expert wins" in page_text
    assert "N(0, I)" not in page_text
    download = at.get("download_button")
    assert len(download) == 2  # the run's file and the samples' PNG


def test_every_expert_tile_is_framed_so_the_all_ones_probe_shows(
    runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe is a white tile first in its grid: its frame must not be white."""

    from moa_core.analysis.generation import all_ones_probe
    from moa_core.viz.images import image_grid

    loaded = load_checkpoint(Path(runs["dir"]) / f"{runs['fixed']}.safetensors")
    probe = all_ones_probe(loaded.model, (1, 16, 16))
    grid = image_grid(probe, columns=len(probe), scale=2, gap=2)
    assert (grid[2:34, 2:34] == 255).all()  # the probe tile itself is white
    around = [grid[:2, :36], grid[34:36, :36], grid[:36, :2], grid[:36, 34:36]]
    assert all((side < 200).all() for side in around)
