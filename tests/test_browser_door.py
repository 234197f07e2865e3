"""The door (`MOA_ACCESS_CODE`) in Debian's Chromium: before the code no page of the lab
runs, whatever the URL; a wrong code says so in one line; the right code opens the lab and a
reload keeps it open (a keyed cookie) while another browser is asked again; the code never
reaches the server log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import PAGES, RENDER_TIMEOUT_MS, assert_no_exception, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

CODE = "open-sesame"
WRONG = "open-barley"


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamlit")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[str]:
    env = {"MOA_ACCESS_CODE": CODE, "MOA_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    with streamlit_server(tmp_path_factory.mktemp("runs"), log_dir, env) as url:
        yield url


def code_field(page):
    return page.locator('input[aria-label="Access code"]')


def wait_script_done(page) -> None:
    """Until the app's script run has ended: what the page shows now is all it will show."""
    time.sleep(0.5)  # a rerun (after a click) may not have started yet
    done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    page.locator(done).wait_for(timeout=RENDER_TIMEOUT_MS)


def at_the_door(page) -> None:
    """Only the door: its code form, and nothing of any page of the lab."""
    sync_api.expect(code_field(page)).to_be_visible()
    sync_api.expect(page.get_by_role("button", name="Enter")).to_be_visible()
    wait_script_done(page)
    door_title = PAGES["/"]  # the door and the Start page share the lab's name
    assert page.get_by_role("heading", name=door_title, exact=True).count() == 1
    for title in PAGES.values():
        if title != door_title:
            assert page.get_by_role("heading", name=title, exact=True).count() == 0, title
        assert page.get_by_role("link", name=title).count() == 0, title  # no navigation
    assert page.get_by_role("button", name=re.compile("^Open ")).count() == 0  # no lesson card
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    assert page.locator('[data-testid="stFileUploader"]').count() == 0
    assert page.get_by_role("button", name="Start").count() == 0
    assert page.locator('[data-testid="stPlotlyChart"], .js-plotly-plot').count() == 0
    text = page.locator("body").inner_text()
    assert "Device:" not in text and "You:" not in text, text
    assert_no_exception(page)


def enter(page, code: str) -> None:
    code_field(page).fill(code)
    page.get_by_role("button", name="Enter").click()


def in_the_lab(page) -> None:
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=RENDER_TIMEOUT_MS)
    sync_api.expect(page.get_by_role("button", name="Start")).to_be_visible()
    sync_api.expect(page.get_by_test_id("stSidebar")).to_contain_text("Device:")
    sync_api.expect(page.get_by_role("link", name="Classroom")).to_be_visible()
    assert code_field(page).count() == 0
    assert_no_exception(page)


def cookies(page) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}


def test_without_the_code_no_page_runs_whatever_the_url(page) -> None:
    for url in PAGES:
        page.goto(url)
        page.get_by_role("heading", name="Mixture Lab").wait_for(timeout=RENDER_TIMEOUT_MS)
        at_the_door(page)


def test_a_wrong_code_says_so_in_one_line_and_opens_nothing(page) -> None:
    page.goto("/latent")
    code_field(page).wait_for(timeout=RENDER_TIMEOUT_MS)
    enter(page, WRONG)
    error = page.locator('[data-testid="stAlertContentError"]')
    sync_api.expect(error).to_have_count(1)
    text = error.inner_text().strip()
    assert "not right" in text and "\n" not in text, text
    assert WRONG not in page.locator("body").inner_text()
    at_the_door(page)
    assert "moa_door" not in cookies(page)


def test_the_right_code_opens_the_lab_and_a_reload_keeps_it_open(page, browser, app_url) -> None:
    page.goto("/train")
    code_field(page).wait_for(timeout=RENDER_TIMEOUT_MS)
    enter(page, CODE)
    in_the_lab(page)
    assert CODE not in page.url

    # The pass the page keeps: written by a script in the page, not the code itself.
    deadline = time.monotonic() + 30
    while "moa_door" not in cookies(page) and time.monotonic() < deadline:
        time.sleep(0.3)
    kept = cookies(page)
    assert "moa_door" in kept and "moa_browser" in kept, kept
    assert all(CODE not in value for value in kept.values()), kept

    page.reload()
    in_the_lab(page)
    page.goto("/classroom")  # a deep link in the same browser: open too
    page.get_by_role("heading", name="Classroom", exact=True).wait_for(timeout=RENDER_TIMEOUT_MS)
    assert code_field(page).count() == 0

    # Another browser is asked again, even carrying this one's door pass (bound to it).
    other = browser.new_context(base_url=app_url)
    try:
        fresh = other.new_page()
        fresh.goto("/train")
        fresh.get_by_role("heading", name="Mixture Lab").wait_for(timeout=RENDER_TIMEOUT_MS)
        at_the_door(fresh)
        other.add_cookies([{"name": "moa_door", "value": kept["moa_door"], "url": app_url}])
        fresh.reload()
        fresh.get_by_role("heading", name="Mixture Lab").wait_for(timeout=RENDER_TIMEOUT_MS)
        at_the_door(fresh)
    finally:
        other.close()


def test_the_code_never_reaches_the_server_log(page, log_dir: Path) -> None:
    page.goto("/train")
    code_field(page).wait_for(timeout=RENDER_TIMEOUT_MS)
    enter(page, WRONG)
    sync_api.expect(page.locator('[data-testid="stAlertContentError"]')).to_have_count(1)
    enter(page, CODE)
    in_the_lab(page)
    time.sleep(1)  # whatever the server writes about these runs has reached the file
    log = (log_dir / "server.log").read_text()
    assert "127.0.0.1" in log, log[-2000:]  # the log it writes, not an empty file
    assert CODE not in log, log[-3000:]
    assert WRONG not in log, log[-3000:]
