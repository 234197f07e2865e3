"""Clustering metrics: ACC (Hungarian matching), NMI, ARI, and how evenly experts are used."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def clustering_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Best accuracy over one-to-one cluster→label maps (Hungarian algorithm on the contingency)."""
    labels = np.asarray(labels)
    clusters = np.asarray(clusters)
    label_ids, label_idx = np.unique(labels, return_inverse=True)
    cluster_ids, cluster_idx = np.unique(clusters, return_inverse=True)
    contingency = np.zeros((len(cluster_ids), len(label_ids)), dtype=np.int64)
    np.add.at(contingency, (cluster_idx, label_idx), 1)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    return float(contingency[rows, cols].sum() / len(labels))


def expert_usage(clusters: np.ndarray, num_experts: int) -> np.ndarray:
    """Fraction of samples each expert wins (argmax of the gate), length `num_experts`."""
    counts = np.bincount(np.asarray(clusters), minlength=num_experts).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def usage_entropy(usage: np.ndarray) -> float:
    """Entropy of the usage distribution divided by log M: 1 = perfectly balanced, 0 = collapse."""
    usage = np.asarray(usage, dtype=np.float64)
    if len(usage) < 2:
        return 1.0
    nonzero = usage[usage > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / np.log(len(usage)))


def clustering_scores(labels: np.ndarray, clusters: np.ndarray, num_experts: int) -> dict:
    """All the numbers the CLI and the app report for one clustering."""
    usage = expert_usage(clusters, num_experts)
    return {
        "acc": clustering_accuracy(labels, clusters),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "clusters_used": int((usage > 0).sum()),
        "usage": usage.tolist(),
        "usage_entropy": usage_entropy(usage),
    }
