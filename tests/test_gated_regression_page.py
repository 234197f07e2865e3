"""The Gated regression page (paper 002, §7–8.2): its analysis and figures without a browser,
then the page under AppTest with a tiny live training of DVMoE beside DeepMoE, and on the
gallery's pair of saved runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from moa_core.analysis import gated_regression as analysis
from moa_core.checkpoint import list_runs, save_run
from moa_core.data.regression import class_affine_maps
from moa_core.train.jobs import JobSpec
from moa_core.train.run import prepare, train_model
from moa_core.viz import gated_regression as viz

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "gated_regression.py")
# Small enough for a second of CPU: 300 spiral points, thin networks.
TINY_NETS = {
    "dvmoe": {"encoder_units": [16], "decoder_units": [16], "gate_units": [16], "latent_dim": 2},
    "deep_moe": {"gate_units": [16]},
}
TINY_RUN = {"epochs": 1, "max_samples": 300, "device": "cpu", "batch_size": 100}


@pytest.fixture(scope="module")
def planes() -> dict[str, analysis.RegressionPlane]:
    """Each family's plane after one epoch on 300 spiral points with 2-D targets."""
    result = {}
    for model_type in analysis.MODEL_TYPES:
        model, _, _, data = prepare(
            model_type, "spiral25k", {**TINY_NETS[model_type], **TINY_RUN, "output_dim": 2}
        )
        model.eval()
        result[analysis.MODEL_NAMES[model_type]] = analysis.regression_plane(model, data)
    return result


def test_the_plane_holds_the_gated_prediction_of_the_experts_maps(planes) -> None:
    plane = planes["DVMoE"]
    k, r = plane["gate_probs"].shape[:2]
    assert (k, r) == (5, 60) and plane["predictions"].shape == (2, r, r)
    np.testing.assert_allclose(plane["gate_probs"].sum(0), 1.0, atol=1e-5)
    # ŷ at grid cell (row 7, column 11) = Σ_k q_k (W_k x + b_k) at x = (xs[11], ys[7]).
    x = np.array([plane["xs"][11], plane["ys"][7]])
    experts = plane["expert_weights"] @ x + plane["expert_bias"]  # [K, out]
    expected = (plane["gate_probs"][:, 7, 11, None] * experts).sum(0)
    np.testing.assert_allclose(plane["predictions"][:, 7, 11], expected, rtol=1e-4, atol=1e-4)


def test_the_true_maps_are_the_ones_that_made_the_targets(planes) -> None:
    """`expert_fits` compares each expert with W_c, b_c: they must reproduce the targets."""
    plane = planes["DeepMoE"]
    weights, bias = (t.numpy() for t in class_affine_maps(2, 2, plane["num_classes"], seed=0))
    c = plane["classes"]
    rebuilt = np.einsum("oin,ni->no", weights[:, :, c], plane["points"]) + bias[:, c].T
    np.testing.assert_allclose(rebuilt, plane["targets"], rtol=1e-4, atol=1e-4)
    fits = analysis.expert_fits(plane, target_seed=0)
    assert sum(fit.share for fit in fits) == pytest.approx(1.0)
    for fit in fits:
        if fit.cls >= 0:
            np.testing.assert_allclose(fit.true_weights, weights[:, :, fit.cls])
            assert fit.class_name == f"arm {fit.cls}"


def hand_plane(gates: np.ndarray, classes: list[int], picked: list[int]) -> dict:
    """A plane of 2 experts on 3 points whose maps are known by heart."""
    return {
        "gate_probs": gates,
        "expert_weights": np.array([[[1.0, 0.0]], [[0.0, 2.0]]]),  # y = x₁ and y = 2x₂
        "expert_bias": np.array([[0.0], [1.0]]),
        "points": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
        "classes": np.array(classes),
        "point_experts": np.array(picked),
    }


