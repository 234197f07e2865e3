"""Job manager: worker threads, a concurrency limit with a FIFO queue, cancel, failures."""

from __future__ import annotations

import math
import threading

import pytest
from tiny import TINY as TINY_BASE

from moa_core.train.jobs import JobManager, JobSpec, job_manager
from moa_core.train.trainer import SNAPSHOT_SAMPLES

N, BATCH = 200, 50
TINY = {**TINY_BASE, "max_samples": N, "batch_size": BATCH, "epochs": 2}


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list:
    """Exceptions that escape any thread during the test (a worker must never raise)."""
    caught: list = []
    monkeypatch.setattr(threading, "excepthook", caught.append)
    return caught


def _spec(**overrides: object) -> JobSpec:
    return JobSpec("moa_plus", "digits", {**TINY, **overrides})


def test_second_job_waits_in_the_queue_then_both_finish(thread_errors: list) -> None:
    manager = JobManager(max_running=1)
    first = manager.submit(_spec())
    first.control.pause()  # hold it at its first batch while we look at the queue
    second = manager.submit(_spec(seed=1))
    try:
        assert first.status == "running"
        assert manager.queue_position(first) is None
        assert second.status == "queued"
        assert manager.queue_position(second) == 1
        assert second.thread is None
    finally:
        first.control.resume()
    assert first.wait(60)
    assert second.wait(60)  # started by the first job's worker as it finished
    assert (first.status, second.status) == ("finished", "finished")
    assert manager.queue_position(second) is None
    for job in (first, second):
        view = job.state.view()
        assert len(view["losses"]) == 2 * math.ceil(N / BATCH)
        assert [e["epoch"] for e in view["epochs"]] == [1, 2]
        assert 0.0 <= view["epochs"][-1]["nmi"] <= 1.0
        assert view["snapshot"]["gate_probs"].shape == (SNAPSHOT_SAMPLES, 3)
        assert job.state.run is not None and job.state.run.result.epochs_done == 2
    assert thread_errors == []


def test_three_jobs_queue_in_order() -> None:
    manager = JobManager(max_running=1)
    first = manager.submit(_spec())
    first.control.pause()
    waiting = [manager.submit(_spec()) for _ in range(2)]
    assert [manager.queue_position(job) for job in waiting] == [1, 2]
    manager.cancel(waiting[0])
    assert manager.queue_position(waiting[1]) == 1
    manager.cancel(waiting[1])
    manager.cancel(first)
    assert first.wait(60)


def test_cancel_a_queued_job_and_a_running_one(thread_errors: list) -> None:
    manager = JobManager(max_running=1)
    first = manager.submit(_spec(epochs=50))
    first.control.pause()
    second = manager.submit(_spec())
    manager.cancel(second)
    assert second.status == "stopped"
    assert "cancelled" in second.state.view()["message"]
    assert manager.queue_position(second) is None
    assert second.done
    manager.cancel(first)  # running (paused): stop wakes it up
    assert first.wait(60)
    assert first.status == "stopped"
    assert first.state.run.result.epochs_done < 50
    # The cancelled job never started; the freed slot takes the next job at once.
    assert second.thread is None
    third = manager.submit(_spec(epochs=1))
    assert manager.queue_position(third) is None
    assert third.wait(60) and third.status == "finished"
    assert thread_errors == []


def test_bad_dataset_fails_with_a_one_line_message(thread_errors: list) -> None:
    manager = JobManager(max_running=1)
    job = manager.submit(JobSpec("moa_plus", "no_such_set", dict(TINY)))
    assert job.wait(60)
    view = job.state.view()
    assert view["status"] == "failed"
    assert view["message"].startswith("unknown dataset 'no_such_set'")
    assert "\n" not in view["message"]
    assert job.state.run is None
    assert thread_errors == []


def test_bad_setting_fails_with_the_config_message() -> None:
    manager = JobManager(max_running=1)
    job = manager.submit(_spec(expert_channels=[4, 8, 16, 32, 64]))
    assert job.wait(60)
    assert job.status == "failed"
    assert "expert_channels" in job.state.message and "\n" not in job.state.message
    assert not job.state.message.startswith("ValueError")  # a user error, not a crash


def test_worker_never_raises_and_the_manager_carries_on(
    thread_errors: list, capfd: pytest.CaptureFixture
) -> None:
    manager = JobManager(max_running=1)
    # Overrides that are not a dict: a programming error deep inside training setup.
    broken = manager.submit(JobSpec("moa_plus", "digits", [("epochs", 1)]))  # type: ignore[arg-type]
    after = manager.submit(_spec(epochs=1))
    assert broken.wait(60) and after.wait(60)
    assert broken.status == "failed"
    assert broken.state.message.startswith("AttributeError")
    assert "\n" not in broken.state.message
    assert after.status == "finished"
    assert thread_errors == []
    assert "Traceback" in capfd.readouterr().err  # logged for the developer, not raised


def test_job_manager_is_one_per_process() -> None:
    assert job_manager() is job_manager()
