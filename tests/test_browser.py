"""The real app in Debian's Chromium: pages load, training redraws live, hover shows images."""

from __future__ import annotations

import pickle
import re
import time
from pathlib import Path

import pytest
from browser_support import (
    RENDER_TIMEOUT_MS,
    assert_no_exception,
    number_input,
    slow_down,
)

from moa_core.checkpoint import list_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCATTER = 'iframe[title="Latent space scatter"]'
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def app_url(saved_run_app_url: str) -> str:
    """The app with the tiny saved MoA+ run in its registry."""
    return saved_run_app_url


@pytest.fixture(scope="module")
def saved_run(saved_run_dir: Path) -> str:
    """The saved run's id: `?run=` opens a page on it rather than on the gallery's default."""
    return list_runs(saved_run_dir)[0].run_id


def test_every_page_loads_without_exceptions(page, saved_run: str) -> None:
    page.goto("/train")
    page.get_by_role("button", name="Start").wait_for()
    assert "Device:" in page.locator('[data-testid="stSidebar"]').inner_text()
    page.get_by_text("Lesson:").first.click()  # open the lesson: its formulas must typeset
    page.locator(".katex").first.wait_for()
    assert page.locator(".katex-error").count() == 0
    assert_no_exception(page)

    page.get_by_role("link", name="Latent space").click()
    page.wait_for_selector(SCATTER, timeout=RENDER_TIMEOUT_MS)
    assert page.get_by_text("NMI").count() >= 1
    assert_no_exception(page)

    page.get_by_role("link", name="Cluster distributions").click()
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert_no_exception(page)

    page.goto(f"/maximize?run={saved_run}")  # the saved MoA+ run's gate, not the gallery's
    page.get_by_text("excites its unit more than every dataset image").wait_for(
        timeout=RENDER_TIMEOUT_MS
    )
    # Per unit of the 4-cluster gate: its top strip, its bottom strip, its synthesized image.
    sync_api.expect(page.locator('[data-testid="stImage"]')).to_have_count(3 * 4)
    assert_no_exception(page)

    page.get_by_role("link", name="Routing").click()  # the gallery's default run
    page.get_by_text("Gates over the dataset").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator(".js-plotly-plot").count() >= 2
    assert_no_exception(page)


def test_cluster_densities_redraw_while_training(page) -> None:
    """Both runs (normalized and not) draw their contour panels live, then Table 1."""
    page.goto("/distributions")
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)
    page.locator('input[aria-label="2-D dataset"]').click()
    page.get_by_role("option", name="blobs").click()
    number_input(page, "Epochs", 6)
    page.get_by_role("button", name="Start").click()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and page.get_by_text("finished —").count() < 2:
        time.sleep(0.5)
    assert page.get_by_text("finished —").count() == 2
    plots = page.locator(".js-plotly-plot")
    sync_api.expect(plots).to_have_count(1)  # one figure compares the two runs
    # A row of three panels per run (paper 004, Fig. 5 draws three clusters).
    sync_api.expect(plots.first.locator(".contour")).to_have_count(6)
    assert page.get_by_text("Mean density over one batch of 128 points").count() == 1
    # Without normalization one cluster takes every point on blobs (seed 0): said in one line.
    verdicts = page.locator('[data-testid="stAlertContentWarning"]')
    sync_api.expect(verdicts).to_have_count(1)
    assert "Collapsed: cluster" in verdicts.inner_text()
    assert "without normalization, and its collapse is the point" in verdicts.inner_text()
    assert_no_exception(page)


def test_latent_hover_shows_the_image_and_selection_shows_a_grid(page, saved_run: str) -> None:
    page.goto(f"/latent?run={saved_run}")  # a deep link as the first request works too
    page.wait_for_selector(SCATTER, timeout=RENDER_TIMEOUT_MS)
    frame = page.frame_locator(SCATTER)
    points = frame.locator("path.point")
    points.first.wait_for()
    assert points.count() == 300  # the saved run's 300 training samples
    box = points.nth(points.count() // 2).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hovered = frame.locator("#moa-hover-img")
    sync_api.expect(hovered).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert "expert" in frame.locator("#moa-hover-caption").inner_text()

    plot = frame.locator(".nsewdrag").first.bounding_box()  # box-select the whole plot area
    page.mouse.move(plot["x"] + 2, plot["y"] + 2)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2, steps=5)
    page.mouse.move(plot["x"] + plot["width"] - 2, plot["y"] + plot["height"] - 2, steps=5)
    page.mouse.up()
    sync_api.expect(frame.locator("#moa-selection-count")).to_contain_text("300 points selected")
    assert frame.locator("#moa-selection-grid img").count() == 300
    assert_no_exception(page)


def test_uploading_a_pickle_shows_a_one_line_error(page) -> None:
    page.goto("/latent")
    page.get_by_text("Upload a checkpoint").click()
    page.locator('input[type="file"]').set_input_files(
        files=[
            {
                "name": "model.safetensors",
                "mimeType": "application/octet-stream",
                "buffer": pickle.dumps({"weights": list(range(100))}),
            }
        ]
    )
    error = page.locator('[data-testid="stAlertContentError"]')
    error.wait_for()
    text = error.inner_text().strip()
    assert text.startswith("model.safetensors:") and "\n" not in text
    assert error.count() == 1
    assert_no_exception(page)


def test_training_redraws_while_it_runs(page) -> None:
    page.goto("/train")
    page.get_by_role("button", name="Start").wait_for()
    for label, value in [("M (experts)", 2), ("Epochs", 3), ("Batch size", 50)]:
        number_input(page, label, value)
    number_input(page, "Max samples", 150)
    slow_down(page, 0.25)
    page.get_by_role("button", name="Start").click()

    progress = page.locator('[data-testid="stProgress"]')
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and page.get_by_text("finished —").count() == 0:
        if progress.count():
            text = progress.first.inner_text().strip()
            if not seen or seen[-1] != text:
                seen.append(text)
        time.sleep(0.25)
    assert page.get_by_text("finished —").count() == 1, f"epoch counters seen: {seen}"
    # The page redrew on its own while training ran: the epoch counter climbed step by step.
    epochs = [int(m.group(1)) for t in seen if (m := re.match(r"epoch (\d+)/3", t))]
    assert len(set(epochs)) >= 2 and epochs == sorted(epochs), seen
    # The scores chart holds one point per epoch and run for NMI and ACC.
    scores = page.locator(".js-plotly-plot").nth(1)
    sync_api.expect(scores.locator(".scatterlayer path.point")).to_have_count(2 * 3)
    sync_api.expect(page.get_by_role("button", name="Save as run")).to_be_visible()
    assert_no_exception(page)


def test_results_page_shows_every_papers_table_beside_ours(page) -> None:
    """Each seed paper's headline table with our column, from the sidebar, nothing trained."""
    page.goto("/train")
    page.get_by_role("link", name="Results").click()
    page.get_by_role("heading", name="Results", exact=True).wait_for(timeout=RENDER_TIMEOUT_MS)
    for paper in ("000", "001", "002", "003", "004"):
        page.get_by_role("heading", name=re.compile(f"^Paper {paper}: ")).first.wait_for()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    sync_api.expect(charts).to_have_count(6)  # paper 004's table is drawn as ACC and NMI
    charts.first.locator(".main-svg").first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "ours (mean ± std over seeds)" in charts.first.inner_text()
    assert page.get_by_role("heading", name="The gallery's runs").count() == 1
    assert_no_exception(page)
