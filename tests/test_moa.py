"""MoA / MoA+ (paper 000): configs, the minimax weights, both MoA+ objectives, the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from moa_core.models import ConfigError, build_model, config_class, config_from_dict
from moa_core.models.moa import (
    MoAConfig,
    MoAPlusConfig,
    gram_matrix,
    minimax_weights,
    moa_loss,
    moa_plus_bound_loss,
    moa_plus_weighted_loss,
    reconstruction_errors,
)

# 4 samples, M = 2 experts; rows sum to 1 like softmax outputs.
P = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
# Per-sample, per-expert squared errors.
E = np.array([[0.10, 0.50], [0.40, 0.05], [0.20, 0.30], [0.60, 0.10]])


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


# --- configs ----------------------------------------------------------------------------


def _small_plus() -> MoAPlusConfig:
    return MoAPlusConfig(
        num_clusters=3,
        latent_dim=4,
        expert_channels=(4, 8),
        gate_channels=(4, 8),
        objective="weighted",
        gamma_eps=0.01,
    )


def test_config_dict_round_trip() -> None:
    config = _small_plus()
    data = config.to_dict()
    assert data["model_type"] == "moa_plus"
    assert data["num_clusters"] == 3 and data["gamma_eps"] == 0.01
    again = config_from_dict(data)
    assert type(again) is MoAPlusConfig
    assert again == config


def test_config_json_round_trip_keeps_tuples() -> None:
    config = _small_plus()
    data = json.loads(config.to_json())
    assert data["expert_channels"] == [4, 8]  # JSON has no tuples
    again = config_from_dict(data)
    assert again.expert_channels == (4, 8) and isinstance(again.expert_channels, tuple)
    assert isinstance(again.gate_channels, tuple)
    assert again == config


def test_with_updates_changes_one_field_and_type_checks() -> None:
    config = _small_plus()
    updated = config.with_updates(num_clusters=5)
    assert updated.num_clusters == 5 and config.num_clusters == 3
    assert updated.latent_dim == config.latent_dim
    with pytest.raises(ConfigError):
        config.with_updates(num_clusters="5")


def test_int_is_accepted_for_a_float_setting() -> None:
    config = MoAPlusConfig.from_dict({"gamma_eps": 1})
    assert config.gamma_eps == 1.0 and isinstance(config.gamma_eps, float)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"model_type": "moa", "num_clusterz": 3}, "num_clusterz"),
        ({"model_type": "moa", "latent_dim": "4"}, "latent_dim"),
        ({"model_type": "moa", "num_clusters": True}, "num_clusters"),
        ({"model_type": "moa", "num_clusters": 2.5}, "num_clusters"),
        ({"model_type": "moa", "expert_channels": [4, -8]}, "expert_channels"),
        ({"model_type": "moa", "expert_channels": 8}, "expert_channels"),
        ({"model_type": "moa_plus", "gamma_eps": "small"}, "gamma_eps"),
        ({"model_type": "moa_plus", "objective": "other"}, "objective"),
        ({"model_type": "moa_plus", "gamma_eps": 0}, "gamma_eps"),
        ({"model_type": "moa", "num_clusters": 0}, "num_clusters"),
        ({"model_type": "moa", "expert_channels": []}, "expert_channels"),
        ({"model_type": "moa", "gate_channels": [4, 4, 4, 4, 4]}, "gate_channels"),
        ({"model_type": "moa", "image_size": 28, "expert_channels": [4, 4, 4]}, "28"),
        ({"model_type": "moa", "image_size": 0}, "image_size"),
        ({"model_type": "moa", "in_channels": 0}, "in_channels"),
        ({"model_type": "nope"}, "nope"),
        ({"num_clusters": 3}, "model_type"),
    ],
)
def test_bad_config_raises_one_line_config_error(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_registry_knows_both_families() -> None:
    assert config_class("moa") is MoAConfig
    assert config_class("moa_plus") is MoAPlusConfig


# --- MoA+ algebra, checked against numpy ------------------------------------------------


def test_minimax_weights_equal_p_times_inverse_gram() -> None:
    expected = P @ np.linalg.inv(P.T @ P)
    got = minimax_weights(_t(P), eps=0.0).numpy()
    assert got.shape == (4, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_minimax_weights_are_biorthogonal_to_p() -> None:
    """Σ_i a_ik p_ij = δ_kj: the weights recover each component exactly (paper 000, [2])."""
    a = minimax_weights(_t(P), eps=0.0).numpy()
    np.testing.assert_allclose(P.T @ a, np.eye(2), atol=1e-12)
    # Some minimax weights are negative, unlike probabilities.
    assert (a < 0).any()


def test_minimax_weights_with_ridge_use_gamma_plus_eps_n() -> None:
    eps = 0.05
    expected = P @ np.linalg.inv(P.T @ P + eps * 4 * np.eye(2))
    np.testing.assert_allclose(minimax_weights(_t(P), eps).numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("n", [4, 8, 32])
def test_gram_ridge_scales_with_batch_size(n: int) -> None:
    rng = np.random.default_rng(n)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    eps = 0.01
    gamma = gram_matrix(_t(p), eps).numpy()
    np.testing.assert_allclose(gamma - p.T @ p, eps * n * np.eye(3), atol=1e-12)


def test_bound_loss_matches_eigenvalue_formula() -> None:
    """‖Γ⁻¹‖_F · ‖(Σ_i p_ik e_ik)_k‖₂ with ‖Γ⁻¹‖_F = sqrt(Σ_k 1/λ_k²) (paper 000)."""
    for eps in (0.0, 0.01):
        gamma = P.T @ P + eps * 4 * np.eye(2)
        lam = np.linalg.eigvalsh(gamma)
        per_expert = (P * E).sum(axis=0)
        expected = np.sqrt((1 / lam**2).sum()) * np.sqrt((per_expert**2).sum())
        got = moa_plus_bound_loss(_t(P), _t(E), eps).item()
        assert got == pytest.approx(expected, rel=1e-10)


def test_bound_loss_bounds_the_weighted_loss_for_two_experts() -> None:
    """The paper's inequality Σ a_ik e_ik ≤ bound, for its M = 2 on random gates and errors.

    For M = 2 the off-diagonal of Γ⁻¹ is −Γ_12/det Γ ≤ 0, so only the diagonal terms can
    add up, and Cauchy–Schwarz bounds those. (For M ≥ 3 it can fail: P rows (0,0,1),
    (0,.5,.5), (.5,.5,0) with a single error e_11 = 1 give weighted 1, bound 0.)
    """
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = rng.dirichlet([0.5, 0.5], size=10)
        e = rng.random((10, 2))
        weighted = moa_plus_weighted_loss(_t(p), _t(e), 1e-3).item()
        bound = moa_plus_bound_loss(_t(p), _t(e), 1e-3).item()
        assert weighted <= bound + 1e-12


def test_weighted_loss_is_sum_of_minimax_weighted_errors() -> None:
    eps = 0.01
    a = P @ np.linalg.inv(P.T @ P + eps * 4 * np.eye(2))
    expected = (a * E).sum()
    assert moa_plus_weighted_loss(_t(P), _t(E), eps).item() == pytest.approx(expected, rel=1e-10)


def test_bound_loss_punishes_collapse() -> None:
    """Same errors everywhere: a gate that sends everyone to expert 0 costs far more."""
    errors = np.full((8, 2), 0.1)
    balanced = np.array([[0.95, 0.05], [0.05, 0.95]] * 4)
    collapsed = np.array([[0.95, 0.05]] * 8)
    b = moa_plus_bound_loss(_t(balanced), _t(errors), 1e-3).item()
    c = moa_plus_bound_loss(_t(collapsed), _t(errors), 1e-3).item()
    assert c > 10 * b
    # Plain MoA cannot tell the two apart: its loss is the same for both.
    assert moa_loss(_t(balanced), _t(errors)).item() == pytest.approx(
        moa_loss(_t(collapsed), _t(errors)).item()
    )


def test_bound_loss_of_balanced_one_hot_gate_is_m_times_error() -> None:
    """Γ = n/M·I for a balanced one-hot gate, so the bound is M × the (common) error."""
    m, n, err = 3, 9, 0.2
    p = np.eye(m)[np.arange(n) % m]
    e = np.full((n, m), err)
    assert moa_plus_bound_loss(_t(p), _t(e), 0.0).item() == pytest.approx(m * err, rel=1e-10)


def test_bound_loss_gradient_is_finite_when_eigenvalues_coincide() -> None:
    p = torch.tensor([[0.8, 0.2], [0.2, 0.8]] * 3, dtype=torch.float64, requires_grad=True)
    e = torch.full((6, 2), 0.3, dtype=torch.float64)
    moa_plus_bound_loss(p, e, 1e-3).backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_moa_loss_on_a_hand_example() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    e = np.array([[2.0, 4.0], [6.0, 8.0]])
    # Sample 1: 1·2 = 2; sample 2: 0.5·6 + 0.5·8 = 7; mean = 4.5.
    assert moa_loss(_t(p), _t(e)).item() == pytest.approx(4.5)


def test_reconstruction_errors_are_mean_squared_per_expert() -> None:
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.zeros(2, 3, 1, 2, 2)
    recon[:, 1] = 1.0  # every pixel off by 1 → mean squared error 1
    recon[0, 2, 0, 0, 0] = 2.0  # one pixel of four off by 2 → 4 / 4 = 1
    errors = reconstruction_errors(x, recon)
    assert errors.shape == (2, 3)
    torch.testing.assert_close(errors, torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]]))


# --- the module -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_type", "objective"), [("moa", None), ("moa_plus", "bound"), ("moa_plus", "weighted")]
)
def test_forward_loss_is_the_configured_objective(model_type: str, objective: str | None) -> None:
    extra = {} if objective is None else {"objective": objective, "gamma_eps": 0.01}
    config = config_class(model_type).from_dict(
        {"num_clusters": 3, "latent_dim": 4, "expert_channels": [4, 8], **extra}
    )
    torch.manual_seed(0)
    model = build_model(config)
    x = torch.rand(10, 1, 16, 16)
    out = model(x)
    assert out.gate_probs.shape == (10, 3)
    torch.testing.assert_close(out.gate_probs.sum(1), torch.ones(10))
    assert out.reconstructions.shape == (10, 3, 1, 16, 16)
    assert out.latents.shape == (10, 3 * 4)

    p = out.gate_probs.detach().double().numpy()
    recon = out.reconstructions.detach().double().numpy()
    e = ((recon - x.double().numpy()[:, None]) ** 2).reshape(10, 3, -1).mean(2)
    if model_type == "moa":
        expected = (p * e).sum(1).mean()
    else:
        gamma = p.T @ p + 0.01 * 10 * np.eye(3)
        if objective == "bound":
            lam = np.linalg.eigvalsh(gamma)
            expected = np.sqrt((1 / lam**2).sum()) * np.linalg.norm((p * e).sum(0))
        else:
            expected = (p @ np.linalg.inv(gamma) * e).sum()
    assert out.loss.item() == pytest.approx(expected, rel=1e-4)
    assert out.loss_terms["reconstruction"].item() == pytest.approx((p * e).sum(1).mean(), rel=1e-4)

    out.loss.backward()
    assert model.gate.net[0].weight.grad.abs().sum() > 0
    assert model.experts.encoder[0].weight.grad.abs().sum() > 0
