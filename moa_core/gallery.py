"""The bundled gallery: one small trained run per family and lesson, read-only, so every
exploring page opens on something before anyone trains.

The files live in `assets/checkpoints/` and are ordinary validated checkpoints; their run ids
are `gallery/<name>` so they never clash with a saved run's id. `make gallery` rebuilds them
(`python -m moa_core.gallery`), seeded, with how each was made and its scores in its metadata.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from moa_core.checkpoint import RunInfo, scan_runs

ASSETS = Path(__file__).resolve().parent.parent / "assets"
GALLERY_DIR = ASSETS / "checkpoints"
THUMBNAIL_DIR = ASSETS / "gallery"
PREFIX = "gallery/"


def gallery_id(name: str) -> str:
    return f"{PREFIX}{name}"


def is_gallery(run_id: str) -> bool:
    return run_id.startswith(PREFIX)


def gallery_runs(directory: Path = GALLERY_DIR) -> list[RunInfo]:
    """Every bundled run, ids `gallery/<name>`, in name order."""
    runs = scan_runs(directory).runs
    return sorted(
        (replace(run, run_id=gallery_id(run.path.stem)) for run in runs), key=lambda run: run.run_id
    )


def thumbnail_path(name: str) -> Path:
    return THUMBNAIL_DIR / f"{name}.png"
