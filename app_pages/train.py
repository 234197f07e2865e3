"""Train: pick data, model and settings; watch loss, scores, usage and reconstructions live."""

from __future__ import annotations

import streamlit as st

from app_pages import big_runs, presenter, url_state
from app_pages.job_panel import (
    JobPanel,
    poll_seconds,
    publish_settings,
    seed_settings,
    show_dataset_problem,
)
from moa_core import ui_state
from moa_core.analysis.health import collapse_message
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import Job
from moa_core.train.setup import LR_SCHEDULES
from moa_core.viz.images import to_rgb_uint8
from moa_core.viz.routing import routing_diagram
from moa_core.viz.training import loss_figure, metrics_figure, reconstruction_figure, usage_figure

POLL_SECONDS = 1.0
PREFIX = "train_"  # widget keys are PREFIX + TrainSettings field names
GRID_WIDTH, GRID_HEIGHT = 480, 520  # pixel box for the grid: 16 px digits, 8 rows → 4×
# Each number widget's range, which is also what a link may ask for.
LIMITS = {
    "num_clusters": (0, 30),
    "epochs": (1, 500),
    "batch_size": (2, 4096),
    "max_samples": (0, 1_000_000),
    "seed": (0, 1_000_000),
    "lr": (1e-4, 1.0),
}
# The query parameter of each `TrainSettings` field in a shared link.
PARAMS = {
    "dataset": "dataset",
    "classes": "classes",
    "model_type": "model",
    "num_clusters": "k",
    "epochs": "epochs",
    "lr": "lr",
    "lr_schedule": "schedule",
    "seed": "seed",
    "batch_size": "batch",
    "max_samples": "samples",
    "compare": "compare",
    "more": "more",
}

panel = JobPanel(PREFIX)  # this page's jobs in the process-wide job manager


def start() -> None:
    settings = ui_state.TrainSettings.from_mapping(dict(st.session_state), prefix=PREFIX)
    panel.start(settings.job_specs())


def apply_learning_rate() -> None:
    panel.set_learning_rate(float(st.session_state[f"{PREFIX}lr"]))


def link_settings() -> ui_state.TrainSettings:
    """The link's settings, each checked: a bad one is the default and a phrase in the
    page's one-line note. A link naming a model starts from its family's lr, epochs, batch."""
    models = ui_state.image_model_types()
    model = url_state.url_choice(PARAMS["model_type"], models, ui_state.TrainSettings.model_type)
    family = ui_state.TrainSettings.of_family(model)

    def number(field: str):
        return url_state.url_number(PARAMS[field], *LIMITS[field], getattr(family, field))

    return ui_state.TrainSettings(
        dataset=url_state.url_choice(PARAMS["dataset"], ui_state.image_datasets(), family.dataset),
        classes=st.query_params.get(PARAMS["classes"], family.classes),  # the page checks it
        model_type=model,
        num_clusters=number("num_clusters"),
        lr=number("lr"),
        lr_schedule=url_state.url_choice(PARAMS["lr_schedule"], LR_SCHEDULES, family.lr_schedule),
        epochs=number("epochs"),
        seed=number("seed"),
        batch_size=number("batch_size"),
        max_samples=number("max_samples"),
        compare=url_state.url_flag(PARAMS["compare"], family.compare),
        more=st.query_params.get(PARAMS["more"], family.more),  # the page checks it
    )


def run_demo(lesson: str) -> None:
    """Set up the lesson's suggestion at a watchable pace and start it."""
    for key, value in (ui_state.lesson_demo(lesson) or {}).items():
        st.session_state[f"{PREFIX}{key}"] = value
    start()


def apply_family_settings() -> None:
    """A newly chosen model starts from its family's lr, epochs and batch size."""
    family = ui_state.family_settings(st.session_state[f"{PREFIX}model_type"])
    for key, value in family.items():
        st.session_state[f"{PREFIX}{key}"] = value


