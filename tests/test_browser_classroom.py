"""The classroom server in Debian's Chromium: a browser's jobs survive a reload, no other
browser can steer them, a closed tab's paused job frees its slot after `MOA_BROWSER_TTL`,
and the teacher's view stops any browser's job. Each Playwright browser *context* is a
separate browser (its own `moa_browser` cookie)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser_support import (
    RENDER_TIMEOUT_MS,
    assert_no_exception,
    number_input,
    slow_down,
    streamlit_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

TEACHER_CODE = "chalk-and-talk-42"
BROWSER_TTL = 3  # s a browser may be gone before the janitor ends its jobs
# A closed tab's Streamlit session (and so its page in the presence count) ends 1 s after
# its websocket closes, not after Streamlit's default 120 s.
SERVER_ENV = {
    "MOA_MAX_JOBS": "2",
    "MOA_BROWSER_TTL": str(BROWSER_TTL),
    "MOA_FINISHED_TTL": "600",
    "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "1",
}
STATUS = re.compile(r"^(running|paused|waiting|stopped|finished|failed)\b")


def server_env(tmp_path_factory: pytest.TempPathFactory, **extra: str) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**SERVER_ENV, "MOA_CACHE_DIR": str(cache), **extra}


@pytest.fixture(scope="module")
def app_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamlit")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, app_logs: Path) -> Iterator[str]:
    """Two training slots; a teacher's code is set, so localhost is NOT the teacher."""
    env = server_env(tmp_path_factory, MOA_TEACHER_CODE=TEACHER_CODE)
    with streamlit_server(tmp_path_factory.mktemp("runs"), app_logs, env) as url:
        yield url


@pytest.fixture(scope="module")
def one_slot_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamlit")


@pytest.fixture(scope="module")
def one_slot_url(tmp_path_factory: pytest.TempPathFactory, one_slot_logs: Path) -> Iterator[str]:
    """One training slot and no teacher's code: a browser on localhost is the teacher."""
    env = server_env(tmp_path_factory, MOA_MAX_JOBS="1")
    with streamlit_server(tmp_path_factory.mktemp("runs"), one_slot_logs, env) as url:
        yield url


def assert_clean_log(log_dir: Path) -> None:
    """No worker, janitor or page printed a traceback into the server's log."""
    log = (log_dir / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert TEACHER_CODE not in log, log[-3000:]


@contextmanager
def another_browser(browser, url: str, remote: bool = False) -> Iterator:
    """A tab in a new browser context: another browser with its own cookies. `remote`: as
    if from another machine (uvicorn takes X-Forwarded-For from a localhost peer)."""
    headers = {"X-Forwarded-For": "10.20.30.40"} if remote else {}
    context = browser.new_context(
        viewport={"width": 1400, "height": 1800}, base_url=url, extra_http_headers=headers
    )
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        context.close()


def wait_until(check, timeout: float, what) -> None:
    """Poll `check` until it holds; else fail saying `what` (a string, or a function that
    describes the page as it is at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:.0f} s: {what() if callable(what) else what}")


def open_train(page) -> None:
    page.goto("/train")
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)


def main_stop(page):
    """The page's Stop (Streamlit's own header has a "Stop" button too)."""
    main = page.get_by_test_id("stMainBlockContainer")
    return main.get_by_role("button", name="Stop", exact=True)


def status_lines(page) -> list[str]:
    """The job status lines the Train page shows ("running — epoch 1/10 done, step 7")."""
    alerts = page.get_by_test_id("stMainBlockContainer").locator('[data-testid="stAlert"]')
    texts = [text.strip() for text in alerts.all_inner_texts()]
    return [text for text in texts if STATUS.match(text)]


def steps(page) -> list[int]:
    return [int(m.group(1)) for t in status_lines(page) if (m := re.search(r"step (\d+)", t))]


def count_status(page, prefix: str) -> int:
    return sum(1 for text in status_lines(page) if text.startswith(prefix))


def wait_status(page, prefix: str, count: int = 1, timeout: float = 60) -> None:
    wait_until(
        lambda: count_status(page, prefix) == count,
        timeout,
        lambda: f"{count} status line(s) reading {prefix!r}; the page shows {status_lines(page)}",
    )


def wait_cookie(page, name: str) -> str:
    """The value of cookie `name` once the page has written it (a script in the page)."""
    found: dict[str, str] = {}

    def written() -> bool:
        found.update({c["name"]: c["value"] for c in page.context.cookies()})
        return name in found

    wait_until(written, 30, f"the page writes the cookie {name}")
    return found[name]


def my_name(page) -> str:
    """This browser's short name, as the sidebar says it ("You: teal-otter-4c")."""
    sidebar = page.get_by_test_id("stSidebar")
    sync_api.expect(sidebar).to_contain_text("You:")
    match = re.search(r"You:\s*(\S+)", sidebar.inner_text())
    assert match, sidebar.inner_text()
    return match.group(1)


