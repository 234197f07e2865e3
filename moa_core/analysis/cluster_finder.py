"""The cluster finder of paper 001's pretraining (Sec. III.B, steps 4–5): UMAP of the latent
codes, then HDBSCAN, which decides the number of clusters K itself and marks noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moa_core.analysis.embedding import UmapParams, umap_embedding

SELECTIONS = ("leaf", "eom")  # HDBSCAN's cluster selection methods
MIN_SAMPLES = 10  # UMAP's spectral start needs more than 4 points, HDBSCAN two clusters of 5


def check_enough_samples(samples: int) -> None:
    """Refuse, in one line, a set too small for UMAP and HDBSCAN to say anything."""
    if samples < MIN_SAMPLES:
        raise ValueError(f"finding clusters needs at least {MIN_SAMPLES} samples, got {samples}")


def umap_neighbors(samples: int) -> int:
    """n_neighbors = max(int(N / 300), 100) (paper 001, Eq. 10), at most N − 1."""
    return max(2, min(max(samples // 300, 100), samples - 1))


@dataclass
class ClusterFinding:
    """HDBSCAN's verdict on a UMAP embedding of the codes."""

    embedding: np.ndarray  # [N, 2]
    labels: np.ndarray  # [N], −1 for noise
    soft: np.ndarray  # [N, K] soft membership, rows summing to 1 (noise rows too)

    @property
    def k(self) -> int:
        return int(self.labels.max()) + 1 if (self.labels >= 0).any() else 0

    @property
    def labeled_fraction(self) -> float:
        return float((self.labels >= 0).mean())


def default_min_cluster_size(samples: int) -> int:
    """2 % of the samples, at least HDBSCAN's own default of 5 (see `find_clusters`)."""
    return max(5, samples // 50)


def find_clusters(
    codes: np.ndarray,
    n_neighbors: int = 0,
    min_cluster_size: int = 0,
    seed: int = 0,
    key: str | None = None,
    selection: str = "leaf",
) -> ClusterFinding:
    """UMAP (`n_neighbors` 0: Eq. 10; min_dist 0, as for clustering in N2D) → HDBSCAN with
    prediction data, so every sample gets a soft membership vector.

    Deviation from the paper's default HDBSCAN (min_cluster_size 5, "eom" selection): the
    defaults here are `min_cluster_size` 0 → 2 % of the samples and "leaf" selection. With
    VAEs trained for tens of epochs instead of 1000, similar digits' clusters touch in the
    UMAP; "eom" then keeps the merged super-clusters (USPS: K = 5 or 6 at every size tried)
    and size 5 with "leaf" keeps hundreds of specks. `selection="eom"` and
    `min_cluster_size=5` give the paper's setting."""
    import hdbscan

    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    check_enough_samples(len(codes))
    neighbors = n_neighbors or umap_neighbors(len(codes))
    embedding = umap_embedding(codes, UmapParams(neighbors, 0.0, seed), key=key)
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size or default_min_cluster_size(len(codes)),
        cluster_selection_method=selection,
        prediction_data=True,
    )
    labels = clusterer.fit_predict(embedding)
    if labels.max() < 0:
        return ClusterFinding(embedding, labels, np.zeros((len(codes), 0)))
    soft = np.asarray(hdbscan.all_points_membership_vectors(clusterer), dtype=np.float64)
    soft = soft.reshape(len(codes), -1)
    soft = soft / np.clip(soft.sum(1, keepdims=True), 1e-12, None)
    return ClusterFinding(embedding, labels, soft)
