"""`moa train / eval` for paper 002's families: VaDE and DMVAE report the clustering scores;
DVMoE and DeepMoE add the test error and its two baselines (spec §2.2, §5.2)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_cli import _run, isolated  # noqa: F401  (runs to a temp folder, offline)

from moa_core.checkpoint import read_metadata

CLUSTER_KEYS = {"acc", "nmi", "ari", "clusters_used"}
REGRESSION_KEYS = {"regression_mse", "baseline_constant_mse", "baseline_affine_mse"}
TINY_VAE = ["latent_dim=3", "encoder_units=[16]", "decoder_units=[16]", "batch_size=100"]
TINY_GATE = ["gate_units=[16]"]


def _train(model: str, dataset: str, *settings: str, epochs: int = 2) -> tuple[int, dict, str]:
    code, out, err = _run(
        ["train", model, "--dataset", dataset, "--epochs", str(epochs), "--device", "cpu"]
        + ["--set", "max_samples=500", *settings]
    )
    return code, json.loads(out) if code == 0 else {}, err


@pytest.fixture(scope="module")
def dvmoe_line(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny DVMoE on paper 002's spiral with 2-D targets, trained once for the module."""
    out = tmp_path_factory.mktemp("dvmoe") / "dvmoe.safetensors"
    code, line, err = _train(
        "dvmoe", "spiral25k", *TINY_VAE, *TINY_GATE, "output_dim=2", "tau=0.5", "--out", str(out)
    )
    assert (code, err) == (0, ""), err
    return line


def test_regression_line_adds_the_test_error_and_both_baselines(dvmoe_line: dict) -> None:
    assert CLUSTER_KEYS | REGRESSION_KEYS <= set(dvmoe_line)
    assert all(math.isfinite(dvmoe_line[k]) and dvmoe_line[k] > 0 for k in REGRESSION_KEYS)
    # One affine map (with its intercept) never does worse than the mean, on the same targets.
    assert dvmoe_line["baseline_affine_mse"] < dvmoe_line["baseline_constant_mse"]


def test_set_reaches_the_new_keys_and_the_checkpoint_keeps_the_errors(dvmoe_line: dict) -> None:
    config, meta = read_metadata(Path(dvmoe_line["checkpoint"]))
    assert config["output_dim"] == 2 and config["tau"] == 0.5 and config["latent_dim"] == 3
    assert config["input_kind"] == "points" and config["num_clusters"] == 5
    assert REGRESSION_KEYS <= set(meta["metrics"])  # `moa list` and the pages can show them


def test_eval_on_the_test_side_reproduces_the_training_line(dvmoe_line: dict) -> None:
    code, out, err = _run(["eval", dvmoe_line["checkpoint"], "--split", "test", "--device", "cpu"])
    assert (code, err) == (0, ""), err
    line = json.loads(out)
    for key in (*REGRESSION_KEYS, *CLUSTER_KEYS):
        assert line[key] == dvmoe_line[key], key


def test_deep_moe_on_images_is_scored_on_held_out_digits() -> None:
    code, line, err = _train("deep_moe", "digits:0,1,2", *TINY_GATE, "target_seed=3", epochs=1)
    assert (code, err) == (0, ""), err
    assert CLUSTER_KEYS | REGRESSION_KEYS <= set(line)
    assert line["baseline_affine_mse"] < line["baseline_constant_mse"]


@pytest.mark.parametrize(
    ("model", "settings"),
    [("dmvae", [*TINY_VAE, *TINY_GATE, "tau=1.0"]), ("vade", [*TINY_VAE, "pretrain_epochs=1"])],
)
def test_clustering_families_report_the_usual_scores(model: str, settings: list[str]) -> None:
    """VaDE's second epoch starts with the GMM fit that ends its pretraining (`begin_epoch`)."""
    code, line, err = _train(model, "spiral25k", *settings)
    assert (code, err) == (0, ""), err
    assert CLUSTER_KEYS <= set(line) and not REGRESSION_KEYS & set(line)
    assert 0 < line["nmi"] <= 1


@pytest.mark.parametrize(
    ("model", "setting", "named"),
    [
        ("dvmoe", "tau=-1", "tau"),
        ("deep_moe", "output_dim=0", "output_dim"),
        ("vade", "pretrain_epochs=-2", "pretrain_epochs"),
        ("dmvae", "latent_dim=0", "latent_dim"),
        ("dmvae", "output_dim=2", "output_dim"),  # a clustering family has no targets
    ],
)
def test_bad_values_are_one_line_and_exit_2(model: str, setting: str, named: str) -> None:
    code, out, err = _run(["train", model, "--dataset", "spiral25k", "--set", setting])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("moa: error:") and named in err
