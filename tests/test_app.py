"""The Streamlit pages under AppTest (no browser), and the moa_core helpers behind them."""

from __future__ import annotations

import dataclasses
import pickle
import socket
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from moa_core import explore
from moa_core.analysis import embedding
from moa_core.checkpoint import CheckpointError, list_runs, load_checkpoint
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import Job, JobManager, JobSpec, job_manager
from moa_core.train.run import prepare
from moa_core.ui_state import (
    TrainSettings,
    compare_pair,
    dataset_spec,
    image_datasets,
    image_model_types,
    is_active,
    job_status,
    score_tiles,
)
from moa_core.uploads import load_uploaded_checkpoint, safe_upload_name

ROOT = Path(__file__).resolve().parent.parent
TRAIN_PAGE = str(ROOT / "app_pages" / "train.py")
LATENT_PAGE = str(ROOT / "app_pages" / "latent.py")
JOB_TIMEOUT = 300  # seconds; tiny jobs take ~10 s, more when the machine is shared


def open_train_page() -> AppTest:
    return AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()


def tiny_settings(at: AppTest, **values: int) -> AppTest:
    settings = {"epochs": 1, "max_samples": 120, "batch_size": 60, "num_clusters": 2, **values}
    for name, value in settings.items():
        at.number_input(key=f"train_{name}").set_value(value)
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def messages(elements) -> list[str]:
    return [element.value for element in elements]


# --- moa_core helpers behind the pages -----------------------------------------------------


def test_lessons_have_titles_and_the_papers_formulas() -> None:
    train = lesson_text("train")
    assert lesson_title("train").startswith("Lesson")
    assert "p_{ik}" in train and r"\Gamma^{-1}" in train and "P^\\top P" in train
    assert "3,5" in train and "M = 2" in train  # what to try
    assert "gate entropy" in lesson_text("latent")
    assert "missing" in lesson_text("no_such_page")
    with pytest.raises(ValueError):
        lesson_text("../app")


def test_page_choices_are_image_only() -> None:
    assert "digits" in image_datasets() and "spiral" not in image_datasets()
    assert {"moa", "moa_plus"} <= set(image_model_types())
    assert compare_pair() == ("moa", "moa_plus")
    assert dataset_spec("digits", " 3, 5 ") == "digits:3,5"
    assert dataset_spec("mnist", "") == "mnist"


def test_settings_become_job_specs() -> None:
    values = {"train_dataset": "digits", "train_classes": "3,5", "train_num_clusters": 2}
    settings = TrainSettings.from_mapping({**values, "other": 1}, prefix="train_")
    single = settings.job_specs()
    assert [(s.model_type, s.dataset) for s in single] == [("moa_plus", "digits:3,5")]
    assert single[0].overrides["num_clusters"] == 2
    settings.compare = True
    pair = settings.job_specs()
    assert [s.model_type for s in pair] == ["moa", "moa_plus"]
    assert pair[0].overrides == pair[1].overrides  # same data, seed and M


def test_m_defaults_to_one_expert_per_class() -> None:
    """M left at 0 sends no num_clusters, so the model gets one expert per class (2 for 3,5)."""
    settings = TrainSettings.from_mapping({"train_classes": "3,5"}, prefix="train_")
    (spec,) = settings.job_specs()
    assert "num_clusters" not in spec.overrides
    model, *_ = prepare(spec.model_type, spec.dataset, {**spec.overrides, "epochs": 1})
    assert model.config.num_clusters == 2


def test_score_tiles_format_the_four_headline_scores() -> None:
    metrics = {"acc": 0.97312, "nmi": 0.8204, "ari": 0.89, "clusters_used": 2, "usage": [0.5, 0.5]}
    assert score_tiles(metrics) == [
        ("ACC", "0.973"),
        ("NMI", "0.820"),
        ("ARI", "0.890"),
        ("Clusters used", "2/2"),
    ]


