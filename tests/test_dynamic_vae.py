"""Paper 001: the dynamic convolutional encoder/decoder (Sec. III.C, Eq. 7–9), the PCA latent
dimension finder (Sec. III.B) and the MoE-VAE with its entropy terms (Eq. 3–6)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import TINY_PIPELINE

from moa_core.analysis.cluster_finder import find_clusters, umap_neighbors
from moa_core.analysis.latent_size import (
    CLUSTERING,
    RECONSTRUCTION,
    explained_variance,
    find_latent_size,
)
from moa_core.blocks.dynamic_conv import DynamicDecoder, DynamicEncoder, block_plan
from moa_core.estimators import MoEVAE
from moa_core.estimators.data import as_dataset
from moa_core.metrics import clustering_accuracy
from moa_core.models import ConfigError, build_model, config_class
from moa_core.models.moe_vae import batch_entropy_term, sample_entropy
from moa_core.train.pretraining import PretrainSettings, find_size
from moa_core.train.run import train_model, training_samples


@pytest.mark.parametrize(
    "size,blocks,general,filters",
    [
        (16, 3, 2, (16, 32, 64)),
        (32, 4, 2, (32, 64, 128, 256)),
        (64, 5, 3, (64, 128, 256, 512, 1024)),
        (28, 4, 2, (32, 64, 128, 256)),  # padded to 32 (paper 001, Sec. IV.A)
    ],
)
def test_depth_and_filters_follow_the_image_size(size, blocks, general, filters) -> None:
    plan = block_plan(size)
    assert plan.blocks == blocks == int(np.log2(plan.image_size)) - 1  # Eq. 7
    assert plan.general == general == int(np.ceil(blocks / 2))  # Eq. 8
    assert plan.specific == blocks - general  # Eq. 9
    assert plan.filters == filters
    assert block_plan(size, base_filters=8).filters[0] == 8


@pytest.mark.parametrize("size", [16, 28, 32])
def test_encoder_ends_at_two_by_two_and_decoder_returns_the_image_size(size) -> None:
    torch.manual_seed(0)
    plan = block_plan(size, base_filters=4)
    encoder, decoder = DynamicEncoder(1, plan), DynamicDecoder(1, plan, size)
    features = encoder(torch.rand(3, 1, size, size))
    assert features.shape == (3, 1, plan.filters[-1] * 2 * 2) == (3, 1, encoder.out_features)
    images = decoder(features).detach()
    assert images.shape == (3, 1, 1, size, size)
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 * plan.blocks  # two convolutions per block, each normalized


def test_a_bank_of_experts_keeps_every_expert_to_its_own_channels() -> None:
    torch.manual_seed(0)
    plan = block_plan(16, base_filters=4)
    decoder = DynamicDecoder(1, plan, 16, experts=3).eval()
    features = torch.randn(2, 3, plan.filters[-1] * 4)
    changed = features.clone()
    changed[:, 0] += 1.0  # only expert 1's features move
    before, after = decoder(features), decoder(changed)
    assert not torch.allclose(before[:, 0], after[:, 0])
    torch.testing.assert_close(before[:, 1:], after[:, 1:])
    assert DynamicEncoder(1, plan, experts=3)(torch.rand(2, 1, 16, 16)).shape == (2, 3, 64)


def test_the_finder_recovers_a_five_dimensional_subspace_of_r100() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(100, 5)))[0].T  # 5 orthonormal directions in R^100
    codes = rng.normal(size=(2000, 5)) @ basis + 0.01 * rng.normal(size=(2000, 100))
    for threshold in (CLUSTERING, RECONSTRUCTION):
        found = find_latent_size(codes, threshold)
        assert found.size == 5
        assert found.cumulative[3] < threshold <= found.cumulative[4]
    ratios = explained_variance(codes)
    assert ratios.sum() == pytest.approx(1.0) and np.all(np.diff(ratios) <= 1e-12)
    with pytest.raises(ValueError):
        find_latent_size(codes, 1.5)


def test_entropy_terms_match_hand_computed_values() -> None:
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    # S = −(1/2)[2 · 0.5 log 0.5 + 1 log 1] = (1/2) log 2 (paper 001, Eq. 4)
    assert float(sample_entropy(p)) == pytest.approx(0.5 * np.log(2))
    # p̂ = (0.75, 0.25): B = 0.75 log 0.75 + 0.25 log 0.25 (Eq. 5)
    assert float(batch_entropy_term(p)) == pytest.approx(0.75 * np.log(0.75) + 0.25 * np.log(0.25))


def test_experts_with_different_latent_sizes_share_one_bank() -> None:
    torch.manual_seed(0)
    config = config_class("moe_vae").from_dict(
        {"num_clusters": 3, "latent_sizes": [2, 4, 6], "base_filters": 4}
    )
    model = build_model(config)
    x = torch.rand(5, 1, 16, 16)
    out = model(x)
    assert out.reconstructions.shape == (5, 3, 1, 16, 16) and out.gate_probs.shape == (5, 3)
    expected = out.loss_terms["reconstruction"] + 100 * out.loss_terms["sample_entropy"]
    torch.testing.assert_close(out.loss, expected + out.loss_terms["batch_entropy"])
    mu, _ = model.encode(x)
    assert (mu[:, 0, 2:] == 0).all() and (mu[:, 1, 4:] == 0).all()  # padded dims stay zero
    model.eval()
    z = torch.randn(1, 3, 6)
    noisy = z.clone()
    noisy[:, 0, 2:] += 5.0  # beyond expert 1's two dimensions: no effect
    torch.testing.assert_close(model.decode(z), model.decode(noisy))
    with pytest.raises(ConfigError, match="one per expert"):
        config_class("moe_vae").from_dict({"num_clusters": 3, "latent_sizes": [2, 4]})


def test_moe_vae_trains_with_a_fixed_k_on_digits() -> None:
    losses: dict[int, list[float]] = {}

    def heard(event) -> None:
        if event.kind == "batch":
            losses.setdefault(event.epoch, []).append(event.loss)

    run = train_model(
        "moe_vae",
        "digits",
        {"num_clusters": 4, "latent_sizes": [4], "base_filters": 4, "epochs": 3,
         "max_samples": 300, "device": "cpu"},
        [heard],
    )  # fmt: skip
    assert run.result.status == "finished" and run.result.epochs_done == 3
    assert 1 <= run.result.metrics["clusters_used"] <= 4
    assert np.mean(losses[3]) < np.mean(losses[1])  # the optimizer steps: L = R + αS + βB falls


def test_the_cluster_finder_refuses_too_few_samples_in_one_line() -> None:
    with pytest.raises(ValueError, match="at least 10 samples, got 4"):
        find_clusters(np.random.default_rng(0).normal(size=(4, 3)))


def test_umap_neighbours_follow_eq_10() -> None:
    assert umap_neighbors(7291) == 100  # USPS: 7291 / 300 = 24, so the floor of 100
    assert umap_neighbors(60_000) == 200  # MNIST
    assert umap_neighbors(50) == 49  # never more than the other samples


@pytest.mark.slow
def test_hdbscan_finds_the_number_of_separated_groups_itself() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(4, 10))
    codes = np.concatenate([c + rng.normal(size=(150, 10)) for c in centres])
    # The paper's HDBSCAN (eom, size 5); the default leaf selection splits Gaussian blobs.
    found = find_clusters(codes, n_neighbors=30, min_cluster_size=5, selection="eom")
    assert found.k == 4 and found.labeled_fraction > 0.9
    np.testing.assert_allclose(found.soft.sum(1), 1.0)
    truth = np.repeat(np.arange(4), 150)
    labeled = found.labels >= 0
    assert clustering_accuracy(truth[labeled], found.labels[labeled]) == 1.0


@pytest.mark.slow
def test_the_pretraining_pipeline_runs_end_to_end_on_a_small_subset() -> None:
    from moa_core.train.pipeline_record import PipelineRecord
    from moa_core.train.pretraining import (
        pretrain_manager,
        search_clusters,
        step_key,
        train_mixture,
    )
    from moa_core.train.run import prepare

    settings = PretrainSettings(
        start_latent=20, vae_epochs=2, manager_epochs=3, base_filters=4, max_samples=300,
        n_neighbors=15, min_cluster_size=10, device="cpu",
    )  # fmt: skip
    epochs: list[int] = []
    size = find_size("digits", settings, [lambda e: epochs.append(e.epoch)])
    assert sorted(set(epochs)) == [0, 1, 2]  # the VAE's start and its two epochs, heard
    assert size.codes.shape == (300, 20) and len(size.dataset) == 300
    assert 1 <= size.latent.size <= 20 and size.latent.threshold == settings.threshold
    assert size.latent.cumulative[size.latent.size - 1] >= settings.threshold - 1e-9

    search = search_clusters("digits", size, settings)
    assert search.codes.shape == (300, size.latent.size)  # the VAE retrained at that size
    k = search.clusters.k
    assert k >= 1 and search.clusters.embedding.shape == (300, 2)
    assert search.clusters.soft.shape == (300, k)
    np.testing.assert_allclose(search.clusters.soft.sum(1), 1.0, rtol=1e-6)
    assert set(search.seconds) == {"retrained_vae", "clusters"}

    manager = pretrain_manager(size, search, settings)
    assert len(manager.expert_sizes) == k == manager.model_config.num_clusters
    assert all(1 <= s <= 20 for s in manager.expert_sizes)
    assert manager.probs.shape == (300, k)
    np.testing.assert_allclose(manager.probs.sum(1), 1.0, rtol=1e-5)
    record = manager.record
    assert set(record.seconds) == {
        "large_vae", "retrained_vae", "clusters", "latent_sizes", "manager",
    }  # fmt: skip
    assert (
        record.k_found == k
        and record.samples == 300
        and record.latent_sizes == list(manager.expert_sizes)
    )
    assert PipelineRecord.from_dict(record.to_dict()) == record

    # Only the HDBSCAN setting changed: the retrained VAE's codes are clustered again.
    epochs_heard: list[int] = []
    again = search_clusters(
        "digits",
        size,
        replace(settings, min_cluster_size=20),
        [lambda e: epochs_heard.append(e.epoch)],
        reuse=search,
    )
    assert epochs_heard == [] and again.codes is search.codes  # no VAE was trained
    assert again.seconds["retrained_vae"] == search.seconds["retrained_vae"]

    pipeline = train_mixture("digits", manager, settings, {"epochs": 1})
    run = pipeline.run
    assert pipeline.record.seconds["mixture"] == round(run.result.seconds, 2)
    assert run.result.status == "finished" and run.result.epochs_done == 1
    assert run.config.num_clusters == k and run.config.latent_sizes == manager.expert_sizes
    assert run.train_config.lr == 1e-4 and run.train_config.max_samples == 300
    # The mixture starts from the pretrained manager (its experts from their seeded init).
    overrides = {"num_clusters": k, "latent_sizes": list(manager.expert_sizes), "base_filters": 4}
    model, *_ = prepare("moe_vae", "digits", overrides, manager.state)
    for name, value in manager.state.items():
        torch.testing.assert_close(model.state_dict()[name], value)
    with pytest.raises(ConfigError, match="does not have"):
        prepare("moe_vae", "digits", overrides, {"manager.nope": torch.zeros(1)})

    # What a page may keep: the clusters' settings change the "clusters" key, not the "size"
    # one, so the large VAE is not retrained when only HDBSCAN's settings move.
    moved = PretrainSettings(**{**settings.__dict__, "min_cluster_size": 20})
    assert step_key("digits", moved, "size") == step_key("digits", settings, "size")
    assert step_key("digits", moved, "clusters") != step_key("digits", settings, "clusters")
    assert step_key("digits", moved, "manager") != step_key("digits", settings, "manager")


# The estimator's pipeline here, where UMAP is compiled already for the pipeline above.
def test_moe_vae_pretrains_on_an_array_as_on_the_dataset_and_finds_k() -> None:
    """The array feeds the pipeline the samples the spec does (step 1's codes agree); then
    the whole pipeline runs from the estimator and K is the pretraining's.

    Not compared end to end: on these 300 digits HDBSCAN's K flips between 10 and 11 on
    codes that differ by 4e-8, as they do between a process's first run and later ones."""
    images = training_samples("digits", TINY_PIPELINE["max_samples"], seed=0).x.numpy()
    settings = PretrainSettings(**TINY_PIPELINE)
    from_spec = find_size("digits", settings)
    from_array = find_size(as_dataset(images), replace(settings, max_samples=0))
    np.testing.assert_allclose(from_array.codes, from_spec.codes, atol=1e-6)
    options = {k: v for k, v in TINY_PIPELINE.items() if k not in ("max_samples", "device")}
    model = MoEVAE(epochs=1, random_state=0, device="cpu", options=options).fit(images)
    assert model.n_clusters_ == len(model.config_.latent_sizes) >= 2 and model.n_iter_ == 1
    assert model.labels_.shape == (len(images),) and model.labels_.max() < model.n_clusters_
