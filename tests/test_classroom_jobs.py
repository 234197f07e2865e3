"""The job manager as a classroom shares it: owners, a fair queue, a per-browser cap, the
janitor's TTLs, the wait estimate; and the identities and codes behind them."""

from __future__ import annotations

import gc
import time
import weakref
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tiny import TINY

from moa_core import access
from moa_core.train.control import TrainingControl
from moa_core.train.jobs import JobLimitError, JobLimits, JobManager, JobSpec, NotYourJob
from moa_core.train.pretraining import PipelineStopped
from moa_core.train.queue_wait import queue_wait
from moa_core.train.trainer import Callback

A, B = "browser-a" * 3, "browser-b" * 3
TRAIN_PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "train.py")


def _held(label: str = "held") -> JobSpec:
    """A job that runs until it is stopped (its control is its only way out), as a paused
    training does; nothing to train, so the test is about scheduling alone."""

    def work(on_event: Callback, control: TrainingControl) -> None:
        while control.wait_for_turn():
            time.sleep(0.01)
        raise PipelineStopped(f"{label} stopped")

    return JobSpec(label=label, work=work)


def _quick(label: str = "quick") -> JobSpec:
    return JobSpec(label=label, work=lambda on_event, control: label)


def _manager(**limits: float) -> JobManager:
    return JobManager(limits=JobLimits(**{"max_running": 1, **limits}))


def _stop_all(manager: JobManager) -> None:
    for job in list(manager.jobs.values()):
        manager.cancel(job)
        job.wait(30)