def test_upload_over_the_size_limit_is_refused_in_one_line(
    saved_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = next(saved_run_dir.glob("*.safetensors")).read_bytes()
    monkeypatch.setenv("MOA_MAX_CHECKPOINT_MB", str(len(data) / 2 / 2**20))  # half its size
    with pytest.raises(CheckpointError) as err:
        load_uploaded_checkpoint("big.safetensors", data)
    message = str(err.value)
    assert message.startswith("big.safetensors:") and "size limit" in message
    assert "\n" not in message


def test_upload_helper_rejects_pickles_in_one_line(saved_run_dir: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_uploaded_checkpoint("weights.safetensors", pickle.dumps({"w": [1.0, 2.0]}))
    assert str(err.value).startswith("weights.safetensors:") and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="empty"):
        load_uploaded_checkpoint("x.safetensors", b"")
    good = next(saved_run_dir.glob("*.safetensors"))
    loaded = load_uploaded_checkpoint("../../my run.safetensors", good.read_bytes())
    assert loaded.config.model_type == "moa_plus" and loaded.meta["dataset"] == "digits"
    assert safe_upload_name("../../my run.bin") == "my_run.bin.safetensors"


def test_explore_prepares_points_for_the_latent_page(saved_run_dir: Path) -> None:
    path = next(saved_run_dir.glob("*.safetensors"))
    loaded = load_checkpoint(path)
    analysis = explore.analyse(loaded, path.stem)
    assert analysis.num_samples == 300  # the run's max_samples, same seed: the same images
    assert analysis.outputs.gate_probs.shape == (300, 4)
    assert analysis.scores["clusters_used"] == sum(u > 0 for u in analysis.scores["usage"])
    picked = explore.sample_indices(300, 50, seed=0)
    assert len(picked) == 50 and list(picked) == sorted(set(picked))
    assert list(picked) == list(explore.sample_indices(300, 50, seed=0))  # seeded
    assert list(explore.sample_indices(30, 50)) == list(range(30))
    clusters = explore.point_colors(analysis, picked, "predicted cluster")
    assert clusters.categories == [1, 2, 3, 4] and set(clusters.values) <= {1, 2, 3, 4}
    labels = explore.point_colors(analysis, picked, "true label")
    assert labels.categories == [str(d) for d in range(10)]
    assert explore.point_colors(analysis, picked, "gate entropy").categories is None
    text = explore.hover_texts(analysis, picked[:1])[0]
    assert text.startswith(f"#{picked[0]} · expert ") and " · label " in text
    assert explore.images(analysis, picked).shape == (50, 1, 16, 16)


def test_explore_refuses_a_checkpoint_that_does_not_fit_its_data(saved_run_dir: Path) -> None:
    loaded = load_checkpoint(next(saved_run_dir.glob("*.safetensors")))
    wrong = dataclasses.replace(loaded, config=loaded.config.with_updates(image_size=28))
    with pytest.raises(CheckpointError, match="wrong-size"):
        explore.analyse(wrong, "wrong-size")
    no_data = dataclasses.replace(loaded, meta={})
    with pytest.raises(CheckpointError, match="dataset"):
        explore.analyse(no_data, "no-data")


# --- Train page ------------------------------------------------------------------------------


def test_train_page_loads_with_lesson_and_controls() -> None:
    at = open_train_page()
    assert not at.exception and not at.error
    assert at.expander[0].label.startswith("Lesson")
    assert [b.label for b in at.button] == [
        "▶ Lesson demo",
        "Start",
        "Pause",
        "Resume",
        "Step",
        "Stop",
        "Reset",
        "Start in separate processes",  # in the Big runs fold
    ]
    assert not button(at, "Start").disabled and button(at, "Pause").disabled
    assert at.selectbox(key="train_dataset").value == "digits"
    assert "spiral" not in at.selectbox(key="train_dataset").options


def test_entrypoint_shows_device_and_warms_up_umap(monkeypatch: pytest.MonkeyPatch) -> None:
    warmed = threading.Event()
    monkeypatch.setattr(embedding, "warm_up", warmed.set)  # the real one compiles for ~20 s
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Device:" in m.value for m in at.sidebar.markdown)
    assert warmed.wait(10)
    assert at.title[0].value == "Mixture Lab"  # the default page: Start


def test_training_from_the_page_ends_with_metrics(
    new_jobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    at = tiny_settings(open_train_page(), epochs=2)
    button(at, "Start").click().run()
    assert not at.exception
    (job,) = new_jobs()
    assert job.spec.model_type == "moa_plus" and job.spec.overrides["epochs"] == 2
    assert at.session_state["train_job_ids"] == [job.id]
    assert button(at, "Start").disabled and not button(at, "Stop").disabled
    assert at.number_input(key="train_epochs").disabled  # settings lock while it runs
    assert job.wait(JOB_TIMEOUT), "training did not finish"
    at.run()
    assert not at.exception and not at.error, messages(at.error)
    assert {m.label for m in at.metric} == {"ACC", "NMI", "ARI", "Clusters used"}
    assert messages(at.success)[0].startswith("finished — 2 epochs")
    assert len(job.state.view()["epochs"]) == 2
    button(at, "Save as run").click().run()
    saved = list_runs(tmp_path)
    assert len(saved) == 1 and saved[0].model_type == "moa_plus"
    assert any(str(saved[0].path) in text for text in messages(at.success))


def test_a_routing_network_trains_on_the_page_with_accuracy_and_a_live_diagram(
    new_jobs,
) -> None:
    at = open_train_page()
    at.selectbox(key="train_model_type").set_value("multipath_cc").run()
    assert at.number_input(key="train_num_clusters").disabled  # a classifier has no M
    for name, value in {"epochs": 2, "max_samples": 120, "batch_size": 60}.items():
        at.number_input(key=f"train_{name}").set_value(value)
    button(at, "Start").click().run()
    (job,) = new_jobs()
    assert job.wait(JOB_TIMEOUT), "training did not finish"
    at.run()
    assert not at.exception and not at.error, messages(at.error)
    labels = {m.label for m in at.metric}
    assert labels == {"Accuracy (held-out)", "Dead gates", "Classes predicted"}
    # Loss, held-out accuracy, and the routing diagram of the first input.
    assert len(at.get("plotly_chart")) == 3
    assert "routing" in job.state.view()["snapshot"]


def test_compare_mode_trains_both_models_side_by_side(new_jobs) -> None:
    at = tiny_settings(open_train_page())
    at.text_input(key="train_classes").set_value("3,5")
    at.toggle(key="train_compare").set_value(True).run()
    assert not at.exception
    button(at, "Start").click().run()
    jobs = new_jobs()
    assert [job.spec.model_type for job in jobs] == ["moa", "moa_plus"]
    assert {job.spec.dataset for job in jobs} == {"digits:3,5"}
    assert jobs[0].spec.overrides == jobs[1].spec.overrides
    assert all(job.wait(JOB_TIMEOUT) for job in jobs)
    at.run()
    assert not at.exception and not at.error, messages(at.error)
    assert [m.label for m in at.metric].count("NMI") == 2  # one column per model
    # Loss + scores, then one usage chart and one reconstruction grid each.
    assert [chart.key for chart in at.get("plotly_chart")] == [
        "loss",
        "scores",
        f"usage_{jobs[0].id}",
        f"grid_{jobs[0].id}",
        f"usage_{jobs[1].id}",
        f"grid_{jobs[1].id}",
    ]


def settled_steps(job: Job, quiet: float = 1.5, timeout: float = 60) -> int:
    """The batch count once it has not changed for `quiet` seconds (a batch may be mid-way)."""
    count, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - start < timeout:
        now = len(job.state.view()["losses"])
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return count
        time.sleep(0.1)
    raise AssertionError("training did not settle")


def test_controls_steer_the_running_job(new_jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    at = tiny_settings(open_train_page(), epochs=50)
    button(at, "Start").click().run()
    (job,) = new_jobs()
    button(at, "Pause").click().run()
    assert job.control.paused
    rates: list[float] = []
    monkeypatch.setattr(job.control, "set_learning_rate", rates.append)
    at.number_input(key="train_lr").set_value(0.01).run()  # changeable while it runs
    assert rates == [0.01]
    at.slider(key="train_delay").set_value(0.3).run()  # the speed control
    assert job.control.delay == pytest.approx(0.3)
    at.slider(key="train_delay").set_value(0.0).run()
    before = settled_steps(job)
    button(at, "Step").click().run()
    assert settled_steps(job) == before + 1  # exactly one batch, then paused again
    assert job.control.paused
    button(at, "Stop").click().run()
    assert job.wait(JOB_TIMEOUT) and job.status == "stopped"
    at.run()
    assert any("stopped" in text for text in messages(at.warning))
    button(at, "Reset").click().run()
    assert at.session_state["train_job_ids"] == []
    assert any("Start" in text for text in messages(at.info))


@pytest.fixture
def fake_job():
    """A job registered with the process's manager but never started (status set by hand)."""
    manager = job_manager()
    job = Job(10**9, JobSpec("moa_plus", "digits", {"epochs": 3}, label="moa_plus"))
    manager.jobs[job.id] = job
    yield job
    manager.jobs.pop(job.id, None)


def test_a_failed_job_shows_its_message_once(fake_job: Job) -> None:
    fake_job.state.set_status("failed", "loss became nan at epoch 2, batch 7; kept epoch 1")
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60)
    at.session_state["train_job_ids"] = [fake_job.id]
    at.run()
    assert not at.exception
    assert messages(at.error) == ["failed — loss became nan at epoch 2, batch 7; kept epoch 1"]
    assert not button(at, "Start").disabled  # a failed job does not lock the page


def test_status_line_shows_the_queue_position() -> None:
    manager = JobManager(max_running=0)  # nothing may start: every job waits
    first = manager.submit(JobSpec("moa", "digits", {"epochs": 4}))
    second = manager.submit(JobSpec("moa", "digits", {"epochs": 4}))
    place = f"number {manager.queue_position(second)} of {manager.queue_length()} in the queue"
    status = job_status(second, second.state.view(), place)
    assert (status.level, status.text) == ("info", "waiting: number 2 of 2 in the queue")
    assert is_active(first) and status.epochs_total == 4 and status.progress == 0.0
    manager.cancel(first)
    assert first.status == "stopped" and not is_active(first)


def test_missing_dataset_shows_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_DATA_DIR", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", offline)  # no download, online or not
    at = open_train_page()
    at.selectbox(key="train_dataset").set_value("mnist").run()
    assert not at.exception
    assert len(at.error) == 1
    text = at.error[0].value
    assert text.startswith("mnist:") and "\n" not in text and "MOA_DATA_DIR" in text
    assert button(at, "Start").disabled


# --- Latent space page -----------------------------------------------------------------------


def open_latent_page(runs: Path, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    """The page on the newest run of `runs`, named in the URL as a link would (not the
    gallery's default), with the link's other `params`; on its default when `runs` holds
    none."""
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    # The first UMAP pays numba's compile (the app warms it up at start-up; AppTest does not).
    at = AppTest.from_file(LATENT_PAGE, default_timeout=300)
    for run in list_runs(runs)[:1]:
        at.query_params["run"] = run.run_id
    at.query_params.update(params)
    return at.run()


def test_latent_page_draws_the_saved_run(
    saved_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_latent_page(saved_run_dir, monkeypatch)
    assert not at.exception and not at.error, messages(at.error)
    assert at.expander[0].label.startswith("Lesson")
    assert {m.label for m in at.metric} == {"ACC", "NMI", "ARI", "Clusters used"}
    (frame,) = at.get("iframe")
    html = frame.proto.srcdoc
    # 300 training samples, all plotted (below the 2,000-point cap), each with its image.
    assert html.count('"data:image\\u002fpng;base64,') == 300
    assert "plotly_hover" in html and "plotly_selected" in html
    for mode in ("true label", "gate entropy"):
        at.radio(key="latent_color").set_value(mode).run()
        assert not at.exception
        assert f"coloured by {mode}" in at.get("iframe")[0].proto.srcdoc


def test_latent_page_caps_the_points(saved_run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_latent_page(saved_run_dir, monkeypatch)
    slider = at.slider(key="latent_points_300")
    assert (slider.min, slider.max, slider.value) == (100, 300, 300)  # no more than the run has
    slider.set_value(200).run()
    assert not at.exception
    assert at.get("iframe")[0].proto.srcdoc.count('"data:image\\u002fpng;base64,') == 200
    assert len(at.get("download_button")) == 1  # the run's own file


def test_latent_page_without_saved_runs_opens_the_gallery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_latent_page(tmp_path, monkeypatch, points="100")  # a small UMAP is enough here
    assert not at.exception and not at.error, messages(at.error)
    assert at.selectbox(key="latent_run").value == "gallery/moa_plus_digits"
    assert at.query_params["run"] == "gallery/moa_plus_digits"  # the link to this view
    assert not at.info and len(at.get("iframe")) == 1


def test_uploading_a_pickle_shows_one_line(
    saved_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_latent_page(saved_run_dir, monkeypatch)
    at.radio(key="latent_source").set_value("Upload a checkpoint").run()
    payload = pickle.dumps({"weights": list(range(10))})
    at.file_uploader(key="latent_upload").set_value(
        ("model.safetensors", payload, "application/octet-stream")
    ).run()
    assert not at.exception
    assert len(at.error) == 1
    text = at.error[0].value
    assert text.startswith("model.safetensors:") and "\n" not in text
    assert at.expander[0].label.startswith("Lesson")  # the rest of the page still stands
    assert not at.get("iframe")


def test_uploading_a_real_checkpoint_draws_it(
    saved_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_latent_page(saved_run_dir, monkeypatch)
    at.radio(key="latent_source").set_value("Upload a checkpoint").run()
    data = next(saved_run_dir.glob("*.safetensors")).read_bytes()
    at.file_uploader(key="latent_upload").set_value(("run.safetensors", data, "")).run()
    assert not at.exception and not at.error, messages(at.error)
    assert len(at.get("iframe")) == 1
