"""One-line verdicts on a model that failed quietly: a gate or manager that sends (almost)
everything to one expert, and experts that decode every code into the same flat image.

A collapse is itself the lesson of paper 000 (expert dominance), so each verdict says what
happened in words a class follows and what to try. Pages show the line where the figure is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COLLAPSE_SHARE = 0.9  # one expert winning this share of the samples is a collapse
UNUSED_SHARE = 0.5  # fewer than this share of the experts in use is a partial collapse
FLAT_STD = 0.02  # pixel spread below this (images in [0, 1]) is a flat, untrained image


def collapse_message(usage: Sequence[float], unit: str, fix: str) -> str | None:
    """A line when one `unit` wins ≥ 90 % of the samples, or fewer than half win any; None
    when the usage looks healthy. `usage` holds each unit's share of the samples (or counts);
    `fix` is the sentence that follows: what to try, or why the collapse is expected."""
    shares = np.asarray(usage, dtype=np.float64)
    if len(shares) < 2 or not np.isfinite(shares).all() or shares.sum() <= 0:
        return None
    shares = shares / shares.sum()
    top = int(shares.argmax())
    hint = f" {fix}" if fix else ""  # what to try, or why it is expected (the page knows)
    if shares[top] >= COLLAPSE_SHARE:
        others = len(shares) - 1
        rest = f"the other {unit} learns" if others == 1 else f"the other {others} {unit}s learn"
        return (
            f"Collapsed: {unit} {top + 1} takes {shares[top]:.0%} of the samples, so {rest} "
            f"(almost) nothing and the clustering says little.{hint}"
        )
    used = int((shares > 0).sum())
    if used < UNUSED_SHARE * len(shares):
        return (
            f"Partly collapsed: only {used} of {len(shares)} {unit}s win any samples; "
            f"the rest are idle.{hint}"
        )
    return None


def flat_experts(samples: np.ndarray) -> list[int]:
    """Experts (rows of `samples` [K, n, C, H, W]) whose images are flat and all alike: the
    same uniform tile for every code, i.e. an expert that never learned to generate."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 5:
        raise ValueError(f"expected samples [K, n, C, H, W], got {samples.shape}")
    within = samples.reshape(*samples.shape[:2], -1).std(axis=2).max(axis=1)  # inside an image
    across = samples.std(axis=1).reshape(len(samples), -1).max(axis=1)  # between codes
    return [int(k) for k in np.flatnonzero((within < FLAT_STD) & (across < FLAT_STD))]


def flat_experts_message(flat: Sequence[int], total: int, fix: str) -> str | None:
    """The line for `flat_experts`' result, or None when every expert draws something."""
    if not flat:
        return None
    if len(flat) == total:
        who = f"All {total} experts decode"
    elif len(flat) == 1:
        who = f"Expert {flat[0] + 1} of {total} decodes"
    else:
        who = f"Experts {', '.join(str(k + 1) for k in flat)} of {total} decode"
    return f"{who} every code into the same flat image: not trained to generate yet. Try: {fix}"