def _wait_for(condition, timeout: float = 30.0) -> None:
    """Poll `condition` (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# --- a fair queue ------------------------------------------------------------------------


def test_a_browsers_second_job_waits_for_every_other_browsers_first() -> None:
    manager = _manager()
    try:
        a1 = manager.submit(_held("a1"), owner=A)
        a2, a3 = manager.submit_group([_held("a2"), _held("a3")], owner=A)
        b1 = manager.submit(_held("b1"), owner=B)  # submitted last, starts first
        assert a1.status == "running"
        assert [manager.queue_position(j) for j in (b1, a2, a3)] == [1, 2, 3]
        assert manager.queue_length() == 3
        manager.cancel(a1, by=A)
        _wait_for(lambda: b1.status == "running")
        assert a2.status == "queued" and manager.queue_position(a2) == 1
        manager.cancel(b1, by=B)
        _wait_for(lambda: a2.status == "running")
    finally:
        _stop_all(manager)


def test_the_cli_and_tests_queue_first_in_first_out() -> None:
    manager = _manager()
    try:
        first = manager.submit(_held())
        later = [manager.submit(_held()) for _ in range(3)]
        assert [manager.queue_position(job) for job in later] == [1, 2, 3]
        assert first.owner == "" and first.status == "running"
    finally:
        _stop_all(manager)


# --- a cap per browser -------------------------------------------------------------------


def test_one_browser_cannot_queue_past_its_cap_and_a_comparison_is_all_or_nothing() -> None:
    manager = _manager(per_browser=2)
    try:
        first = manager.submit(_held(), owner=A)
        with pytest.raises(JobLimitError) as refused:
            manager.submit_group([_held(), _held()], owner=A)
        message = str(refused.value)
        assert "MOA_MAX_JOBS_PER_BROWSER" in message and "\n" not in message
        assert len(manager.jobs) == 1  # nothing of the refused pair was queued
        manager.submit(_held(), owner=A)  # the second fits
        with pytest.raises(JobLimitError):
            manager.submit(_held(), owner=A)
        manager.submit(_held(), owner=B)  # another browser is not held back
        manager.cancel(first, by=A)
        first.wait(30)
        manager.submit(_held(), owner=A)  # a finished job no longer counts
    finally:
        _stop_all(manager)


# --- who may steer -----------------------------------------------------------------------


def test_only_the_owner_or_the_teacher_steers_a_job() -> None:
    manager = _manager()
    try:
        job = manager.submit(_held(), owner=A)
        with pytest.raises(NotYourJob):
            manager.cancel(job, by=B)
        with pytest.raises(NotYourJob):
            manager.steer(job, "pause", by=B)
        with pytest.raises(NotYourJob):
            manager.mark_saved(job, by=B)
        assert job.status == "running" and not job.control.paused and not job.saved
        manager.steer(job, "pause", by=A)
        assert job.control.paused
        manager.cancel(job)  # the teacher (no browser named) may stop anyone's
        assert job.wait(30) and job.status == "stopped"
    finally:
        _stop_all(manager)


# --- the janitor -------------------------------------------------------------------------


def test_a_gone_browsers_paused_job_frees_its_slot_after_the_ttl_and_a_reload_keeps_it() -> None:
    manager = _manager(browser_ttl=60)
    try:
        manager.presence.connect(A)
        paused = manager.submit(_held("paused"), owner=A)
        manager.steer(paused, "pause", by=A)
        waiting = manager.submit(_held("waiting"), owner=B)
        now = time.monotonic()
        manager.presence.disconnect(A, now)  # a reload: one page closes ...
        manager.presence.connect(A)  # ... and the next opens
        manager.sweep(now + 3600)
        assert paused.status == "running" and waiting.status == "queued"
        manager.presence.disconnect(A, now)  # the tab is closed for good
        manager.sweep(now + 59)  # within the TTL: kept
        assert paused.status == "running" and waiting.status == "queued"
        manager.sweep(now + 61)  # past it: stopped, and the slot goes to the next browser
        assert paused.wait(30) and paused.status == "stopped"
        _wait_for(lambda: waiting.status == "running")
        assert manager.sweep(now + 61) == [paused.id]  # once it has ended, forgotten
        assert paused.id not in manager.jobs and waiting.id in manager.jobs
        assert A not in manager.presence.gone(now + 61, 60)  # nothing of A left to track
    finally:
        _stop_all(manager)


def test_finished_jobs_are_dropped_after_their_ttl_unless_saved_freeing_the_model() -> None:
    manager = _manager(finished_ttl=100, max_running=2)
    kept, dropped = (manager.submit(JobSpec("moa_plus", "digits", dict(TINY))) for _ in range(2))
    assert kept.wait(120) and dropped.wait(120)
    assert kept.status == dropped.status == "finished"
    manager.mark_saved(kept)
    model = weakref.ref(dropped.state.run.model)
    ended = max(kept.ended_at, dropped.ended_at)
    assert manager.sweep(ended + 50) == []
    assert manager.sweep(ended + 101) == [dropped.id]
    assert dropped.state.run is None and kept.state.run is not None
    gc.collect()
    assert model() is None  # nothing else held the trained model
    assert set(manager.jobs) == {kept.id}


def test_a_reset_job_is_dropped_at_the_next_sweep() -> None:
    manager = _manager()
    job = manager.submit(_quick(), owner=A)
    assert job.wait(30)
    manager.dismiss([job], by=A)
    assert manager.owned(A) == []
    assert manager.sweep() == [job.id]


# --- how long a queued job waits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("running_left", "ahead", "slots", "typical", "expected"),
    [
        ([10.0, 30.0], 0, 2, 20.0, 10.0),  # the first slot to free
        ([10.0, 30.0], 1, 2, 20.0, 30.0),  # 10 + 20 and 30 free together
        ([10.0, 30.0], 2, 2, 20.0, 30.0),  # the job at 10 s takes 30..50; 30 s is next
        ([10.0, 30.0], 3, 2, 20.0, 50.0),
        ([], 0, 2, None, 0.0),  # a free slot: now
        ([5.0], 1, 2, None, None),  # one ahead and no job has finished yet
        ([None], 0, 1, 20.0, 20.0),  # a job that has not said how far it is: a typical one
        ([None], 0, 1, None, None),  # ... and nothing to go by
    ],
)
def test_queue_wait_plays_the_queue_forward(running_left, ahead, slots, typical, expected):
    assert queue_wait(running_left, ahead, slots, typical) == expected


def test_no_wait_is_guessed_before_anything_is_known() -> None:
    manager = _manager()
    try:
        running = manager.submit(_held(), owner=A)
        queued = manager.submit(_held(), owner=B)
        assert manager.estimated_wait(queued) is None  # nothing to go by yet
        assert manager.estimated_wait(running) is None  # not waiting
    finally:
        _stop_all(manager)


# --- limits from the environment ---------------------------------------------------------


def test_limits_come_from_the_environment_and_a_bad_value_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv("MOA_MAX_JOBS_PER_BROWSER", "3")
    monkeypatch.setenv("MOA_BROWSER_TTL", "8")
    limits = JobLimits.from_env()
    assert (limits.per_browser, limits.browser_ttl) == (3, 8.0)
    assert limits.sweep_seconds == 2.0  # a quarter of the shortest TTL
    monkeypatch.setenv("MOA_MAX_JOBS", "0")
    with pytest.raises(ValueError, match="^MOA_MAX_JOBS must be 1 or more"):
        JobLimits.from_env()
    monkeypatch.setenv("MOA_MAX_JOBS", "2")
    monkeypatch.setenv("MOA_FINISHED_TTL", "soon")
    with pytest.raises(ValueError, match="^MOA_FINISHED_TTL must be a number ≥ 0, got 'soon'$"):
        JobLimits.from_env()


# --- identities and codes ----------------------------------------------------------------


def test_browser_tokens_are_random_and_their_short_names_stable() -> None:
    first, second = access.new_browser_token(), access.new_browser_token()
    assert first != second and access.valid_token(first)
    assert not access.valid_token("short") and not access.valid_token("x'; alert(1)//" * 3)
    assert access.short_name(first) == access.short_name(first)
    adjective, animal, tag = access.short_name(first).split("-")
    assert adjective.isalpha() and animal.isalpha() and len(tag) == 2


def test_the_door_pass_is_bound_to_the_code_and_the_browser() -> None:
    assert access.codes_match(" open-sesame ", "open-sesame")
    assert not access.codes_match("open", "open-sesame")
    one = access.code_pass("open-sesame", A, "door")
    assert one == access.code_pass("open-sesame", A, "door")
    assert one != access.code_pass("open-sesame", B, "door")
    assert one != access.code_pass("other-code", A, "door")
    assert one != access.code_pass("open-sesame", A, "teacher")
    assert "open-sesame" not in one


# --- a reloaded Train page ---------------------------------------------------------------


def test_a_reloaded_train_page_shows_the_browsers_running_jobs(new_jobs) -> None:
    """A reload is a new session that knows only the browser (its cookie): the page finds
    the jobs that browser started last, and not another browser's."""
    from moa_core.train.jobs import job_manager

    token, stranger = access.new_browser_token(), access.new_browser_token()
    slow = {**TINY, "epochs": 200}
    mine = job_manager().submit_group(
        [JobSpec("moa_plus", "digits", slow, label="mine")], token, "train_", "group"
    )
    job_manager().submit(JobSpec("moa_plus", "digits", slow, label="theirs"), stranger, "train_")
    for job in new_jobs():
        job.control.pause()
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60)
    at.session_state["_moa_browser"] = token  # what the cookie gives a reloaded page
    at.run()
    assert not at.exception
    assert at.session_state["train_job_ids"] == [mine[0].id]
    headers = [md.value for md in at.markdown if "** on `" in md.value]
    assert headers == ["**mine** on `digits`"]
    assert not next(b for b in at.button if b.label == "Stop").disabled


