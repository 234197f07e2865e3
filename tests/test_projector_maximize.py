"""Issue 11, items 6 and 8: the Neuron maximization page shows the ranking at once, synthesizes
in a job that publishes its images as they improve, caches its reports, and reads at a
projector (headers per group, a legend naming every unit as the table does, smooth Fourier)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import moa_core.analysis.maximize as engine
from moa_core.analysis.maximize import (
    SynthesisSettings,
    dataset_scores,
    gate_scores,
    maximize_units,
    rank_units,
    synthesis_work,
    total_variation,
)
from moa_core.checkpoint import list_runs, load_checkpoint, save_run
from moa_core.train.control import TrainingControl
from moa_core.train.jobs import JobSpec, job_manager
from moa_core.train.run import train_model
from moa_core.viz.maximize import activation_figure

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "maximize.py")
SMALL_EM = {"conv_channels": [8, 16], "fc_units": 16, "mode": "em_only"}


@pytest.fixture(scope="module")
def em_run():
    """A small neural-EM CNN trained briefly on 400 digits, 5 clusters."""
    overrides = {**SMALL_EM, "num_clusters": 5, "epochs": 2, "max_samples": 400, "device": "cpu"}
    return train_model("neural_em", "digits", overrides)


@pytest.fixture
def page_of(em_run, tmp_path, monkeypatch):
    """The page over a registry holding the neural-EM run, with its jobs finished on demand."""
    path = save_run(em_run.model, em_run.config, em_run.checkpoint_meta(), tmp_path)
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = path.stem  # a link to the run, not the gallery's default
    at.run()
    return at


def finish_jobs(at: AppTest) -> AppTest:
    """Wait for every synthesis job, then rerun the page so it takes the result."""
    for job in list(job_manager().jobs.values()):
        job.wait(120)
    return at.run()


def test_ranking_runs_no_synthesis_step(em_run, monkeypatch) -> None:
    """Top and bottom images come from one pass over the data; synthesis is never entered."""

    def refuse(*args, **kwargs):
        raise AssertionError("ranking must not synthesize")

    monkeypatch.setattr(engine, "synthesize", refuse)
    model, x = em_run.model, em_run.dataset.x
    ranking = rank_units(model, x, units=[1, 3], k=4)
    scores = dataset_scores(gate_scores(model.eval()), x)[:, [1, 3]]
    assert ranking.units == [1, 3] and ranking.extremes.top.shape == (2, 4)
    np.testing.assert_allclose(ranking.best_dataset_scores, scores.max(0).values, rtol=1e-5)
    np.testing.assert_array_equal(ranking.extremes.bottom[:, 0], scores.argmin(0).numpy())


def test_mixture_gate_scores_run_the_gate_alone(saved_run_dir: Path) -> None:
    """MoA+'s units are its gate logits; the experts' decoders are not run to read them."""
    loaded = load_checkpoint(list_runs(saved_run_dir)[0].path, "cpu")
    model = loaded.model.eval()
    calls = []
    model.experts.register_forward_hook(lambda *args: calls.append(1))
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    scores = gate_scores(model)(x)
    assert calls == []
    torch.testing.assert_close(scores, model(x).gate_logits)


def test_synthesis_job_publishes_images_as_they_improve_and_stops(em_run) -> None:
    """Every 8 steps an event carries the images so far; Stop ends it with those images."""
    ranking = rank_units(em_run.model, em_run.dataset.x, k=3)
    settings = SynthesisSettings(steps=64)
    work = synthesis_work(em_run.model, ranking, (1, 16, 16), settings, "cpu")
    control, events = TrainingControl(), []

    def on_event(event) -> None:
        events.append(event)
        if len(events) == 3:
            control.stop()

    report = work(on_event, control)
    steps = [event.step for event in events]
    assert steps == [8, 16, 24, 24]  # three publications, then the result where it stopped
    partials = [event.snapshot["synthesis"] for event in events]
    assert [p.history.shape for p in partials[:3]] == [(9, 5), (17, 5), (25, 5)]
    assert partials[0].images.shape == (5, 1, 16, 16)
    assert not np.allclose(partials[0].images, partials[2].images)  # they changed meanwhile
    assert report.synthesis.steps_done == 24 and report.units == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(report.synthesis.images, partials[2].images)


def test_synthesis_job_runs_in_the_job_manager(em_run) -> None:
    ranking = rank_units(em_run.model, em_run.dataset.x, k=3)
    settings = SynthesisSettings(steps=32)
    work = synthesis_work(em_run.model, ranking, (1, 16, 16), settings, "cpu")
    job = job_manager().submit(JobSpec(label="synthesis", work=work))
    assert job.wait(120) and job.status == "finished"
    assert [e["step"] for e in job.state.view()["epochs"]] == [8, 16, 24, 32]
    assert job.state.result.synthesis.steps_done == 32
    assert job.state.message == "step 32 of 32"


def test_fourier_images_are_smooth_and_not_saturated(em_run) -> None:
    """The Fourier parametrization used to leave a quarter of the pixels pure black or white;
    now almost none are, and its images are smoother than the pixel parametrization's."""
    model, x = em_run.model, em_run.dataset.x
    pixels = maximize_units(model, x, settings=SynthesisSettings()).synthesis.images
    fourier = maximize_units(model, x, settings=SynthesisSettings(fourier=True))
    images = fourier.synthesis.images

    def saturated(a: np.ndarray) -> float:
        return float(((a < 0.02) | (a > 0.98)).mean())

    assert saturated(images) < 0.01
    assert total_variation(torch.tensor(images)) < 0.9 * total_variation(torch.tensor(pixels))
    assert fourier.units_beaten == 5  # and each still beats every dataset image