def settings_panel(locked: bool) -> str | None:
    """The widgets; returns the first problem of the dataset or the settings (one line)."""
    with presenter.settings_box(), st.container(border=True):
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(
            "Dataset",
            ui_state.image_datasets(),
            key=f"{PREFIX}dataset",
            disabled=locked,
        )
        c2.text_input(
            "Classes",
            key=f"{PREFIX}classes",
            placeholder="all, or e.g. 3,5",
            disabled=locked,
            help="Train on a subset of the labels, e.g. 3,5 for two digits.",
        )
        model_type = c3.selectbox(
            "Model",
            ui_state.image_model_types(),
            key=f"{PREFIX}model_type",
            disabled=locked,
            on_change=apply_family_settings,
        )
        partner = ui_state.compare_label(model_type)
        c4.toggle(
            "Compare",
            key=f"{PREFIX}compare",
            disabled=locked or not partner,
            help=f"Side by side on the same data and seed: {partner or 'nothing to compare'}.",
        )
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.number_input(
            "M (experts)",
            *LIMITS["num_clusters"],
            key=f"{PREFIX}num_clusters",
            disabled=locked or not ui_state.has_clusters(model_type),
            help="0: one expert per class of the chosen data (2 for classes 3,5). "
            "Classifiers have one output per class instead.",
        )
        c2.number_input("Epochs", *LIMITS["epochs"], key=f"{PREFIX}epochs", disabled=locked)
        c3.number_input(
            "Batch size", *LIMITS["batch_size"], key=f"{PREFIX}batch_size", disabled=locked
        )
        c4.number_input(
            "Max samples",
            *LIMITS["max_samples"],
            step=100,
            key=f"{PREFIX}max_samples",
            disabled=locked,
            help="Train on a seeded random subset; 0 = all samples.",
        )
        c5.number_input("Seed", *LIMITS["seed"], key=f"{PREFIX}seed", disabled=locked)
        c1, c2, c3 = st.columns([2, 1, 3])
        c1.number_input(
            "Learning rate",
            *LIMITS["lr"],
            step=5e-4,
            format="%.4f",
            key=f"{PREFIX}lr",
            on_change=apply_learning_rate,
            help="The base rate; it can be changed while training runs.",
        )
        c2.selectbox(
            "LR schedule",
            LR_SCHEDULES,
            key=f"{PREFIX}lr_schedule",
            disabled=locked,
            help="cosine: the rate anneals from the base rate to 0 over the run.",
        )
        panel.delay_slider(c3)
        st.text_input(
            "More settings",
            key=f"{PREFIX}more",
            disabled=locked,
            placeholder="e.g. paths=3 gate_reg=0 or latent_dim=8, as in `moa train --set`",
            help="Any other model or training key, key=value separated by spaces.",
        )
    spec = ui_state.dataset_spec(
        st.session_state[f"{PREFIX}dataset"], st.session_state[f"{PREFIX}classes"]
    )
    problem = show_dataset_problem(spec)
    if problem:
        return problem
    settings = ui_state.TrainSettings.from_mapping(dict(st.session_state), prefix=PREFIX)
    problem = settings.problem()
    if problem:
        st.error(problem)
    return problem


