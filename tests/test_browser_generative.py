"""The Generative mixtures page in Debian's Chromium: a link with a tiny run trains VaDE beside
DMVAE and draws the progress curves, the points each cluster generates, the reconstructions
and the latent scatter without an exception. Two epochs on 300 points finish in seconds, so
it shares the gallery server."""

from __future__ import annotations

import pytest
from browser_support import assert_no_exception, train_pair

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINK = "/generative?dataset=spiral25k&samples=300&epochs=2&latent=3&pretrain_epochs=1"


@pytest.fixture(scope="module")
def app_url(gallery_app_url: str) -> str:
    return gallery_app_url


def test_a_tiny_run_draws_every_figure(page) -> None:
    from playwright.sync_api import expect

    # Progress, then generated points, reconstructions and latent scatter of each run.
    train_pair(page, LINK, epochs=2, figures=7)
    expect(page.get_by_role("heading", name="Latent space")).to_be_visible()
    assert_no_exception(page)
