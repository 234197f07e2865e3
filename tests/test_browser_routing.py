"""The Routing page in Debian's Chromium: a dataset image, an uploaded photo of the wrong size
and colour, and a digit drawn on the canvas each get a routing diagram; a file that is not an
image gets one clear message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception
from PIL import Image

from moa_core.checkpoint import list_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

DIAGRAM = ".js-plotly-plot"


@pytest.fixture(scope="module")
def app_url(routing_app_url: str) -> str:
    return routing_app_url


@pytest.fixture(scope="module")
def saved_run(routing_run_dir: Path) -> str:
    return list_runs(routing_run_dir)[0].run_id


def open_routing(page, run: str) -> None:
    page.goto(f"/routing?run={run}")  # the tiny saved run, not the gallery's default
    page.get_by_text("Gates over the dataset").wait_for(timeout=RENDER_TIMEOUT_MS)


def choose_source(page, slot: int, source: str) -> None:
    group = page.get_by_role("radiogroup", name=f"Input {slot}")
    group.get_by_text(source, exact=True).click()


def upload(page, slot: int, name: str, data: bytes, mime: str) -> None:
    uploader = page.locator('[data-testid="stFileUploader"]').nth(slot - 1)
    uploader.locator('input[type="file"]').set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )


def photo_bytes() -> bytes:
    """A 90×50 JPEG in colour: light paper with a dark blue stroke."""
    photo = Image.new("RGB", (90, 50), (245, 240, 230))
    photo.paste((20, 30, 160), (40, 5, 52, 45))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_dataset_images_are_routed_side_by_side(page, saved_run: str) -> None:
    open_routing(page, saved_run)
    captions = page.locator('[data-testid="stImageCaption"]')
    sync_api.expect(captions).to_have_count(2)
    assert "digits #" in captions.first.inner_text()
    # Two routing diagrams plus the class-wise gate histograms.
    page.locator(DIAGRAM).nth(2).wait_for()
    assert_no_exception(page)


def test_an_uploaded_photo_is_converted_and_a_non_image_is_one_message(page, saved_run) -> None:
    open_routing(page, saved_run)
    choose_source(page, 1, "Upload")
    upload(page, 1, "photo.jpg", photo_bytes(), "image/jpeg")
    page.get_by_text("photo.jpg").first.wait_for()
    sync_api.expect(page.locator('[data-testid="stImageCaption"]')).to_have_count(2)

    choose_source(page, 2, "Upload")
    upload(page, 2, "notes.txt", b"these are notes, not pixels", "text/plain")
    error = page.locator('[data-testid="stAlertContentError"]')
    error.wait_for()
    assert error.count() == 1
    text = error.inner_text().strip()
    assert text.startswith("notes.txt is not an image") and "\n" not in text
    # The photo's diagram is still there: one bad file loses nothing else.
    sync_api.expect(page.locator('[data-testid="stImageCaption"]')).to_have_count(1)
    assert_no_exception(page)


def test_a_drawn_digit_gets_a_routing_diagram(page, saved_run: str) -> None:
    open_routing(page, saved_run)
    choose_source(page, 2, "Draw")
    canvas = page.locator("canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + box["height"] * 0.6, steps=12)
    page.mouse.up()
    page.get_by_text("your drawing").wait_for()
    sync_api.expect(page.locator('[data-testid="stImageCaption"]')).to_have_count(2)
    assert_no_exception(page)
