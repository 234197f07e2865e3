"""Expert bank (grouped convolutions, one call for all M) vs a Python loop over the same
experts (`ConvAutoencoderBank.split()`, identical weights), forward + backward on one batch."""

from __future__ import annotations

import torch

from benchmarks.common import device, device_label, emit, seconds_per_call
from moa_core.blocks.expert_bank import ConvAutoencoderBank

# (M, image side, batch): batch 64 is the training default, 128 the eval-sized batch.
CASES = ((10, 16, 64), (10, 16, 128), (10, 28, 64), (10, 28, 128), (2, 28, 64))


def measure(m: int, side: int, batch: int, repeats: int) -> dict:
    """Seconds per forward+backward for the bank and for the loop, on one batch."""
    dev = device()
    torch.manual_seed(0)
    bank = ConvAutoencoderBank(m, 1, side, (16, 32), 16).to(dev)
    experts = [e.to(dev) for e in bank.split()]
    x = torch.rand(batch, 1, side, side, device=dev)

    def bank_step() -> None:
        bank(x)[1].sum().backward()

    def loop_step() -> None:
        sum(e(x)[1].sum() for e in experts).backward()

    bank_s = seconds_per_call(bank_step, repeats)
    loop_s = seconds_per_call(loop_step, repeats)
    return {
        "M": m,
        "side": side,
        "batch": batch,
        "bank_seconds": round(bank_s, 5),
        "loop_seconds": round(loop_s, 5),
        "ratio": round(loop_s / bank_s, 2),
    }


def run() -> dict:
    repeats = 50 if device().type == "cuda" else 20
    cases = [measure(m, side, batch, repeats) for m, side, batch in CASES]
    headline = cases[0]
    return emit(
        {
            "name": "expert_bank",
            "device": device_label(),
            "seconds": headline["bank_seconds"],
            "baseline": "per-expert Python loop",
            "ratio": headline["ratio"],
            "cases": cases,
        }
    )
