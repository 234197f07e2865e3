"""The Start page in Debian's Chromium: `/` shows every lesson card, and each card's button
opens its page on its gallery run (path and run in the URL), which draws a figure without an
exception and without training anything. The run registry is empty, as on a fresh clone."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from browser_support import MAIN, PAGES, RENDER_TIMEOUT_MS, assert_no_exception

from moa_core.gallery import gallery_runs
from moa_core.start_lessons import CARDS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIGURE = ", ".join(
    MAIN + selector for selector in (".js-plotly-plot", '[data-testid="stImage"] img', "iframe")
)
READY = {  # pages that draw nothing before the user acts: the control that starts it
    "/train": MAIN + 'button:has-text("Start")',
    "/your_data": MAIN + '[data-testid="stFileUploader"]',
}
SYNTHESIZING = "/maximize"  # its synthesis runs as a job: an analysis, not a training
STOP_KEYS = """main => [...main.querySelectorAll('button')]
    .filter(button => button.innerText.trim() === 'Stop' && !button.disabled)
    .map(button => ((button.closest('[class*="st-key-"]') || {}).className || '')
        .split(' ').filter(name => name.startsWith('st-key-')).join(' ') || 'unkeyed')"""
JOB_STOP = "st-key-stop_job_"  # the Stop beside a polled job's bar (job_panel.job_progress)


@pytest.fixture(scope="module")
def app_url(gallery_app_url: str) -> str:
    """The shared server with an empty run registry: every run here comes from the gallery."""
    return gallery_app_url


def test_the_start_page_is_the_default_page_with_every_card(page) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page.goto("/")
    page.get_by_role("heading", name=PAGES["/"], exact=True).wait_for()
    for card in CARDS:
        page.get_by_role("heading", name=card.question, exact=True).wait_for()
        button = page.locator(f".st-key-{card.key} button")
        sync_api.expect(button).to_contain_text(f"Open {card.page_title}")
    thumbnails = page.locator(MAIN + '[data-testid="stImage"] img')
    sync_api.expect(thumbnails).to_have_count(sum(card.image() is not None for card in CARDS))
    assert "Device:" in page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Running on" in page.locator(MAIN).inner_text()
    assert_no_exception(page)


def test_each_card_opens_its_page_on_its_gallery_run(page) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    bundled = {run.path.stem for run in gallery_runs()}
    for card in CARDS:
        page.goto("/")
        button = page.locator(f".st-key-{card.key} button")
        if card.missing(bundled):  # shown, disabled, with its one line
            sync_api.expect(button).to_be_disabled()
            page.get_by_text(f"builds {card.run}").first.wait_for()
            continue
        button.click()
        page.wait_for_url(lambda url, card=card: urlsplit(url).path == card.url_path)
        page.get_by_role("heading", name=card.page_title, exact=True).first.wait_for()
        page.get_by_role("heading", name=PAGES["/"], exact=True).wait_for(state="detached")
        page.locator(READY.get(card.url_path, FIGURE)).first.wait_for(timeout=RENDER_TIMEOUT_MS)
        query = parse_qs(urlsplit(page.url).query)
        for param, value in card.query_params().items():  # the run, and the view's other params
            assert query.get(param) == [value], card.question
        assert_no_exception(page)
        assert page.get_by_text("This link's").count() == 0, card.question  # not a stale run
        # Which Stop buttons are live, read at one instant (a synthesis may end meanwhile): the
        # synthesis may show its own job's Stop; a training's Stop means the card trained.
        keys = page.locator('[data-testid="stMainBlockContainer"]').evaluate(STOP_KEYS)
        synthesis = card.url_path == SYNTHESIZING
        assert [key for key in keys if not (synthesis and key.startswith(JOB_STOP))] == [], (
            card.question
        )
