"""Paper 002's pages compare two families side by side: trained here, live, or two gallery or
saved runs picked from the menu. This module holds that choice (the link's `source`) and the
two run pickers (the link's `run_a`, `run_b`), so both pages open the same way from a link
or a lesson card."""

from __future__ import annotations

from collections.abc import Iterator

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app_pages import url_state
from moa_core.checkpoint import RunInfo
from moa_core.run_menu import describe, run_menu

TRAIN_HERE, SAVED = "Train here", "Two saved runs"
SOURCES = {"train": TRAIN_HERE, "saved": SAVED}
RUN_PARAMS = ("run_a", "run_b")
SIDES = ("Left", "Right")


def saved_source_chosen(prefix: str) -> bool:
    """The Source radio, started from the link; True for two saved runs. Training here
    drops the run picks from the link, so a shared link never names runs it does not show."""
    source_word = url_state.url_choice("source", list(SOURCES), "train")
    st.session_state.setdefault(f"{prefix}view", SOURCES[source_word])
    source = st.radio(
        "Source",
        list(SOURCES.values()),
        horizontal=True,
        key=f"{prefix}view",
        help="Two saved runs draw at once, without training.",
    )
    url_state.publish(source=next(word for word, name in SOURCES.items() if name == source))
    if source == TRAIN_HERE:
        url_state.forget(*RUN_PARAMS)
    return source == SAVED


def pick_pair(
    prefix: str, pair: tuple[str, str], empty_hint: str
) -> Iterator[tuple[str, str, RunInfo, DeltaGenerator]]:
    """One picker per column over the runs of `pair`'s two families (each side starts on
    its own family's first run, or on the link's pick); yields (side, run id, run, column).
    With no such run, `empty_hint` and nothing."""
    runs = {run_id: run for run_id, run in run_menu().runs.items() if run.model_type in pair}
    if not runs:
        st.info(empty_hint)
        return
    ids = list(runs)
    firsts = [next((r for r in ids if runs[r].model_type == t), ids[0]) for t in pair]
    for side, param, first, column in zip(SIDES, RUN_PARAMS, firsts, st.columns(2), strict=True):
        run_id = column.selectbox(
            f"{side} run",
            ids,
            index=url_state.url_index(param, ids, first),
            key=f"{prefix}{param}",
            format_func=lambda r: describe(runs[r]),
        )
        url_state.publish(**{param: run_id})
        yield side, run_id, runs[run_id], column
