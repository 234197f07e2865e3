"""The Routing page and the gate units of the Neuron maximization page under AppTest, and the
Train page's settings for the routing classifiers."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from moa_core.checkpoint import list_runs
from moa_core.train.jobs import job_manager
from moa_core.train.run import prepare
from moa_core.ui_state import (
    TrainSettings,
    compare_label,
    family_settings,
    progress_metrics,
    score_tiles,
)

ROOT = Path(__file__).resolve().parent.parent
ROUTING_PAGE = str(ROOT / "app_pages" / "routing.py")
MAXIMIZE_PAGE = str(ROOT / "app_pages" / "maximize.py")


def open_page(page: str, runs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page on the newest run of `runs`, named in the URL as a link would (not the
    gallery's default)."""
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    at = AppTest.from_file(page, default_timeout=120)
    at.query_params["run"] = list_runs(runs)[0].run_id
    at.run()
    assert not at.exception, at.exception
    return at


def test_routing_page_draws_two_dataset_images_and_the_gate_analysis(
    routing_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(ROUTING_PAGE, routing_run_dir, monkeypatch)
    assert not at.error
    # Two routing diagrams (inputs 1 and 2), then one chart per tab: class-wise histograms,
    # path weights, and the comparison with the registry's second run.
    assert len(at.get("plotly_chart")) == 2 + 3
    assert "18 gates" in " ".join(m.value for m in at.markdown)
    at.radio(key="route_count").set_value(3).run()
    assert not at.exception and len(at.get("plotly_chart")) == 3 + 3  # a third diagram
    captions = " ".join(c.value for c in at.caption)
    assert "Fig. 5.1" in captions  # the second run of the registry is compared


def test_routing_page_explains_a_baseline_without_gates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiny import TINY_ROUTING

    from moa_core.checkpoint import save_run
    from moa_core.train.run import train_model

    settings = {**TINY_ROUTING, "epochs": 1, "max_samples": 100, "device": "cpu"}
    run = train_model("singlepath", "digits", settings)
    save_run(run.model, run.config, run.checkpoint_meta(), tmp_path)
    at = open_page(ROUTING_PAGE, tmp_path, monkeypatch)
    assert "no gates" in at.info[0].value and not at.get("plotly_chart")


def test_maximization_page_offers_every_gate_vector(
    routing_run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(MAXIMIZE_PAGE, routing_run_dir, monkeypatch)
    units = at.selectbox(key="max_units")
    assert len(units.options) == 10  # the class outputs and 9 gate vectors
    at.slider(key="max_steps").set_value(32).run()
    units.set_value(5).run()
    assert not at.exception
    for job in list(job_manager().jobs.values()):  # the synthesis runs as a job
        job.wait(120)
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "of 2** units" in text  # a two-path gate vector has two units
    assert at.dataframe[0].value["unit"].str.startswith("g").all()


def test_routing_classifiers_settings_compare_with_their_ablation_and_show_accuracy() -> None:
    settings = TrainSettings.from_mapping(
        {"train_model_type": "multipath_cc", "train_num_clusters": 4, "train_compare": True},
        prefix="train_",
    )
    specs = settings.job_specs()
    assert [s.label for s in specs] == [
        "multipath_cc",
        "multipath_cc without gate regularization",
    ]
    assert specs[1].overrides["gate_reg"] == 0.0
    assert "num_clusters" not in specs[0].overrides  # a classifier has no M
    model, *_ = prepare("multipath_cc", "digits", {**specs[0].overrides, "max_samples": 50})
    assert model.config.num_classes == 10
    assert compare_label("singlepath") == ""
    assert compare_label("moa") == "moa vs moa_plus"
    metrics = {"accuracy": 0.9712, "dead_gate_fraction": 0.25, "classes_predicted": 10}
    assert score_tiles(metrics) == [
        ("Accuracy (held-out)", "0.971"),
        ("Dead gates", "25%"),
        ("Classes predicted", "10"),
    ]
    assert progress_metrics([{"epoch": 1, **metrics}]) == ("accuracy", "dead_gate_fraction")
    assert progress_metrics([{"epoch": 1, "nmi": 0.5, "acc": 0.5}]) == ("nmi", "acc")


def test_more_settings_reach_the_job_or_name_their_problem() -> None:
    values = {"train_model_type": "multipath_cc", "train_more": "paths=3 gate_reg=0 epochs=2"}
    settings = TrainSettings.from_mapping(values, prefix="train_")
    assert settings.problem() is None
    (spec,) = settings.job_specs()
    assert spec.overrides["paths"] == 3 and spec.overrides["gate_reg"] == 0
    assert spec.overrides["epochs"] == 2  # the typed keys win over the widgets
    for bad, words in (("pathz=3", "unknown config key"), ("paths", "expected key=value")):
        settings.more = bad
        assert words in settings.problem()


def test_choosing_a_model_brings_its_familys_training_settings() -> None:
    assert family_settings("neural_em") == {"lr": 1e-3, "epochs": 10, "batch_size": 128}
    assert family_settings("multipath_cc") == {"lr": 1e-3, "epochs": 15, "batch_size": 64}
    at = AppTest.from_file(str(ROOT / "app_pages" / "train.py"), default_timeout=60).run()
    at.selectbox(key="train_model_type").set_value("multipath_cc").run()
    assert at.number_input(key="train_epochs").value == 15
    assert at.number_input(key="train_lr").value == pytest.approx(1e-3)
    at.text_input(key="train_more").set_value("paths=1").run()
    assert "paths must be ≥ 2" in at.error[0].value
    assert next(b for b in at.button if b.label == "Start").disabled
