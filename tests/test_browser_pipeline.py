"""The Pretraining pipeline and Experts & latent walks pages in Debian's Chromium, reached
through the app's navigation, with a saved pipeline run in the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception, number_input, streamlit_server

from moa_core.checkpoint import list_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

PLOT = ".js-plotly-plot"


@pytest.fixture(scope="module")
def app_url(pipeline_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with streamlit_server(pipeline_run_dir, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


def test_both_pages_load_from_the_navigation(page) -> None:
    page.goto("/train")
    page.get_by_role("button", name="Start").wait_for()

    page.get_by_role("link", name="Pretraining pipeline").click()
    page.get_by_role("heading", name="Pretraining pipeline").wait_for(timeout=RENDER_TIMEOUT_MS)
    page.get_by_role("button", name="Train the large VAE and find the size").wait_for()
    assert_no_exception(page)
    page.get_by_text("A saved run", exact=True).click()  # the saved run's recorded decisions
    page.get_by_text("Table II: clustering the pretrained codes").wait_for(
        timeout=RENDER_TIMEOUT_MS
    )
    sync_api.expect(page.locator(PLOT)).to_have_count(4)
    assert_no_exception(page)

    page.get_by_role("link", name="Experts & latent walks").click()
    page.get_by_role("heading", name="Experts & latent walks").wait_for(timeout=RENDER_TIMEOUT_MS)
    # No pipeline in this session: the page opens on a run (the gallery's MoE-VAE).
    page.get_by_role("tab", name="Latent walk").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert_no_exception(page)


def test_the_walk_of_a_saved_pipeline_run_has_a_play_button(page, pipeline_run_dir) -> None:
    page.goto(f"/experts?run={list_runs(pipeline_run_dir)[0].run_id}")
    page.get_by_role("tab", name="Latent walk").click(timeout=RENDER_TIMEOUT_MS)
    walk = page.locator(PLOT).first
    walk.wait_for(timeout=RENDER_TIMEOUT_MS)
    play = walk.locator(".updatemenu-button")
    sync_api.expect(play.first).to_be_visible()
    assert play.count() >= 1
    assert walk.locator(".slider-container").count() == 1
    assert "z = " in walk.inner_text()  # the slider reads the walk's value
    frame = page.locator('[data-testid="stImageCaption"]', has_text="expert 1, z1 = +0.00")
    sync_api.expect(frame).to_be_visible()  # the walk's frame at z = 0 beside the animation
    assert_no_exception(page)


def test_a_step_runs_as_a_job_and_its_curve_appears_when_it_ends(page) -> None:
    """The browser path the AppTest cannot take: the step's job runs in a worker thread and
    the polling fragment reruns the page once it is done."""
    page.goto("/pretraining")
    page.get_by_role("heading", name="Pretraining pipeline").wait_for(timeout=RENDER_TIMEOUT_MS)
    number_input(page, "Samples (0: all)", 300)
    number_input(page, "VAE epochs", 2)
    number_input(page, "Large latent", 20)
    page.get_by_role("button", name="Train the large VAE and find the size").click()
    page.get_by_text("principal components of the 20-dimensional codes").wait_for(timeout=120_000)
    sync_api.expect(page.locator(PLOT)).to_have_count(1)  # the explained-variance curve
    page.get_by_role("button", name="Retrain the VAE and cluster").wait_for()
    assert_no_exception(page)
