"""Your data: upload a zip of images or a CSV of 2-D points and use it on every page.

Validation, conversion and the cache are `moa_core.data` (`add_user_set`, `user_sets`); the
previews are `moa_core.viz.user_data`. The set shown is kept in the URL (`set=folder:NAME`).
"""

from __future__ import annotations

import streamlit as st

from app_pages import presenter, session, url_state
from moa_core.data import (
    DatasetError,
    UserSet,
    add_user_set,
    delete_upload,
    read_user_set,
    suggested_name,
    user_datasets,
)
from moa_core.data.dataset import RawSplit
from moa_core.data.image_folder import UNLABELLED
from moa_core.viz.user_data import class_rows, points_figure, summary

KEY = "ydata_"
INTRO = (
    "Bring your own pictures or points: each set becomes a dataset **`folder:NAME`** for the "
    "Train page (images), the Cluster distributions page (points), `moa train --dataset "
    "folder:NAME` and every page that opens a run trained on it."
)
FORMATS = """
- **A zip of class folders**: `circle/1.png`, `square/7.jpg`, … (or all inside one top
  folder); each folder is a class. **A zip of loose images** is a set without labels.
- **A CSV of 2-D points**: columns `x, y` and an optional `label` (text or numbers), with or
  without a header row.
- **On the server**: `MOA_DATA_DIR/NAME/` laid out like the zip, or `MOA_DATA_DIR/NAME.csv`.
"""
CONVERSION = (
    "Images of any size and mode become greyscale 28×28 when all are grey, else colour 32×32; "
    "points are standardized per column. No test split: classifiers hold out a fixed fifth."
)


def add(upload, name: str) -> None:
    """Validate, convert and cache the upload; the outcome is one line for the next run."""
    name = name.strip() or suggested_name(upload.name)
    try:
        with st.spinner(f"Checking and converting {upload.name}…"):
            added = add_user_set(name, upload.name, upload.getvalue())
    except DatasetError as err:
        st.session_state[f"{KEY}message"] = ("error", f"Not added: {err}")
        return
    st.session_state[f"{KEY}message"] = ("success", f"Added `{added.spec}`: previewed below.")
    st.session_state[f"{KEY}set"] = added.spec  # the preview shows the new set


def delete(user_set: UserSet) -> None:
    try:
        delete_upload(user_set.name)
        st.session_state[f"{KEY}message"] = ("success", f"Deleted `{user_set.spec}`.")
        url_state.forget("set")  # the page opens on another set, with no stale-link note
    except DatasetError as err:
        st.session_state[f"{KEY}message"] = ("error", f"Not deleted: {err}")


def upload_form() -> None:
    if not session.can_save_runs():
        st.info(
            "This server is read-only for students: uploads are off. Sets its teacher put in "
            "MOA_DATA_DIR are listed below."
        )
        return
    with st.form(f"{KEY}form", clear_on_submit=True, border=True):
        upload = st.file_uploader("A .zip of images or a .csv of points", type=["zip", "csv"])
        name = st.text_input(
            "Name",
            max_chars=40,
            placeholder="e.g. shapes (default: the file's name)",
            help="Lowercase letters, digits, _ and -; the dataset is then folder:NAME.",
        )
        if st.form_submit_button("Add to the lab", type="primary"):
            if upload is None:
                st.session_state[f"{KEY}message"] = ("error", "Choose a .zip or .csv file first.")
            else:
                add(upload, name)


def describe(user_set: UserSet, data: RawSplit | None) -> str:
    where = f"{'uploaded' if user_set.origin == 'upload' else 'MOA_DATA_DIR'}, `{user_set.where}`"
    return f"{summary(data)} ({where})" if data is not None else where


def loaded(user_set: UserSet) -> tuple[RawSplit | None, str | None]:
    try:
        return read_user_set(user_set), None
    except DatasetError as err:
        return None, str(err)


def set_list(sets: list[UserSet]) -> dict[str, RawSplit]:
    """One line per set (with a delete button for uploads); returns the sets that load."""
    st.subheader("Your sets")
    deletable = session.can_save_runs()
    if not sets:
        st.caption(
            "None yet: add one above, or put a folder in MOA_DATA_DIR."
            if deletable
            else "None yet."
        )
        return {}
    usable = {}
    for user_set in sets:
        data, problem = loaded(user_set)
        left, right = st.columns([6, 1], vertical_alignment="center")
        left.markdown(f"`{user_set.spec}` — {describe(user_set, data)}")
        if problem:
            left.error(problem)
        else:
            usable[user_set.spec] = data
        if user_set.origin == "upload" and deletable:
            right.button(
                "Delete", key=f"{KEY}delete_{user_set.name}", on_click=delete, args=(user_set,)
            )
    return usable


def preview(spec: str, data: RawSplit) -> None:
    if data.class_names == (UNLABELLED,):
        st.info(
            "This set has no labels: ACC, NMI and ARI compare the clusters with one class, so "
            "they mean nothing here. Choose the number of experts M on the Train page "
            "yourself (0 would give one)."
        )
    if data.kind == "points":
        presenter.chart(points_figure(data, f"{spec}: {len(data.y):,} points"))
        return
    for row in class_rows(data):
        st.markdown(f"**{row.name}** — {row.count:,} images")
        st.image(row.picture)


st.title("Your data")
url_state.start_page()
st.markdown(INTRO)
with presenter.settings_box("Add a set"):
    left, right = st.columns([3, 2])
    with left:
        upload_form()
    with right.container(border=True):
        st.markdown(FORMATS)
        st.caption(CONVERSION)
level, text = st.session_state.pop(f"{KEY}message", (None, None))
if level:
    getattr(st, level)(text)
usable = set_list(user_datasets())
if usable:
    st.subheader("Preview")
    specs = list(usable)
    if st.session_state.get(f"{KEY}set") not in specs:  # first visit, or the set is gone
        st.session_state[f"{KEY}set"] = url_state.url_choice("set", specs, specs[0])
    shown = st.columns([2, 3])[0].selectbox("Set", specs, key=f"{KEY}set")
    url_state.publish(set=shown)
    page = "Train" if usable[shown].kind == "image" else "Cluster distributions"
    st.markdown(f"Use it as `{shown}` on the {page} page.")
    preview(shown, usable[shown])
