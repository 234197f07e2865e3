"""Run a trained model over a whole tensor in batches and keep what the plots need."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from moa_core.analysis.eval_mode import eval_mode
from moa_core.analysis.routing import routing_layers


@dataclass
class ModelOutputs:
    """Per-sample gate probabilities [N, K] and latent codes [N, F] as numpy arrays, each
    routing layer's gates [N, m, n] (see `routing_layers`), a classifier's class scores and a
    regressor's predictions [N, out]."""

    gate_probs: np.ndarray
    latents: np.ndarray
    class_logits: np.ndarray | None = None
    routing_gates: list[np.ndarray] = field(default_factory=list)
    predictions: np.ndarray | None = None

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
    gates, latents, logits, routing, predictions = [], [], [], [], []
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            out = model(x[start : start + batch_size])
            gates.append(out.gate_probs.float().cpu())
            latents.append(out.latents.float().cpu())
            if out.class_logits is not None:
                logits.append(out.class_logits.float().cpu())
            if out.predictions is not None:
                predictions.append(out.predictions.float().cpu())
            routing.append([layer.gates.float().cpu() for layer in routing_layers(out)])
    return ModelOutputs(
        torch.cat(gates).numpy(),
        torch.cat(latents).numpy(),
        torch.cat(logits).numpy() if logits else None,
        [torch.cat(layer).numpy() for layer in zip(*routing, strict=True)],
        torch.cat(predictions).numpy() if predictions else None,
    )
