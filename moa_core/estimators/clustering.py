"""The clustering families as scikit-learn clusterers: `fit(X)` then `labels_`, `predict`,
`predict_proba` (the gate), `transform` (latent codes)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClusterMixin, TransformerMixin

from moa_core.estimators.base import LabEstimator
from moa_core.estimators.data import as_dataset


class LabClusterer(ClusterMixin, TransformerMixin, LabEstimator):
    """Cluster images [N, H, W] / [N, C, H, W] or points [N, 2] into `n_clusters` experts.

    Parameters left None take the family's defaults (those of `moa train`); `options` takes
    any further model or training key `moa train --set` takes, e.g. {"latent_dim": 8}.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        random_state: int | None = None,
        device: str = "auto",
        verbose: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.options = options

    def _model_settings(self) -> dict[str, Any]:
        return {"num_clusters": self.n_clusters}

    @classmethod
    def _params_of(cls, config: Any) -> dict[str, Any]:
        return {"n_clusters": int(config.num_clusters)}

    def _restore(self, entry: dict[str, Any]) -> None:
        self.n_clusters_ = int(self.config_.num_clusters)

    def fit(self, X: object, y: object = None) -> LabClusterer:
        """Train on X (y is ignored: the clustering learns without labels)."""
        self._fit(as_dataset(X))
        self.labels_ = self.predict(X)
        self.n_clusters_ = int(self.config_.num_clusters)
        return self

    def predict(self, X: object) -> np.ndarray:
        """Each sample's cluster: the gate's most probable expert."""
        return self._outputs(X).clusters

    def predict_proba(self, X: object) -> np.ndarray:
        """The gate's probabilities [N, n_clusters_]."""
        return self._outputs(X).gate_probs

    def transform(self, X: object) -> np.ndarray:
        """The latent codes the model clusters by [N, F]."""
        return self._outputs(X).latents


class MoA(LabClusterer):
    """Mixture of autoencoders with a gate trained on reconstruction errors (paper 000)."""

    model_type = "moa"


class MoAPlus(LabClusterer):
    """MoA+ (paper 000): the minimax bound that keeps every expert in use."""

    model_type = "moa_plus"


class NeuralEM(LabClusterer):
    """Neural mixture EM (paper 004): K output neurons as cluster densities."""

    model_type = "neural_em"


class VaDE(LabClusterer):
    """Variational deep embedding with a Gaussian-mixture prior (paper 002)."""

    model_type = "vade"


class DMVAE(LabClusterer):
    """Deep mixture of VAEs with a Gumbel-softmax gate (paper 002)."""

    model_type = "dmvae"


class MoEVAE(LabClusterer):
    """Paper 001's MoE-VAE. By default it runs the paper's pretraining (VAEs, UMAP, HDBSCAN),
    which finds the number of clusters itself: `n_clusters_` says how many, and `n_clusters`
    is unused. `options={"pretrain": False}` trains `n_clusters` experts from scratch."""

    model_type = "moe_vae"

    def _model_settings(self) -> dict[str, Any]:
        pretrain = (self.options or {}).get("pretrain", True)
        return {} if pretrain else super()._model_settings()  # the pretraining finds K
