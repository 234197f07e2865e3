"""Issue 12, one server for a whole class: the run registry, the dataset cache and uploads
have limits, and going past one is a single line (an exception message, a page line), with
nothing half-written left behind. Real saves, real safetensors files, a real 2-D set build."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from browser_support import streamlit_settings
from streamlit.testing.v1 import AppTest
from tiny import TINY

from moa_core.checkpoint import (
    CheckpointError,
    RegistryFullError,
    list_runs,
    load_checkpoint,
    save_run,
)
from moa_core.data import DatasetError, load_dataset
from moa_core.data.bottleneck import build_bottleneck
from moa_core.train.run import TrainedRun, train_model

ROOT = Path(__file__).resolve().parent.parent
LIMITS = ("MOA_RUNS_MAX_COUNT", "MOA_RUNS_MAX_MB", "MOA_MAX_CHECKPOINT_MB", "MOA_CACHE_MAX_MB")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh registry, and none of the caller's limits."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    for name in LIMITS:
        monkeypatch.delenv(name, raising=False)
    return runs


@pytest.fixture(scope="module")
def trained() -> TrainedRun:
    run = train_model("moa_plus", "digits", TINY)
    assert run.result.status == "finished"
    return run


def save(trained: TrainedRun) -> Path:
    return save_run(trained.model, trained.config, trained.checkpoint_meta())


def files(folder: Path) -> list[str]:
    """Every name in `folder`, hidden temp files included."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# --- the run registry -------------------------------------------------------------------


def test_count_limit_refuses_the_third_run_and_writes_nothing(
    trained: TrainedRun, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_MAX_COUNT", "2")
    first, second = save(trained), save(trained)
    with pytest.raises(RegistryFullError) as info:
        save(trained)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "the run registry is full: 2 runs (MOA_RUNS_MAX_COUNT=2); "
        "delete old runs or raise the limit"
    )
    assert isinstance(info.value, CheckpointError)  # pages and the CLI catch this one
    assert files(isolated) == sorted([first.name, second.name])  # no temp file either
    assert {r.path for r in list_runs()} == {first, second}
    # Deleting a run makes room again.
    first.unlink()
    third = save(trained)
    assert files(isolated) == sorted([second.name, third.name])


