"""Classroom: the shared queue as everyone sees it, and the teacher's view of every job."""

from __future__ import annotations

import streamlit as st

from app_pages import presenter, session
from app_pages.job_panel import poll_seconds, queue_place
from moa_core import ui_state
from moa_core.train.jobs import Job, job_manager

POLL_SECONDS = 2.0


def job_row(job: Job) -> dict:
    status = ui_state.job_status(job, job.state.view(), queue_place(job)).text
    if job.spec.work is not None and job.status == "running":  # a step, a build: no epochs
        status = "paused" if job.control.paused else "running"
    return {
        "job": job.id,
        "browser": ui_state.owner_name(job.owner),
        "page": job.tag.rstrip("_") or "—",
        "what": job.spec.label or job.spec.model_type,
        "data": job.spec.dataset or "—",
        "status": status,
    }


def queue_summary() -> None:
    manager = job_manager()
    jobs = [job for job in manager.all_jobs() if job.active]
    running = sum(1 for job in jobs if job.status == "running")
    c = st.columns(3)
    c[0].metric("Training now", f"{running} of {manager.max_running}")
    c[1].metric("Waiting in the queue", manager.queue_length())
    c[2].metric("Browsers with a page open", len(manager.presence.connected()))


def own_jobs() -> None:
    mine = [job for job in job_manager().owned(session.browser_id()) if job.active]
    st.subheader(f"Your jobs ({session.browser_name()})")
    if not mine:
        st.caption("None running or waiting. Start one on Train or Cluster distributions.")
        return
    st.dataframe([job_row(job) for job in mine], hide_index=True)


def teacher_view() -> None:
    st.subheader("Every job on this server")
    manager = job_manager()
    jobs = sorted(manager.all_jobs(), key=lambda job: (job.done, job.id))
    if not jobs:
        st.caption("No jobs yet.")
        return
    for job in jobs:
        row = job_row(job)
        text, stop = st.columns([8, 1], vertical_alignment="center")
        text.markdown(
            f"**#{row['job']}** · {row['browser']} · {row['page']} · {row['what']} on "
            f"`{row['data']}` — {row['status']}"
        )
        if job.active:
            stop.button("Stop", key=f"teacher_stop_{job.id}", on_click=manager.cancel, args=(job,))


@st.fragment(run_every=poll_seconds(POLL_SECONDS))
def live() -> None:
    queue_summary()
    own_jobs()
    if session.is_teacher():
        teacher_view()


st.title("Classroom")
st.caption(
    "Everyone shares this server's training slots; a browser's second job never starts before "
    "every other waiting browser's first. Your jobs stay yours when you reload the page."
)
teacher = session.is_teacher()
if not teacher:
    with presenter.settings_box("Teacher's code"):  # not typed in front of the class
        teacher = session.teacher_login()
if teacher:
    st.success("Teacher's view: every job, with a Stop for each.")
live()
