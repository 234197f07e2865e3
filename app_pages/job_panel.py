"""Start/pause/step/stop buttons and status lines for a page's training jobs (not a page),
and `train_live`, the body of a page that trains its runs side by side and redraws them live.

Each page keeps its own job ids in the session under `<prefix>job_ids`, so the Train page
and the Cluster distributions page each control only their own jobs. The jobs belong to
this browser (`session.browser_id()`): a reloaded page (a new session) finds the last ones
it started again, and only this browser may steer them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from app_pages import session, url_state
from moa_core import ui_state
from moa_core.checkpoint import CheckpointError, save_run
from moa_core.data import build_point_set, data_dir, unbuilt_point_set
from moa_core.data.bottleneck import BOTTLENECK_SETS
from moa_core.train.control import TrainingControl
from moa_core.train.jobs import Job, JobLimitError, JobSpec, job_manager
from moa_core.train.pretraining import PipelineStopped
from moa_core.train.trainer import Callback, TrainEvent

DELAY_HELP = "Speed control: watch training step by step."


BUILD_POLL_SECONDS = 1.0


@st.cache_data(ttl=60, show_spinner="Checking the dataset…")
def _dataset_problem(spec: str, folder: str) -> str | None:
    del folder  # part of the cache key only: a different MOA_DATA_DIR may hold the files
    return ui_state.check_dataset(spec)


def show_dataset_problem(spec: str) -> str | None:
    """Check `spec` (cached per data folder); show and return the one-line reason, or None.

    A 2-D bottleneck set that is not built yet is never loaded here: that trains a CNN for up
    to a minute and would hold the whole page. Its image set is checked instead, and the page
    gets a Build button or the build's progress; the reason returned keeps Start waiting.
    """
    unbuilt = unbuilt_point_set(spec)
    problem = _dataset_problem(BOTTLENECK_SETS[unbuilt] if unbuilt else spec, str(data_dir()))
    if problem and unbuilt:
        problem = f"{unbuilt} is made from {BOTTLENECK_SETS[unbuilt]}: {problem}"
    if problem:
        st.error(problem)
        return problem
    return _offer_build(unbuilt) if unbuilt else None


def point_set_build(name: str) -> JobSpec:
    """A job that builds the 2-D set `name`: its epoch events carry the training steps
    done and in all, and Stop abandons the build before anything is written."""

    def work(on_event: Callback, control: TrainingControl) -> None:
        def progress(done: int, total: int) -> None:
            if control.stopped:
                raise PipelineStopped(f"building {name} was stopped")
            metrics = {"done": done, "total": total}
            on_event(TrainEvent("epoch", epoch=done, step=done, metrics=metrics))

        build_point_set(name, progress)

    return JobSpec(dataset=name, label=f"Build {name}", work=work)


def _latest_build(name: str) -> Job | None:
    """The newest job building `name`, from any browser: one build serves the classroom."""
    builds = [job for job in job_manager().all_jobs() if job.spec.label == f"Build {name}"]
    return builds[-1] if builds else None


def _start_build(name: str) -> None:
    job = _latest_build(name)
    if job is None or job.done:  # a second click before the rerun starts no second build
        try:
            job_manager().submit(point_set_build(name), session.browser_id(), tag="build")
        except JobLimitError as err:
            st.session_state[START_PROBLEM] = str(err)


def _offer_build(name: str) -> str:
    """The running build's progress, else a Build button; the reason Start waits."""
    job = _latest_build(name)
    if job is not None and not job.done:
        st.fragment(run_every=poll_seconds(BUILD_POLL_SECONDS))(_watch_build)(job)
    else:
        if job is not None and job.status == "failed":
            st.error(f"Building {name} failed: {job.state.message}")
        st.info(
            f"**{name}** is built once on this machine: a small CNN learns to place every "
            f"{BOTTLENECK_SETS[name]} image on a plane (about 10 s for digits, a minute for "
            "MNIST). The rest of the page works meanwhile."
        )
        st.button(f"Build {name}", on_click=_start_build, args=(name,), type="primary")
        show_start_problem()
    return f"{name} is not built yet"


START_PROBLEM = "_moa_start_problem"  # why the last Start submitted nothing (one line)


def show_start_problem() -> None:
    """The reason the last click started nothing (the browser's job cap), shown once."""
    problem = st.session_state.pop(START_PROBLEM, None)
    if problem:
        st.error(problem)


def poll_seconds(base: float) -> float:
    """`base`, stretched when many browsers have a page open (`ui_state.poll_interval`)."""
    return ui_state.poll_interval(base, len(job_manager().presence.connected()))


def submit(specs: list[JobSpec], tag: str, context: object = None) -> list[Job]:
    """Queue `specs` for this browser; [] (and the reason, shown by `show_start_problem`)
    when the browser's cap would be passed."""
    try:
        return job_manager().submit_group(specs, session.browser_id(), tag, context)
    except JobLimitError as err:
        st.session_state[START_PROBLEM] = str(err)
        return []


