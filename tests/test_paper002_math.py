"""Paper 002's math by hand (spec §5.1, checks 1–7, 9, 10): E4's Bayes rule, VaDE's latent
terms, Gaussian and categorical KLs, the relaxed prior, Gumbel-softmax (E7), the MoE
likelihood and prediction, DMVAE's loss bookkeeping and the regression shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from moa_core.blocks.gated_experts import AffineExperts, gated_prediction, mixture_nll
from moa_core.blocks.gaussian_mixture import (
    categorical_kl_to_uniform,
    gaussian_kl,
    log_responsibilities,
    relaxed_prior,
    vade_latent_terms,
)
from moa_core.blocks.noise import SeededNoise, gumbel_softmax
from moa_core.models.dmvae import DMVAE, DMVAEConfig


def _gamma(z: float, pi: tuple, mu: tuple, var: tuple) -> torch.Tensor:
    """γ of E4 for one 1-D sample ẑ and a K-cluster prior with the given π, μ, σ²."""
    log_pi = torch.tensor(pi).log()
    means = torch.tensor(mu).reshape(-1, 1)
    logvars = torch.tensor(var).log().reshape(-1, 1)
    return log_responsibilities(torch.tensor([[z]]), log_pi, means, logvars).exp()[0]


# --- 1. E4: q(c|x) = P[c] P[ẑ|c] / Σ_c' P[c'] P[ẑ|c'] -----------------------------------


@pytest.mark.parametrize(
    "z,pi,mu,var,expected",
    [
        (0.0, (0.5, 0.5), (-1.0, 1.0), (1.0, 1.0), (0.5, 0.5)),
        (1.0, (0.5, 0.5), (-1.0, 1.0), (1.0, 1.0), (0.1192029, 0.8807971)),  # σ(∓2)
        (0.0, (0.2, 0.8), (-1.0, 1.0), (1.0, 1.0), (0.2, 0.8)),
        (2.0, (0.5, 0.5), (0.0, 0.0), (1.0, 4.0), (0.3085616, 0.6914384)),
    ],
)
def test_e4_responsibilities_match_the_hand_values(
    z: float, pi: tuple, mu: tuple, var: tuple, expected: tuple
) -> None:
    torch.testing.assert_close(_gamma(z, pi, mu, var), torch.tensor(expected), atol=1e-6, rtol=0)


def test_e4_rows_sum_to_one_and_ignore_a_common_constant() -> None:
    """Adding one constant to every log P[c]P[z|c] (here via log π) leaves γ unchanged; a far
    ẑ (log densities near −5000) still gives finite responsibilities (log space)."""
    torch.manual_seed(0)
    z, means, logvars = torch.randn(6, 3) * 100, torch.randn(4, 3), torch.randn(4, 3) * 0.1
    log_pi = torch.tensor([0.1, 0.2, 0.3, 0.4]).log()
    log_gamma = log_responsibilities(z, log_pi, means, logvars)
    assert torch.isfinite(log_gamma).all()
    torch.testing.assert_close(log_gamma.exp().sum(1), torch.ones(6))
    shifted = log_responsibilities(z, log_pi + 123.0, means, logvars)
    torch.testing.assert_close(shifted, log_gamma)


# --- 2. VaDE's z-part -------------------------------------------------------------------


def test_vade_terms_vanish_when_the_posterior_is_cluster_k() -> None:
    """γ one-hot at k, μ̃ = μ_k, σ̃² = σ²_k: Gaussian part 0, cluster part −log π_k."""
    means = torch.tensor([[0.0, 1.0], [2.0, -3.0], [5.0, 5.0]])
    logvars = torch.tensor([[0.0, 0.5], [-1.0, 0.3], [0.2, 0.2]])
    log_pi = torch.tensor([0.2, 0.5, 0.3]).log()
    log_gamma = torch.tensor([[-1e4, 0.0, -1e4]])  # exp: exactly (0, 1, 0)
    gaussian, cluster = vade_latent_terms(
        means[1:2], logvars[1:2], log_gamma, log_pi, means, logvars
    )
    torch.testing.assert_close(gaussian, torch.zeros(1), atol=1e-6, rtol=0)
    torch.testing.assert_close(cluster, torch.tensor([-math.log(0.5)]))


def test_vade_gaussian_part_is_the_spec_formula() -> None:
    """½ Σ_k γ_k Σ_j [log σ²_kj + σ̃²_j/σ²_kj + (μ̃_j − μ_kj)²/σ²_kj] − ½ Σ_j (1 + log σ̃²_j)."""
    torch.manual_seed(1)
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3) * 0.3
    means, logvars = torch.randn(4, 3), torch.randn(4, 3) * 0.3
    log_gamma = torch.randn(5, 4).log_softmax(1)
    gaussian, _ = vade_latent_terms(mu, logvar, log_gamma, torch.zeros(4), means, logvars)
    var, prior_var = logvar.exp()[:, None], logvars.exp()[None]
    inner = logvars[None] + var / prior_var + (mu[:, None] - means[None]) ** 2 / prior_var
    expected = 0.5 * (log_gamma.exp()[..., None] * inner).sum((1, 2))
    expected = expected - 0.5 * (1 + logvar).sum(1)
    torch.testing.assert_close(gaussian, expected)


# --- 3. Gaussian KL ---------------------------------------------------------------------


def test_gaussian_kl_hand_values() -> None:
    zeros, ones = torch.zeros(3), torch.ones(3)
    assert gaussian_kl(zeros, zeros, ones, zeros).item() == pytest.approx(0.5 * 3)
    mu, logvar = torch.tensor([0.3, -2.0]), torch.tensor([0.7, -1.2])
    assert gaussian_kl(mu, logvar, mu, logvar).item() == pytest.approx(0.0, abs=1e-7)


# --- 4. Relaxed prior P[z|ζ] ------------------------------------------------------------


def test_relaxed_prior_at_a_one_hot_is_the_cluster_prior() -> None:
    torch.manual_seed(2)
    means, logvars = torch.randn(4, 3), torch.randn(4, 3)
    zeta = F.one_hot(torch.tensor([2, 0]), 4).float()
    mean, logvar = relaxed_prior(zeta, means, logvars)
    torch.testing.assert_close(mean, means[[2, 0]], rtol=0, atol=0)
    torch.testing.assert_close(logvar, logvars[[2, 0]], rtol=0, atol=0)
    mu, q_logvar = torch.randn(2, 3), torch.randn(2, 3)
    direct = gaussian_kl(mu, q_logvar, means[[2, 0]], logvars[[2, 0]])
    torch.testing.assert_close(gaussian_kl(mu, q_logvar, mean, logvar), direct)


def test_low_temperature_samples_are_nearly_one_hot() -> None:
    """τ = 1e-3: max_k ζ_k > 0.999 for at least 99 % of samples."""
    torch.manual_seed(3)
    noise = SeededNoise()
    log_alpha = torch.randn(10_000, 5).log_softmax(1)
    zeta = gumbel_softmax(log_alpha, 1e-3, noise.gumbel_like(log_alpha))
    assert (zeta.max(1).values > 0.999).float().mean() >= 0.99


# --- 5. Gumbel-softmax (E7) -------------------------------------------------------------


def test_gumbel_softmax_without_noise_is_a_tempered_softmax() -> None:
    pi = torch.tensor([[0.1, 0.2, 0.7]])
    torch.testing.assert_close(gumbel_softmax(pi.log(), 1.0, torch.zeros(1, 3)), pi)
    logits = torch.tensor([[1.0, -0.5, 2.0, 0.0]])
    cold = gumbel_softmax(logits, 0.2, torch.zeros(1, 4))
    torch.testing.assert_close(cold, (logits / 0.2).softmax(1))


def test_gumbel_softmax_is_torchs_formula_with_a_seeded_generator() -> None:
    """The same seed gives F.gumbel_softmax's sample (it draws from torch's global RNG)."""
    logits = torch.tensor([[1.0, -0.5, 2.0, 0.0], [0.3, 0.3, -1.0, 4.0]])
    torch.manual_seed(7)
    noise = SeededNoise()
    torch.manual_seed(noise.seed)
    expected = F.gumbel_softmax(logits, tau=0.2)
    ours = gumbel_softmax(logits, 0.2, noise.gumbel_like(logits))
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(ours.sum(1), torch.ones(2))


def test_gumbel_max_frequencies_match_pi() -> None:
    """Over 10⁵ draws argmax(log α + G) picks k with frequency π_k ± 0.01."""
    torch.manual_seed(4)
    pi = torch.tensor([0.05, 0.15, 0.3, 0.5])
    gumbel = SeededNoise().gumbel_like(torch.zeros(100_000, 4))
    picks = (pi.log() + gumbel).argmax(1)
    frequencies = torch.bincount(picks, minlength=4).float() / len(picks)
    torch.testing.assert_close(frequencies, pi, atol=0.01, rtol=0)


# --- 6. Categorical KL ------------------------------------------------------------------


def test_categorical_kl_to_uniform() -> None:
    torch.manual_seed(5)
    log_q = torch.randn(3, 10).log_softmax(1)
    entropy = -(log_q.exp() * log_q).sum(1)
    torch.testing.assert_close(categorical_kl_to_uniform(log_q), math.log(10) - entropy)
    uniform = torch.full((1, 10), -math.log(10))
    assert categorical_kl_to_uniform(uniform).item() == pytest.approx(0.0, abs=1e-6)
    for k, value in ((10, 2.302585), (5, 1.609438)):
        one_hot = torch.tensor([[1000.0] + [0.0] * (k - 1)]).log_softmax(1)
        assert categorical_kl_to_uniform(one_hot).item() == pytest.approx(value, abs=1e-6)


# --- 7. MoE likelihood and prediction ---------------------------------------------------


def test_mixture_nll_and_prediction_hand_values() -> None:
    """g = (.5, .5), ŷ_k = (0, 2), y = 1: NLL 0.5 (1.4189385 with ½ log 2π), ŷ = 1."""
    gates = torch.tensor([[0.5, 0.5]])
    outputs = torch.tensor([[[0.0, 2.0]]])  # [B, out, K]
    nll = mixture_nll(gates.log(), outputs, torch.tensor([[1.0]]))
    assert nll.item() == pytest.approx(0.5)
    assert nll.item() + 0.5 * math.log(2 * math.pi) == pytest.approx(1.4189385)
    assert gated_prediction(gates, outputs).item() == pytest.approx(1.0)


def test_one_hot_gate_on_the_true_maps_predicts_exactly() -> None:
    """Per-class maps y_i = W_{c_i} x_i + b_{c_i}; experts holding them, gated one-hot on c_i,
    give test error 0 (spec §5.1, check 7)."""
    torch.manual_seed(6)
    x, classes = torch.randn(50, 4, dtype=torch.float64), torch.randint(0, 3, (50,))
    true_w, true_b = torch.randn(3, 2, 4, dtype=torch.float64), torch.randn(3, 2).double()
    targets = torch.einsum("nod,nd->no", true_w[classes], x) + true_b[classes]
    experts = AffineExperts(3, 4, 2).double()
    with torch.no_grad():
        experts.weight.copy_(true_w)
        experts.bias.copy_(true_b)
    prediction = gated_prediction(F.one_hot(classes, 3).double(), experts(x))
    assert ((prediction - targets) ** 2).sum(1).mean().item() < 1e-24


# --- 9. DMVAE loss bookkeeping; 10. shapes ----------------------------------------------


@pytest.mark.parametrize("kind", ["image", "points"])
def test_dmvae_loss_is_the_sum_of_three_non_negative_terms(kind: str) -> None:
    torch.manual_seed(8)
    small = {"encoder_units": (16,), "decoder_units": (16,), "gate_units": (16,)}
    config = DMVAEConfig(input_kind=kind, in_features=2, num_clusters=5, latent_dim=3, **small)
    x = torch.rand(12, 1, 16, 16) if kind == "image" else torch.randn(12, 2)
    out = DMVAE(config).train()(x)
    terms = out.loss_terms
    assert set(terms) == {"reconstruction", "kl_z", "kl_c"}
    assert all(value.item() >= 0 for value in terms.values())
    torch.testing.assert_close(out.loss, terms["reconstruction"] + terms["kl_z"] + terms["kl_c"])


def test_gate_expert_and_prediction_shapes() -> None:
    """Gate (B, K); expert outputs (B, out, K); prediction (B, out)."""
    experts = AffineExperts(5, 7, 3)
    outputs = experts(torch.randn(4, 7))
    gates = torch.randn(4, 5).softmax(1)
    assert gates.shape == (4, 5) and outputs.shape == (4, 3, 5)
    assert gated_prediction(gates, outputs).shape == (4, 3)
    assert mixture_nll(gates.log(), outputs, torch.randn(4, 3)).shape == (4,)
