"""The Train page made projector-ready (issue 11): a lesson per family, one loss row per run,
few log ticks, learning-rate markers, labelled reconstruction columns, a watchable lesson
demo and a one-line collapse verdict. Unit tests and AppTest, no browser."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from moa_core import ui_state
from moa_core.data import load_dataset
from moa_core.lessons import lesson_path, lesson_text, lesson_title
from moa_core.train.jobs import Job, JobSpec, JobState, job_manager
from moa_core.train.trainer import TrainEvent
from moa_core.viz.images import grid_border
from moa_core.viz.training import log_ticks, loss_figure, reconstruction_figure

TRAIN_PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "train.py")
JOB_TIMEOUT = 300


@pytest.fixture
def stopped_job():
    """A job registered with the manager but never run; the test fills its state by hand."""
    manager = job_manager()
    job = Job(10**9 + 7, JobSpec("moa", "digits:3,5", {"epochs": 3}, label="moa"))
    job.state.set_status("stopped", "stopped by the user")
    manager.jobs[job.id] = job
    yield job
    manager.jobs.pop(job.id, None)


def open_page() -> AppTest:
    return AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()


# --- one lesson per family ------------------------------------------------------------------


def test_every_image_family_has_its_own_lesson_with_its_papers_formula() -> None:
    lessons = {t: ui_state.train_lesson(t) for t in ui_state.image_model_types()}
    assert all(lesson_path(name).is_file() for name in lessons.values())
    assert lessons["moa"] == lessons["moa_plus"] == "train"
    assert lessons["multipath_cc"] == lessons["multipath_cp"] == lessons["singlepath"]
    assert len({lessons[t] for t in ("moa", "multipath_cc", "neural_em", "moe_vae")}) == 4
    assert "g_{ij} X_i" in lesson_text(lessons["multipath_cc"])  # paper 003, cross-connection
    neural_em = lesson_text(lessons["neural_em"])
    assert r"\mathrm{sigmoid}(a^*_{ij}/\gamma)" in neural_em and "0.5" in neural_em
    assert r"L = R + \alpha S + \beta B" in lesson_text(lessons["moe_vae"])  # paper 001
    for name in set(lessons.values()):
        assert lesson_title(name).startswith("Lesson") and "Slow down" in lesson_text(name)


def test_the_lesson_follows_the_chosen_model() -> None:
    at = open_page()
    assert at.expander[0].label == lesson_title("train")
    at.selectbox(key="train_model_type").set_value("multipath_cc").run()
    assert at.expander[0].label == lesson_title("train_routing")
    at.selectbox(key="train_model_type").set_value("neural_em").run()
    assert at.expander[0].label == lesson_title("train_neural_em")
    assert not at.exception


# --- the loss chart --------------------------------------------------------------------------


def test_compare_draws_each_objective_on_its_own_axis() -> None:
    fig = loss_figure({"moa": [(1, 2.0), (2, 1.0)], "moa_plus": [(1, 0.5), (2, -0.3)]})
    assert [trace.yaxis for trace in fig.data] == ["y", "y2"]
    assert [trace.xaxis for trace in fig.data] == ["x", "x2"]
    assert fig.layout.xaxis.matches == "x2"  # one shared step axis
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "linear"
    assert [a.text for a in fig.layout.annotations] == ["moa", "moa_plus"]  # row titles


def test_log_axis_ticks_are_few_and_readable() -> None:
    assert log_ticks(0.012, 9.0) == pytest.approx([0.1, 1.0])  # decades
    assert log_ticks(0.15, 0.9) == pytest.approx([0.2, 0.5])  # 1-2-5 inside one decade
    assert log_ticks(0.31, 0.45) is None  # too narrow: plotly's own ticks
    many = log_ticks(1e-6, 1e6)
    assert len(many) <= 5 and all(math.log10(t).is_integer() for t in many)
    fig = loss_figure({"a": [(1, 3.0), (2, 0.6), (3, 0.04)]})
    assert list(fig.layout.yaxis.tickvals) == pytest.approx([0.1, 1.0])


def test_a_learning_rate_change_is_recorded_and_marked_on_the_loss_chart() -> None:
    state = JobState()
    for step in (1, 2, 3):
        state.on_event(TrainEvent(kind="batch", epoch=1, step=step, loss=1.0 / step))
    state.note_learning_rate(0.01)
    view = state.view()
    assert view["lr_changes"] == [(3, 0.01)]
    fig = loss_figure({"a": view["losses"]}, {"a": view["lr_changes"]})
    (marker,) = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert marker.x0 == 3
    assert [a.text for a in fig.layout.annotations] == ["lr 0.01"]


# --- the reconstruction grid -----------------------------------------------------------------


def test_reconstruction_columns_are_labelled_input_then_experts() -> None:
    inputs = np.zeros((4, 1, 8, 8))
    recon = np.zeros((4, 3, 1, 8, 8))
    fig = reconstruction_figure(inputs, recon, None, scale=8, gap=2)  # 64 px tiles
    assert list(fig.layout.xaxis.ticktext) == ["input", "expert 1", "expert 2", "expert 3"]
    left = grid_border(2) + 32  # first tile's centre
    assert list(fig.layout.xaxis.tickvals) == [left, left + 66, left + 132, left + 198]
    assert fig.layout.width == fig.data[0].z.shape[1]  # one figure pixel per grid pixel
    narrow = reconstruction_figure(inputs, recon, None, scale=4, gap=2)
    assert list(narrow.layout.xaxis.ticktext) == ["input", "1", "2", "3"]
    assert "experts" in narrow.layout.xaxis.title.text


# --- the lesson demo -------------------------------------------------------------------------


def test_the_lesson_demo_is_the_lessons_suggestion_at_a_watchable_pace() -> None:
    demo = ui_state.lesson_demo("train")
    assert demo["classes"] == "3,5" and demo["num_clusters"] == 2 and demo["compare"]
    assert demo["model_type"] in ui_state.COMPARE_PAIR
    settings = ui_state.TrainSettings.from_mapping(demo)
    assert settings.problem() is None
    samples = len(load_dataset(settings.spec, "train").x)
    batches = settings.epochs * math.ceil(samples / settings.batch_size)
    slowed = batches * demo["delay"]
    assert 60 <= slowed <= 120, slowed  # a minute or two of slowed-down batches
    assert demo["delay"] == pytest.approx(round(demo["delay"] / ui_state.DELAY_STEP) * 0.05)
    assert ui_state.demo_delay(10) == 1.0 and ui_state.demo_delay(10**6) == 0.05  # clipped
    assert ui_state.lesson_demo("train_moe_vae") is None


def test_the_lesson_demo_button_starts_it_slowed_down(new_jobs) -> None:
    at = open_page()
    demo = ui_state.lesson_demo("train")
    next(b for b in at.button if "Lesson demo" in b.label).click().run()
    jobs = new_jobs()
    assert [job.spec.model_type for job in jobs] == list(ui_state.COMPARE_PAIR)
    assert {job.spec.dataset for job in jobs} == {"digits:3,5"}
    assert all(job.spec.overrides["num_clusters"] == 2 for job in jobs)
    assert all(job.control.delay == pytest.approx(demo["delay"]) for job in jobs)
    assert at.slider(key="train_delay").value == pytest.approx(demo["delay"])
    assert at.toggle(key="train_compare").value and at.number_input(key="train_epochs").disabled
    assert not at.exception


# --- the collapse verdict --------------------------------------------------------------------


def test_a_collapsed_moa_says_so_in_one_line_and_points_to_compare(stopped_job: Job) -> None:
    stopped_job.state.epochs = [
        {"epoch": 1, "step": 6, "nmi": 0.02, "acc": 0.51, "usage": [0.97, 0.03]}
    ]
    at = open_page()
    at.session_state["train_job_ids"] = [stopped_job.id]
    at.run()
    (verdict,) = [w.value for w in at.warning if "Collapsed" in w.value]
    assert "expert 1 takes 97%" in verdict and "Compare" in verdict and "\n" not in verdict
    stopped_job.state.epochs[0]["usage"] = [0.55, 0.45]
    at.run()
    assert not [w for w in at.warning if "Collapsed" in w.value]  # balanced: nothing to say
    assert not at.exception
