"""The Train page in Debian's Chromium: changing the model keeps the server log free of
Streamlit's widget-state warning, and the lesson follows the chosen family; a big run in two
processes of its own draws its chart and its step while it runs, is still there after a
reload, and stops when asked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import RENDER_TIMEOUT_MS, assert_no_exception, streamlit_server

from moa_core.lessons import lesson_title
from moa_core.train.external import external_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")

DUPLICATE_STATE_WARNING = "was created with a default value"


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streamlit")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def app_url(runs_dir: Path, log_dir: Path) -> Iterator[str]:
    with streamlit_server(runs_dir, log_dir) as url:
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


def test_a_two_process_run_draws_live_survives_a_reload_and_stops(
    page, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long enough (300 epochs) to be running throughout: its chart comes with epoch 1."""
    expect = sync_api.expect
    page.goto("/train?model=moa_plus&epochs=300&samples=600&batch=100")
    page.get_by_text("Big runs: train in separate processes").click()
    page.get_by_role("button", name="Start in separate processes").click()
    running = page.get_by_text("2 processes: running")
    expect(running).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    charts = page.locator('[data-testid="stMainBlockContainer"] .js-plotly-plot')
    expect(charts).to_have_count(2, timeout=RENDER_TIMEOUT_MS)  # loss and scores, live
    # 600 samples in batches of 100 for 300 epochs: where it is, by step, between epochs too.
    where = page.get_by_text(re.compile(r"epoch \d+ of 300, step \d+ of 1800, loss "))
    expect(where).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    page.reload()
    expect(running).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(charts).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    page.get_by_text("Big runs: train in separate processes").click()
    page.get_by_role("button", name="Start in separate processes").click()  # a second one
    expect(page.get_by_text("One big run at a time per browser")).to_be_visible()
    page.locator('[class*="st-key-big_stop_"] button').click()
    expect(page.get_by_text("2 processes: stopped")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    assert_no_exception(page)
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs_dir))
    (run,) = external_runs()
    assert run.status() == "stopped" and run.processes == 2 and len(run.history()) >= 1
