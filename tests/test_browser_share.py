"""Shareable views in Debian's Chromium (issue 13, item 3): a link copied from the Latent space,
Routing and Experts pages opens the same view in a fresh browser (new cookies, new session);
a stale link falls back to the default view with one line. The pages open on the gallery."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SCATTER = 'iframe[title="Latent space scatter"]'
RUN = 'input[aria-label="Run"]'


@pytest.fixture(scope="module")
def app_url(gallery_app_url: str) -> str:
    """The shared server with an empty run registry: every run here comes from the gallery."""
    return gallery_app_url


@contextmanager
def fresh_tab(browser, app_url: str) -> Iterator:
    """A tab in a new browser context: no cookies, so the server sees a new session."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, base_url=app_url)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        context.close()


def shared(page, *params: str) -> str:
    """The page's URL once it holds every `param=value` the changed view must put there."""
    page.wait_for_url(lambda url: all(param in url for param in params))
    return page.url


def test_a_routing_link_opens_the_same_inputs(page, browser, app_url: str) -> None:
    page.goto("/routing")
    page.get_by_text("Gates over the dataset").wait_for(timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(RUN)).to_have_value(re.compile(r"^Gallery · multipath_cc_reg \("))
    first = page.locator('input[aria-label="Image number"]').first
    first.fill("37")
    first.press("Enter")
    captions = page.locator('[data-testid="stImageCaption"]')
    expect(captions.first).to_contain_text("#37 ")
    link = shared(page, "run=gallery%2Fmultipath_cc_reg", "img0=37")

    with fresh_tab(browser, app_url) as other:
        other.goto(link)
        other.get_by_text("Gates over the dataset").wait_for(timeout=RENDER_TIMEOUT_MS)
        expect(other.locator(RUN)).to_have_value(page.locator(RUN).input_value())
        expect(other.locator('input[aria-label="Image number"]').first).to_have_value("37")
        expect(other.locator('[data-testid="stImageCaption"]')).to_have_text(
            captions.all_inner_texts()
        )
        assert_no_exception(other)


def test_an_experts_link_opens_the_same_walk(page, browser, app_url: str) -> None:
    page.goto("/experts")
    page.get_by_role("tab", name="Latent walk").click(timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(RUN)).to_have_value(re.compile(r"^Gallery · moe_vae_digits \("))
    page.locator('input[aria-label="Expert"]').click()
    page.get_by_role("option", name="expert 2", exact=True).click()
    walk = page.locator(".js-plotly-plot", has_text="Walk along z1 of expert 2")
    walk.wait_for()
    link = shared(page, "run=gallery%2Fmoe_vae_digits", "tab=walk", "expert=1")

    with fresh_tab(browser, app_url) as other:
        other.goto(link)
        other.locator(".js-plotly-plot", has_text="Walk along z1 of expert 2").wait_for(
            timeout=RENDER_TIMEOUT_MS
        )
        expect(other.get_by_role("tab", name="Latent walk")).to_have_attribute(
            "aria-selected", "true"
        )
        expect(other.locator(RUN)).to_have_value(page.locator(RUN).input_value())
        expect(other.locator('input[aria-label="Expert"]')).to_have_value("expert 2")
        frame = other.locator('[data-testid="stImageCaption"]', has_text="expert 2, z1 = ")
        expect(frame).to_be_visible()
        assert_no_exception(other)


def test_a_latent_space_link_opens_the_same_view(page, browser, app_url: str) -> None:
    """A Latent space link (run, colour) opens the same view in a fresh tab."""
    page.goto("/latent")
    page.wait_for_selector(SCATTER, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(RUN)).to_have_value(re.compile(r"^Gallery · moa_plus_digits \("))
    page.get_by_role("radiogroup", name="Colour by").get_by_text("true label").click()
    title = page.frame_locator(SCATTER).get_by_text("coloured by true label")
    title.wait_for()
    link = shared(page, "run=gallery%2Fmoa_plus_digits", "color=label")

    with fresh_tab(browser, app_url) as other:
        other.goto(link)
        other.frame_locator(SCATTER).get_by_text("coloured by true label").wait_for(
            timeout=RENDER_TIMEOUT_MS
        )
        expect(other.locator(RUN)).to_have_value(page.locator(RUN).input_value())
        colour = other.get_by_role("radiogroup", name="Colour by")
        expect(colour.get_by_role("radio", name="true label")).to_be_checked()
        assert other.locator('[data-testid="stAlertContentInfo"]').count() == 0
        assert_no_exception(other)


def test_a_stale_link_is_one_line_and_the_default_view(page) -> None:
    page.goto("/latent?run=gallery/nope&color=zzz&points=abc")
    page.wait_for_selector(SCATTER, timeout=RENDER_TIMEOUT_MS)
    note = page.locator('[data-testid="stAlertContentInfo"]')
    expect(note).to_have_count(1)
    text = note.inner_text().strip()
    assert "\n" not in text and text.startswith("This link's run 'gallery/nope' is not available")
    assert "color 'zzz'" in text and "points 'abc' is not a number" in text
    expect(page.locator(RUN)).to_have_value(re.compile(r"^Gallery · moa_plus_digits \("))
    colour = page.get_by_role("radiogroup", name="Colour by")
    expect(colour.get_by_role("radio", name="predicted cluster")).to_be_checked()
    page.frame_locator(SCATTER).get_by_text("coloured by predicted cluster").wait_for()
    shared(page, "color=cluster")  # the address bar now holds the view shown
    assert_no_exception(page)
