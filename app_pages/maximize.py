"""Neuron maximization: for every cluster unit of an image model, the images it likes most and
least and the input synthesized to excite it (paper 004, Fig. 8).

The ranking is one pass over the data and shows at once; the synthesis runs as a job in a
worker thread and a polling fragment draws its images as they improve. The run, the units and
the synthesis settings live in the URL.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st
from torch import nn

from app_pages import presenter, session, url_state
from app_pages.checkpoint_picker import pick_image_run
from app_pages.job_panel import job_progress, poll_seconds, show_start_problem, submit
from moa_core.analysis.maximize import (
    Ranking,
    Synthesis,
    SynthesisSettings,
    UnitReport,
    gate_scores,
    rank_units,
    synthesis_work,
)
from moa_core.analysis.routing import UnitChoice, unit_choices
from moa_core.data import Dataset
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import Job, JobSpec, job_manager
from moa_core.viz.images import image_grid, png_bytes
from moa_core.viz.maximize import activation_figure, maximization_grid

PREFIX = "max_"
DEFAULT_RUN = "gallery/multipath_cc_reg"
STEPS_LOW, STEPS_HIGH, STEPS_STRIDE = 32, 512, 32  # the synthesis steps slider
MAX_SEED = 1_000_000
TOP_K = 10
POLL_SECONDS = 1.0
RANKINGS = f"{PREFIX}rankings"  # session cache: (run id, units) → Ranking
REPORTS = f"{PREFIX}reports"  # session cache: (run id, units, settings) → UnitReport
JOB = f"{PREFIX}job"  # (key, job id) of this session's synthesis in progress
ENDED = f"{PREFIX}ended"  # key → why its synthesis ended without a report (stopped, failed)
KEEP = 6  # reports kept per session: the images of a big model add up
# label | top k | bottom k | synthesized (the largest tile, its header on one line at 1280 px)
COLUMNS = [2.4, 10, 10, 3.4]


def ranking_for(run_id: str, model: nn.Module, data: Dataset, units: UnitChoice) -> Ranking:
    """Each unit's top and bottom images, once per run and unit set in this session."""
    rankings = st.session_state.setdefault(RANKINGS, {})
    key = (run_id, units.label)
    if key not in rankings:
        x = data.x.to(next(model.parameters()).device)
        rankings[key] = rank_units(model, x, k=TOP_K, score_fn=units.score_fn)
    return rankings[key]


def keep_report(key: tuple, report: UnitReport) -> None:
    reports = st.session_state.setdefault(REPORTS, {})
    reports[key] = report
    for old in list(reports)[:-KEEP]:
        del reports[old]


def held_job(key: tuple) -> Job | None:
    """This session's synthesis job for `key`. One for other settings is cancelled (the
    user moved on: it must not hold a job slot the class's trainings share); a finished one
    leaves its report, a stopped or failed one its reason. A new session (a reload) takes
    over this browser's synthesis for `key` and stops its others."""
    if JOB not in st.session_state:
        adopt_synthesis(key)
    held = st.session_state.get(JOB)
    job = job_manager().jobs.get(held[1]) if held else None
    if job is None:
        return None
    if held[0] != key or job.done:
        del st.session_state[JOB]
        if not job.done:
            job_manager().cancel(job)  # this session's own job
        elif job.status == "finished":
            keep_report(held[0], job.state.result)
        else:
            st.session_state.setdefault(ENDED, {})[held[0]] = job.state.message or job.status
        return None
    return job


def adopt_synthesis(key: tuple) -> None:
    browser = session.browser_id()
    for job in job_manager().owned(browser, "maximize"):
        if job.active and job.context == key and JOB not in st.session_state:
            st.session_state[JOB] = (key, job.id)
        elif job.active:
            job_manager().cancel(job, by=browser)


def synthesis_job(
    key: tuple, model: nn.Module, data: Dataset, units: UnitChoice, ranking: Ranking
) -> Job:
    """This key's running job, submitted here if none runs."""
    job = held_job(key)
    if job is None:
        work = synthesis_work(
            model,
            ranking,
            tuple(int(d) for d in data.x.shape[1:]),
            key[2],
            next(model.parameters()).device,
            lambda copy: replace(units, model=copy).score_fn or gate_scores(copy),
        )
        spec = JobSpec(label="Neuron maximization", work=work)
        submitted = submit([spec], tag="maximize", context=key)
        if not submitted:  # this browser's job cap: the one line says why
            show_start_problem()
            st.stop()
        job = submitted[0]
        st.session_state[JOB] = (key, job.id)
    return job


@st.fragment(run_every=poll_seconds(POLL_SECONDS))
def follow(
    job: Job, ranking: Ranking, images: np.ndarray, names: list[str], settings: SynthesisSettings
) -> None:
    """The synthesized images so far, a progress bar and Stop; a full rerun once it is done."""
    if job.done:
        st.rerun()
    view = job.state.view()
    partial = (view["snapshot"] or {}).get("synthesis")
    done = partial.steps_done if partial else 0
    running = f"one image per unit, step {done} of {settings.steps}"
    job_progress(job, "Synthesis", done / settings.steps, running)  # Stop keeps the images
    show(ranking, partial, images, names, settings)


