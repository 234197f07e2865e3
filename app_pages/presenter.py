"""Presenter mode: a sidebar switch (kept in the URL as `present=1`) that hides the settings
forms and enlarges figures and fonts for a projector. Not a page.

Pages draw Plotly figures with `chart(fig)` and put their settings forms in `settings_box()`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import plotly.graph_objects as go
import streamlit as st

from moa_core.viz.projector import enlarge

PARAM = "present"
KEY = "presenter_mode"  # the switch's widget state
# The mode itself, in a plain session key: Streamlit drops a widget's state on some page
# switches (`st.switch_page`), and the sidebar's page links drop the query string.
ON = "_presenter_on"
# Type about 1.4× Streamlit's in the page (the sidebar keeps its size, so its page names fit;
# metrics keep theirs, already large, so eight tiles of two runs still fit at 1280 px),
# and none of its chrome a class need not see (the main menu, the toolbar's actions, the
# "Running…" man that the live pages' polling flickers every second); the header stays,
# since it holds the sidebar's open button.
STYLE = """<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] :is(p, li, td, th) {
  font-size: 1.4rem;
}
[data-testid="stHeading"] h1 { font-size: 3.6rem; }
[data-testid="stHeading"] h2 { font-size: 2.8rem; }
[data-testid="stHeading"] h3 { font-size: 2.2rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.2rem; }
[data-testid="stMain"] [data-testid="stWidgetLabel"] p,
[data-testid="stMain"] [data-testid="stExpander"] summary p { font-size: 1.3rem; }
[data-testid="stMain"] [data-testid^="stBaseButton"] p { font-size: 1.3rem; }
[data-testid="stMain"] :is(input, textarea, [data-testid="stSelectbox"] *) { font-size: 1.2rem; }
[data-testid="stMain"] [data-testid="stMetricValue"] p { font-size: 2.25rem; }
[data-testid="stMain"] [data-testid="stMetricLabel"] p { font-size: 0.875rem; }
[data-testid="stMainMenu"], [data-testid="stToolbarActions"],
[data-testid="stAppDeployButton"], [data-testid="stStatusWidget"] { display: none; }
[data-testid="stMainBlockContainer"] { padding-top: 3rem; }
</style>"""


def presenting() -> bool:
    return bool(st.session_state.get(ON, False))


def sidebar_switch() -> None:
    """The switch; app.py calls it once per run, before the page. The session remembers the
    mode (a link's `present=1` starts it) and each run writes it back into the URL."""
    st.session_state.setdefault(ON, st.query_params.get(PARAM) == "1")
    st.session_state.setdefault(KEY, st.session_state[ON])
    st.sidebar.toggle("Presenter mode", key=KEY, help="Big fonts and figures for a projector.")
    st.session_state[ON] = st.session_state[KEY]
    if presenting():
        st.query_params[PARAM] = "1"
    elif PARAM in st.query_params:
        del st.query_params[PARAM]


def style() -> None:
    """The page's larger type, once per run while presenting (app.py calls it)."""
    if presenting():
        st.html(STYLE)  # style only: Streamlit adds it without taking room on the page


def settings_box(label: str = "Settings") -> AbstractContextManager:
    """Where a page's settings go: shown normally, folded away when presenting."""
    if presenting():
        return st.expander(label, expanded=False)
    return st.container()


def chart(fig: go.Figure, where=None, **kwargs) -> None:
    """`where.plotly_chart` (default `st`), enlarged for a projector when presenting."""
    (where or st).plotly_chart(enlarge(fig) if presenting() else fig, **kwargs)
