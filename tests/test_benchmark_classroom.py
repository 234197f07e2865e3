"""The classroom benchmark end to end at its smallest: two browsers each train, save and
leave, and its JSON line adds up (the load itself is measured by the benchmark, not here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("playwright.async_api")


def test_two_sessions_finish_save_and_count_consistently(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from benchmarks.classroom import measure

    record = measure(
        sessions=2,
        epochs=1,
        max_samples=100,
        ttl_wait_s=1.0,
        log_dir=tmp_path,
        settle_max_s=0.0,  # only the counts matter here: no wait for a quiet server,
        server_warm_up=False,  # and no UMAP compile (~20 s of CPU) that no page here uses
    )
    assert record["name"] == "classroom" and record["sessions"] == 2
    assert record["jobs_started"] == 2
    assert record["jobs_finished"] == 2, record["problems"]
    assert record["jobs_saved"] == 2, record["problems"]
    assert record["jobs_lost"] == 0
    assert record["page_exceptions"] == 0
    assert record["saved_runs_on_disk"] == 2
    assert len(record["first_redraw_s"]) == 2
    assert 0 < record["first_redraw_median_s"] <= record["first_redraw_worst_s"]
    # Torch and the pages are imported after launch: the server really was measured.
    assert 0 < record["rss_launch_mb"] < record["rss_start_mb"] and record["rss_end_mb"] > 0
    assert (tmp_path / "server.log").exists()
