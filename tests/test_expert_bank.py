"""Expert bank: M autoencoders in grouped convolutions behave exactly like M separate ones."""

from __future__ import annotations

import pytest
import torch

from moa_core.blocks.expert_bank import ConvAutoencoderBank, ConvGate


def _bank(m: int = 3, c: int = 1, size: int = 16, seed: int = 0) -> ConvAutoencoderBank:
    torch.manual_seed(seed)
    return ConvAutoencoderBank(m, c, size, (4, 8), latent_dim=5)


@pytest.mark.parametrize(("size", "channels"), [(16, 1), (28, 1), (16, 3)])
def test_output_shapes(size: int, channels: int) -> None:
    bank = _bank(m=3, c=channels, size=size)
    x = torch.rand(7, channels, size, size)
    codes, recon = bank(x)
    assert codes.shape == (7, 3, 5)
    assert recon.shape == (7, 3, channels, size, size)
    # The last decoder layer is a sigmoid: reconstructions are valid pixel values.
    assert recon.min() >= 0.0 and recon.max() <= 1.0
    assert ConvGate(3, channels, size, (4, 8))(x).shape == (7, 3)


@pytest.mark.parametrize(("size", "channels"), [(16, 1), (28, 3)])
def test_split_experts_reproduce_the_bank(size: int, channels: int) -> None:
    """Each separate expert, fed the same input, gives that expert's slice of the bank.

    If any grouped conv mixed channels across experts, the single-expert copies (which
    only hold their own group's weights) could not match.
    """
    bank = _bank(m=4, c=channels, size=size)
    x = torch.rand(5, channels, size, size)
    with torch.no_grad():
        codes, recon = bank(x)
        experts = bank.split()
        assert len(experts) == 4
        for k, expert in enumerate(experts):
            assert expert.num_experts == 1
            code_k, recon_k = expert(x)
            torch.testing.assert_close(code_k[:, 0], codes[:, k], atol=1e-6, rtol=0)
            torch.testing.assert_close(recon_k[:, 0], recon[:, k], atol=1e-6, rtol=0)


def test_split_copies_are_independent_of_the_bank() -> None:
    bank = _bank()
    expert = bank.split()[0]
    before = expert.encoder[0].weight.clone()
    with torch.no_grad():
        bank.encoder[0].weight.add_(1.0)
    assert torch.equal(expert.encoder[0].weight, before)


@pytest.mark.parametrize("layer", ["first_encoder", "code", "last_decoder"])
def test_changing_one_expert_changes_only_its_output(layer: str) -> None:
    bank = _bank(m=3)
    x = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        codes0, recon0 = bank(x)
        conv = {
            "first_encoder": bank.encoder[0],
            "code": bank.to_code,
            "last_decoder": bank.decoder[-2],
        }[layer]
        # Expert k owns block k of the first weight dimension (grouped conv or stacked linear).
        rows = conv.weight.shape[0] // 3
        conv.weight[rows : 2 * rows] += 0.5  # expert 1 only
        codes1, recon1 = bank(x)
    for k in (0, 2):
        assert torch.equal(codes1[:, k], codes0[:, k])
        assert torch.equal(recon1[:, k], recon0[:, k])
    assert (recon1[:, 1] - recon0[:, 1]).abs().max() > 1e-4
    if layer != "last_decoder":
        assert (codes1[:, 1] - codes0[:, 1]).abs().max() > 1e-4


def test_experts_start_different() -> None:
    """Each expert gets its own random initialization (otherwise all would learn the same)."""
    bank = _bank(m=2)
    with torch.no_grad():
        codes, _ = bank(torch.rand(4, 1, 16, 16))
    assert (codes[:, 0] - codes[:, 1]).abs().max() > 1e-3


@pytest.mark.parametrize(("size", "depth"), [(30, 2), (20, 3), (12, 3)])
def test_image_size_not_divisible_raises(size: int, depth: int) -> None:
    channels = (4,) * depth
    with pytest.raises(ValueError, match=f"divisible by {2**depth}"):
        ConvAutoencoderBank(2, 1, size, channels, 3)
    with pytest.raises(ValueError, match=f"divisible by {2**depth}"):
        ConvGate(2, 1, size, channels)


def test_gradients_stay_within_each_expert() -> None:
    """A loss on expert 0's reconstruction gives zero gradient to expert 1's weights."""
    bank = _bank(m=2)
    _, recon = bank(torch.rand(4, 1, 16, 16))
    recon[:, 0].sum().backward()
    for conv in (bank.encoder[0], bank.to_code, bank.decoder[-2]):
        rows = conv.weight.shape[0] // 2
        assert conv.weight.grad[:rows].abs().sum() > 0
        assert torch.count_nonzero(conv.weight.grad[rows:]) == 0