def test_expert_outputs_entropy_and_owners_by_hand() -> None:
    gates = np.zeros((2, 1, 1))
    plane = hand_plane(gates, classes=[1, 1, 0], picked=[1, 1, 0])
    outputs = analysis.expert_outputs(plane)  # [n, out, K]
    np.testing.assert_allclose(outputs[:, 0, 0], [1.0, 3.0, 5.0])
    np.testing.assert_allclose(outputs[:, 0, 1], [5.0, 9.0, 13.0])
    assert analysis.class_of_expert(plane).tolist() == [0, 1]
    uniform = np.full((4, 2, 2), 0.25)
    np.testing.assert_allclose(analysis.gate_entropy(uniform), math.log(4))
    sure = np.zeros((4, 2, 2))
    sure[2] = 1.0
    np.testing.assert_allclose(analysis.gate_entropy(sure), 0.0, atol=1e-9)
    idle = hand_plane(gates, classes=[0, 1, 1], picked=[1, 1, 1])
    assert analysis.class_of_expert(idle).tolist() == [-1, 1]


def test_table1_keeps_the_papers_numbers_beside_the_sessions() -> None:
    rows = analysis.table1_rows({2: {"DVMoE": 3.14159}}, {2: {"baseline_constant_mse": 60.5}})
    assert rows["output dim"] == [1, 2, 5]
    assert rows["paper: DeepMoE"] == [10.0424, 20.4247, 180.117]
    assert rows["paper: DVMoE"] == [0.0312, 0.0434, 96.1049]
    assert rows["here: DVMoE"] == ["—", "3.142", "—"]
    assert rows["here: DeepMoE"] == ["—", "—", "—"]
    assert rows["here: constant"] == ["—", "60.5", "—"]


def test_the_page_baselines_are_the_runs_own() -> None:
    """The baselines drawn while training equal those `train_model` stores afterwards."""
    settings = {**TINY_NETS["deep_moe"], **TINY_RUN, "output_dim": 1, "target_seed": 3}
    run = train_model("deep_moe", "spiral25k", settings)
    baselines = analysis.regression_baselines("spiral25k", 1, 3, 300, 0)
    for key in ("baseline_constant_mse", "baseline_affine_mse"):
        assert baselines[key] == pytest.approx(run.result.metrics[key])
    # A constant predictor fitted on the train side scores ≥ the test targets' variance.
    assert baselines["baseline_constant_mse"] >= baselines["target_variance"]


def test_figures_share_their_scales_between_the_runs(planes) -> None:
    gates = viz.gate_maps(planes)
    heatmaps = [trace for trace in gates.data if trace.type == "heatmap"]
    assert len(heatmaps) == 4  # argmax and entropy per run
    assert [h.zmax for h in heatmaps[1::2]] == [pytest.approx(math.log(5))] * 2
    assert sum(trace.name == "expert 1" for trace in gates.data) == 1  # the colour legend
    predictions = viz.prediction_maps(planes, output=1)
    surfaces = [trace for trace in predictions.data if trace.type == "heatmap"]
    assert len(surfaces) == 2 and surfaces[0].zmax == surfaces[1].zmax > 0
    np.testing.assert_allclose(surfaces[1].z, planes["DeepMoE"]["predictions"][1])
    dots = [trace for trace in predictions.data if trace.type == "scatter"]
    assert dots[0].marker.cmax == surfaces[0].zmax  # dots and surface on one scale
    with pytest.raises(ValueError):
        viz.prediction_maps(planes, output=2)
    parity = viz.expert_parity(planes, output=0)
    drawn = sum(len(trace.x) for trace in parity.data if trace.mode == "markers")
    assert drawn == sum(len(plane["points"]) for plane in planes.values())  # every point once
    history = {"DVMoE": [{"epoch": 1, "regression_mse": 8.0}, {"epoch": 2, "regression_mse": 2.0}]}
    curves = viz.error_curves(history, {"constant": 10.0, "one affine map": 5.0})
    assert curves.layout.yaxis.type == "log"
    assert [trace.name for trace in curves.data] == ["DVMoE", "constant: 10", "one affine map: 5"]
    assert viz.affine_text(np.array([0.5, -1.25]), -0.3) == "0.50 x₁ − 1.25 x₂ − 0.30"
    table = viz.expert_fit_table(analysis.expert_fits(planes["DVMoE"], 0), output=1)
    assert table["expert"] == [1, 2, 3, 4, 5]


