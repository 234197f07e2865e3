"""Clustering metrics: ACC (Hungarian matching), NMI, ARI, how evenly experts are used;
classification accuracy with the share of dead routing gates; regression error; a figure's
mean ± std over seeds."""

from __future__ import annotations

import statistics

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


DEAD_BELOW, DEAD_ABOVE = 0.1, 0.9


def dead_gate_fraction(gates: list[np.ndarray]) -> float | None:
    """Share of gates g_ij that stay below 0.1 or above 0.9 for every sample (paper 003,
    Sec. 5.1: skewed gates); `gates` holds one [N, m, n] array per routing layer."""
    if not gates:
        return None
    dead = [(layer.max(0) < DEAD_BELOW) | (layer.min(0) > DEAD_ABOVE) for layer in gates]
    return float(np.concatenate([d.ravel() for d in dead]).mean())


def classification_scores(targets: np.ndarray, logits: np.ndarray, gates: list[np.ndarray]) -> dict:
    """Accuracy of the class scores' argmax and, for routing networks, the dead-gate share."""
    predictions = logits.argmax(1)
    return {
        "accuracy": float((predictions == targets).mean()),
        "dead_gate_fraction": dead_gate_fraction(gates),
        "classes_predicted": int(np.unique(predictions).size),
    }


def regression_mse(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean over samples of Σ_outputs (ŷ − y)², the test error of paper 002's Table 1 (spec
    §2.2: [REPO] reports MSE × output_dim, the same number)."""
    diff = np.asarray(predictions, dtype=np.float64) - np.asarray(targets, dtype=np.float64)
    return float((diff**2).sum(axis=1).mean())


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (n − 1; 0 for one value) over seeds, rounded."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "std": round(std, 4), "n": len(values)}
