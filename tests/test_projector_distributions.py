"""Issue 11, items 5 and 7: the Cluster distributions page opens at once, never waits for a
2-D set to build (the build is a job with progress), and its contours compare two models on
one colour scale in square panels with ticks and points that stand out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from moa_core.analysis.density import plane_snapshot
from moa_core.checkpoint import read_metadata, save_run, scan_runs
from moa_core.data import load_dataset
from moa_core.data.bottleneck import _BUILD_LOCKS, cache_path
from moa_core.models import build_model, config_class
from moa_core.train.jobs import job_manager
from moa_core.train.run import train_model
from moa_core.ui_state import PlaneSettings, ablation_partner
from moa_core.viz.density import DENSITY_COLORSCALE, density_contours

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "distributions.py")


@contextmanager
def builder_busy(name: str = "digits2d", limit: float = 120.0) -> Iterator[None]:
    """Hold the lock of `name`'s builder from another thread, as a running build would; let
    go when the block ends, or after `limit` s, so a page that waits for it fails, not hangs."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _BUILD_LOCKS[name]:
            held.set()
            release.wait(limit)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait()
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_a_set_being_built_holds_up_no_other_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While mnist2d builds (its lock held), a digits2d already in the cache still loads."""
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    np.savez(
        cache_path("digits2d"),
        x_train=rng.normal(size=(20, 2)),
        y_train=np.arange(20) % 10,
        x_test=rng.normal(size=(5, 2)),
        y_test=np.arange(5),
        class_names=np.array([str(c) for c in range(10)]),
    )
    loaded: list = []
    with builder_busy("mnist2d"):
        reader = threading.Thread(target=lambda: loaded.append(load_dataset("digits2d")))
        reader.start()
        reader.join(60)  # a guard against a hang, not a speed limit
        assert not reader.is_alive()
    assert loaded[0].x.shape == (20, 2)


def _button(at: AppTest, label: str):
    (button,) = [b for b in at.button if b.label == label]
    return button


def test_default_set_loads_without_building_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    data = load_dataset(PlaneSettings().dataset)
    assert data.kind == "points" and data.x.shape == (1500, 2)
    assert list(tmp_path.iterdir()) == []  # nothing was built or cached


@pytest.mark.slow  # builds digits2d: a supervised CNN, 10-30 s
def test_unbuilt_set_is_built_as_a_job_while_the_page_stays_usable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """digits2d with an empty cache: a Build button and progress, never a wait; the other sets
    start meanwhile; the job publishes its progress and leaves a cache that loads."""
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception and not _button(at, "Start").disabled
    known = set(job_manager().jobs)
    with builder_busy():  # the build must wait; the page must be drawn regardless
        at.selectbox(key="dist_dataset").set_value("digits2d").run()
        assert not at.exception and not at.error
        assert _button(at, "Start").disabled
        _button(at, "Build digits2d").click().run()
        (job,) = [job for i, job in job_manager().jobs.items() if i not in known]
        assert not job.done
        assert "Building digits2d" in at.get("progress")[0].proto.text
        assert [b.label for b in at.button].count("Build digits2d") == 0  # no second build
        at.selectbox(key="dist_dataset").set_value("blobs").run()
        assert not at.exception and not _button(at, "Start").disabled
    assert job.wait(300) and job.status == "finished", job.state.message
    progress = job.state.view()["epochs"]
    done, total = [e["done"] for e in progress], progress[-1]["total"]
    assert total >= 1000 and done[0] == 0 and done[-1] == total
    assert len(done) >= 20 and done == sorted(done)
    assert len(list(tmp_path.glob("digits2d-*.npz"))) == 1
    assert load_dataset("digits2d").x.shape == (1797, 2)
    at.selectbox(key="dist_dataset").set_value("digits2d").run()
    assert not at.exception and not at.error and not _button(at, "Start").disabled


def test_a_stopped_build_writes_no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from app_pages.job_panel import point_set_build

    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    with builder_busy():  # the job waits for the lock, so it is stopped before it trains
        job = job_manager().submit(point_set_build("digits2d"))
        job.control.stop()
    assert job.wait(120)
    assert job.status == "stopped" and "digits2d" in job.state.message
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def two_planes() -> dict:
    """neural_em on the blobs with and without normalization: different density ranges."""
    planes = {}
    for label, normalize in (("normalized", True), ("without normalization", False)):
        settings = {"epochs": 15, "seed": 0, "device": "cpu", "normalize": normalize}
        run = train_model("neural_em", "blobs", settings)
        planes[label] = plane_snapshot(run.model, run.dataset.x)
    return planes


def test_comparison_is_one_figure_on_one_colour_scale(two_planes: dict) -> None:
    clusters = [0, 2, 3]
    figure = density_contours(two_planes, clusters)
    contours = [t for t in figure.data if t.type == "contour"]
    assert len(contours) == 6  # rows = the two models, columns = the chosen clusters
    drawn = [plane["grid"].values[clusters] for plane in two_planes.values()]
    low, high = min(d.min() for d in drawn), max(d.max() for d in drawn)
    assert {(t.zmin, t.zmax) for t in contours} == {(low, high)}
    # Neither run spans the shared range alone: a scale per run would have lied about both.
    assert all((d.min(), d.max()) != (low, high) for d in drawn)
    assert [t.showscale for t in contours].count(True) == 1
    np.testing.assert_array_equal(
        contours[4].z, two_planes["without normalization"]["grid"].values[2]
    )
    titles = [a.text for a in figure.layout.annotations]
    assert titles[:3] == ["cluster 1: h_1(x)", "cluster 3: h_3(x)", "cluster 4: h_4(x)"]
    assert figure.layout.yaxis.title.text == "normalized"
    assert figure.layout.yaxis4.title.text == "without normalization"


def test_panels_are_square_with_ticks_and_outlined_points(two_planes: dict) -> None:
    figure = density_contours(two_planes, [0, 1])
    layout = figure.layout
    for i in ("", "2", "3", "4"):
        x, y = layout[f"xaxis{i}"], layout[f"yaxis{i}"]
        assert x.scaleanchor == f"y{i}" and x.showticklabels and y.showticklabels
        assert np.isclose(x.range[1] - x.range[0], y.range[1] - y.range[0])  # a square plane
    scales = {color for _, color in DENSITY_COLORSCALE}
    points = [t for t in figure.data if t.type == "scatter"]  # SVG: no WebGL without a GPU
    assert len(points) == 4
    for trace in points:
        assert np.min(trace.marker.line.width) >= 1
        assert trace.marker.line.color not in scales
        assert not {color for _, color in trace.marker.colorscale} & scales


def test_a_saved_run_is_drawn_beside_its_run_with_normalization_switched(tmp_path: Path) -> None:
    """The page's saved view pairs a neural EM run with the same model and data but the other
    `normalize` (paper 004, Fig. 5); another K or other data is no counterpart."""
    family = config_class("neural_em")

    def save(dataset: str, **changes) -> Path:
        config = family(**{"input_kind": "points", "num_clusters": 4, **changes})
        return save_run(build_model(config), config, {"dataset": dataset}, tmp_path)

    normalized, plain = save("blobs"), save("blobs", normalize=False)
    other_k = save("blobs", normalize=False, num_clusters=5)
    other_data = save("moons", normalize=False)
    runs = scan_runs(tmp_path).runs
    assert len(runs) == 4

    def partner(path: Path, dataset: str = "blobs") -> Path | None:
        found = ablation_partner(read_metadata(path)[0], dataset, runs)
        return found and found.path

    assert partner(normalized) == plain
    assert partner(plain) == normalized
    assert partner(other_k) is None  # the only normalized run on blobs has 4 clusters
    assert partner(other_data, "moons") is None
