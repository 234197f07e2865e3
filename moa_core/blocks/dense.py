"""Dense networks on flattened inputs, as paper 002's authors built every network ([REPO])."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def dense_stack(widths: Sequence[int]) -> nn.Sequential:
    """Linear layers widths[0] → … → widths[-1] with ReLU between them (none after the last),
    Xavier-uniform weights and zero biases ([REPO], spec §1.3)."""
    layers: list[nn.Module] = []
    for index, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        linear = nn.Linear(cin, cout)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if index < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