def test_size_limit_counts_the_new_file(
    trained: TrainedRun, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Just above one run's size: the first save fits, the second would go past the limit."""
    first = save(trained)
    size = first.stat().st_size
    first.unlink()
    limit_mb = size * 1.5 / 2**20
    monkeypatch.setenv("MOA_RUNS_MAX_MB", str(limit_mb))
    kept = save(trained)
    assert kept.stat().st_size == size
    with pytest.raises(RegistryFullError) as info:
        save(trained)
    message = str(info.value)
    assert "\n" not in message and f"MOA_RUNS_MAX_MB={limit_mb:g}" in message
    assert message.startswith("the run registry is full: ") and "for this run" in message
    assert files(isolated) == [kept.name]  # nothing half-written, no temp file
    assert load_checkpoint(kept).config == trained.config


def test_bad_limit_values_are_one_line(
    trained: TrainedRun, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("MOA_RUNS_MAX_COUNT", "abc"), ("MOA_RUNS_MAX_MB", "-1")):
        monkeypatch.setenv(name, value)
        with pytest.raises(CheckpointError) as info:
            save(trained)
        assert str(info.value) == f"{name} must be a number ≥ 0, got {value!r}"
        monkeypatch.delenv(name)
    assert files(isolated) == []  # refused before anything was written


def test_saves_at_once_never_squeeze_past_the_count(
    trained: TrainedRun, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six threads save at once into a registry with room for three: three get in."""
    monkeypatch.setenv("MOA_RUNS_MAX_COUNT", "3")
    barrier = threading.Barrier(6)
    saved, refused = [], []

    def one() -> None:
        barrier.wait()
        try:
            saved.append(save(trained))
        except RegistryFullError as err:
            refused.append(str(err))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(saved) == 3 and len(set(saved)) == 3
    assert len(refused) == 3 and all("MOA_RUNS_MAX_COUNT=3" in m for m in refused)
    assert files(isolated) == sorted(p.name for p in saved)


# --- the dataset cache ------------------------------------------------------------------


def test_a_full_cache_is_refused_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "other-v1.npz").write_bytes(bytes(2048))
    monkeypatch.setenv("MOA_CACHE_DIR", str(cache))
    monkeypatch.setenv("MOA_CACHE_MAX_MB", "0.001")  # 1,048 bytes: already past it
    asked: list[tuple[str, str]] = []

    def load_images(name: str, split: str):
        asked.append((name, split))
        raise AssertionError("a full cache must not start a build")

    with pytest.raises(DatasetError) as info:
        build_bottleneck("digits2d", load_images)
    message = str(info.value)
    assert "\n" not in message and "MOA_CACHE_MAX_MB=0.001" in message
    assert asked == []
    assert files(cache) == ["other-v1.npz"]
    monkeypatch.setenv("MOA_CACHE_MAX_MB", "lots")
    with pytest.raises(DatasetError, match="^MOA_CACHE_MAX_MB must be a number"):
        load_dataset("digits2d")


def test_a_built_set_past_the_cache_limit_is_refused_and_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write a finished build ends with (the build itself is tested in test_data.py):
    ~60 kB of points, as digits2d's, against a 1 kB cache."""
    from moa_core.data.bottleneck import cache_path
    from moa_core.data.cache import write_atomic

    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("MOA_CACHE_MAX_MB", "0.001")
    points = np.random.default_rng(0).normal(size=(3600, 2)).astype(np.float32)
    with pytest.raises(DatasetError) as info:
        write_atomic(cache_path("digits2d"), {"x": points, "y": np.zeros(3600, np.int64)})
    message = str(info.value)
    assert "\n" not in message
    assert "MOA_CACHE_MAX_MB=0.001" in message and "for this set" in message
    assert files(tmp_path) == []  # neither the cache file nor its temp file


# --- uploads ------------------------------------------------------------------------------


def _upload_limit(env: dict[str, str]) -> str:
    shown = streamlit_settings(env)
    (line,) = [line for line in shown.splitlines() if line.startswith("maxUploadSize")]
    return line


def test_the_upload_limit_is_64_mb_and_the_environment_overrides_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STREAMLIT_SERVER_MAX_UPLOAD_SIZE"}
    assert _upload_limit(env) == "maxUploadSize = 64"
    assert _upload_limit({**env, "STREAMLIT_SERVER_MAX_UPLOAD_SIZE": "5"}) == "maxUploadSize = 5"


@pytest.mark.browser
@pytest.mark.slow
def test_a_file_over_the_upload_limit_is_refused_in_one_line(browser, tmp_path: Path) -> None:
    """Streamlit's own refusal, as a student sees it: a 2 MB checkpoint against a 1 MB limit
    on the Latent space page's upload, and the page goes on without an exception."""
    from browser_support import assert_no_exception, streamlit_server
    from playwright.sync_api import expect

    big = tmp_path / "big.safetensors"
    big.write_bytes(bytes(2 * 2**20))
    env = {"STREAMLIT_SERVER_MAX_UPLOAD_SIZE": "1"}
    with streamlit_server(tmp_path / "runs", tmp_path, env) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/latent")
        source = page.get_by_role("radiogroup", name="Checkpoint")
        source.get_by_text("Upload a checkpoint", exact=True).click()
        page.locator('input[type="file"]').set_input_files(str(big))
        refusal = page.get_by_text("File must be 1.0MB or smaller.")
        expect(refusal).to_be_visible()
        assert "\n" not in refusal.inner_text().strip()
        assert_no_exception(page)
        context.close()


# --- the Train page ---------------------------------------------------------------------


def test_save_as_run_into_a_full_registry_is_one_line_on_the_train_page(
    new_jobs, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=60).run()
    settings = {"epochs": 1, "max_samples": 120, "batch_size": 60, "num_clusters": 2}
    for name, value in settings.items():
        at.number_input(key=f"train_{name}").set_value(value)
    next(b for b in at.button if b.label == "Start").click().run()
    (job,) = new_jobs()
    assert job.wait(300), "training did not finish"
    at.run()
    assert not at.exception and not at.error
    monkeypatch.setenv("MOA_RUNS_MAX_COUNT", "0")
    next(b for b in at.button if b.label == "Save as run").click().run()
    assert not at.exception
    (line,) = [e.value for e in at.error]
    assert line.startswith("Could not save: the run registry is full: 0 runs")
    assert "MOA_RUNS_MAX_COUNT=0" in line and "\n" not in line
    assert files(isolated) == []