def start_slow_job(page, compare: bool = False) -> None:
    """Start a long, slowed-down run (200 epochs of the digits at 0.1 s a batch), so it is
    still running whenever the test looks; `compare` starts two jobs."""
    open_train(page)
    number_input(page, "Epochs", 200)
    slow_down(page, 0.1)
    if compare:
        page.locator("label").filter(has_text="Compare").click()
        sync_api.expect(page.get_by_role("switch", name="Compare")).to_be_checked()
    page.get_by_role("button", name="Start").click()


def metric(page, label: str):
    """The value of the Classroom page's metric `label` (a locator)."""
    tile = page.get_by_test_id("stMetric").filter(has_text=label)
    return tile.get_by_test_id("stMetricValue")


def teacher_stop_buttons(page):
    return page.locator('[class*="st-key-teacher_stop_"]')


def teacher_row(page, name: str):
    """The teacher view's row of the job started by the browser named `name`."""
    rows = page.get_by_test_id("stHorizontalBlock")
    return rows.filter(has_text=name).filter(has_text=" · train · ")


def test_a_reload_in_the_middle_of_a_compare_run_keeps_both_jobs(page, app_logs: Path) -> None:
    start_slow_job(page, compare=True)
    wait_status(page, "running —", count=2)
    wait_cookie(page, "moa_browser")  # the identity the reloaded page comes back with

    page.reload()
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)
    wait_status(page, "running —", count=2, timeout=30)  # both headers are back
    sync_api.expect(main_stop(page)).to_be_enabled()
    sync_api.expect(page.get_by_role("button", name="Start")).to_be_disabled()
    first = steps(page)
    assert len(first) == 2, status_lines(page)
    later: list[int] = []

    def both_advanced() -> bool:
        later[:] = steps(page)
        return len(later) == 2 and all(b > a for a, b in zip(first, later, strict=True))

    wait_until(both_advanced, 30, lambda: f"both jobs advance: steps {first}, then {later}")

    main_stop(page).click()
    wait_status(page, "stopped", count=2, timeout=60)
    assert count_status(page, "running") == 0
    sync_api.expect(page.get_by_role("button", name="Start")).to_be_enabled()
    assert_no_exception(page)
    assert_clean_log(app_logs)


def test_another_browser_can_neither_see_nor_steer_the_job(
    page, browser, app_url: str, app_logs: Path
) -> None:
    start_slow_job(page)
    wait_status(page, "running —")
    owner = my_name(page)

    with another_browser(browser, app_url) as other:
        open_train(other)
        assert my_name(other) != owner  # a browser of its own
        time.sleep(2)  # a polling fragment would have drawn a picked-up job by now
        assert status_lines(other) == []
        assert other.get_by_text("running —").count() == 0
        sync_api.expect(other.get_by_text("Choose the settings above")).to_be_visible()
        sync_api.expect(main_stop(other)).to_be_disabled()
        for button in ("Pause", "Resume", "Step", "Reset"):
            main = other.get_by_test_id("stMainBlockContainer")
            sync_api.expect(main.get_by_role("button", name=button, exact=True)).to_be_disabled()

        other.goto("/classroom")
        other.get_by_role("heading", name="Classroom").wait_for(timeout=RENDER_TIMEOUT_MS)
        sync_api.expect(other.get_by_text("Training now")).to_be_visible()
        sync_api.expect(other.get_by_text("None running or waiting.")).to_be_visible()
        time.sleep(2.5)  # one more poll of the page's 2 s fragment
        assert other.get_by_text("Every job on this server").count() == 0
        assert teacher_stop_buttons(other).count() == 0
        assert owner not in other.locator("body").inner_text()
        sync_api.expect(other.get_by_label("Teacher's code")).to_be_visible()  # asked for it
        assert_no_exception(other)

    # The first browser's job ran on untouched; its own Stop still works.
    wait_status(page, "running —")
    main_stop(page).click()
    wait_status(page, "stopped")
    assert_no_exception(page)
    assert_clean_log(app_logs)