def queue_place(job: Job) -> str | None:
    """ "number 2 of 5 in the queue, about 40 s" while `job` waits; None once it runs."""
    manager = job_manager()
    position = manager.queue_position(job)
    if position is None:
        return None
    wait = ui_state.wait_text(manager.estimated_wait(job))
    return f"number {position} of {manager.queue_length()} in the queue, {wait}"


def job_progress(job: Job, label: str, fraction: float, running: str, stop: str = "Stop") -> None:
    """The progress bar of a job a page polls (a pipeline step, a 2-D set's build, a
    synthesis): its queue place while it waits, `running` once it runs; Stop beside it.
    The caller's fragment reruns the page once `job.done`."""
    place = queue_place(job)
    if place:
        fraction, running = 0.0, f"waiting, {place}"
    bar, button = st.columns([6, 1], vertical_alignment="bottom")
    bar.progress(min(1.0, fraction), text=f"{label}: {running}")
    if job.owner in ("", session.browser_id()):
        button.button(stop, key=f"stop_job_{job.id}", on_click=_cancel, args=(job,))
    else:
        button.caption(f"started by {ui_state.owner_name(job.owner)}")


def _cancel(job: Job) -> None:
    job_manager().cancel(job, by=job.owner and session.browser_id())


def _watch_build(job: Job) -> None:
    """The build's progress bar and a Stop button; a full rerun once it is done."""
    if job.done:
        st.rerun()
    name, steps = job.spec.dataset, job.state.view()["epochs"]
    if not steps:
        job_progress(
            job, f"Building {name}", 0.0, f"loading {BOTTLENECK_SETS[name]}", "Stop building"
        )
        return
    done, total = steps[-1]["done"], steps[-1]["total"]
    running = f"training the 2-unit CNN, step {done} of {total}"
    job_progress(job, f"Building {name}", done / total, running, "Stop building")


def seed_settings(
    prefix: str, settings: type[ui_state.PageSettings], from_link: Callable[[], Any]
) -> None:
    """A training page's widgets start once, through the session, from what the link asks
    for (`from_link()`, a `settings` checked by `url_state`), read only while a widget is new:
    the widgets get no `value`, since one given a value and a session-set key (the family
    presets, the lesson demo) makes Streamlit warn."""
    if all(key in st.session_state for key in settings().as_mapping(prefix)):
        return
    for key, value in from_link().as_mapping(prefix).items():
        st.session_state.setdefault(key, value)


def publish_settings(prefix: str, params: Mapping[str, str]) -> None:
    """The address bar holds the page's settings (`params`: field → query parameter), so a
    copied link opens the same page."""
    url_state.publish(**{param: st.session_state[prefix + f] for f, param in params.items()})


def link_numbers(
    defaults: ui_state.PageSettings,
    params: Mapping[str, str],
    limits: Mapping[str, tuple[float, float]],
) -> dict[str, Any]:
    """Each field of `limits` (field → widget range) as the link asks for it (`params`: field
    → query parameter), checked against that range: a bad one is the field of `defaults` and
    a phrase in the page's one-line note, in the order of `limits`."""
    return {
        field: url_state.url_number(params[field], *limits[field], getattr(defaults, field))
        for field in limits
    }


def snapshot_parts(jobs: list[Job], views: Mapping[int, dict], key: str) -> dict[str, Any]:
    """Run label → the part `key` of each job's latest snapshot, for the jobs that have
    drawn one yet (a job's first snapshot comes with its first epoch)."""
    return {
        job.spec.label: snapshot[key]
        for job in jobs
        if key in (snapshot := views[job.id]["snapshot"] or {})
    }


def train_live(
    panel: JobPanel,
    settings: type[ui_state.PageSettings],
    from_link: Callable[[], ui_state.PageSettings],
    params: Mapping[str, str],
    settings_panel: Callable[[bool], str | None],
    live_view: Callable[[bool], None],
    poll: float,
) -> None:
    """A page that trains its runs side by side, live: the widgets seeded from the link,
    `settings_panel(locked)` (the problem it returns keeps Start off), the link kept current,
    the buttons, then `live_view(was_active)` as a fragment redrawn every `poll` seconds
    (stretched by `poll_seconds`) while jobs run. One body, so every such page starts, locks
    and polls alike. `settings`: a `PageSettings` with `job_specs()`, read from the session
    when Start is pressed."""
    prefix = panel.tag

    def start() -> None:
        chosen = settings.from_mapping(dict(st.session_state), prefix=prefix)
        panel.start(chosen.job_specs())

    seed_settings(prefix, settings, from_link)
    active = bool(panel.active_jobs())
    problem = settings_panel(active)
    publish_settings(prefix, params)
    panel.buttons(start, disabled=bool(problem))
    run_every = poll_seconds(poll) if active else None
    st.fragment(run_every=run_every)(live_view)(was_active=active)


