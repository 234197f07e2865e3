"""The Gated regression page in Debian's Chromium: a link with a tiny run trains DVMoE beside
DeepMoE and draws the gate maps, predictions, error curves and expert fits without an
exception. One epoch on 300 points finishes in seconds, so it shares the gallery server."""

from __future__ import annotations

import pytest
from browser_support import PAGES, RENDER_TIMEOUT_MS, assert_no_exception

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAIN = '[data-testid="stMain"] '


@pytest.fixture(scope="module")
def app_url(gallery_app_url: str) -> str:
    return gallery_app_url


def test_a_tiny_run_draws_every_figure(page) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    page.goto("/gated_regression?epochs=1&n=300&out=2")
    page.get_by_role("heading", name=PAGES["/gated_regression"], exact=True).wait_for()
    page.get_by_role("button", name="Start").click()
    finished = page.get_by_text("finished — 1 epochs")
    sync_api.expect(finished).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    sync_api.expect(page.locator(MAIN + ".js-plotly-plot")).to_have_count(4)
    sync_api.expect(page.get_by_text("Table 1 of paper 002")).to_be_visible()
    assert_no_exception(page)
