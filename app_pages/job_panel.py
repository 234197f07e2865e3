"""Start/pause/step/stop buttons and status lines for a page's training jobs (not a page).

Each page keeps its own job ids in the session under `<prefix>job_ids`, so the Train page
and the Cluster distributions page each control only their own jobs.
"""

from __future__ import annotations

import streamlit as st

from moa_core import ui_state
from moa_core.data import data_dir
from moa_core.train.jobs import Job, JobSpec, job_manager

DELAY_HELP = "Speed control: watch training step by step."


@st.cache_data(ttl=60, show_spinner="Checking the dataset (2-D sets are built on first use)…")
def _dataset_problem(spec: str, folder: str) -> str | None:
    del folder  # part of the cache key only: a different MOA_DATA_DIR may hold the files
    return ui_state.check_dataset(spec)


def show_dataset_problem(spec: str) -> str | None:
    """Check `spec` (cached per data folder); show and return the one-line reason, or None."""
    problem = _dataset_problem(spec, str(data_dir()))
    if problem:
        st.error(problem)
    return problem


class JobPanel:
    def __init__(self, prefix: str) -> None:
        self.key = f"{prefix}job_ids"
        self.delay_key = f"{prefix}delay"
        self.manager = job_manager()

    def jobs(self) -> list[Job]:
        jobs = self.manager.jobs
        return [jobs[i] for i in st.session_state.get(self.key, []) if i in jobs]

    def active_jobs(self) -> list[Job]:
        return [job for job in self.jobs() if ui_state.is_active(job)]

    # Button callbacks run before the script, so the same run already draws their effect.
    def start(self, specs: list[JobSpec]) -> None:
        if self.active_jobs():  # a second click before the rerun must not orphan running jobs
            return
        jobs = [self.manager.submit(spec) for spec in specs]
        for job in jobs:
            job.control.set_delay(st.session_state.get(self.delay_key, 0.0))
        st.session_state[self.key] = [job.id for job in jobs]

    def control(self, action: str) -> None:
        for job in self.active_jobs():
            if action == "stop":
                self.manager.cancel(job)
            else:
                getattr(job.control, action)()

    def reset(self) -> None:
        self.control("stop")
        st.session_state[self.key] = []

    def apply_delay(self) -> None:
        for job in self.active_jobs():
            job.control.set_delay(float(st.session_state[self.delay_key]))

    def delay_slider(self, where=st) -> None:
        where.slider(
            "Slow down (seconds per batch)",
            0.0,
            1.0,
            0.0,
            step=0.05,
            key=self.delay_key,
            on_change=self.apply_delay,
            help=DELAY_HELP,
        )

    def buttons(self, on_start, disabled: bool) -> None:
        """Start (calls `on_start`), Pause, Resume, Step, Stop, Reset."""
        active = bool(self.active_jobs())
        cols = st.columns(6)
        cols[0].button("Start", on_click=on_start, disabled=active or disabled, type="primary")
        cols[1].button("Pause", on_click=self.control, args=("pause",), disabled=not active)
        cols[2].button("Resume", on_click=self.control, args=("resume",), disabled=not active)
        cols[3].button(
            "Step",
            on_click=self.control,
            args=("step",),
            disabled=not active,
            help="Run one batch, then pause.",
        )
        cols[4].button("Stop", on_click=self.control, args=("stop",), disabled=not active)
        cols[5].button("Reset", on_click=self.reset, disabled=not self.jobs())

    def header(self, job: Job, view: dict) -> None:
        status = ui_state.job_status(job, view, self.manager.queue_position(job))
        st.markdown(f"**{job.spec.label}** on `{job.spec.dataset}`")
        getattr(st, status.level)(status.text)
        st.progress(status.progress, text=f"epoch {status.epochs_done}/{status.epochs_total}")

    def results(self, job: Job) -> None:
        metrics = ui_state.final_metrics(job)
        if metrics is None:
            return
        tiles = ui_state.score_tiles(metrics)
        for column, (label, value) in zip(st.columns(len(tiles)), tiles, strict=True):
            column.metric(label, value)
