"""The dynamic convolutional encoder and decoder of paper 001 (Sec. III.C): depth and widths
follow the image size, so a 16×16 and a 32×32 set each get a network that ends at 2×2.

N_blocks = log2(D) − 1 (paper 001, Eq. 7), ⌈N/2⌉ "general" then ⌊N/2⌋ "specific" blocks
(Eq. 8–9), filters doubling per block from `base_filters` (the paper starts from D). Every
block is two 3×3 convolutions with batch normalization before the activation. The text does
not draw the two kinds (its Fig. 5 is an image): here a general block keeps the resolution
through both convolutions and then max-pools (a 5×5 receptive field on the full-size map, the
"overall structure"), and a specific block's second convolution has stride 2 (a learned
downsampling that keeps finer detail). 28×28 inputs are padded to 32×32 first (Sec. IV.A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BlockPlan:
    """How deep and how wide the encoder for D×D images is."""

    image_size: int  # D after padding (a power of two)
    general: int
    specific: int
    filters: tuple[int, ...]  # one width per block, doubling

    @property
    def blocks(self) -> int:
        return self.general + self.specific


def padded_size(image_size: int) -> int:
    """The power of two the images are padded to (28 → 32); at least 4."""
    return max(4, 2 ** math.ceil(math.log2(image_size)))


def block_plan(image_size: int, base_filters: int = 0) -> BlockPlan:
    """Paper 001, Eq. 7–9: N = log2(D) − 1 blocks, ⌈N/2⌉ general, the rest specific; filters
    `base_filters` × 2^b (0: D, the paper's rule)."""
    size = padded_size(image_size)
    blocks = int(math.log2(size)) - 1
    general = math.ceil(blocks / 2)
    base = base_filters or size
    return BlockPlan(size, general, blocks - general, tuple(base * 2**b for b in range(blocks)))


def conv_bn_relu(cin: int, cout: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """3×3 convolution, batch normalization before the activation (paper 001, Sec. III.C);
    `groups` experts side by side, each on its own channel group."""
    return [
        nn.Conv2d(cin * groups, cout * groups, 3, stride, 1, bias=False, groups=groups),
        nn.BatchNorm2d(cout * groups),
        nn.ReLU(),
    ]


def encoder_block(
    cin: int, cout: int, general: bool, experts: int, shared_input: bool
) -> nn.Sequential:
    """Two 3×3 convolutions that halve the resolution (see the module docstring). The first
    block of a bank reads the one shared image: its first convolution is dense."""
    first = (
        conv_bn_relu(cin, cout * experts) if shared_input else conv_bn_relu(cin, cout, 1, experts)
    )
    second = conv_bn_relu(cout, cout, 1 if general else 2, experts)
    return nn.Sequential(*first, *second, *([nn.MaxPool2d(2)] if general else []))


def decoder_block(cin: int, cout: int, experts: int) -> nn.Sequential:
    """The mirror of an encoder block: upsample ×2, then two 3×3 convolutions."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        *conv_bn_relu(cin, cout, 1, experts),
        *conv_bn_relu(cout, cout, 1, experts),
    )


class DynamicEncoder(nn.Module):
    """Images [B, C, D, D] → features [B, K, F·2·2] of K experts (padded to the plan's size
    first); one kernel call per layer runs every expert."""

    def __init__(self, in_channels: int, plan: BlockPlan, experts: int = 1) -> None:
        super().__init__()
        self.plan, self.experts = plan, experts
        widths = (in_channels, *plan.filters)
        kinds = [True] * plan.general + [False] * plan.specific
        self.blocks = nn.Sequential(
            *(
                encoder_block(a, b, general, experts, shared_input=i == 0)
                for i, (a, b, general) in enumerate(
                    zip(widths[:-1], widths[1:], kinds, strict=True)
                )
            )
        )

    @property
    def out_features(self) -> int:
        return self.plan.filters[-1] * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.plan.image_size - x.shape[-1]
        if pad:
            x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        return self.blocks(x).reshape(x.shape[0], self.experts, -1)


class DynamicDecoder(nn.Module):
    """Features [B, K, F·2·2] → images [B, K, C, D, D] in [0, 1], cropped to `image_size`."""

    def __init__(
        self, out_channels: int, plan: BlockPlan, image_size: int, experts: int = 1
    ) -> None:
        super().__init__()
        self.plan, self.image_size, self.experts = plan, image_size, experts
        self.out_channels = out_channels
        widths = plan.filters[::-1]
        self.blocks = nn.Sequential(
            *(
                decoder_block(a, b, experts)
                for a, b in zip(widths, (*widths[1:], widths[-1]), strict=True)
            )
        )
        self.to_image = nn.Conv2d(
            widths[-1] * experts, out_channels * experts, 3, padding=1, groups=experts
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch = features.shape[0]
        x = features.reshape(batch, self.experts * self.plan.filters[-1], 2, 2)
        images = torch.sigmoid(self.to_image(self.blocks(x)))
        crop = (self.plan.image_size - self.image_size) // 2
        images = images[..., crop : crop + self.image_size, crop : crop + self.image_size]
        return images.reshape(batch, self.experts, self.out_channels, *images.shape[-2:])
