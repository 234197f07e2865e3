"""The real app under `streamlit run` on a free local port, and Debian's Chromium (never a
downloaded browser): shared by the browser tests and the page benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90  # seconds for `streamlit run` to answer its health check


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text()[-3000:]}")


@contextmanager
def streamlit_process(
    runs_dir: Path, log_dir: Path, env: dict | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The app with `runs_dir` as its run registry (its log in `log_dir/server.log`); yields
    its URL and its process (whose PID a benchmark samples memory of), stops it afterwards."""
    port = free_port()
    log = log_dir / "server.log"
    env = {**os.environ, "MOA_RUNS_DIR": str(runs_dir), "OMP_NUM_THREADS": "1", **(env or {})}
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def streamlit_server(runs_dir: Path, log_dir: Path, env: dict | None = None) -> Iterator[str]:
    """The app with `runs_dir` as its run registry (its log in `log_dir/server.log`); yields
    its URL, stops it afterwards."""
    with streamlit_process(runs_dir, log_dir, env) as (url, _process):
        yield url
