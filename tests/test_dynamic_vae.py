"""Paper 001's building blocks: the dynamic convolutional encoder/decoder (Sec. III.C, Eq. 7–9)
and the PCA latent dimension finder (Sec. III.B)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moa_core.analysis.latent_size import (
    CLUSTERING,
    RECONSTRUCTION,
    explained_variance,
    find_latent_size,
)
from moa_core.blocks.dynamic_conv import DynamicDecoder, DynamicEncoder, block_plan


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
    assert features.shape == (3, plan.filters[-1] * 2 * 2) == (3, encoder.out_features)
    images = decoder(features).detach()
    assert images.shape == (3, 1, size, size)
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 * plan.blocks  # two convolutions per block, each normalized


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
