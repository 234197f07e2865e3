"""Your own data in Debian's Chromium: a 200-image zip of three shapes is uploaded on the Your
data page, trained with MoA+ on the Train page, saved, and drawn on the Latent space page."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from browser_support import (
    RENDER_TIMEOUT_MS,
    assert_no_exception,
    number_input,
)
from PIL import Image, ImageDraw

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

SHAPES = ("circle", "square", "triangle")
SCATTER = 'iframe[title="Latent space scatter"]'


def shapes_zip(count: int = 200, seed: int = 0) -> bytes:
    """`count` PNGs in `shapes/<shape>/`: a black shape of random size and place on white, in
    random picture sizes, so the classes differ by form alone."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(count):
            kind = SHAPES[i % len(SHAPES)]
            side = int(rng.integers(24, 64))
            image = Image.new("L", (side, side), 255)
            draw = ImageDraw.Draw(image)
            size = side * rng.uniform(0.5, 0.8)
            left, top = rng.uniform(0, side - size, size=2)
            box = (left, top, left + size, top + size)
            if kind == "circle":
                draw.ellipse(box, fill=0)
            elif kind == "square":
                draw.rectangle(box, fill=0)
            else:
                draw.polygon([(left + size / 2, top), (left, top + size), box[2:]], fill=0)
            picture = io.BytesIO()
            image.save(picture, "PNG")
            archive.writestr(f"shapes/{kind}/{i:03d}.png", picture.getvalue())
    return out.getvalue()


@pytest.fixture(scope="module")
def app_url(saved_run_app_url: str) -> str:
    """A server with its own dataset cache: the upload goes there, its run to the registry."""
    return saved_run_app_url


def test_an_uploaded_zip_trains_on_the_train_page_and_shows_on_the_latent_page(page) -> None:
    page.goto("/your_data")
    page.locator('input[aria-label="Name"]').fill("shapes")
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": "shapes.zip", "mimeType": "application/zip", "buffer": shapes_zip()}]
    )
    # The upload goes over HTTP before the form can send it: submit once its chip has settled.
    chip = page.locator('[data-testid="stFileChip"]').filter(has_text="shapes.zip")
    chip.wait_for(timeout=RENDER_TIMEOUT_MS)
    sync_api.expect(chip.locator('[data-testid="stFileChipIconSpinner"]')).to_have_count(0)
    page.get_by_role("button", name="Add to the lab").click()
    page.get_by_text("Added folder:shapes").wait_for(timeout=RENDER_TIMEOUT_MS)
    for shape, count in zip(SHAPES, (67, 67, 66), strict=True):
        sync_api.expect(page.get_by_text(f"{shape} — {count} images")).to_be_visible()
    sync_api.expect(page.locator('[data-testid="stImage"]')).to_have_count(3)
    assert page.get_by_text("Use it as folder:shapes on the Train page.").count() == 1
    assert_no_exception(page)

    page.goto("/train")
    page.get_by_role("button", name="Start").wait_for(timeout=RENDER_TIMEOUT_MS)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").click()
    page.get_by_role("option", name="folder:shapes", exact=True).click()
    for label, value in [("Epochs", 5), ("Batch size", 50)]:
        number_input(page, label, value)
    page.get_by_role("button", name="Start").click()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and page.get_by_text("finished —").count() == 0:
        time.sleep(0.5)
    assert page.get_by_text("finished —").count() == 1
    page.get_by_role("button", name="Save as run").click()
    saved = page.get_by_text(re.compile(r"Saved as run: .*moa_plus-folder_shapes-"))
    saved.wait_for()
    run_id = Path(saved.inner_text().split("Saved as run:")[1].strip()).stem
    assert_no_exception(page)

    page.goto(f"/latent?run={run_id}")
    page.wait_for_selector(SCATTER, timeout=RENDER_TIMEOUT_MS)
    sync_api.expect(page.get_by_text("moa_plus on folder:shapes")).to_be_visible()
    points = page.frame_locator(SCATTER).locator("path.point")
    sync_api.expect(points).to_have_count(200)
    assert_no_exception(page)
