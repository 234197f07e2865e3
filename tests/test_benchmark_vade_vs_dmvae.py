"""The two convergence counts of benchmarks/vade_vs_dmvae on hand-made NMI curves."""

from __future__ import annotations

from benchmarks.vade_vs_dmvae import epochs_to_plateau, first_epoch_at


def test_plateau_is_the_first_epoch_at_95_percent_of_the_last_value() -> None:
    assert epochs_to_plateau([0.1, 0.5, 0.76, 0.79, 0.8]) == 3  # 0.95 × 0.8 = 0.76
    assert epochs_to_plateau([0.9, 0.2, 0.8]) == 1  # a drop after a peak counts the peak


def test_a_collapsed_run_plateaus_at_once_but_never_reaches_a_useful_nmi() -> None:
    collapsed = [0.0, 0.001, 0.0]
    assert epochs_to_plateau(collapsed) == 1
    assert first_epoch_at(collapsed, 0.5) is None
    assert first_epoch_at([0.2, 0.49, 0.5, 0.7], 0.5) == 3
