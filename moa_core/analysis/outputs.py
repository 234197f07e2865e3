"""Run a trained model over a whole tensor in batches and keep what the plots need."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class ModelOutputs:
    """Per-sample gate probabilities [N, K] and latent codes [N, F] as numpy arrays."""

    gate_probs: np.ndarray
    latents: np.ndarray

    @property
    def clusters(self) -> np.ndarray:
        return self.gate_probs.argmax(1)

    @property
    def gate_entropy(self) -> np.ndarray:
        p = np.clip(self.gate_probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(1)


@torch.no_grad()
def collect_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> ModelOutputs:
    """Eval-mode forward over `x` (already on the model's device), batch by batch."""
    was_training = model.training
    model.eval()
    gates, latents = [], []
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size])
        gates.append(out.gate_probs.float().cpu())
        latents.append(out.latents.float().cpu())
    model.train(was_training)
    return ModelOutputs(torch.cat(gates).numpy(), torch.cat(latents).numpy())
