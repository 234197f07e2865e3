"""What each expert generates (paper 001, Sec. IV.E): priors, samples, latent walks,
interpolations and the all-ones probe for MoE-VAE (N(0, I)) and MoA (a fitted Gaussian); a
model without decoding experts is refused. Also the pipeline's and the walk's figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import TINY_ROUTING

from moa_core.analysis.generation import (
    WALK_RANGE,
    NotGenerative,
    all_ones_probe,
    decode_expert,
    expert_samples,
    interpolation,
    latent_prior,
    latent_walk,
    prior_name,
    walk_values,
)
from moa_core.models import build_model, config_class
from moa_core.models.base import GenerativeExperts
from moa_core.train.pipeline_record import PipelineRecord
from moa_core.viz.generation import FRAME_MS, walk_figure
from moa_core.viz.pretraining import (
    NOISE_COLOR,
    cluster_figure,
    cluster_names,
    confusion_figure,
    explained_variance_figure,
    paper_tables,
)

SIZES = (2, 4, 3)


@pytest.fixture(scope="module")
def vae() -> torch.nn.Module:
    torch.manual_seed(0)
    config = config_class("moe_vae")(
        in_channels=1, image_size=16, num_clusters=3, latent_sizes=SIZES, base_filters=4
    )
    return build_model(config).eval()


def _autoencoders(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = config_class(model_type)(
        in_channels=1,
        image_size=16,
        num_clusters=3,
        latent_dim=4,
        expert_channels=(4, 8),
        gate_channels=(4, 8),
    )
    return build_model(config).eval()


@pytest.fixture(scope="module")
def moa() -> torch.nn.Module:
    return _autoencoders("moa")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(params=["moe_vae", "moa", "moa_plus"])
def model_and_prior(request, vae, moa, images):
    models = {"moe_vae": vae, "moa": moa}
    model = models.get(request.param) or _autoencoders(request.param)
    return model, latent_prior(model, images)


def _decode(model, z: torch.Tensor) -> np.ndarray:
    """The model's own decoder on codes [B, K, L]: every expert's images [B, K, C, H, W]."""
    with torch.no_grad():
        return model.decode_codes(z).numpy()


def _codes(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.expert_codes(x)


# --- priors -----------------------------------------------------------------------------


def test_the_vae_prior_is_a_masked_standard_normal(vae) -> None:
    assert isinstance(vae, GenerativeExperts) and vae.variational
    prior = latent_prior(vae)  # no data needed
    assert prior.sizes == SIZES and not prior.fitted
    assert prior.mean.shape == prior.std.shape == (3, 4)
    np.testing.assert_array_equal(prior.mean, 0.0)
    np.testing.assert_array_equal(prior.std, [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]])


def test_the_moa_prior_is_fitted_to_the_codes_each_expert_wins(moa, images) -> None:
    assert isinstance(moa, GenerativeExperts) and not moa.variational
    with pytest.raises(ValueError, match="need data"):
        latent_prior(moa)
    prior = latent_prior(moa, images)
    assert prior.fitted and prior.sizes == (4, 4, 4)
    assert prior.mean.shape == prior.std.shape == (3, 4)
    assert (prior.std > 0).all()
    codes = _codes(moa, images).numpy()
    with torch.no_grad():
        winners = moa(images).gate_probs.argmax(1).numpy()
    for expert in range(3):
        own = codes[winners == expert, expert]
        own = own if len(own) > 1 else codes[:, expert]  # too few wins: all samples
        np.testing.assert_allclose(prior.mean[expert], own.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(prior.std[expert], own.std(0) + 1e-6, rtol=1e-4, atol=1e-5)


# --- samples, walks, interpolations, the probe ------------------------------------------


def test_samples_have_the_image_shape_and_follow_the_seed(model_and_prior) -> None:
    model, prior = model_and_prior
    for expert in range(len(prior.sizes)):
        samples = expert_samples(model, prior, expert, 5, seed=3)
        assert samples.shape == (5, 1, 16, 16) and samples.dtype == np.float32
        assert 0.0 <= samples.min() and samples.max() <= 1.0
        np.testing.assert_array_equal(samples, expert_samples(model, prior, expert, 5, seed=3))
    assert not np.allclose(
        expert_samples(model, prior, 0, 5, 3), expert_samples(model, prior, 0, 5, 4)
    )
    # The samples are the expert's decoding of its mean plus seeded noise times its std.
    noise = np.random.default_rng(3).standard_normal((5, prior.mean.shape[1])).astype(np.float32)
    codes = torch.zeros(5, len(prior.sizes), prior.mean.shape[1])
    codes[:, 1] = torch.from_numpy(prior.mean[1] + noise * prior.std[1])
    np.testing.assert_allclose(
        expert_samples(model, prior, 1, 5, seed=3), _decode(model, codes)[:, 1], atol=1e-6
    )


def test_analysis_leaves_a_training_model_in_training_mode(vae) -> None:
    vae.train()
    try:
        expert_samples(vae, latent_prior(vae), 0, 2)
        all_ones_probe(vae, (1, 16, 16))
        assert vae.training
    finally:
        vae.eval()


def test_a_walk_stays_inside_the_experts_own_dimensions(vae, moa, images) -> None:
    prior = latent_prior(vae)
    for expert, size in enumerate(SIZES):
        latent_walk(vae, prior, expert, size - 1, steps=3)
        with pytest.raises(ValueError, match=f"{size} latent dimensions"):
            latent_walk(vae, prior, expert, size, steps=3)
    with pytest.raises(ValueError):
        latent_walk(vae, prior, 0, -1)
    with pytest.raises(ValueError, match="4 latent dimensions"):
        latent_walk(moa, latent_prior(moa, images), 2, 4)


def test_the_walks_middle_frame_decodes_the_mean_code(model_and_prior) -> None:
    model, prior = model_and_prior
    expert, dim = 1, 1
    values, frames = latent_walk(model, prior, expert, dim, steps=13)
    np.testing.assert_allclose(values, np.linspace(-WALK_RANGE, WALK_RANGE, 13))
    assert values[6] == 0.0 and frames.shape == (13, 1, 16, 16)
    z = torch.zeros(1, len(prior.sizes), prior.mean.shape[1])
    z[0, expert] = torch.from_numpy(prior.mean[expert])
    np.testing.assert_allclose(frames[6], _decode(model, z)[0, expert], atol=1e-6)
    # The ends move dimension `dim` by ∓3 standard deviations, and the images follow.
    z[0, expert, dim] += WALK_RANGE * float(prior.std[expert, dim])
    np.testing.assert_allclose(frames[-1], _decode(model, z)[0, expert], atol=1e-6)
    assert not np.allclose(frames[0], frames[-1])
    np.testing.assert_array_equal(walk_values(5), [-3, -1.5, 0, 1.5, 3])


def test_interpolation_ends_are_the_experts_reconstructions(model_and_prior, images) -> None:
    model, _ = model_and_prior
    a, b = images[0], images[1]
    for expert in range(3):
        path = interpolation(model, expert, a, b, steps=7)
        assert path.shape == (7, 1, 16, 16)
        recon = _decode(model, _codes(model, torch.stack([a, b])))[:, expert]
        np.testing.assert_allclose(path[0], recon[0], atol=1e-5)
        np.testing.assert_allclose(path[-1], recon[1], atol=1e-5)
    # Halfway decodes the mean of the two codes.
    codes = _codes(model, torch.stack([a, b]))
    middle = _decode(model, codes.mean(0, keepdim=True))[0, 2]
    np.testing.assert_allclose(interpolation(model, 2, a, b, steps=3)[1], middle, atol=1e-5)


def test_the_all_ones_probe_comes_first_then_every_expert(model_and_prior) -> None:
    model, prior = model_and_prior
    images = all_ones_probe(model, (1, 16, 16))
    assert images.shape == (len(prior.sizes) + 1, 1, 16, 16)
    np.testing.assert_array_equal(images[0], 1.0)
    ones = torch.ones(1, 1, 16, 16)
    np.testing.assert_allclose(images[1:], _decode(model, _codes(model, ones))[0], atol=1e-6)


def test_decode_expert_ignores_the_other_experts_slots(vae) -> None:
    codes = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    alone = decode_expert(vae, 1, codes)
    z = torch.randn(2, 3, 4)
    z[:, 1] = torch.from_numpy(codes)
    np.testing.assert_allclose(alone, _decode(vae, z)[:, 1], atol=1e-6)


@pytest.mark.parametrize(
    ("model_type", "settings"),
    [
        ("multipath_cc", TINY_ROUTING),
        ("neural_em", {"conv_channels": (4, 8, 8), "fc_units": 8, "num_clusters": 3}),
    ],
)
def test_a_model_without_decoding_experts_is_refused(model_type: str, settings: dict) -> None:
    config = config_class(model_type)(in_channels=1, image_size=16, **settings)
    model = build_model(config)
    assert not isinstance(model, GenerativeExperts)
    x = torch.rand(4, 1, 16, 16)
    with pytest.raises(NotGenerative, match="MoA, MoE-VAE, VaDE or DMVAE"):
        latent_prior(model, x)
    with pytest.raises(NotGenerative):
        interpolation(model, 0, x[0], x[1])
    with pytest.raises(NotGenerative):
        all_ones_probe(model, (1, 16, 16))
    with pytest.raises(NotGenerative):
        decode_expert(model, 0, np.zeros((1, 2), np.float32))
    assert issubclass(NotGenerative, ValueError)


# --- figures ------------------------------------------------------------------------------


def test_walk_figure_has_a_frame_and_a_slider_label_per_value() -> None:
    values = walk_values(5)
    images = np.linspace(0, 1, 5 * 16 * 16, dtype=np.float32).reshape(5, 1, 16, 16)
    fig = walk_figure(images, values, "Walk along z2 of expert 1", scale=4)
    assert len(fig.frames) == 5
    slider = fig.layout.sliders[0]
    assert [step.label for step in slider.steps] == [
        "z = -3.0",
        "z = -1.5",
        "z = +0.0",
        "z = +1.5",
        "z = +3.0",
    ]
    play = fig.layout.updatemenus[0].buttons[0]
    assert play.args[1]["frame"]["duration"] == FRAME_MS
    assert fig.layout.title.text == "Walk along z2 of expert 1"
    assert fig.layout.height == 16 * 4 + 190
    with pytest.raises(ValueError):
        walk_figure(images, values[:4], "mismatched")


def test_explained_variance_figure_marks_the_chosen_size_and_both_levels() -> None:
    fig = explained_variance_figure([0.5, 0.8, 0.92, 0.97, 1.0], chosen=3)
    assert list(fig.data[0].x) == [1, 2, 3, 4, 5]
    shapes = fig.layout.shapes
    vlines = [s for s in shapes if s.x0 == s.x1]
    hlines = [s for s in shapes if s.y0 == s.y1]
    assert [s.x0 for s in vlines] == [3]
    assert sorted(s.y0 for s in hlines) == [0.9, 0.95]
    notes = {a.text for a in fig.layout.annotations}
    assert {"90%: clustering", "95%: reconstruction", "chosen: 3"} <= notes


def test_cluster_figure_greys_the_noise_and_states_k() -> None:
    points = np.array([[0, 0, 0, 1], [1, 0, 0, 1], [5, 5, 1, 2], [9, 9, -1, 0]], dtype=np.float64)
    fig = cluster_figure(points, k=2)
    noise, first, second = fig.data
    assert noise.name == "noise" and noise.marker.color == NOISE_COLOR
    assert list(noise.x) == [9] and list(noise.y) == [9]
    assert (first.name, list(first.x)) == ("cluster 1", [0, 1])
    assert (second.name, list(second.x)) == ("cluster 2", [5])
    assert NOISE_COLOR not in (first.marker.color, second.marker.color)
    assert "K = 2" in fig.layout.title.text and "75%" in fig.layout.title.text
    empty = cluster_figure(np.zeros((0, 4)), k=0)
    assert "K = 0" in empty.layout.title.text


def test_confusion_figure_writes_the_counts() -> None:
    fig = confusion_figure([[3, 0], [1, 2]], ["a", "b"], cluster_names(2), "title")
    heat = fig.data[0]
    np.testing.assert_array_equal(heat.z, [[3, 0], [1, 2]])
    assert list(heat.x) == ["cluster 1", "cluster 2"] and list(heat.y) == ["a", "b"]
    assert heat.texttemplate == "%{text}" and fig.layout.title.text == "title"


def _record() -> PipelineRecord:
    return PipelineRecord(
        dataset="digits",
        samples=300,
        threshold=0.9,
        explained=[0.7, 0.95],
        latent_size=2,
        k_found=2,
        labeled_fraction=0.81,
        acc_labeled=0.88,
        gmm_acc=0.77,
        latent_sizes=[2, 3],
        manager_acc=0.66,
        manager_nmi=0.55,
        manager_ari=0.44,
        manager_agreement=0.9,
        confusion_clusters=[[1, 0], [0, 1]],
        confusion_classes=[[1, 0], [0, 1]],
        class_names=["0", "1"],
        points=[[0.0, 0.0, 0.0, 0.0]],
        seconds={"large_vae": 1.0},
    )


def test_paper_tables_put_this_run_beside_the_papers_numbers() -> None:
    tables = paper_tables(_record(), final_acc=0.61)
    two, three, four = tables.values()
    assert [title.split(":")[0] for title in tables] == ["Table II", "Table III", "Table IV"]
    run = "this run (digits)"
    assert [row[run] for row in two] == [2, 0.81, 0.88, 0.77]
    assert [row["paper: MNIST"] for row in two] == [10, 0.96, 0.978, 0.956]
    assert [row[run] for row in three] == [0.66, 0.55, 0.44]
    assert [row["paper: MNIST"] for row in three] == [0.967, 0.922, 0.927]
    assert four == [{"": "MoE ACC", run: 0.61, "paper: MNIST": 0.97, "paper: FMNIST": 0.68}]
    assert paper_tables(_record(), None)["Table IV: the trained mixture"][0][run] is None


def test_a_learned_cluster_prior_samples_each_cluster_from_its_own_gaussian() -> None:
    """VaDE's cluster k is sampled from N(μ_k, σ²_k) (paper 002, Figs. 6–7), not N(0, I)."""
    torch.manual_seed(0)
    config = config_class("vade")(input_kind="image", image_size=8, num_clusters=3, latent_dim=4)
    model = build_model(config)
    prior = latent_prior(model)  # no data needed: the prior is the model's own
    means, stds = (t.detach().numpy() for t in model.cluster_prior_moments())
    assert prior.per_cluster and not prior.fitted
    np.testing.assert_allclose(prior.mean, means, rtol=1e-6)
    np.testing.assert_allclose(prior.std, stds, rtol=1e-6)
    assert "learned prior" in prior_name(prior)
    assert expert_samples(model, prior, 2, 5).shape == (5, 1, 8, 8)
