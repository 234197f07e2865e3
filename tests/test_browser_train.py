"""The Train page in Debian's Chromium: changing the model keeps the server log free of
Streamlit's widget-state warning, and the lesson follows the chosen family."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception, streamlit_server

from moa_core.lessons import lesson_title

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

DUPLICATE_STATE_WARNING = "was created with a default value"


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamlit")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[str]:
    with streamlit_server(tmp_path_factory.mktemp("runs"), log_dir) as url:
        yield url


def choose_model(page, model_type: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Model").click()
    page.get_by_role("option", name=model_type, exact=True).click()


def test_changing_the_model_sets_its_family_settings_without_a_server_warning(
    page, log_dir: Path
) -> None:
    page.goto("/train")
    page.get_by_text("Slow down (seconds per batch)").wait_for(timeout=RENDER_TIMEOUT_MS)
    choose_model(page, "neural_em")
    # Neural EM's own batch size (paper 004: 128) replaces the page's default.
    sync_api.expect(page.locator('input[aria-label="Batch size"]')).to_have_value("128")
    choose_model(page, "multipath_cc")
    sync_api.expect(page.locator('input[aria-label="Epochs"]')).to_have_value("15")
    sync_api.expect(page.get_by_text(lesson_title("train_routing"))).to_be_visible()
    assert_no_exception(page)
    log = (log_dir / "server.log").read_text()
    assert DUPLICATE_STATE_WARNING not in log, log[-2000:]
