"""The run / upload picker the exploring pages share (not a page).

The run list holds the bundled gallery (read-only) and the user's saved runs
(`moa_core.run_menu`); the chosen run travels in the URL as `run`, so a link opens it. It
returns a `CheckpointChoice`: a stable id for the page's caches and a way to load the
checkpoint, validated and never unpickled. Widget keys start with the page's prefix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
import torch

from app_pages import url_state
from moa_core import explore
from moa_core.checkpoint import CheckpointError, LoadedCheckpoint, RunInfo, load_checkpoint
from moa_core.data import Dataset, DatasetError
from moa_core.device import resolve_device
from moa_core.run_menu import RunMenu, describe, run_menu
from moa_core.uploads import load_uploaded_checkpoint

SAVED, UPLOAD = "Gallery or saved run", "Upload a checkpoint"
RUN_PARAM = "run"
KIND_WORDS = {"image": "images", "points": "2-D points"}
SKIPPED_SHOWN = 5  # reasons named in the "Skipped …" caption; `moa list` names them all


@dataclass(frozen=True)
class CheckpointChoice:
    run_id: str  # "<run id>@<mtime>" or "upload-<sha256 prefix>": a rewritten file gets a new id
    path: Path | None = None
    upload_name: str = ""
    upload_data: bytes = field(default=b"", repr=False)

    def load(self, device: torch.device) -> LoadedCheckpoint:
        if self.path is not None:
            return load_checkpoint(self.path, device)
        return load_uploaded_checkpoint(self.upload_name, self.upload_data, device)

    @property
    def listed_id(self) -> str:
        """The run's id in the run list ("gallery/moa_digits", a saved run's name), without
        the mtime; an upload's own id."""
        return self.run_id.split("@")[0]

    @property
    def file_stem(self) -> str:
        """The run's name as a download's file name can hold it."""
        return self.listed_id.replace("/", "-")


def choice_for(run: RunInfo) -> CheckpointChoice:
    """A gallery or saved run as a choice; its id changes when the file is rewritten."""
    return CheckpointChoice(f"{run.run_id}@{run.path.stat().st_mtime}", path=run.path)


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint and its data…")
def load_with_data(run_id: str, _choice: CheckpointChoice) -> tuple[LoadedCheckpoint, Dataset]:
    """The validated model and the samples it trained on, cached per run id."""
    checkpoint = _choice.load(resolve_device("auto"))
    return checkpoint, explore.checked_run_dataset(checkpoint, run_id)


def pick_image_run(
    prefix: str, empty_hint: str, default_run: str | None = None
) -> tuple[CheckpointChoice, LoadedCheckpoint, Dataset]:
    """Pick, load and check a run whose data are images (only those are listed); any problem
    is one line and stops the page."""
    choice = pick_checkpoint(prefix, empty_hint, default_run, kind="image")
    try:
        checkpoint, data = load_with_data(choice.run_id, choice)
    except (CheckpointError, DatasetError) as err:
        st.error(str(err))
        st.stop()
    if data.kind != "image":
        st.error(
            f"{checkpoint.config.model_type} on `{data.name}` takes 2-D points; this page needs "
            "an image model (see the Cluster distributions page for 2-D models)."
        )
        st.stop()
    return choice, checkpoint, data


def skipped_caption(skipped: list[str]) -> None:
    """What the run folder holds besides readable runs, as one compact caption line."""
    if skipped:
        files = "file" if len(skipped) == 1 else "files"
        reasons = [line.removeprefix("skipped: ") for line in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            reasons.append(f"and {len(skipped) - SKIPPED_SHOWN} more (`moa list` names them all)")
        st.caption(f"Skipped {len(skipped)} {files} in the run folder: {'; '.join(reasons)}")


def unlisted_caption(menu: RunMenu, kind: str | None) -> None:
    """Why runs of another kind are missing from the list, as one caption line."""
    if menu.other_kind and kind:
        runs = "run is" if menu.other_kind == 1 else "runs are"
        words = KIND_WORDS.get(kind, kind)
        st.caption(f"{menu.other_kind} {runs} not listed: this page shows models of {words}.")


def pick_checkpoint(
    prefix: str, empty_hint: str, default_run: str | None = None, kind: str | None = None
) -> CheckpointChoice:
    """The source radio and run list or uploader; stops the page when nothing is chosen.

    The list opens on the URL's `run`, else `default_run` (a gallery run such as
    "gallery/moa_plus_digits"), else its first run; with `kind` ("image", "points") it holds
    only runs whose data are of that kind.
    """
    source = st.radio("Checkpoint", [SAVED, UPLOAD], horizontal=True, key=f"{prefix}source")
    if source == SAVED:
        return pick_listed(prefix, empty_hint, default_run, kind)
    url_state.forget(RUN_PARAM)  # an upload cannot travel in a link
    return pick_upload(prefix)


def pick_listed(
    prefix: str, empty_hint: str, default_run: str | None, kind: str | None
) -> CheckpointChoice:
    """A gallery or saved run from one list, kept in the URL as `run`."""
    menu = run_menu(kind)
    if not menu.runs:
        st.info(f"No saved runs yet: {empty_hint}, or upload a checkpoint.")
        unlisted_caption(menu, kind)
        skipped_caption(menu.skipped)
        st.stop()
    ids = list(menu.runs)
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    run_id = left.selectbox(
        "Run",
        ids,
        index=url_state.url_index(RUN_PARAM, ids, menu.opening(default_run)),
        key=f"{prefix}run",
        format_func=lambda r: describe(menu.runs[r]),
    )
    url_state.publish(**{RUN_PARAM: run_id})
    path = menu.runs[run_id].path
    right.download_button(
        "Download run",
        path.read_bytes,  # read on the click only, not on every rerun
        file_name=path.name,
        mime="application/octet-stream",
        key=f"{prefix}download",
        help="The run's .safetensors file: open it in another Mixture Lab or `moa eval`.",
    )
    unlisted_caption(menu, kind)
    skipped_caption(menu.skipped)
    return choice_for(menu.runs[run_id])


def pick_upload(prefix: str) -> CheckpointChoice:
    upload = st.file_uploader("Checkpoint file", type=["safetensors"], key=f"{prefix}upload")
    if upload is None:
        st.info(
            "Upload a `.safetensors` checkpoint saved by Mixture Lab (`moa train` or "
            "**Save as run**). It is validated and never unpickled."
        )
        st.stop()
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    return CheckpointChoice(f"upload-{digest[:12]}", upload_name=upload.name, upload_data=data)
