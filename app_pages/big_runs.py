"""The Train page's big runs: the same settings trained by `moa train --nproc N` in processes
of their own (torchrun when N > 1), not in a thread of the app, followed through the files
they write (`moa_core.train.external`). They survive a reload and a restart of the app, and
their checkpoint lands in the run registry like any other run."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from app_pages import presenter, session
from moa_core import ui_state
from moa_core.analysis.health import collapse_message
from moa_core.train import external
from moa_core.train.jobs import JobSpec
from moa_core.train.pretraining import PIPELINE_MODELS
from moa_core.viz.training import epoch_loss_figure, metrics_figure

PREFIX = "big_"
SHOWN = 4  # this browser's newest runs drawn on the page
POLL_SECONDS = 2.0
SERVER_RUNNING = 2  # big runs at once on one server
PROBLEM = f"{PREFIX}problem"
WORDS = {"running": "running", "finished": "finished", "stopped": "stopped", "failed": "failed"}


def launch_controls(settings: ui_state.TrainSettings, disabled: bool) -> None:
    """How many processes, and the button that starts the current settings in them."""
    most = max(2, os.cpu_count() or 1)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    left.number_input(
        "Processes",
        1,
        most,
        value=2,
        key=f"{PREFIX}processes",
        help="Each process trains on its share of every batch; gradients are averaged "
        "(torch.distributed: gloo on CPUs, NCCL on GPUs). 1: one process of its own.",
    )
    right.button(
        "Start in separate processes",
        on_click=_launch,
        args=(settings,),
        disabled=disabled or settings.compare,
        help="The run keeps going if this page is reloaded or the app restarts. Compare "
        "mode trains here only.",
    )
    if st.session_state.get(PROBLEM):
        st.warning(st.session_state[PROBLEM])


def _launch(settings: ui_state.TrainSettings) -> None:
    """Start, unless this browser already has a big run going or the server has
    `SERVER_RUNNING` (each takes whole processes, outside the class's job queue)."""
    running = [run for run in external.external_runs() if run.status() == "running"]
    mine = [run for run in running if run.owner == session.browser_id()]
    if mine or len(running) >= SERVER_RUNNING:
        st.session_state[PROBLEM] = (
            "One big run at a time per browser: stop yours first."
            if mine
            else f"{len(running)} big runs already use this server: wait for one to end."
        )
        return
    st.session_state.pop(PROBLEM, None)
    spec = settings.job_specs()[0]
    processes = int(st.session_state[f"{PREFIX}processes"])
    # What this page trains: MoE-VAE with the K set here, not the CLI's pretraining pipeline.
    pipeline = {"pretrain": False} if spec.model_type in PIPELINE_MODELS else {}
    try:
        external.launch(
            spec.model_type,
            spec.dataset,
            {**spec.overrides, **pipeline},
            processes,
            session.browser_id(),
        )
    except OSError as err:  # no room for its folder, no process to start
        st.session_state[PROBLEM] = f"The run could not start: {err.strerror or err}."


def follow() -> None:
    """This browser's newest big runs, redrawn every POLL_SECONDS while one of them runs."""
    runs = external.external_runs(session.browser_id())[:SHOWN]
    if not runs:
        return
    running = any(run.status() == "running" for run in runs)
    st.fragment(run_every=POLL_SECONDS if running else None)(_draw)()


def _draw() -> None:
    st.subheader("Runs in separate processes")
    for run in external.external_runs(session.browser_id())[:SHOWN]:
        with st.container(border=True):
            _draw_run(run)


def _draw_run(run: external.ExternalRun) -> None:
    status, history = run.status(), run.history()
    title, stop = st.columns([5, 1], vertical_alignment="bottom")
    processes = f"{run.processes} process{'es' if run.processes > 1 else ''}"
    title.markdown(f"**{run.model}** on `{run.dataset}`, {processes}: {WORDS[status]}")
    if status == "running":
        stop.button("Stop", key=f"{PREFIX}stop_{run.id}", on_click=external.stop, args=(run,))
        _progress(run, len(history))
    elif status == "finished":
        saved = Path(str((run.result() or {}).get("checkpoint", "?"))).stem
        st.success(f"Saved as run `{saved}`: pick it on any page.")
    elif status == "failed":
        st.error(run.problem())
    usage = history[-1]["metrics"].get("usage") if history else None
    if status == "finished" and usage:
        spec = JobSpec(run.model, run.dataset, run.overrides)
        verdict = collapse_message(usage, "expert", ui_state.run_collapse_fix(spec, False))
        if verdict:
            st.warning(verdict)
    if history:
        label = f"{run.model} ×{run.processes}"
        rows = [{"epoch": row["epoch"], **row["metrics"]} for row in history]
        left, right = st.columns(2)
        losses = {label: [{"epoch": row["epoch"], "loss": row["train_loss"]} for row in history]}
        presenter.chart(epoch_loss_figure(losses), left, key=f"{PREFIX}loss_{run.id}")
        presenter.chart(metrics_figure({label: rows}), right, key=f"{PREFIX}scores_{run.id}")
    elif status == "running":
        st.caption("The first figure comes when the first epoch ends.")


def _progress(run: external.ExternalRun, epochs_done: int) -> None:
    """How far the run is, by step once its first steps are written (a big epoch takes
    minutes), by epoch before that."""
    latest = run.progress()
    if not latest or not latest.get("total_steps"):
        share = epochs_done / run.epochs if run.epochs else 0.0
        st.progress(share, text=f"epoch {epochs_done} of {run.epochs}: starting")
        return
    step, total = latest["step"], latest["total_steps"]
    loss = latest.get("loss")
    said = f"epoch {latest['epoch']} of {run.epochs}, step {step} of {total}"
    st.progress(
        min(step / total, 1.0), text=said + (f", loss {loss:.4g}" if loss is not None else "")
    )