def test_settings_train_both_gates_on_the_same_samples_and_targets() -> None:
    specs = analysis.RegressionSettings(output_dim=5, latent_dim=2).job_specs()
    assert [s.model_type for s in specs] == ["dvmoe", "deep_moe"]
    assert all(isinstance(s, JobSpec) and s.snapshot_hooks for s in specs)
    shared = {k: v for k, v in specs[0].overrides.items() if k != "latent_dim"}
    assert shared == specs[1].overrides and shared["output_dim"] == 5
    assert specs[0].overrides["latent_dim"] == 2


def test_the_page_trains_both_live_and_draws_every_figure(trained_on_page) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update({"epochs": "2", "n": "300", "out": "2"})
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="greg_output_dim").value == 2
    assert len(at.dataframe) == 1  # Table 1 waits for the first run
    jobs = trained_on_page(at)
    assert [job.spec.label for job in jobs] == ["DVMoE", "DeepMoE"]
    charts = [chart.key for chart in at.get("plotly_chart")]
    assert charts == ["gate_maps", "predictions", "errors", "parity"]
    assert [m.label for m in at.metric].count("Test error") == 2
    assert len(at.dataframe) == 3  # Table 1 and each run's experts
    row = at.session_state["greg_results"][2]
    assert row["DVMoE"] > 0 and row["DeepMoE"] > 0
    assert at.radio(key="greg_drawn_output").options == ["y_1", "y_2"]
    assert dict(at.query_params)["out"] in (["2"], "2")


def test_the_train_page_shows_a_regressors_test_error() -> None:
    from moa_core.ui_state import score_tiles

    metrics = {"acc": 0.5, "nmi": 0.4, "ari": 0.3, "clusters_used": 2, "usage": [0.5, 0.5]}
    assert score_tiles({**metrics, "regression_mse": 1.23456})[-1] == ("Test error", "1.23")
    assert "Test error" not in dict(score_tiles(metrics))


@pytest.fixture(scope="module")
def two_output_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run registry with one tiny DeepMoE whose targets have 2 outputs (the gallery's have 1)."""
    directory = tmp_path_factory.mktemp("regression_runs")
    settings = {**TINY_NETS["deep_moe"], **TINY_RUN, "output_dim": 2}
    run = train_model("deep_moe", "spiral25k", settings)
    save_run(run.model, run.config, run.checkpoint_meta(), directory)
    return directory, list_runs(directory)[0].run_id


def open_saved(**params: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update({"source": "saved", **params})
    at.run()
    return at


def test_the_gallery_pair_draws_without_training(
    two_output_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, run_id = two_output_run
    monkeypatch.setenv("MOA_RUNS_DIR", str(directory))
    at = open_saved()  # the gallery's DVMoE beside its DeepMoE
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.selectbox] == ["gallery/dvmoe_spiral", "gallery/deep_moe_spiral"]
    assert [chart.key for chart in at.get("plotly_chart")] == ["gate_maps", "predictions", "parity"]
    assert [m.label for m in at.metric].count("Test error") == 2
    table = at.dataframe[0].value  # Table 1, the gallery runs' errors in its output-1 row
    assert table["here: DVMoE"][0] != "—" and table["here: DeepMoE"][0] != "—"
    assert float(table["here: DVMoE"][0]) < float(table["here: constant"][0]) / 20
    assert len(at.dataframe) == 3  # Table 1 and each run's experts
    at = open_saved(run_b=run_id)  # 2 outputs beside 1: not comparable, said in one line
    assert not at.exception
    assert [e.value for e in at.error] and "same data and targets" in at.error[0].value
    assert at.get("plotly_chart") == []
