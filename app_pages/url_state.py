"""A view's state in the URL query (`st.query_params`), so a copied link opens the same view.

Before a widget is drawn, `url_choice` / `url_number` / `url_flag` / `url_list` give the value
the link asks for (checked by `moa_core.view_state`), to pass as the widget's default; after
the widget, `publish(param=value, …)` writes the current value back so the address bar always
holds the view. A bad or stale value falls back to the default and adds a phrase to one line
at the top of the page (`start_page` draws its placeholder). Not a page.

A keyed widget takes its default only when it is first drawn; later the URL just follows it.
A value this session wrote itself that no longer fits (another run was picked, with fewer
images or gates) falls back silently: the line is for links, not for the page's own moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import streamlit as st

from moa_core import view_state

T = TypeVar("T")
N = TypeVar("N", int, float)
_NOTE = "_url_note"  # this run's (placeholder, phrases) for the one-line note
_PUBLISHED = "_url_published"  # param → the text this session last wrote into the URL


def start_page() -> None:
    """Call once near the top of a page: where the link's one-line note goes."""
    st.session_state[_NOTE] = (st.empty(), [])


def _noted(param: str, result: tuple[T, str | None]) -> T:
    value, problem = result
    if problem and st.session_state.get(_PUBLISHED, {}).get(param) != _raw(param):
        placeholder, phrases = st.session_state.get(_NOTE) or (st.empty(), [])
        if problem not in phrases:
            phrases.append(problem)
        placeholder.info(f"This link's {'; '.join(phrases)}: showing the default instead.")
    return value


def _raw(param: str) -> str | None:
    return st.query_params.get(param)


def url_choice(param: str, options: Sequence[T], default: T) -> T:
    return _noted(param, view_state.choice(param, _raw(param), options, default))


def url_index(param: str, options: Sequence[T], default: T) -> int:
    """`url_choice` as the index a selectbox or radio takes."""
    return list(options).index(url_choice(param, options, default))


def url_number(param: str, low: N, high: N, default: N) -> N:
    return _noted(param, view_state.number(param, _raw(param), low, high, default))


def url_flag(param: str, default: bool) -> bool:
    return _noted(param, view_state.flag(param, _raw(param), default))


def url_list(param: str, options: Sequence[T], default: list[T]) -> list[T]:
    return _noted(param, view_state.subset(param, _raw(param), options, default))


def publish(**values: object) -> None:
    """Write the view's current values into the address bar (only those that changed)."""
    published = st.session_state.setdefault(_PUBLISHED, {})
    for param, value in values.items():
        text = view_state.as_text(value)
        published[param] = text
        if st.query_params.get(param) != text:
            st.query_params[param] = text


def forget(*params: str) -> None:
    """Take params out of the address bar: the view no longer has them (an uploaded image
    or checkpoint cannot travel in a link)."""
    for param in params:
        if param in st.query_params:
            del st.query_params[param]


def url_tabs(param: str, tabs: dict[str, str], key: str) -> Sequence:
    """`st.tabs` (URL word → label) whose open tab lives in the URL as `param`. Every tab's
    content is still drawn; switching tabs reruns the page so the URL can follow."""
    words = list(tabs)
    asked = url_choice(param, words, words[0])
    opened = st.tabs(list(tabs.values()), default=tabs[asked], key=key, on_change="rerun")
    publish(**{param: next((w for w, tab in zip(words, opened, strict=True) if tab.open), asked)})
    return opened
