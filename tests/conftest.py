"""Shared fixtures: the repository root, small saved runs (for pages that need a run), and
Chromium with a fresh tab for the browser tests (each browser module serves its `app_url`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from browser_support import CHROMIUM, CHROMIUM_FLAGS, streamlit_server
from tiny import TINY_MODEL, TINY_PIPELINE, TINY_ROUTING

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny convs on 2 shared cores run far faster (and steadier) on one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def saved_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run registry (`MOA_RUNS_DIR`) holding one tiny MoA+ run trained on 300 digits."""
    from moa_core.checkpoint import save_run
    from moa_core.train.run import train_model

    directory = tmp_path_factory.mktemp("runs")
    overrides = {"epochs": 1, "max_samples": 300, "batch_size": 100, "device": "cpu"}
    run = train_model("moa_plus", "digits", {**TINY_MODEL, "num_clusters": 4, **overrides})
    save_run(run.model, run.config, run.checkpoint_meta(), directory)
    return directory


@pytest.fixture(scope="session")
def routing_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run registry with two tiny `multipath_cc` runs on 300 digits: with the neural-EM gate
    regularization and without it (`gate_reg=0`)."""
    from moa_core.checkpoint import save_run
    from moa_core.train.run import train_model

    directory = tmp_path_factory.mktemp("routing_runs")
    overrides = {"epochs": 2, "max_samples": 300, "batch_size": 50, "device": "cpu"}
    for gate_reg in (0.01, 0.0):
        settings = {**TINY_ROUTING, **overrides, "gate_reg": gate_reg}
        run = train_model("multipath_cc", "digits", settings)
        save_run(run.model, run.config, run.checkpoint_meta(), directory)
    return directory


@pytest.fixture(scope="session")
def gallery_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server with an empty run registry, shared by the modules whose pages open the
    bundled gallery (Start, shared links, presenter mode, paper 002's two pages)."""
    runs = tmp_path_factory.mktemp("no_runs")
    with streamlit_server(runs, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture(scope="session")
def saved_run_app_url(
    saved_run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One server on a copy of `saved_run_dir` (its pages may save runs there) with its own
    dataset cache, shared by the main page checks and the own-data upload."""
    runs = tmp_path_factory.mktemp("browser_runs")
    for path in saved_run_dir.iterdir():
        shutil.copy2(path, runs / path.name)
    env = {"MOA_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "MOA_RUNS_READONLY": ""}
    with streamlit_server(runs, tmp_path_factory.mktemp("streamlit"), env) as url:
        yield url


@pytest.fixture(scope="session")
def routing_app_url(
    routing_run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One server on the two routing runs, shared by the Routing page's browser modules."""
    with streamlit_server(routing_run_dir, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture(scope="module")  # not per session: its event loop would outlive the module
def browser() -> Iterator:
    """Debian's Chromium under Playwright; the browser tests skip where either is missing."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Assertions wait as long as actions do: a figure drawn after its caption on a loaded CI
    # machine is late, not missing (Playwright's own default is 5 s).
    sync_api.expect.set_options(timeout=60_000)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url: str) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, base_url=app_url)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


@pytest.fixture
def new_jobs():
    """Jobs submitted during the test, cancelled and waited for at its end (the job manager
    is process-wide: a test's jobs must not run on into the next test)."""
    from moa_core.train.jobs import job_manager

    known = set(job_manager().jobs)

    def collect() -> list:
        return [job for i, job in sorted(job_manager().jobs.items()) if i not in known]

    yield collect
    for job in collect():
        job_manager().cancel(job)
        job.wait(300)


@pytest.fixture
def trained_on_page(new_jobs):
    """`train(at)`: press the page's Start (an `AppTest`), wait for the jobs it submitted to
    finish, and rerun the page, which must then show no exception or error; returns the
    jobs. The steps every page test of live side-by-side training takes before its checks."""

    def train(at, timeout: float = 300) -> list:
        next(b for b in at.button if b.label == "Start").click().run()
        jobs = new_jobs()
        assert jobs and all(job.wait(timeout) for job in jobs), "training did not finish"
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        return jobs

    return train


@pytest.fixture(scope="session")
def tiny_pipeline():
    """A finished `run_pipeline` on 300 digits (a `PipelineRun`: the mixture and its record)."""
    from moa_core.train.pretraining import PretrainSettings, run_pipeline

    return run_pipeline("digits", PretrainSettings(**TINY_PIPELINE), {"epochs": 1})


@pytest.fixture(scope="session")
def pipeline_run_dir(tiny_pipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run registry holding the tiny pipeline's MoE-VAE, saved with its record."""
    from moa_core.checkpoint import save_run

    directory = tmp_path_factory.mktemp("pipeline_runs")
    run = tiny_pipeline.run
    save_run(run.model, run.config, tiny_pipeline.checkpoint_meta(), directory)
    return directory
