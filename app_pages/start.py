"""Start: what the lab is, and one card per lesson that opens its page on a gallery run.

The two sentences at the top are `assets/lessons/start.md`; the cards are
`moa_core.start_lessons`. Nothing here trains or loads a model, and a card whose gallery run
is missing is shown disabled with one line.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app_pages import presenter
from moa_core.device import describe_device, resolve_device
from moa_core.gallery import gallery_runs
from moa_core.lessons import lesson_text
from moa_core.start_lessons import LESSONS, YOUR_OWN, LessonCard

PER_ROW = 3


def draw_card(card: LessonCard, gallery_names: set[str]) -> None:
    with st.container(border=True, height="stretch"):
        image = card.image()
        if image is not None:
            st.image(str(image), width="stretch")
        st.markdown(f"#### {card.question}")
        st.markdown(card.teaser)
        missing = card.missing(gallery_names)
        if st.button(
            f"Open {card.page_title}",
            key=card.key,
            type="primary",
            icon=":material/arrow_forward:",
            icon_position="right",
            disabled=bool(missing),
        ):
            st.switch_page(card.page, query_params=card.query_params())
        if missing:
            st.caption(missing)


def draw_grid(cards: tuple[LessonCard, ...], gallery_names: set[str]) -> None:
    """`PER_ROW` cards a row; the cards of a row are as tall as its tallest."""
    for start in range(0, len(cards), PER_ROW):
        row = cards[start : start + PER_ROW]
        for column, card in zip(st.columns(PER_ROW), row, strict=False):
            with column:
                draw_card(card, gallery_names)


def preload_plotly() -> None:
    """An empty chart in a one-pixel box: the browser fetches and parses Plotly's bundle
    (megabytes of JavaScript, 2-3 s on a 2-core CPU) while the cards are read, not after
    the first click (benchmarks/RESULTS.md, lesson_cards: the first Latent space card)."""
    with st.container(height=1, border=False):
        presenter.chart(go.Figure(layout={"height": 10}), config={"displayModeBar": False})


st.title("Mixture Lab")
st.markdown(lesson_text("start"))
st.caption(
    f"Running on **{describe_device(resolve_device('auto'))}**. Nothing on this page trains: "
    "each button opens a page on a small model bundled with the lab."
)
names = {run.path.stem for run in gallery_runs()}
draw_grid(LESSONS, names)
st.markdown("##### Your own models and data")
draw_grid(YOUR_OWN, names)
preload_plotly()  # last: nothing on the page waits for it
