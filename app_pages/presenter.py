"""Presenter mode: a sidebar switch (kept in the URL as `present=1`) that hides the settings
forms and enlarges figures and fonts for a projector. Not a page.

Pages draw Plotly figures with `chart(fig)` and put their settings forms in `settings_box()`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import plotly.graph_objects as go
import streamlit as st

PARAM = "present"
KEY = "presenter_mode"


def presenting() -> bool:
    return bool(st.session_state.get(KEY, False))


def sidebar_switch() -> None:
    """The switch; app.py calls it once per run, before the page."""
    st.session_state.setdefault(KEY, st.query_params.get(PARAM) == "1")
    st.sidebar.toggle("Presenter mode", key=KEY, help="Big fonts and figures for a projector.")
    if presenting():
        st.query_params[PARAM] = "1"
    elif PARAM in st.query_params:
        del st.query_params[PARAM]


def settings_box(label: str = "Settings") -> AbstractContextManager:
    """Where a page's settings go: shown normally, folded away when presenting."""
    if presenting():
        return st.expander(label, expanded=False)
    return st.container()


def chart(fig: go.Figure, where=None, **kwargs) -> None:
    """`where.plotly_chart` (default `st`), enlarged for a projector when presenting."""
    (where or st).plotly_chart(fig, **kwargs)