def show(
    ranking: Ranking,
    synthesis: Synthesis | None,
    images: np.ndarray,
    names: list[str],
    settings: SynthesisSettings,
    pending: str = "starting…",
) -> None:
    """One row per unit under column headers, then the activation chart and the table;
    `pending` stands where a synthesized image has yet to come."""
    scale = max(1, min(4, 48 // images.shape[-1]))
    top, bottom = images[ranking.extremes.top], images[ranking.extremes.bottom]
    header = st.columns(COLUMNS)
    for column, title in zip(
        header,
        (
            "**Unit**",
            f"**Top {TOP_K}** (most excited)",
            f"**Bottom {TOP_K}** (least excited)",
            "**Synthesized**",
        ),
        strict=True,
    ):
        column.markdown(title)
    for row, name in enumerate(names):
        label, left, middle, right = st.columns(COLUMNS, vertical_alignment="center")
        label.markdown(f"**{name}**".replace("unit ", "unit\u00a0"))  # "unit 1" on one line
        left.image(image_grid(top[row], TOP_K, scale, 2), width="stretch")
        middle.image(image_grid(bottom[row], TOP_K, scale, 2), width="stretch")
        if synthesis is None:
            right.caption(pending)
        else:
            right.image(image_grid(synthesis.images[row : row + 1], 1, scale, 2), width="stretch")
    if synthesis is None:
        return
    presenter.chart(
        activation_figure(
            synthesis.history,
            ranking.best_dataset_scores,
            names,
            settings.blur_steps(),
            settings.steps,
        ),
        key=f"{PREFIX}activation",
    )
    st.dataframe(
        {
            "unit": names,
            "best dataset image": ranking.best_dataset_scores.round(3),
            "synthesized": synthesis.final_scores.round(3),
        },
        hide_index=True,
    )


st.title("Neuron maximization")
url_state.start_page()
with st.expander(lesson_title("maximize")):
    st.markdown(lesson_text("maximize"))
choice, checkpoint, data = pick_image_run(
    PREFIX, "train an image model on the Train page and press **Save as run**", DEFAULT_RUN
)

model = checkpoint.model
choices = unit_choices(model, data.x[:2].to(next(model.parameters()).device))
unit_ids = range(len(choices))
with presenter.settings_box():
    c0, c1, c2, c3 = st.columns([3, 2, 2, 1])
    unit_id = c0.selectbox(
        "Units",
        unit_ids,
        index=url_state.url_index("units", unit_ids, 0),
        format_func=lambda i: choices[i].label,
        key="max_units",
        help="A routing gate's units are its pre-softmax scores a_ij (paper 003, Fig. 3.8).",
    )
    steps = c1.slider(
        "Synthesis steps",
        STEPS_LOW,
        STEPS_HIGH,
        url_state.url_number("steps", STEPS_LOW, STEPS_HIGH, SynthesisSettings().steps),
        step=STEPS_STRIDE,
        key="max_steps",
    )
    fourier = c2.toggle(
        "Fourier image",
        url_state.url_flag("fourier", False),
        key="max_fourier",
        help="Optimize the image's spectrum scaled by 1/frequency²: smoother, bolder strokes.",
    )
    seed = c3.number_input(
        "Seed", 0, MAX_SEED, url_state.url_number("seed", 0, MAX_SEED, 0), key="max_seed"
    )
url_state.publish(units=unit_id, steps=int(steps), fourier=bool(fourier), seed=int(seed))
units = choices[unit_id]
settings = SynthesisSettings(steps=int(steps), fourier=bool(fourier), seed=int(seed))

ranking = ranking_for(choice.run_id, model, data, units)
names = [units.row_name(u) for u in ranking.units]
images = data.x.numpy()
st.markdown(
    f"**{checkpoint.config.model_type}** on `{data.name}`: each row is one unit, with the "
    f"{TOP_K} images that excite it most, the {TOP_K} it likes least, and an image "
    "synthesized from noise to excite it."
)
key = (choice.run_id, units.label, settings)
reports = st.session_state.setdefault(REPORTS, {})
held_job(key)  # before the cache: a job for settings left behind is cancelled either way
ended = st.session_state.setdefault(ENDED, {})
report = reports.get(key)
if report is None and key in ended:  # never resubmitted by itself: a click says so
    note, again = st.columns([6, 1], vertical_alignment="bottom")
    note.warning(f"The synthesis did not finish: {ended[key]}.")
    if again.button("Synthesize", key=f"{PREFIX}retry"):
        del ended[key]
        st.rerun()
    show(ranking, None, images, names, settings, pending="not synthesized")
elif report is None:
    follow(synthesis_job(key, model, data, units, ranking), ranking, images, names, settings)
else:
    synthesis = report.synthesis
    if synthesis.steps_done < settings.steps:
        note, again = st.columns([6, 1], vertical_alignment="bottom")
        note.info(f"Stopped at step {synthesis.steps_done} of {settings.steps}.")
        if again.button("Synthesize again", key=f"{PREFIX}again"):
            del reports[key]
            st.rerun()
    st.markdown(
        f"The synthesized image excites its unit more than every dataset image for "
        f"**{report.units_beaten} of {len(report.units)}** units. Dotted lines: each unit's "
        "best dataset image."
    )
    show(ranking, synthesis, images, names, settings)
    top, bottom = images[ranking.extremes.top], images[ranking.extremes.bottom]
    st.download_button(
        "Download the grid (PNG)",
        lambda: png_bytes(maximization_grid(top, bottom, synthesis.images, 3)),  # on click
        file_name=f"maximization_{choice.file_stem}.png",
        mime="image/png",
        key=f"{PREFIX}png",
    )
