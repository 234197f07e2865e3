"""The spiral-arm measure of paper 002's sampling figures (spec §5.2, Figs. 10 vs 11): per arm,
the share of the generated points landing on it that one cluster drew."""

from __future__ import annotations

import numpy as np

from moa_core.analysis.generative import arm_purity, dominated_arms

# Three arms: two short segments on the x axis and a far one nothing lands on.
POINTS = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0], [100.0, 100.0]])
ARMS = np.array([0, 0, 1, 1, 2])


def test_each_arm_counts_the_clusters_of_the_points_nearest_to_it() -> None:
    """Cluster 0 draws 4 points on arm 0; cluster 1 draws 3 on arm 1 and 1 on arm 0: arm 0 is
    4/5 cluster 0, arm 1 is 3/3 cluster 1, arm 2 gets nothing."""
    generated = np.array(
        [
            [[0.1, 0.2], [0.9, -0.1], [1.2, 0.0], [-0.3, 0.1]],
            [[10.2, 0.1], [11.4, 0.0], [9.8, -0.2], [0.5, 0.3]],
        ]
    )
    purity = arm_purity(generated, POINTS, ARMS)
    assert np.allclose(purity[:2], [0.8, 1.0]) and np.isnan(purity[2])
    assert dominated_arms(purity) == 1  # 0.8 is not more than 80 %
    assert dominated_arms(purity, threshold=0.75) == 2  # the empty arm never counts


def test_one_cluster_spread_over_two_arms_dominates_both() -> None:
    """VaDE's failure (Fig. 11) is two clusters sharing arms, not one cluster on two arms: a
    single cluster over both arms still leaves each arm pure, and splitting the draws of two
    clusters evenly over both arms makes each arm 50 %."""
    one = np.array([[[0.0, 0.1], [10.0, 0.1]]])
    assert dominated_arms(arm_purity(one, POINTS, ARMS)) == 2
    mixed = np.array([[[0.0, 0.1], [10.0, 0.1]], [[1.0, 0.1], [11.0, 0.1]]])
    assert np.allclose(arm_purity(mixed, POINTS, ARMS)[:2], [0.5, 0.5])
