"""Presenter mode and shareable settings in Debian's Chromium (issue 13, items 3 and 4): the
mode survives page switches and folds the settings, type and figures grow; the Cluster
distributions page draws a gallery run from a link without training; a Train link opens its
settings in a fresh browser."""

from __future__ import annotations

import re

import pytest
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception, number_input

from moa_core.viz.projector import MIN_FONT_PX

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

GALLERY_2D = "gallery/neural_em_2d_normalized"  # its counterpart: gallery/neural_em_2d_plain
CONTOURS = ".js-plotly-plot .contour"


@pytest.fixture(scope="module")
def app_url(gallery_app_url: str) -> str:
    """The shared server with an empty run registry: every run here comes from the gallery."""
    return gallery_app_url


def heading_px(page) -> float:
    return page.locator("h1").first.evaluate("h => parseFloat(getComputedStyle(h).fontSize)")


def test_presenter_mode_survives_page_switches_folds_settings_and_enlarges(page) -> None:
    page.goto("/train")
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)
    normal = heading_px(page)
    sync_api.expect(page.locator('input[aria-label="Epochs"]')).to_be_visible()

    page.goto("/train?present=1")
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert heading_px(page) > 1.2 * normal
    sync_api.expect(page.get_by_text("Settings", exact=True)).to_be_visible()
    sync_api.expect(page.locator('input[aria-label="Epochs"]')).to_be_hidden()  # folded away

    page.get_by_role("link", name="Start", exact=True).click()  # drops the query string
    page.get_by_role("heading", name="Mixture Lab").wait_for()
    sync_api.expect(page).to_have_url(re.compile(r"present=1"))
    assert heading_px(page) > 1.2 * normal
    # A lesson card switches page with its own query (`st.switch_page`): the mode stays on.
    page.get_by_role("button", name="Open Cluster distributions").click()
    tick = page.locator(".js-plotly-plot g.xtick text").first
    tick.wait_for(timeout=RENDER_TIMEOUT_MS)
    sync_api.expect(page).to_have_url(re.compile(r"present=1"))
    assert tick.evaluate("t => parseFloat(t.style.fontSize)") >= MIN_FONT_PX
    assert_no_exception(page)


def test_a_gallery_link_draws_both_runs_densities_without_training(page) -> None:
    """Normalized and plain neural EM side by side (paper 004, Fig. 5), nothing trained: the
    page opens on the saved view, which has no Start button."""
    page.goto(f"/distributions?run={GALLERY_2D}")
    page.get_by_text("Mean density over one batch of 128 points").wait_for(
        timeout=RENDER_TIMEOUT_MS
    )
    sync_api.expect(page.locator(CONTOURS)).to_have_count(2 * 3)  # 2 runs × 3 clusters
    titles = page.locator('.js-plotly-plot g[class^="g-y"][class$="title"]').all_text_contents()
    assert [t for t in titles if t] == ["neural_em", "neural_em without normalization"]
    assert page.get_by_role("button", name="Start").count() == 0
    assert_no_exception(page)


def test_a_train_link_opens_its_settings_in_a_fresh_browser(page, browser, app_url) -> None:
    """The link's model brings its family's batch size (neural EM: 128) under the link's own
    values; a change on the page is written back, so its address opens the same settings."""
    page.goto("/train?model=neural_em&k=4&epochs=3")
    epochs = page.locator('input[aria-label="Epochs"]')
    sync_api.expect(epochs).to_have_value("3", timeout=RENDER_TIMEOUT_MS)
    sync_api.expect(page.locator('input[aria-label="M (experts)"]')).to_have_value("4")
    sync_api.expect(page.locator('input[aria-label="Batch size"]')).to_have_value("128")
    number_input(page, "Seed", 7)  # a change through the page is in the address bar too
    sync_api.expect(page).to_have_url(re.compile(r"seed=7"))

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=app_url)
    try:
        other = fresh.new_page()
        other.goto(page.url)
        shared = {"Model": "neural_em", "Epochs": "3", "M (experts)": "4", "Seed": "7"}
        for label, value in shared.items():
            field = other.locator(f'input[aria-label="{label}"]')
            sync_api.expect(field).to_have_value(value, timeout=RENDER_TIMEOUT_MS)

        other.goto("/train?model=nope&epochs=abc")  # a stale link: defaults and one line
        note = other.get_by_text("This link's model 'nope' is not available; epochs 'abc'")
        note.wait_for(timeout=RENDER_TIMEOUT_MS)
        sync_api.expect(other.locator('input[aria-label="Epochs"]')).to_have_value("10")
        assert_no_exception(other)
    finally:
        fresh.close()
