"""Paper 002's four families as models: shapes on points and 16×16 images, gradients into the
learned prior, seeded noise, checkpoints, VaDE's pretraining switch, DMVAE's τ schedule, the
clusters as generative experts, config errors and a few epochs of training on blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moa_core.blocks.gaussian_mixture import fit_diagonal_mixture, standard_normal_kl
from moa_core.checkpoint import load_checkpoint, save_checkpoint
from moa_core.models import ConfigError, build_model, config_class
from moa_core.models.base import ClusterPrior, GenerativeExperts, ModelConfig
from moa_core.train.run import train_model

FAMILIES = ("vade", "dmvae", "dvmoe", "deep_moe")
K, LATENT, HIDDEN = 3, 3, 16
SMALL = {
    "vade": {"latent_dim": LATENT, "encoder_units": [HIDDEN], "decoder_units": [HIDDEN]},
    "dmvae": {
        "latent_dim": LATENT,
        "encoder_units": [HIDDEN],
        "decoder_units": [HIDDEN],
        "gate_units": [HIDDEN],
    },
    "deep_moe": {"gate_units": [HIDDEN, HIDDEN]},
}
SMALL["dvmoe"] = SMALL["dmvae"]


def _config(model_type: str, kind: str = "points", **extra: object) -> ModelConfig:
    settings = {"input_kind": kind, "in_features": 2, "num_clusters": K, **SMALL[model_type]}
    return config_class(model_type).from_dict({**settings, **extra})


def _inputs(kind: str, n: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if kind == "image":
        return torch.rand(n, 1, 16, 16, generator=generator)
    return torch.randn(n, 2, generator=generator)


def _built(config: ModelConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(config)


def _blob_points(n_per_cluster: int = 100) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    noise = torch.randn(K, n_per_cluster, 2, generator=generator) * 0.3
    return (centres[:, None] + noise).reshape(-1, 2)


# --- forward ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["points", "image"])
@pytest.mark.parametrize("model_type", FAMILIES)
def test_forward_shapes(model_type: str, kind: str) -> None:
    config = _config(model_type, kind, pretrain_epochs=0) if model_type == "vade" else None
    config = config or _config(model_type, kind)
    model, x = _built(config).train(), _inputs(kind)
    targets = torch.randn(6, 1) if config.uses_targets else None
    out = model(x, targets) if config.uses_targets else model(x)
    assert out.gate_probs.shape == out.gate_logits.shape == (6, K)
    torch.testing.assert_close(out.gate_probs.sum(1), torch.ones(6))
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert out.latents.shape == (6, HIDDEN if model_type == "deep_moe" else LATENT)
    if model_type == "deep_moe" or kind == "points":
        assert out.reconstructions is None  # no decoder, or points the live grid cannot draw
    else:
        assert out.reconstructions.shape == (6, 1, 1, 16, 16)
        assert 0 <= out.reconstructions.min() and out.reconstructions.max() <= 1
    if config.uses_targets:
        assert out.predictions.shape == (6, 1) and "regression_nll" in out.loss_terms
        unsupervised = model.eval()(x)  # evaluation and pages call model(x) alone
        assert unsupervised.predictions.shape == (6, 1)
        assert "regression_nll" not in unsupervised.loss_terms
    else:
        assert out.predictions is None


def test_dvmoe_predicts_with_its_gate_and_adds_the_nll() -> None:
    """ŷ = Σ_k q(c=k|x)(W_k x + b_k) with q the c-encoder's softmax, no sampling; the loss is
    the DMVAE part + the batch mean of −log Σ_k q_k N(y | ŷ_k, I) (E10)."""
    model, x = _built(_config("dvmoe")).eval(), _inputs("points")
    y = torch.randn(6, 1)
    out = model(x, y)
    q = model.gate_scores(x).softmax(1)
    outputs = torch.einsum("kod,bd->bok", model.experts.weight, x) + model.experts.bias.T
    torch.testing.assert_close(out.predictions, (outputs * q[:, None]).sum(2))
    nll = -(q.log() - 0.5 * (y[..., None] - outputs).pow(2).sum(1)).logsumexp(1).mean()
    torch.testing.assert_close(out.loss_terms["regression_nll"], nll)
    torch.testing.assert_close(out.loss, model(x).loss + nll)


def test_deep_moe_without_targets_has_zero_loss() -> None:
    out = _built(_config("deep_moe"))(_inputs("points"))
    assert out.loss.item() == 0.0 and out.predictions.shape == (6, 1)


# --- gradients into the prior -----------------------------------------------------------


def test_vade_loss_reaches_pi_means_and_variances_after_pretraining() -> None:
    model = _built(_config("vade", pretrain_epochs=0, learn_weights=True)).train()
    model(_inputs("points")).loss.backward()
    prior = model.prior
    for weight in (prior.weight_logits, prior.means, prior.logvars):
        assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_vade_keeps_pi_fixed_by_default_and_saves_it(tmp_path: Path) -> None:
    config = _config("vade", pretrain_epochs=0)
    model = _built(config).train()
    model(_inputs("points")).loss.backward()
    assert model.prior.weight_logits.grad is None and model.prior.means.grad.abs().sum() > 0
    with torch.no_grad():
        model.prior.weight_logits.copy_(torch.arange(float(K)))  # as a GMM fit would set it
    loaded = load_checkpoint(save_checkpoint(tmp_path / "v.safetensors", model, config, {}))
    torch.testing.assert_close(loaded.model.prior.weight_logits, torch.arange(float(K)))
    assert not loaded.model.prior.weight_logits.requires_grad


def test_vade_pretraining_leaves_the_prior_alone() -> None:
    model = _built(_config("vade", pretrain_epochs=1)).train()
    model(_inputs("points")).loss.backward()
    assert model.prior.means.grad is None and model.prior.weight_logits.grad is None


def test_dmvae_loss_reaches_means_and_variances_with_pi_fixed() -> None:
    model = _built(_config("dmvae")).train()
    model(_inputs("points")).loss.backward()
    assert model.prior.means.grad.abs().sum() > 0 and model.prior.logvars.grad.abs().sum() > 0
    names = {name for name, _ in model.named_parameters()}
    assert "prior.weight_logits" not in names  # π = 1/K, not learned (spec §1.3)


# --- seeded noise -----------------------------------------------------------------------


def _seeded_loss(config: ModelConfig, disturb: bool) -> float:
    """The training loss of a model built from seed 3, after the global RNG was (or was not)
    used between building and the forward pass, as another job or page would."""
    model = _built(config, seed=3).train()
    if disturb:
        torch.rand(1000)
    x = _inputs(getattr(config, "input_kind", "image"))
    targets = torch.ones(len(x), 1) if config.uses_targets else None
    out = model(x, targets) if config.uses_targets else model(x)
    return float(out.loss.detach())


@pytest.mark.parametrize("model_type", [*FAMILIES, "moe_vae"])
def test_a_seeded_model_repeats_its_loss_whatever_ran_before(model_type: str) -> None:
    if model_type == "moe_vae":  # the reparametrization noise fix (moe_vae.py)
        config = config_class("moe_vae").from_dict({"num_clusters": 2, "base_filters": 4})
    else:
        stage = {"pretrain_epochs": 0} if model_type == "vade" else {}  # the mixture loss
        config = _config(model_type, "image", **stage)
    assert _seeded_loss(config, disturb=False) == _seeded_loss(config, disturb=True)


def test_training_noise_changes_between_steps() -> None:
    """The seeded stream advances: two training forwards differ, evaluation repeats."""
    model, x = _built(_config("dmvae")), _inputs("points")
    assert model.train()(x).loss != model(x).loss
    assert model.eval()(x).loss == model(x).loss


# --- checkpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", FAMILIES)
def test_checkpoint_round_trip(model_type: str, tmp_path: Path) -> None:
    config = _config(model_type, "image")
    model, x = _built(config).eval(), _inputs("image")
    path = save_checkpoint(tmp_path / f"{model_type}.safetensors", model, config, {})
    loaded = load_checkpoint(path)
    assert loaded.config == config
    before, after = model(x), loaded.model(x)
    torch.testing.assert_close(after.gate_probs, before.gate_probs, rtol=0, atol=0)
    torch.testing.assert_close(after.loss, before.loss, rtol=0, atol=0)


def test_checkpoints_remember_the_vade_stage_and_the_temperature(tmp_path: Path) -> None:
    vade_config = _config("vade", pretrain_epochs=2)
    vade = _built(vade_config)
    early = load_checkpoint(save_checkpoint(tmp_path / "a.safetensors", vade, vade_config, {}))
    vade.begin_epoch(3, _blob_points())
    late = load_checkpoint(save_checkpoint(tmp_path / "b.safetensors", vade, vade_config, {}))
    assert early.model.is_pretraining and not late.model.is_pretraining
    torch.testing.assert_close(late.model.prior.means, vade.prior.means, rtol=0, atol=0)
    dmvae_config = _config("dmvae", tau=1.0, tau_min=0.5, tau_anneal_rate=0.1)
    dmvae = _built(dmvae_config)
    dmvae.begin_epoch(3, _blob_points())
    saved = save_checkpoint(tmp_path / "c.safetensors", dmvae, dmvae_config, {})
    assert float(load_checkpoint(saved).model.temperature) == pytest.approx(np.exp(-0.2))


# --- VaDE pretraining and DMVAE's τ -----------------------------------------------------


def test_vade_ends_pretraining_with_the_gmm_fit_of_sampled_codes() -> None:
    model, x = _built(_config("vade", pretrain_epochs=2)).eval(), _blob_points()
    initial_means = model.prior.means.detach().clone()
    for epoch in (1, 2):
        model.begin_epoch(epoch, x)
        out = model(x)
        assert model.is_pretraining and set(out.loss_terms) == {"reconstruction", "kl_z"}
        mu, logvar = model.vae.encode(x)
        torch.testing.assert_close(out.loss_terms["kl_z"], standard_normal_kl(mu, logvar).mean())
    torch.testing.assert_close(model.prior.means, initial_means, rtol=0, atol=0)
    state = model.noise.generator(x.device).get_state()
    with torch.no_grad():  # the codes begin_epoch draws next: same generator state
        codes = model.sampled_codes(x)
        mu, logvar = model.vae.encode(x)
    assert not torch.allclose(codes, mu)  # sampled, not the means
    fit = fit_diagonal_mixture(codes.numpy(), K, 5, model.noise.seed)
    model.noise.generator(x.device).set_state(state)
    model.begin_epoch(3, x)
    assert not model.is_pretraining
    prior = model.prior
    torch.testing.assert_close(prior.log_weights().exp(), torch.tensor(fit.weights).float())
    torch.testing.assert_close(prior.means, torch.tensor(fit.means).float())
    torch.testing.assert_close(prior.logvars.exp(), torch.tensor(fit.variances).float())
    assert set(model(x).loss_terms) == {"reconstruction", "kl_z", "kl_c"}
    fitted = prior.means.detach().clone()
    model.begin_epoch(4, x)  # fitted once only
    torch.testing.assert_close(prior.means, fitted, rtol=0, atol=0)


def test_vade_without_pretraining_keeps_its_random_prior() -> None:
    model = _built(_config("vade", pretrain_epochs=0))
    means = model.prior.means.detach().clone()
    model.begin_epoch(1, _blob_points())
    assert not model.is_pretraining
    torch.testing.assert_close(model.prior.means, means, rtol=0, atol=0)


def test_dmvae_anneals_to_the_papers_temperature_and_dvmoe_keeps_it_fixed() -> None:
    annealed = _built(_config("dmvae"))
    assert float(annealed.temperature) == pytest.approx(1.0)
    temperatures = [annealed.config.temperature(e) for e in (1, 3, 17, 18, 50)]
    assert [round(t, 4) for t in temperatures] == [1.0, 0.8187, 0.2019, 0.2, 0.2]
    annealed.begin_epoch(50, _blob_points())
    assert float(annealed.temperature) == pytest.approx(0.2)
    dvmoe = _config("dvmoe")
    assert {dvmoe.temperature(e) for e in (1, 50)} == {0.2}
    config = _config("dmvae", tau=1.0, tau_min=0.5, tau_anneal_rate=0.1)
    assert [round(config.temperature(e), 4) for e in (1, 3, 20)] == [1.0, 0.8187, 0.5]


# --- clusters as generative experts -----------------------------------------------------


@pytest.mark.parametrize("model_type", ["vade", "dmvae"])
def test_clusters_are_generative_experts_with_their_own_prior(model_type: str) -> None:
    model, x = _built(_config(model_type, "image")).eval(), _inputs("image", 4)
    assert isinstance(model, GenerativeExperts) and isinstance(model, ClusterPrior)
    assert not model.variational  # codes follow N(μ_k, σ²_k), not N(0, I)
    assert model.expert_latent_sizes == (LATENT,) * K
    codes = model.expert_codes(x)
    assert codes.shape == (4, K, LATENT)
    torch.testing.assert_close(codes[:, 1], model.vae.encode(x)[0])
    images = model.decode_codes(codes)
    assert images.shape == (4, K, 1, 16, 16) and 0 <= images.min() and images.max() <= 1
    torch.testing.assert_close(images[:, 0], model(x).reconstructions[:, 0])
    with torch.no_grad():
        model.prior.logvars.copy_(torch.linspace(-2.0, 1.0, K * LATENT).reshape(K, LATENT))
    mean, std = model.cluster_prior_moments()
    samples = model.sample_cluster_codes(20_000, torch.Generator().manual_seed(0)).detach()
    assert samples.shape == (20_000, K, LATENT)
    torch.testing.assert_close(samples.mean(0), mean.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(samples.std(0), std.detach(), atol=0, rtol=0.03)


# --- config errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_type,key,value",
    [
        ("vade", "pretrain_epochs", -1),
        ("vade", "gmm_n_init", 0),
        ("vade", "latent_dim", 0),
        ("vade", "input_kind", "video"),
        ("dmvae", "tau", 0.0),
        ("dmvae", "tau", -1.0),
        ("dmvae", "tau_min", 1.5),  # above the first τ, 1.0
        ("dmvae", "tau_anneal_rate", -0.1),
        ("dmvae", "gate_units", []),
        ("dmvae", "num_clusters", 0),
        ("dvmoe", "output_dim", 0),
        ("deep_moe", "gate_units", []),
        ("deep_moe", "output_dim", 0),
        ("deep_moe", "in_features", 0),
    ],
)
def test_bad_config_values_raise_one_line(model_type: str, key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        config_class(model_type).from_dict({key: value})
    message = str(caught.value)
    assert message.startswith(f"{model_type}: ") and "\n" not in message


# --- a few epochs on blobs --------------------------------------------------------------


@pytest.mark.parametrize("model_type", FAMILIES)
def test_a_few_epochs_on_blobs_lower_the_loss(model_type: str) -> None:
    """Through the Trainer: the last epoch's mean batch loss is below that of the first epoch
    of the same objective (VaDE's second epoch, after its one pretraining epoch)."""
    losses: dict[int, list[float]] = {}

    def record(event) -> None:
        if event.kind == "batch":
            losses.setdefault(event.epoch, []).append(event.loss)

    settings = {**SMALL[model_type], "num_clusters": 4, "epochs": 6, "max_samples": 400}
    settings.update(batch_size=50, device="cpu", lr=5e-3)
    if model_type == "vade":
        settings["pretrain_epochs"] = 1
    run = train_model(model_type, "blobs", settings, callbacks=[record])
    assert run.result.status == "finished"
    first = 2 if model_type == "vade" else 1
    assert np.mean(losses[6]) < np.mean(losses[first])
    if model_type == "vade":
        assert not run.model.is_pretraining  # the Trainer called begin_epoch