def test_blur_steps_are_where_the_activation_dips(em_run) -> None:
    """The chart's sawtooth: the activation drops at the marked blur steps and climbs between."""
    settings = SynthesisSettings(steps=128)
    report = maximize_units(em_run.model, em_run.dataset.x, settings=settings)
    blurs = settings.blur_steps()
    assert blurs == [16, 32, 48, 64, 80, 96, 112]
    change = np.diff(report.synthesis.history.mean(1))  # change[s - 1]: from step s-1 to s
    at_blur = change[np.array(blurs) - 1]
    assert (at_blur < 0).all()
    names = [f"unit {u}" for u in range(1, 6)]
    figure = activation_figure(report.synthesis.history, report.best_dataset_scores, names, blurs)
    marks = [t for t in figure.data if t.name.startswith("blur")]
    assert len(marks) == 1 and [s for s in marks[0].x if s is not None][::2] == blurs


def test_page_shows_every_group_under_a_header(page_of) -> None:
    at = finish_jobs(page_of)
    assert not at.exception and not at.error
    headers = [m.value for m in at.markdown]
    for title in ("**Unit**", "**Top 10**", "**Bottom 10**", "**Synthesized**"):
        assert any(h.startswith(title) for h in headers), title
    assert len(at.get("image")) == 3 * 5  # per unit: top strip, bottom strip, synthesized
    assert [m.value for m in at.markdown if m.value.startswith("**unit\u00a0")] == [
        f"**unit\u00a0{u}**"
        for u in range(1, 6)  # a row label never breaks after "unit"
    ]


def test_chart_legend_names_every_unit_as_the_table_does(page_of) -> None:
    at = finish_jobs(page_of)
    table = list(at.dataframe[0].value["unit"])
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    legend = [t["name"] for t in spec["data"] if t.get("showlegend", True)]
    assert table == [f"unit {u}" for u in range(1, 6)]
    assert legend[:5] == table and legend[5:] == ["blur (dips the line)"]
    assert spec["layout"]["legend"]["x"] > 1  # beside the plot, not over or under it


def test_a_report_is_reused_for_the_same_run_units_and_settings(page_of) -> None:
    at = finish_jobs(page_of)
    submitted = len(job_manager().jobs)
    first = at.dataframe[0].value["synthesized"].tolist()
    at.number_input(key="max_seed").set_value(1).run()
    assert len(job_manager().jobs) == submitted + 1  # new settings: a new synthesis
    at = finish_jobs(at)
    assert at.dataframe[0].value["synthesized"].tolist() != first
    at.number_input(key="max_seed").set_value(0).run()
    assert len(job_manager().jobs) == submitted + 1  # back to seed 0: the cached report
    assert at.dataframe[0].value["synthesized"].tolist() == first
    assert not at.exception and not at.error


def test_moving_to_cached_settings_cancels_the_synthesis_left_behind(page_of) -> None:
    """Seed 0 is cached; seed 1 starts a job; back to seed 0 before it ends: the seed-1 job
    must not run on, holding a job slot the class's trainings share."""
    at = finish_jobs(page_of)
    at.slider(key="max_steps").set_value(512).run()  # long enough to still run below
    at = finish_jobs(at)
    known = set(job_manager().jobs)
    at.number_input(key="max_seed").set_value(1).run()
    (job,) = [job for i, job in job_manager().jobs.items() if i not in known]
    at.number_input(key="max_seed").set_value(0).run()
    job.wait(120)
    assert job.status == "stopped" or job.control.stopped
    assert not at.exception and not at.error


def test_a_synthesis_that_ended_without_images_waits_for_a_click(page_of) -> None:
    """A job cancelled while queued (or failed) leaves no report: that is said once, and a new
    one starts only from the Synthesize button, never by itself on the next rerun."""
    at = finish_jobs(page_of)
    release = threading.Event()
    manager = job_manager()
    blockers = [  # every job slot busy, so the synthesis waits in the queue
        manager.submit(JobSpec(label="busy", work=lambda event, control: release.wait(120)))
        for _ in range(manager.max_running)
    ]
    known = set(manager.jobs)
    try:
        at.number_input(key="max_seed").set_value(7).run()
        (job,) = [job for i, job in manager.jobs.items() if i not in known]
        assert manager.queue_position(job) == 1
        manager.cancel(job)
        assert job.status == "stopped"
        at.run()
        at.run()  # a second rerun submits nothing either
        assert [i for i in manager.jobs if i not in known] == [job.id]
        assert "The synthesis did not finish: cancelled before it started" in at.warning[0].value
        assert "not synthesized" in " ".join(c.value for c in at.caption)
    finally:
        release.set()
        for blocker in blockers:
            blocker.wait(120)
    (retry,) = [b for b in at.button if b.label == "Synthesize"]
    retry.click().run()
    assert len([i for i in manager.jobs if i not in known]) == 2
    finish_jobs(at)


def test_the_chart_is_tall_enough_for_every_legend_entry() -> None:
    """Ten units and the blur entry must fit without the legend's scroll bar (8 of 10 were
    visible before)."""
    history = np.cumsum(np.ones((33, 10)), axis=0)
    names = [f"unit {u + 1}" for u in range(10)]
    figure = activation_figure(history, np.full(10, 3.0), names, [16], 32)
    entries = len(names) + 1
    assert figure.layout.height >= 32 * entries + 120
