"""`make app` as a teacher starts it: its checked-in server settings hold, and neither the
browser nor the server reaches beyond this machine on any page (issue 11, item 4)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    PAGES,
    ROOT,
    assert_no_exception,
    free_port,
    streamlit_settings,
    wait_healthy,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCAL_SCHEMES = ("data:", "blob:", "about:")


class ConnectionRecorder:
    """A TCP listener that stands in for every proxy: anything the server tries to fetch
    through `HTTP(S)_PROXY` arrives here and is counted instead of leaving the machine."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[ConnectionRecorder]:
    recorder = ConnectionRecorder()
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def served(saved_run_dir: Path, recorder, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`make app PORT=…` exactly as the README says, every proxy pointing at the recorder."""
    port = free_port()
    log = tmp_path_factory.mktemp("make_app") / "server.log"
    proxy = f"http://127.0.0.1:{recorder.port}"
    env = {
        **os.environ,
        "MOA_RUNS_DIR": str(saved_run_dir),
        "OMP_NUM_THREADS": "1",
        **{name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "",
        "no_proxy": "",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            # -o: the install step is taken as done (it would reach for the registry)
            ["make", "-s", "-o", ".venv/.installed", "app", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and streamlit in one group, stopped together
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_no_page_makes_a_request_that_leaves_the_machine(browser, served, recorder) -> None:
    url, log = served
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for path, title in PAGES.items():
        page.goto(url + path)
        page.get_by_role("heading", name=title).first.wait_for()
        page.wait_for_load_state("networkidle")  # late requests: icons, fonts, statistics
        assert_no_exception(page)
    context.close()
    outside = [u for u in requested if not u.startswith(url) and not u.startswith(LOCAL_SCHEMES)]
    assert requested and outside == []
    assert recorder.connections == 0  # the server fetched nothing either
    assert "Traceback" not in log.read_text()


def test_streamlit_reads_the_checked_in_settings() -> None:
    """`make app` passes no watcher, statistics or toolbar flags: the config file must set
    them for any `streamlit run app.py` started in the repository."""
    shown = streamlit_settings()
    assert 'fileWatcherType = "none"' in shown
    assert "gatherUsageStats = false" in shown
    assert 'address = "127.0.0.1"' in shown


def test_streamlit_collects_no_garbage_after_every_page_run() -> None:
    """A hidden option (`streamlit config show` omits it): a full GC after each of a class's
    page runs held the GIL ~0.3 s and starved the trainings (benchmarks/RESULTS.md)."""
    read = "from streamlit import config; config.get_config_options()"
    shown = subprocess.run(
        [sys.executable, "-c", f"{read}; print(config.get_option('runner.postScriptGC'))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.strip() == "False"
