"""Cluster distributions: train on a 2-D set and watch each cluster's density over the plane."""

from __future__ import annotations

import streamlit as st

from app_pages.job_panel import JobPanel, poll_seconds, show_dataset_problem
from moa_core import ui_state
from moa_core.analysis.density import PlaneSnapshot
from moa_core.analysis.health import collapse_message
from moa_core.data import point_set_names
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import Job
from moa_core.viz.density import density_contours, mean_density_table

POLL_SECONDS = 2.0  # six contour panels take a browser ~1 s to redraw: never queue redraws
PREFIX = "dist_"
DEFAULT_SHOWN = 3  # paper 004, Fig. 5 draws three clusters

panel = JobPanel(PREFIX)


def start() -> None:
    settings = ui_state.PlaneSettings.from_mapping(dict(st.session_state), prefix=PREFIX)
    panel.start(settings.job_specs())


def settings_panel(locked: bool) -> str | None:
    default = ui_state.PlaneSettings()
    datasets, models = point_set_names(), ui_state.point_model_types()
    with st.container(border=True):
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.selectbox(
            "2-D dataset",
            datasets,
            index=datasets.index(default.dataset),
            key=f"{PREFIX}dataset",
            disabled=locked,
            help="digits2d / mnist2d / usps2d: the 2-unit bottleneck of a supervised CNN "
            "(paper 004, Fig. 4a); the others are drawn on the fly.",
        )
        index = models.index(default.model_type) if default.model_type in models else 0
        c2.selectbox("Model", models, index=index, key=f"{PREFIX}model_type", disabled=locked)
        c3.number_input(
            "K (clusters)",
            0,
            30,
            default.num_clusters,
            key=f"{PREFIX}num_clusters",
            disabled=locked,
            help="0: one cluster per class of the data.",
        )
        c4.number_input("Epochs", 1, 500, default.epochs, key=f"{PREFIX}epochs", disabled=locked)
        c5.number_input("Seed", 0, 1_000_000, default.seed, key=f"{PREFIX}seed", disabled=locked)
        c1, c2, c3 = st.columns([1, 2, 2])
        c1.number_input(
            "Learning rate",
            1e-5,
            1.0,
            default.lr,
            step=1e-4,
            format="%.4f",
            key=f"{PREFIX}lr",
            disabled=locked,
        )
        switched_off = ui_state.ablation(st.session_state.get(f"{PREFIX}model_type", models[index]))
        c2.toggle(
            f"Side by side: {switched_off[0]}" if switched_off else "Side by side",
            value=default.side_by_side,
            key=f"{PREFIX}side_by_side",
            disabled=locked or switched_off is None,
            help="Train a second copy with the model's key idea switched off (same data, seed).",
        )
        panel.delay_slider(c3)
    return show_dataset_problem(st.session_state[f"{PREFIX}dataset"])


def chosen_clusters(jobs: list[Job], planes: list[PlaneSnapshot]) -> list[int]:
    """The multiselect of clusters to draw, sized by the first snapshot that has a plane."""
    if not planes:
        return []
    options = list(range(planes[0]["grid"].values.shape[0]))
    key = f"{PREFIX}shown_{jobs[0].id}"  # new jobs (maybe another K) start from the default
    return st.multiselect(
        "Clusters to draw",
        options,
        default=options[:DEFAULT_SHOWN],
        format_func=lambda j: f"cluster {j + 1}",
        key=key,
    )


def live_view(was_active: bool) -> None:
    jobs = panel.jobs()
    if not jobs:
        st.info(
            "Press **Start**: the model trains on the plane and each chosen cluster's density "
            "is redrawn after every epoch. Use *Slow down* to watch it form."
        )
        return
    views = {job.id: job.state.view() for job in jobs}
    if was_active and not any(ui_state.is_active(job) for job in jobs):
        st.rerun()  # full rerun: stops the polling and unlocks the settings
    for job, column in zip(jobs, st.columns(len(jobs)), strict=True):
        with column:
            panel.header(job, views[job.id])
            panel.results(job)
            metrics = ui_state.final_metrics(job)
            fix = ui_state.run_collapse_fix(job.spec, comparing=len(jobs) > 1)
            verdict = metrics and collapse_message(metrics["usage"], "cluster", fix)
            if verdict:
                st.warning(verdict)
    planes = {
        job.spec.label: views[job.id]["snapshot"]["plane"]
        for job in jobs
        if views[job.id]["snapshot"] and "plane" in views[job.id]["snapshot"]
    }
    clusters = chosen_clusters(jobs, list(planes.values()))
    if not planes:
        st.caption("The densities appear as soon as the training starts.")
    elif clusters:
        st.plotly_chart(density_contours(planes, clusters), key="contours")
    if planes:
        st.markdown(
            "**Mean density over one batch of 128 points**, (1/n) Σᵢ h_j(xᵢ) "
            "(paper 004, Table 1): ≈ 0.5 for every cluster when the scores are normalized."
        )
        means = {label: plane["mean_density"] for label, plane in planes.items()}
        st.dataframe(mean_density_table(means), hide_index=True)


st.title("Cluster distributions")
with st.expander(lesson_title("distributions")):
    st.markdown(lesson_text("distributions"))
active = bool(panel.active_jobs())
problem = settings_panel(locked=active)
panel.buttons(start, disabled=bool(problem))
st.fragment(run_every=poll_seconds(POLL_SECONDS) if active else None)(live_view)(was_active=active)