def test_past_the_browsers_cap_start_shows_one_line_and_queues_nothing(monkeypatch) -> None:
    from moa_core.train.jobs import job_manager

    manager = job_manager()
    monkeypatch.setattr(manager, "limits", JobLimits(max_running=2, per_browser=0))
    known = set(manager.jobs)
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "this browser already has 0 job(s) queued or running, and 0 is the most one browser "
        "may have (MOA_MAX_JOBS_PER_BROWSER): stop one or wait for it to finish"
    ]
    assert set(manager.jobs) == known
    assert not next(b for b in at.button if b.label == "Start").disabled


def test_read_only_runs_offer_students_no_save(monkeypatch, new_jobs) -> None:
    monkeypatch.setenv("MOA_RUNS_READONLY", "1")
    monkeypatch.setenv("MOA_TEACHER_CODE", "a-teachers-code")  # this session is a student
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()
    for name, value in {"epochs": 1, "max_samples": 120, "batch_size": 60}.items():
        at.number_input(key=f"train_{name}").set_value(value)
    next(b for b in at.button if b.label == "Start").click().run()
    (job,) = new_jobs()
    assert job.wait(120) and job.status == "finished"
    at.run()
    assert not at.exception
    assert "Save as run" not in [b.label for b in at.button]
    assert "Saving runs is turned off for students" in " ".join(c.value for c in at.caption)


def test_what_a_present_browser_looks_at_outlives_the_finished_ttl() -> None:
    """Past the TTL a finished job is dropped only once its browser started newer ones on
    that page, or left: never while it is the last thing on that browser's screen."""
    manager = _manager(finished_ttl=10)
    manager.presence.connect(A)
    first = manager.submit(_quick("first"), owner=A, tag="train_", context="one")
    assert first.wait(30)
    later = first.ended_at + 60
    assert manager.sweep(later) == []  # on A's Train page: kept
    second = manager.submit(_quick("second"), owner=A, tag="train_", context="one")
    assert second.wait(30)
    assert manager.sweep(later) == [first.id]  # replaced on the page (same settings): dropped
    manager.presence.disconnect(A, later)
    assert manager.sweep(second.ended_at + 60) == []  # gone, but within the browser TTL
    assert manager.sweep(later + 301) == [second.id]  # gone past it: nothing is kept


@pytest.mark.parametrize(("browsers", "expected"), [(0, 1.0), (4, 1.0), (8, 2.0), (30, 7.5)])
def test_pages_redraw_less_often_the_more_browsers_share_the_server(browsers, expected):
    from moa_core.ui_state import poll_interval

    assert poll_interval(1.0, browsers) == expected
