"""What the browser tests share: the server and browser plumbing of `benchmarks.browser`, and
checks on a page."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # scripts run from elsewhere
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import browser  # noqa: E402
from benchmarks.browser import (  # noqa: F401, E402  (what the browser tests import from here)
    CHROMIUM,
    CHROMIUM_FLAGS,
    ROOT,
    free_port,
    wait_healthy,
)

PAGES = {  # URL → the page's title (its heading once it has run)
    "/": "Mixture Lab",
    "/train": "Train",
    "/latent": "Latent space",
    "/distributions": "Cluster distributions",
    "/maximize": "Neuron maximization",
    "/routing": "Routing",
    "/pretraining": "Pretraining pipeline",
    "/experts": "Experts & latent walks",
    "/generative": "Generative mixtures",
    "/gated_regression": "Gated regression",
    "/results": "Results",
    "/classroom": "Classroom",
    "/your_data": "Your data",
}
RENDER_TIMEOUT_MS = 180_000  # the first Latent page waits for UMAP's compile and a model pass
MAIN = '[data-testid="stMain"] '  # a selector's prefix: in the page, not the sidebar


@contextmanager
def streamlit_server(runs_dir: Path, log_dir: Path, env: dict | None = None) -> Iterator[str]:
    """`benchmarks.browser`'s server without the start-up warm-up (`MOA_WARM_UP=0`): ~4 s
    of CPU per server importing UMAP and loading its kernels from numba's cache, which most
    modules never use; a page that needs UMAP loads it when it is first opened."""
    with browser.streamlit_server(runs_dir, log_dir, {"MOA_WARM_UP": "0", **(env or {})}) as url:
        yield url


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.locator("body").inner_text()


def train_pair(page, link: str, epochs: int, figures: int) -> None:
    """Open `link` on a page that trains two runs side by side, press Start, and wait until
    both have finished `epochs` epochs and the page shows `figures` Plotly figures: paper
    002's pages are checked alike, each then for what only it draws."""
    from playwright.sync_api import expect

    page.goto(link)
    page.get_by_role("heading", name=PAGES[urlsplit(link).path], exact=True).wait_for()
    page.get_by_role("button", name="Start").click()
    finished = page.get_by_text(f"finished — {epochs} epochs")
    expect(finished).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(MAIN + ".js-plotly-plot")).to_have_count(figures)


def number_input(page, label: str, value: int) -> None:
    """Type `value` into the number input labelled `label` and wait until it holds it."""
    from playwright.sync_api import expect

    field = page.locator(f'input[aria-label="{label}"]')
    field.fill(str(value))
    field.press("Enter")
    expect(field).to_have_value(str(value))


def slow_down(page, seconds: float) -> None:
    """Set the Train page's speed control (0.05 s per arrow press) to `seconds` per batch."""
    from playwright.sync_api import expect

    slider = page.get_by_role("slider")
    slider.focus()
    for _ in range(round(seconds / 0.05)):
        slider.press("ArrowRight")
    expect(slider).to_have_value(f"{seconds:g}")


def streamlit_settings(env: dict | None = None) -> str:
    """What `streamlit config show` reports in the repository (with `env`, if given)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
