"""Limits a shared server reads from its environment: one parser, one way to say a size."""

from __future__ import annotations

import os


def env_number(name: str, default: float) -> float:
    """`name`'s value as a number ≥ 0 (unset or blank: `default`); a bad value is a one-line
    ValueError naming the variable, which callers re-raise as their own error."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{name} must be a number ≥ 0, got {raw!r}")
    return value


def size_text(n_bytes: float) -> str:
    """Bytes as a teacher reads them: "812 kB", "3.4 MB", "2,048 MB"."""
    mb = n_bytes / 2**20
    if mb < 1:
        return f"{n_bytes / 1024:.0f} kB" if n_bytes >= 1024 else f"{n_bytes:.0f} bytes"
    return f"{mb:.1f} MB" if mb < 100 else f"{mb:,.0f} MB"