def job_panels(job: Job, view: dict, comparing: bool, index: int = 0) -> list:
    """This job's live panels in reading order (usage with its collapse verdict, routing,
    reconstructions), each a function drawing into a container; empty before epoch 1. The
    `index`-th run's bars take its colour in the loss and score charts."""
    history, snapshot = view["epochs"], view["snapshot"] or {}
    panels = []
    if history and "usage" in history[-1]:  # classifiers have no experts to count
        usage = history[-1]["usage"]

        def draw_usage(slot) -> None:
            fix = ui_state.run_collapse_fix(job.spec, comparing)
            verdict = collapse_message(usage, "expert", fix)
            if verdict:
                slot.warning(verdict)
            figure = usage_figure({job.spec.label: usage}, first_color=index)
            presenter.chart(figure, slot, key=f"usage_{job.id}")

        panels.append(draw_usage)
    if "routing" in snapshot:

        def draw_routing(slot) -> None:
            slot.caption("Routing of this input, redrawn after every epoch (see the Routing page).")
            slot.image(to_rgb_uint8(snapshot["inputs"][0]), width=64)
            presenter.chart(routing_diagram(snapshot["routing"]), slot, key=f"routing_{job.id}")

        panels.append(draw_routing)
    if "reconstructions" in snapshot:

        def draw_reconstructions(slot) -> None:
            rows, experts, _, height, width = snapshot["reconstructions"].shape
            fit = min(GRID_WIDTH // ((experts + 1) * width), GRID_HEIGHT // (rows * height))
            figure = reconstruction_figure(
                snapshot["inputs"],
                snapshot["reconstructions"],
                snapshot["gate_probs"],
                scale=max(1, min(8, fit)),
            )
            slot.caption("Reconstructions of a few inputs; green frame: the expert the gate picks.")
            slot.plotly_chart(  # an image grid at exact pixel sizes: not for `presenter.chart`
                figure, key=f"grid_{job.id}", width="content", config={"staticPlot": True}
            )

        panels.append(draw_reconstructions)
    return panels


def job_results(job: Job) -> None:
    panel.results(job)
    panel.save_controls(job)


def live_view(was_active: bool) -> None:
    """Polled every POLL_SECONDS while a job runs (a fragment): redraws from `job.state`."""
    jobs = panel.jobs()
    if not jobs:
        st.info("Choose the settings above and press **Start**.")
        return
    views = {job.id: job.state.view() for job in jobs}
    if was_active and not any(ui_state.is_active(job) for job in jobs):
        st.rerun()  # full rerun: stops the polling and unlocks the settings
    for job, col in zip(jobs, st.columns(len(jobs)), strict=True):
        with col:
            panel.header(job, views[job.id])
    left, right = st.columns(2)
    losses = {job.spec.label: views[job.id]["losses"] for job in jobs}
    lr_changes = {job.spec.label: views[job.id]["lr_changes"] for job in jobs}
    presenter.chart(loss_figure(losses, lr_changes), left, key="loss")
    histories = {job.spec.label: views[job.id]["epochs"] for job in jobs}
    shown = ui_state.progress_metrics(next(iter(histories.values())))
    presenter.chart(metrics_figure(histories, metrics=shown), right, key="scores")
    comparing = len(jobs) > 1
    if not views[jobs[0].id]["epochs"]:
        st.caption("Scores and expert usage appear after the first epoch.")
    if not comparing:  # the panels fill the row under loss and scores; one alone spans it
        job = jobs[0]
        panels = job_panels(job, views[job.id], False)
        slots = st.columns(2) if len(panels) > 1 else [st.container()]
        for i, draw in enumerate(panels):
            draw(slots[i % len(slots)])
        job_results(job)
        return
    for index, (job, col) in enumerate(zip(jobs, st.columns(len(jobs)), strict=True)):
        with col:
            for draw in job_panels(job, views[job.id], True, index):
                draw(st.container())
            job_results(job)


title_col, demo_col = st.columns([3, 1], vertical_alignment="bottom")
title_col.title("Train")
url_state.start_page()
seed_settings(PREFIX, ui_state.TrainSettings, link_settings)
active = bool(panel.active_jobs())
lesson = ui_state.train_lesson(st.session_state[f"{PREFIX}model_type"])
if lesson in ui_state.LESSON_DEMOS:
    demo_col.button(
        "▶ Lesson demo",
        on_click=run_demo,
        args=(lesson,),
        disabled=active,
        width="stretch",
        help="Sets up the lesson's first suggestion at a pace a class can watch, and starts it.",
    )
with st.expander(lesson_title(lesson)):
    st.markdown(lesson_text(lesson))
problem = settings_panel(locked=active)
publish_settings(PREFIX, PARAMS)
panel.buttons(start, disabled=bool(problem))
with st.expander("Big runs: train in separate processes (torchrun)"):
    settings = ui_state.TrainSettings.from_mapping(dict(st.session_state), prefix=PREFIX)
    big_runs.launch_controls(settings, disabled=bool(problem))
big_runs.follow()
st.fragment(run_every=poll_seconds(POLL_SECONDS) if active else None)(live_view)(was_active=active)
