"""`moa export RUN --html FILE`: one self-contained HTML page of a trained run, for students
to keep: what it is and how it was made, its scores, its latent map with images on hover and
its family's signature figures. It opens offline in any browser and prints.

RUN is a checkpoint file, a saved run's id (as `moa list` prints it) or a gallery id
`gallery/<name>`; it is loaded through the normal validating loader, so a bad file is the
loader's one line.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import plotly
import torch

import moa_core
from moa_core import explore
from moa_core.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint, scan_runs
from moa_core.device import resolve_device
from moa_core.export.page import render_page
from moa_core.export.sections import (
    about_section,
    density_section,
    latent_section,
    routing_section,
    samples_section,
    scores_section,
    sources_section,
)
from moa_core.gallery import gallery_runs, is_gallery


@dataclass(frozen=True)
class Exported:
    """What `moa export` prints: the run, the file written, its size and the time taken."""

    run: str
    html: Path
    bytes: int
    seconds: float


def resolve_run(run: str) -> tuple[str, Path]:
    """A RUN argument → (run id, checkpoint path); an unknown one is a one-line
    CheckpointError saying what RUN may be."""
    if is_gallery(run):
        bundled = {info.run_id: info.path for info in gallery_runs()}
        if run not in bundled:
            known = ", ".join(bundled) or "no runs yet (`make gallery` builds them)"
            raise CheckpointError(f"unknown gallery run {run!r}; the gallery has {known}")
        return run, bundled[run]
    path = Path(run)
    if path.is_file():
        return str(path), path
    saved = {info.run_id: info.path for info in scan_runs().runs}
    if run in saved:
        return run, saved[run]
    raise CheckpointError(
        f"unknown run {run!r}: not a checkpoint file, a saved run's id (see `moa list`) "
        "or a gallery run (gallery/NAME)"
    )


def run_page(loaded: LoadedCheckpoint, run_id: str, path: Path, device: torch.device) -> str:
    """The page's HTML: raises DatasetError / CheckpointError when the run's data is missing
    or does not fit the model."""
    analysis = explore.analyse(loaded, run_id, device)
    model = loaded.model
    sections = [about_section(analysis, run_id, path), scores_section(analysis)]
    figures = (
        latent_section(analysis),
        routing_section(analysis, model),
        samples_section(analysis, model),
        density_section(analysis, model),
    )
    sections += [section for section in figures if section is not None]
    sources = sources_section(sections)
    if sources is not None:
        sections.append(sources)
    gallery = analysis.meta.get("gallery")
    subtitle = gallery.get("title") if isinstance(gallery, dict) else None
    footer = (
        f"Written by `moa export` (Mixture Lab) on {time.strftime('%Y-%m-%d %H:%M')} with "
        f"moa_core {moa_core.__version__}, torch {torch.__version__}, plotly "
        f"{plotly.__version__}. This file needs no network: open it in any browser, print it, "
        "keep it."
    )
    return render_page(
        f"{analysis.config.model_type} on {analysis.dataset.name}",
        str(subtitle or "A trained run from the Mixture Lab"),
        sections,
        footer,
    )


def write_atomically(out: Path, content: str) -> None:
    """The whole file appears at once (a hidden temp file beside it, then a rename), or not at
    all; created with "x" like any new file, so the user's umask sets who may read it."""
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as file:
            file.write(content)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def export_run(run: str, out: Path, device: str = "auto") -> Exported:
    """Write RUN's page to `out`; raises CheckpointError, DatasetError, DeviceError, OSError."""
    start = time.perf_counter()
    run_id, path = resolve_run(run)
    where = resolve_device(device)
    page = run_page(load_checkpoint(path, where), run_id, path, where)
    write_atomically(out, page)
    return Exported(run_id, out, out.stat().st_size, round(time.perf_counter() - start, 2))
