"""The set-up a fresh machine gets: the locked versions, and `make app`'s warnings."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest
from browser_support import free_port

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
TOOLS = {"pip", "setuptools", "wheel"}  # the installer's own, not the project's


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_normal(name)] = version.strip()
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_file_pins_exactly_what_the_tests_run_with() -> None:
    """Every installed package is pinned, at the version installed: a fresh machine next
    month gets what CI tested (`make lock` refreshes the file). Pins of packages not
    installed here are allowed: another platform's (CUDA's) may need them."""
    locked = _locked()
    installed = {
        _normal(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions()
        if _normal(dist.metadata["Name"]) not in TOOLS | {"moa-core"}
    }
    assert {"torch", "torchvision", "streamlit", "playwright"} <= set(locked)
    assert sorted(set(installed) - set(locked)) == []  # installed but not locked
    differ = {n: (locked[n], v) for n, v in installed.items() if locked.get(n, v) != v}
    assert differ == {}  # name: (locked, installed)


def _make_app_output(*arguments: str, seconds: float = 60) -> str:
    """What `make app …` prints until the server says it is up (then it is stopped)."""
    command = ["make", "-s", "-o", ".venv/.installed", "app", f"PORT={free_port()}", *arguments]
    env = {k: v for k, v in os.environ.items() if k != "MOA_ACCESS_CODE"}
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    deadline = time.monotonic() + seconds
    try:
        for line in process.stdout:
            lines.append(line)
            if "URL:" in line or time.monotonic() > deadline:
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    return "".join(lines)


@pytest.mark.slow
def test_serving_on_the_network_without_a_code_warns_and_a_code_is_never_printed() -> None:
    exposed = _make_app_output("HOST=0.0.0.0")
    assert "WARNING: serving on 0.0.0.0 with no access code" in exposed
    guarded = _make_app_output("HOST=0.0.0.0", "ACCESS_CODE=tulip-42-orbit")
    assert "WARNING" not in guarded and "URL:" in guarded
    assert "tulip-42-orbit" not in guarded
    local = _make_app_output()
    assert "WARNING" not in local
