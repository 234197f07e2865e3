"""Mixture Lab: `streamlit run app.py`. Routes to the pages; the sidebar shows the device and
the presenter-mode switch (`app_pages/presenter.py`).

On a shared server every page sits behind the door (`MOA_ACCESS_CODE`), and each browser is
known by a cookie so its jobs survive a reload (`app_pages/session.py`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from app_pages import presenter, session
from moa_core.analysis import embedding
from moa_core.device import describe_device, resolve_device
from moa_core.train import trainer
from moa_core.train.jobs import job_manager


def _warm_up() -> None:
    trainer.warm_up()  # seconds: the first job's optimizer imports
    embedding.warm_up()  # ~20 s of CPU on a machine's first start (numba compiles), ~4 s after


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Once per process, in the background at start-up, what the first training and the
    first UMAP would otherwise make a student wait for."""
    thread = threading.Thread(target=_warm_up, name="warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    return describe_device(resolve_device("auto"))


# A local file: a `:material/…:` page icon makes every browser fetch it from a font server.
ICON = Path(__file__).resolve().parent / "assets" / "icons" / "hub.png"

st.set_page_config(page_title="Mixture Lab", page_icon=str(ICON), layout="wide")
PAGES = [
    st.Page("app_pages/start.py", title="Start", icon=":material/school:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("app_pages/distributions.py", title="Cluster distributions", icon=":material/blur_on:"),
    st.Page("app_pages/maximize.py", title="Neuron maximization", icon=":material/psychology:"),
    st.Page("app_pages/routing.py", title="Routing", icon=":material/alt_route:"),
    st.Page(
        "app_pages/pretraining.py", title="Pretraining pipeline", icon=":material/account_tree:"
    ),
    st.Page("app_pages/experts.py", title="Experts & latent walks", icon=":material/gesture:"),
    st.Page("app_pages/generative.py", title="Generative mixtures", icon=":material/grain:"),
    st.Page(
        "app_pages/gated_regression.py",
        title="Gated regression",
        icon=":material/stacked_line_chart:",
    ),
    st.Page("app_pages/results.py", title="Results", icon=":material/leaderboard:"),
    st.Page("app_pages/your_data.py", title="Your data", icon=":material/upload_file:"),
    st.Page("app_pages/classroom.py", title="Classroom", icon=":material/groups:"),
]
try:
    job_manager()  # its limits come from the environment: a bad one is a line, not a trace
except ValueError as err:
    st.error(f"This server's settings are not usable: {err}")
    st.stop()
if not session.door_open():
    st.navigation(PAGES, position="hidden")  # the URL keeps its page; nothing of it is run
    st.stop()
if os.environ.get("MOA_WARM_UP", "1") != "0":
    warm_up()
page = st.navigation(PAGES, expanded=True)  # 13 pages: all in sight, Classroom too
session.remember()
st.fragment(run_every=session.HEARTBEAT_SECONDS)(session.heartbeat)()
st.sidebar.markdown(f"**Device:** {device_label()}  \n**You:** {session.browser_name()}")
presenter.sidebar_switch()
presenter.style()
page.run()