def show_scores(metrics: dict[str, Any]) -> None:
    """A run's headline scores as a row of tiles."""
    tiles = ui_state.score_tiles(metrics)
    for column, (label, value) in zip(st.columns(len(tiles)), tiles, strict=True):
        column.metric(label, value)


class JobPanel:
    def __init__(self, prefix: str) -> None:
        self.key = f"{prefix}job_ids"
        self.tag = prefix
        self.delay_key = f"{prefix}delay"
        self.manager = job_manager()

    def jobs(self) -> list[Job]:
        if self.key not in st.session_state:  # a new session, e.g. a reload: pick them up
            st.session_state[self.key] = [job.id for job in self._last_started()]
        jobs = (self.manager.jobs.get(i) for i in st.session_state[self.key])
        return [job for job in jobs if job is not None]

    def _last_started(self) -> list[Job]:
        """This browser's jobs of this page that were started together last (none, if the
        page was Reset since)."""
        owned = self.manager.owned(session.browser_id(), self.tag, dismissed=True)
        last = [job for job in owned if job.group == owned[-1].group] if owned else []
        return [job for job in last if not job.dismissed]

    def active_jobs(self) -> list[Job]:
        return [job for job in self.jobs() if ui_state.is_active(job)]

    def views(self, jobs: list[Job], was_active: bool) -> dict[int, dict]:
        """Each job's state now, by id; a full rerun once the last active one has ended: it
        stops the polling and unlocks the settings."""
        views = {job.id: job.state.view() for job in jobs}
        if was_active and not any(ui_state.is_active(job) for job in jobs):
            st.rerun()
        return views

    # Button callbacks run before the script, so the same run already draws their effect.
    def start(self, specs: list[JobSpec]) -> None:
        if self.active_jobs():  # a second click before the rerun must not orphan running jobs
            return
        jobs = submit(specs, self.tag)
        for job in jobs:
            job.control.set_delay(st.session_state.get(self.delay_key, 0.0))
        if jobs:
            st.session_state[self.key] = [job.id for job in jobs]

    def control(self, action: str) -> None:
        browser = session.browser_id()
        for job in self.active_jobs():
            if action == "stop":
                self.manager.cancel(job, by=browser)
            else:
                self.manager.steer(job, action, by=browser)

    def reset(self) -> None:
        self.manager.dismiss(self.jobs(), by=session.browser_id())
        st.session_state[self.key] = []

    def apply_delay(self) -> None:
        for job in self.active_jobs():
            job.control.set_delay(float(st.session_state[self.delay_key]))

    def set_learning_rate(self, lr: float) -> None:
        """New base rate for the running jobs, noted with its step for the loss chart."""
        for job in self.active_jobs():
            job.control.set_learning_rate(lr)
            job.state.note_learning_rate(lr)

    def delay_slider(self, where=st) -> None:
        # Started once in the session, not by a `value`: a lesson demo sets it through the
        # session, and a widget with both makes Streamlit warn.
        st.session_state.setdefault(self.delay_key, 0.0)
        where.slider(
            "Slow down (seconds per batch)",
            0.0,
            1.0,
            step=ui_state.DELAY_STEP,
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
        show_start_problem()

    def header(self, job: Job, view: dict) -> None:
        status = ui_state.job_status(job, view, queue_place(job))
        st.markdown(f"**{job.spec.label}** on `{job.spec.dataset}`")
        getattr(st, status.level)(status.text)
        st.progress(status.progress, text=f"epoch {status.epochs_done}/{status.epochs_total}")

    def results(self, job: Job) -> None:
        metrics = ui_state.final_metrics(job)
        if metrics is not None:
            show_scores(metrics)

    def save_controls(self, job: Job) -> None:
        """Once the job has scores: Save as run, or what the click did, or why it cannot."""
        if ui_state.final_metrics(job) is None:
            return
        saved = st.session_state.get(f"{self.tag}saved_{job.id}")
        if saved:
            level, text = saved
            getattr(st, level)(text)
        elif session.can_save_runs():
            st.button("Save as run", key=f"save_{job.id}", on_click=self.save, args=(job.id,))
        else:
            st.caption(session.READ_ONLY_NOTE)

    def save(self, job_id: int) -> None:
        """Save the job's model as a run (a double click saves once); the outcome is kept in
        the session for `save_controls` to show."""
        key = f"{self.tag}saved_{job_id}"
        if key in st.session_state:
            return
        job = self.manager.jobs.get(job_id)
        run = job.state.run if job else None
        why = None if session.can_save_runs() else session.READ_ONLY_NOTE
        why = why or (None if run else "this run is no longer kept on the server")
        if why:
            st.session_state[key] = ("error", f"Could not save: {why}")
            return
        try:
            self.manager.check_owner(job, session.browser_id())  # NotYourJob is an OSError
            path = save_run(run.model, run.config, run.checkpoint_meta())
            self.manager.mark_saved(job)
            st.session_state[key] = ("success", f"Saved as run: `{path}`")
        except (OSError, CheckpointError) as err:
            st.session_state[key] = ("error", f"Could not save: {err}")