def test_the_teacher_stops_another_browsers_job(
    page, browser, app_url: str, app_logs: Path
) -> None:
    """A student starts a job; the teacher (who typed the teacher's code) stops it."""
    with another_browser(browser, app_url) as teacher:
        teacher.goto("/classroom")
        teacher.get_by_role("heading", name="Classroom").wait_for(timeout=RENDER_TIMEOUT_MS)
        teacher.get_by_label("Teacher's code").fill(TEACHER_CODE)
        teacher.get_by_role("button", name="Open the teacher's view").click()
        teacher.get_by_text("Every job on this server").wait_for()
        sync_api.expect(teacher_stop_buttons(teacher)).to_have_count(0)  # nothing active yet

        start_slow_job(page)
        wait_status(page, "running —")
        student = my_name(page)
        row = teacher_row(teacher, student).filter(has_text="running —")
        sync_api.expect(row).to_have_count(1)
        sync_api.expect(teacher_stop_buttons(teacher)).to_have_count(1)  # the one active job
        row.get_by_role("button", name="Stop", exact=True).click()

        wait_status(page, "stopped", timeout=60)
        assert "stopped by the user" in status_lines(page)[0]
        stopped = teacher_row(teacher, student).filter(has_text="stopped —")
        sync_api.expect(stopped).to_have_count(1, timeout=20_000)
        sync_api.expect(teacher_stop_buttons(teacher)).to_have_count(0)
        assert_no_exception(teacher)
    sync_api.expect(page.get_by_role("button", name="Start")).to_be_enabled()
    assert_no_exception(page)
    assert_clean_log(app_logs)


def test_closing_a_tab_with_a_paused_job_frees_its_slot(
    browser, one_slot_url: str, one_slot_logs: Path
) -> None:
    """One slot: A's paused job holds it and B waits; A closes its tab; within the TTL and a
    few janitor sweeps A's job ends, B's runs, and the teacher's view no longer lists A's."""
    with (
        another_browser(browser, one_slot_url) as a,
        another_browser(browser, one_slot_url) as b,
        another_browser(browser, one_slot_url) as teacher,
    ):
        teacher.goto("/classroom")  # localhost, no teacher's code set: the teacher
        teacher.get_by_text("Every job on this server").wait_for(timeout=RENDER_TIMEOUT_MS)
        start_slow_job(a)
        wait_status(a, "running —")
        a_name = my_name(a)
        a.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Pause").click()
        wait_status(a, "paused —")

        start_slow_job(b)
        wait_status(b, "waiting: number 1 ")
        b_name = my_name(b)
        assert a_name != b_name

        sync_api.expect(teacher_row(teacher, a_name).filter(has_text="paused —")).to_have_count(1)
        sync_api.expect(teacher_row(teacher, b_name).filter(has_text="waiting")).to_have_count(1)
        sync_api.expect(metric(teacher, "Browsers with a page open")).to_have_text("3")
        sync_api.expect(metric(teacher, "Training now")).to_have_text("1 of 1")
        sync_api.expect(metric(teacher, "Waiting in the queue")).to_have_text("1")
        assert_no_exception(a)

        closed = time.monotonic()
        a.context.close()
        # Streamlit ends the session ~1 s after the socket closes; then the TTL; the janitor
        # looks every 0.75 s. Generous on 2 shared cores, far below Streamlit's own 120 s.
        wait_status(b, "running —", timeout=BROWSER_TTL + 45)
        freed_after = time.monotonic() - closed
        assert freed_after > BROWSER_TTL, f"A's job ended {freed_after:.1f} s after close"

        gone = teacher_row(teacher, a_name)
        sync_api.expect(gone).to_have_count(0, timeout=20_000)
        sync_api.expect(teacher_row(teacher, b_name).filter(has_text="running —")).to_have_count(1)
        sync_api.expect(metric(teacher, "Browsers with a page open")).to_have_text("2")
        sync_api.expect(metric(teacher, "Waiting in the queue")).to_have_text("0")
        assert_no_exception(teacher)
        main_stop(b).click()
        wait_status(b, "stopped")
        assert_no_exception(b)
    assert_clean_log(one_slot_logs)


def test_a_browser_from_another_machine_is_no_teacher_without_a_code(
    browser, one_slot_url: str, one_slot_logs: Path
) -> None:
    """No teacher's code set: the teacher is a browser on the server's own machine only."""
    with another_browser(browser, one_slot_url, remote=True) as student:
        student.goto("/classroom")
        student.get_by_text("Training now").wait_for(timeout=RENDER_TIMEOUT_MS)
        sync_api.expect(student.get_by_text("on the server's own machine only")).to_be_visible()
        time.sleep(2.5)  # one more poll of the page's 2 s fragment
        assert student.get_by_text("Every job on this server").count() == 0
        assert student.get_by_label("Teacher's code").count() == 0  # no code to give
        assert teacher_stop_buttons(student).count() == 0
        assert_no_exception(student)
    assert_clean_log(one_slot_logs)
