"""Lesson texts shown at the top of each page, kept as Markdown under `assets/lessons/`.

Teachers edit the Markdown, not the pages; the pages only call `lesson_text(page)`.
"""

from __future__ import annotations

import re
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent.parent / "assets" / "lessons"
_PAGE_NAME = re.compile(r"^[a-z0-9_]+$")


def lesson_path(page: str) -> Path:
    """Where the lesson for `page` lives; page names are plain words, never paths."""
    if not _PAGE_NAME.match(page):
        raise ValueError(f"bad lesson name {page!r} (lowercase letters, digits, _)")
    return LESSONS_DIR / f"{page}.md"


def lesson_text(page: str) -> str:
    """The Markdown body of the lesson (its '# title' line removed), or a short note if missing."""
    path = lesson_path(page)
    if not path.is_file():
        return f"_No lesson text for this page yet ({path.name} is missing)._"
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def lesson_title(page: str) -> str:
    """The lesson's first-line '# title', or 'Lesson' when there is none."""
    path = lesson_path(page)
    if path.is_file():
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if first.startswith("# "):
            return first[2:].strip()
    return "Lesson"
