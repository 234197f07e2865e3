"""Clustering metrics on hand-made partitions whose scores can be checked on paper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moa_core.metrics import (
    clustering_accuracy,
    clustering_scores,
    expert_usage,
    usage_entropy,
)

LABELS = np.array([0, 0, 1, 1, 2, 2])


def test_accuracy_is_one_for_a_relabelled_perfect_clustering() -> None:
    # Cluster 1 ↔ label 0, cluster 0 ↔ label 1, cluster 2 ↔ label 2: every sample matches.
    assert clustering_accuracy(LABELS, np.array([1, 1, 0, 0, 2, 2])) == 1.0


def test_accuracy_counts_one_misplaced_sample() -> None:
    # The last sample (label 2) sits in the cluster that maps to label 1: 5 of 6 right.
    assert clustering_accuracy(LABELS, np.array([1, 1, 0, 0, 2, 0])) == pytest.approx(5 / 6)


def test_accuracy_matches_one_to_one_not_majority() -> None:
    # Everything in one cluster: only one label can be matched, so 2 of 6.
    assert clustering_accuracy(LABELS, np.zeros(6, dtype=int)) == pytest.approx(2 / 6)
    # Majority vote would map clusters 0 and 1 both to label 0 and score 5/6; a one-to-one
    # map can use only one of them for label 0: (2 + 0 + 2) / 6.
    clusters = np.array([0, 0, 1, 0, 2, 2])
    labels = np.array([0, 0, 0, 1, 2, 2])
    assert clustering_accuracy(labels, clusters) == pytest.approx(4 / 6)
    assert clustering_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == 0.5


def test_accuracy_with_more_clusters_than_labels_and_arbitrary_ids() -> None:
    # Four clusters, two labels with string names: the two extra clusters stay unmatched.
    labels = np.array(["a", "a", "a", "b", "b", "b"])
    clusters = np.array([7, 7, 3, 9, 9, 5])
    assert clustering_accuracy(labels, clusters) == pytest.approx(4 / 6)


@pytest.mark.parametrize("key", ["nmi", "ari", "acc"])
def test_identical_and_permuted_partitions_score_one(key: str) -> None:
    permuted = np.array([2, 2, 0, 0, 1, 1])
    assert clustering_scores(LABELS, LABELS, 3)[key] == pytest.approx(1.0)
    assert clustering_scores(LABELS, permuted, 3)[key] == pytest.approx(1.0)


def test_constant_clustering_has_zero_nmi_and_ari() -> None:
    scores = clustering_scores(LABELS, np.zeros(6, dtype=int), 3)
    assert scores["nmi"] == pytest.approx(0.0, abs=1e-12)
    assert scores["ari"] == pytest.approx(0.0, abs=1e-12)
    assert scores["clusters_used"] == 1


def test_partial_clustering_scores_between_zero_and_one() -> None:
    # One error: NMI and ARI must drop below 1 but stay well above the constant's 0.
    scores = clustering_scores(LABELS, np.array([1, 1, 0, 0, 2, 0]), 3)
    assert 0.3 < scores["nmi"] < 1.0
    assert 0.0 < scores["ari"] < 1.0


def test_expert_usage_counts_fractions_including_unused_experts() -> None:
    usage = expert_usage(np.array([0, 0, 1, 3]), 5)
    np.testing.assert_allclose(usage, [0.5, 0.25, 0.0, 0.25, 0.0])
    assert usage.sum() == pytest.approx(1.0)


def test_usage_entropy_balanced_is_one_and_collapsed_is_zero() -> None:
    assert usage_entropy(np.array([0.25, 0.25, 0.25, 0.25])) == pytest.approx(1.0)
    assert usage_entropy(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.0, abs=1e-12)
    # Two of three experts used equally: log 2 / log 3.
    assert usage_entropy(np.array([0.5, 0.5, 0.0])) == pytest.approx(math.log(2) / math.log(3))


def test_clustering_scores_reports_usage_and_clusters_used() -> None:
    # Three experts offered, only experts 0 and 2 win any sample.
    clusters = np.array([0, 0, 0, 2, 2, 2])
    scores = clustering_scores(LABELS, clusters, 3)
    assert scores["clusters_used"] == 2
    np.testing.assert_allclose(scores["usage"], [0.5, 0.0, 0.5])
    assert scores["usage_entropy"] == pytest.approx(math.log(2) / math.log(3))
    assert scores["acc"] == pytest.approx(4 / 6)
    assert set(scores) == {"acc", "nmi", "ari", "clusters_used", "usage", "usage_entropy"}
