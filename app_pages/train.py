"""Train: pick data, model and settings; watch loss, scores, usage and reconstructions live."""

from __future__ import annotations

import streamlit as st

from app_pages.job_panel import JobPanel, show_dataset_problem
from moa_core import ui_state
from moa_core.checkpoint import save_run
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import Job
from moa_core.train.setup import LR_SCHEDULES
from moa_core.viz.images import reconstruction_grid, to_rgb_uint8
from moa_core.viz.routing import routing_diagram
from moa_core.viz.training import loss_figure, metrics_figure, usage_figure

POLL_SECONDS = 1.0
PREFIX = "train_"  # widget keys are PREFIX + TrainSettings field names
GRID_WIDTH, GRID_HEIGHT = 480, 400  # pixel box the reconstruction grid is scaled into

panel = JobPanel(PREFIX)  # this page's jobs in the process-wide job manager


def start() -> None:
    settings = ui_state.TrainSettings.from_mapping(dict(st.session_state), prefix=PREFIX)
    panel.start(settings.job_specs())


def apply_learning_rate() -> None:
    for job in panel.active_jobs():
        job.control.set_learning_rate(float(st.session_state[f"{PREFIX}lr"]))


def save(job_id: int) -> None:
    if f"train_saved_{job_id}" in st.session_state:  # a double click saves once
        return
    run = panel.manager.jobs[job_id].state.run
    try:
        path = save_run(run.model, run.config, run.checkpoint_meta())
        st.session_state[f"train_saved_{job_id}"] = ("success", f"Saved as run: `{path}`")
    except OSError as err:
        st.session_state[f"train_saved_{job_id}"] = ("error", f"Could not save: {err}")


def apply_family_settings() -> None:
    """A newly chosen model starts from its family's lr, epochs and batch size."""
    family = ui_state.family_settings(st.session_state[f"{PREFIX}model_type"])
    for key, value in family.items():
        st.session_state[f"{PREFIX}{key}"] = value


def settings_panel(locked: bool) -> str | None:
    """The widgets; returns the first problem of the dataset or the settings (one line)."""
    datasets = ui_state.image_datasets()
    models = ui_state.image_model_types()
    default = ui_state.TrainSettings()  # every widget starts at these values
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(
            "Dataset",
            datasets,
            index=datasets.index(default.dataset),
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
        index = models.index(default.model_type) if default.model_type in models else 0
        model_type = c3.selectbox(
            "Model",
            models,
            index=index,
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
            0,
            30,
            default.num_clusters,
            key=f"{PREFIX}num_clusters",
            disabled=locked or not ui_state.has_clusters(model_type),
            help="0: one expert per class of the chosen data (2 for classes 3,5). "
            "Classifiers have one output per class instead.",
        )
        c2.number_input("Epochs", 1, 500, default.epochs, key=f"{PREFIX}epochs", disabled=locked)
        c3.number_input(
            "Batch size", 2, 4096, default.batch_size, key=f"{PREFIX}batch_size", disabled=locked
        )
        c4.number_input(
            "Max samples",
            0,
            1_000_000,
            default.max_samples,
            step=100,
            key=f"{PREFIX}max_samples",
            disabled=locked,
            help="Train on a seeded random subset; 0 = all samples.",
        )
        c5.number_input("Seed", 0, 1_000_000, default.seed, key=f"{PREFIX}seed", disabled=locked)
        c1, c2, c3 = st.columns([2, 1, 3])
        c1.number_input(
            "Learning rate",
            1e-4,
            1.0,
            default.lr,
            step=5e-4,
            format="%.4f",
            key=f"{PREFIX}lr",
            on_change=apply_learning_rate,
            help="The base rate; it can be changed while training runs.",
        )
        c2.selectbox(
            "LR schedule",
            LR_SCHEDULES,
            index=LR_SCHEDULES.index(default.lr_schedule),
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


def job_experts(job: Job, view: dict, usage_slot, grid_slot) -> None:
    history, snapshot = view["epochs"], view["snapshot"]
    if not history:
        usage_slot.caption("Scores and expert usage appear after the first epoch.")
    elif "usage" in history[-1]:  # classifiers have no experts to count
        usage = usage_figure({job.spec.label: history[-1]["usage"]})
        usage_slot.plotly_chart(usage, key=f"usage_{job.id}")
    if snapshot and "routing" in snapshot:
        image = to_rgb_uint8(snapshot["inputs"][0])
        grid_slot.caption(
            "Routing of this input, redrawn after every epoch (see the Routing page)."
        )
        grid_slot.image(image, width=64)
        grid_slot.plotly_chart(routing_diagram(snapshot["routing"]), key=f"routing_{job.id}")
    if snapshot and "reconstructions" in snapshot:
        rows, experts, _, height, width = snapshot["reconstructions"].shape
        fit = min(GRID_WIDTH // ((experts + 1) * width), GRID_HEIGHT // (rows * height))
        scale = max(1, min(8, fit))
        grid = reconstruction_grid(
            snapshot["inputs"], snapshot["reconstructions"], snapshot["gate_probs"], scale, gap=2
        )
        grid_slot.caption(
            "Reconstructions: input on the left, then experts 1…M; "
            "green frame: the expert the gate picks."
        )
        grid_slot.image(grid, width=grid.shape[1])


def job_results(job: Job) -> None:
    panel.results(job)
    if ui_state.final_metrics(job) is None:
        return
    saved = st.session_state.get(f"train_saved_{job.id}")
    if saved:
        level, text = saved
        getattr(st, level)(text)
    else:
        st.button("Save as run", key=f"save_{job.id}", on_click=save, args=(job.id,))


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
    left.plotly_chart(
        loss_figure({job.spec.label: views[job.id]["losses"] for job in jobs}), key="loss"
    )
    histories = {job.spec.label: views[job.id]["epochs"] for job in jobs}
    shown = ui_state.progress_metrics(next(iter(histories.values())))
    right.plotly_chart(metrics_figure(histories, metrics=shown), key="scores")
    if len(jobs) == 1:
        usage_slot, grid_slot = st.columns(2)
        job_experts(jobs[0], views[jobs[0].id], usage_slot, grid_slot)
        job_results(jobs[0])
        return
    for job, col in zip(jobs, st.columns(len(jobs)), strict=True):
        with col:
            job_experts(job, views[job.id], st.container(), st.container())
            job_results(job)


st.title("Train")
with st.expander(lesson_title("train")):
    st.markdown(lesson_text("train"))
active = bool(panel.active_jobs())
problem = settings_panel(locked=active)
panel.buttons(start, disabled=bool(problem))
st.fragment(run_every=POLL_SECONDS if active else None)(live_view)(was_active=active)
