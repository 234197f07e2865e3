"""The one-line verdicts pages show when a gate or manager collapsed or experts never
learned to generate (issue 11, item 11)."""

from __future__ import annotations

import numpy as np
import pytest

from moa_core.analysis.health import collapse_message, flat_experts, flat_experts_message


def test_one_expert_taking_nearly_everything_is_a_collapse() -> None:
    message = collapse_message([0.02, 0.95, 0.03], "expert", "Try: MoA+.")
    assert message is not None
    assert message.startswith("Collapsed: expert 2 takes 95% of the samples")
    assert message.endswith(" Try: MoA+.")  # what to do about it, as the page says it


def test_counts_work_as_well_as_shares() -> None:
    assert "cluster 1 takes 100%" in collapse_message([300, 0, 0], unit="cluster", fix="x")


def test_two_experts_read_in_the_singular() -> None:
    assert "so the other expert learns (almost) nothing" in collapse_message(
        [0.97, 0.03], "expert", ""
    )


def test_idle_experts_are_a_partial_collapse() -> None:
    message = collapse_message([0.5, 0.5, 0.0, 0.0, 0.0, 0.0], "expert", "")
    assert message is not None and "only 2 of 6 experts" in message


@pytest.mark.parametrize("usage", [[0.25] * 4, [0.6, 0.4], [0.89, 0.11], [1.0], [0.0, 0.0]])
def test_balanced_or_undefined_usage_says_nothing(usage: list[float]) -> None:
    assert collapse_message(usage, "expert", "x") is None


def test_flat_grey_experts_are_found_and_drawing_ones_are_not() -> None:
    rng = np.random.default_rng(0)
    drawing = rng.uniform(size=(2, 8, 1, 16, 16))  # every sample different, inside and across
    flat = np.full((2, 8, 1, 16, 16), 0.5) + rng.normal(0, 1e-3, (2, 8, 1, 16, 16))
    samples = np.concatenate([drawing[:1], flat[:1], drawing[1:], flat[1:]])
    assert flat_experts(samples) == [1, 3]
    assert flat_experts_message([1, 3], 4, "train longer.") == (
        "Experts 2, 4 of 4 decode every code into the same flat image: not trained to generate "
        "yet. Try: train longer."
    )
    assert flat_experts_message([0, 1], 2, "x").startswith("All 2 experts decode")
    assert flat_experts_message([], 4, "x") is None


def test_a_stroke_that_does_not_change_with_the_code_is_not_flat() -> None:
    """An expert that draws the same digit for every code has learned something: not flat."""
    digit = np.zeros((1, 16, 16))
    digit[:, 4:12, 7:9] = 1.0
    same = np.repeat(digit[None, None], 8, axis=1)  # [1, 8, 1, 16, 16]
    assert flat_experts(same) == []


def test_a_run_without_its_key_idea_is_told_its_collapse_is_the_lesson() -> None:
    from moa_core.ui_state import PlaneSettings, run_collapse_fix

    normal, switched_off = PlaneSettings(dataset="blobs").job_specs()
    assert "its collapse is the point" in run_collapse_fix(switched_off, comparing=True)
    assert "its collapse is the point" not in run_collapse_fix(normal, comparing=True)
