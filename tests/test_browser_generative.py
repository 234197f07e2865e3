"""The Generative mixtures page in Debian's Chromium: a link with a tiny run trains VaDE beside
DMVAE and draws the progress curves, the points each cluster generates, the reconstructions
and the latent scatter without an exception. Two epochs on 300 points finish in seconds, so
it shares the gallery server."""

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
    page.goto("/generative?dataset=spiral25k&samples=300&epochs=2&latent=3&pretrain_epochs=1")
    page.get_by_role("heading", name=PAGES["/generative"], exact=True).wait_for()
    page.get_by_role("button", name="Start").click()
    finished = page.get_by_text("finished — 2 epochs")
    sync_api.expect(finished).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    # Progress, then generated points, reconstructions and latent scatter of each run.
    sync_api.expect(page.locator(MAIN + ".js-plotly-plot")).to_have_count(7)
    sync_api.expect(page.get_by_role("heading", name="Latent space")).to_be_visible()
    assert_no_exception(page)
