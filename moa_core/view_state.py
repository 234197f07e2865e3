"""What a link's query string may say about a view, checked before any widget sees it.

Pure functions, no Streamlit: each takes the raw text from the URL (or None when the link
does not mention it) and returns the value to use and, for a bad or stale value, a short
phrase saying what was ignored. The pages show those phrases as one line and use defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
N = TypeVar("N", int, float)
LIST_SEPARATOR = ","
TRUE, FALSE = "1", "0"


def as_text(value: object) -> str:
    """A value as the URL holds it: lists comma-joined, booleans 1/0, numbers as Python
    prints them."""
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(as_text(item) for item in value)
    return str(value)


def choice(param: str, raw: str | None, options: Sequence[T], default: T) -> tuple[T, str | None]:
    """The option whose text is `raw`, else `default` with a phrase naming what was ignored."""
    if raw is None:
        return default, None
    for option in options:
        if as_text(option) == raw:
            return option, None
    return default, f"{param} '{_shown(raw)}' is not available"


def number(param: str, raw: str | None, low: N, high: N, default: N) -> tuple[N, str | None]:
    """A number within [low, high] of the default's type, else the default and a phrase."""
    if raw is None:
        return default, None
    kind = type(default)
    try:
        value = kind(float(raw)) if kind is float else int(raw)
    except ValueError:
        return default, f"{param} '{_shown(raw)}' is not a number"
    if isinstance(value, float) and not math.isfinite(value) or not low <= value <= high:
        return default, f"{param} {_shown(raw)} is outside {low} … {high}"
    return value, None


def flag(param: str, raw: str | None, default: bool) -> tuple[bool, str | None]:
    if raw is None:
        return default, None
    if raw in (TRUE, FALSE):
        return raw == TRUE, None
    return default, f"{param} '{_shown(raw)}' is not 1 or 0"


def subset(
    param: str, raw: str | None, options: Sequence[T], default: list[T]
) -> tuple[list[T], str | None]:
    """Several options, comma-separated; any unknown one makes the whole list the default."""
    if raw is None:
        return default, None
    if raw == "":
        return [], None
    by_text = {as_text(option): option for option in options}
    wanted = raw.split(LIST_SEPARATOR)
    unknown = [item for item in wanted if item not in by_text]
    if unknown:
        return default, f"{param} '{_shown(','.join(unknown))}' is not available"
    return list(dict.fromkeys(by_text[item] for item in wanted)), None


def _shown(raw: str, limit: int = 40) -> str:
    """A raw value short enough for one line."""
    return raw if len(raw) <= limit else raw[: limit - 1] + "…"
