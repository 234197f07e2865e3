"""The Gated regression page in Debian's Chromium: a link with a tiny run trains DVMoE beside
DeepMoE and draws the gate maps, predictions, error curves and expert fits without an
exception. One epoch on 300 points finishes in seconds, so it shares the gallery server."""

from __future__ import annotations

import pytest
from browser_support import assert_no_exception, train_pair

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url(gallery_app_url: str) -> str:
    return gallery_app_url


def test_a_tiny_run_draws_every_figure(page) -> None:
    from playwright.sync_api import expect

    train_pair(page, "/gated_regression?epochs=1&n=300&out=2", epochs=1, figures=4)
    expect(page.get_by_text("Table 1 of paper 002")).to_be_visible()
    assert_no_exception(page)
