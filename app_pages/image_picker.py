"""One input image for a model, chosen three ways (not a page): a dataset image, an uploaded
file of any size or colour mode, or a digit drawn on a canvas. A dataset image's number can
live in the URL; an upload or a drawing cannot travel in a link."""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from app_pages import url_state
from moa_core.data import Dataset
from moa_core.image_input import (
    ImageInputError,
    drawing_to_input,
    has_dark_background,
    read_image,
    to_model_input,
)

DATASET, UPLOAD, DRAW = "Dataset image", "Upload", "Draw"
CANVAS_SIDE = 180
TOOLBAR_ROOM = 28  # pixels of space above the canvas for its hover toolbar


def first_of_class(data: Dataset, slot: int) -> int:
    """A different class per slot by default, so side-by-side diagrams differ."""
    labels = data.y.numpy()
    wanted = np.unique(labels)[slot % data.num_classes]
    return int(np.flatnonzero(labels == wanted)[0])


def pick_image(
    slot: int, data: Dataset, prefix: str, param: str | None = None
) -> tuple[np.ndarray, str] | None:
    """The widgets for input `slot`; (image [C, H, W], caption) or None with a message shown.
    With `param`, a dataset image's number is read from and written to the URL."""
    channels, size, _ = data.image_shape or (1, 16, 16)
    key = f"{prefix}{slot}_"
    source = st.radio(
        f"Input {slot + 1}", (DATASET, UPLOAD, DRAW), horizontal=True, key=f"{key}source"
    )
    if source == DATASET:
        default = first_of_class(data, slot)
        index = st.number_input(
            "Image number",
            0,
            len(data) - 1,
            url_state.url_number(param, 0, len(data) - 1, default) if param else default,
            key=f"{key}index",
            help=f"0 … {len(data) - 1} of `{data.name}`",
        )
        if param:
            url_state.publish(**{param: int(index)})
        name = data.names_by_label[int(data.y[int(index)])]
        return data.x[int(index)].numpy(), f"{data.name} #{int(index)} (class {name})"
    if param:
        url_state.forget(param)  # an upload or a drawing cannot travel in a link
    if source == UPLOAD:
        upload = st.file_uploader(
            "Image file", key=f"{key}upload", help="Any size or colour mode; it is converted."
        )
        if upload is None:
            st.caption("Upload a photo or scan (PNG, JPEG, …).")
            return None
        dark = has_dark_background(data.x[:256].numpy())
        try:
            image = read_image(upload.name, upload.getvalue())
            return to_model_input(image, channels, size, dark, name=upload.name), upload.name
        except ImageInputError as err:
            st.error(str(err))
            return None
    # The canvas's toolbar (undo, redo, clear) pops up 2.65rem above it on hover: the space
    # keeps it off this column's source choices.
    st.space(TOOLBAR_ROOM)
    drawing = st_canvas(
        stroke_width=14,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"{key}canvas",
    )
    pixels = drawing.image_data if drawing is not None else None
    try:
        image = None if pixels is None else drawing_to_input(pixels, channels, size)
    except ImageInputError as err:  # e.g. a stroke too faint to leave any contrast
        st.error(str(err))
        return None
    if image is None:
        st.caption("Draw a digit with the mouse; hover the canvas to undo or clear it.")
        return None
    return image, "your drawing"
