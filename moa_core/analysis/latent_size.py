"""The latent dimension finder of paper 001 (Sec. III.B): PCA of an autoencoder's latent codes,
and the fewest components that explain 90 % (for clustering) or 95 % (for reconstruction) of
their variance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLUSTERING, RECONSTRUCTION = 0.90, 0.95  # paper 001: "around 90% … for clustering and 95%"


@dataclass(frozen=True)
class LatentSize:
    """The chosen size and the curve it was read from (for the explained-variance plot)."""

    size: int
    threshold: float
    cumulative: np.ndarray  # cumulative explained-variance ratio of components 1 … d


def explained_variance(codes: np.ndarray) -> np.ndarray:
    """Explained-variance ratio of each principal component of `codes` [N, d], largest first."""
    centred = np.asarray(codes, dtype=np.float64) - np.mean(codes, axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    variance = singular**2
    total = variance.sum()
    return variance / total if total > 0 else np.zeros_like(variance)


def find_latent_size(codes: np.ndarray, threshold: float = CLUSTERING) -> LatentSize:
    """The smallest number of principal components whose explained variance reaches
    `threshold` (paper 001, Fig. 4); at least 1."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    cumulative = np.cumsum(explained_variance(codes))
    reached = np.flatnonzero(cumulative >= threshold - 1e-12)
    size = int(reached[0]) + 1 if reached.size else len(cumulative)
    return LatentSize(max(1, size), threshold, cumulative)
