"""The saved-run / upload picker the exploring pages share (not a page).

It returns a `CheckpointChoice`: a stable id for the page's caches and a way to load the
checkpoint, validated and never unpickled. Widget keys start with the page's prefix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
import torch

from moa_core import explore
from moa_core.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    RunInfo,
    load_checkpoint,
    scan_runs,
)
from moa_core.data import Dataset, DatasetError
from moa_core.device import resolve_device
from moa_core.uploads import load_uploaded_checkpoint

SAVED, UPLOAD = "Saved run", "Upload a checkpoint"
SKIPPED_SHOWN = 5  # reasons named in the "Skipped …" caption; `moa list` names them all


@dataclass(frozen=True)
class CheckpointChoice:
    run_id: str  # "<run>@<mtime>" or "upload-<sha256 prefix>": a rewritten file gets a new id
    path: Path | None = None
    upload_name: str = ""
    upload_data: bytes = field(default=b"", repr=False)

    def load(self, device: torch.device) -> LoadedCheckpoint:
        if self.path is not None:
            return load_checkpoint(self.path, device)
        return load_uploaded_checkpoint(self.upload_name, self.upload_data, device)


def choice_for(run: RunInfo) -> CheckpointChoice:
    """A saved run as a choice; its id changes when the file is rewritten."""
    return CheckpointChoice(f"{run.path.stem}@{run.path.stat().st_mtime}", path=run.path)


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint and its data…")
def load_with_data(run_id: str, _choice: CheckpointChoice) -> tuple[LoadedCheckpoint, Dataset]:
    """The validated model and the samples it trained on, cached per run id."""
    checkpoint = _choice.load(resolve_device("auto"))
    return checkpoint, explore.checked_run_dataset(checkpoint, run_id)


def pick_image_run(
    prefix: str, empty_hint: str
) -> tuple[CheckpointChoice, LoadedCheckpoint, Dataset]:
    """Pick, load and check a run whose data are images; any problem is one line and stops
    the page."""
    choice = pick_checkpoint(prefix, empty_hint)
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


def describe(run: RunInfo) -> str:
    metrics = run.meta.get("metrics") or {}
    nmi, accuracy = metrics.get("nmi"), metrics.get("accuracy")
    score = f", NMI {nmi:.2f}" if isinstance(nmi, float) else ""
    score += f", accuracy {accuracy:.3f}" if isinstance(accuracy, float) else ""
    return f"{run.run_id} ({run.model_type}, {run.meta.get('dataset', '?')}{score})"


def skipped_caption(skipped: list[str]) -> None:
    """What the run folder holds besides readable runs, as one compact caption line."""
    if skipped:
        files = "file" if len(skipped) == 1 else "files"
        reasons = [line.removeprefix("skipped: ") for line in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            reasons.append(f"and {len(skipped) - SKIPPED_SHOWN} more (`moa list` names them all)")
        st.caption(f"Skipped {len(skipped)} {files} in the run folder: {'; '.join(reasons)}")


def pick_checkpoint(prefix: str, empty_hint: str) -> CheckpointChoice:
    """The source radio and run list or uploader; stops the page when nothing is chosen."""
    source = st.radio("Checkpoint", [SAVED, UPLOAD], horizontal=True, key=f"{prefix}source")
    if source == SAVED:
        listing = scan_runs()
        runs = {run.run_id: run for run in listing.runs}
        if not runs:
            st.info(f"No saved runs yet: {empty_hint}, or upload a checkpoint.")
            skipped_caption(listing.skipped)
            st.stop()
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        run_id = left.selectbox(
            "Run", list(runs), key=f"{prefix}run", format_func=lambda r: describe(runs[r])
        )
        path = runs[run_id].path
        right.download_button(
            "Download run",
            path.read_bytes,  # read on the click only, not on every rerun
            file_name=path.name,
            mime="application/octet-stream",
            key=f"{prefix}download",
            help="The run's .safetensors file: open it in another Mixture Lab or `moa eval`.",
        )
        skipped_caption(listing.skipped)
        return choice_for(runs[run_id])
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
