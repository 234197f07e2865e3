"""The exported page's frame: sections, figures and pictures as HTML that needs no server.

plotly.js sits once in a `<script>` at the top and every figure is a `<div>` plus the small
script that draws it, so ten figures cost one copy of the library; pictures are PNG `data:`
URIs and the CSS is inline, so the file opens offline and prints as it shows.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from moa_core.viz.images import png_bytes

FIGURE_CONFIG = {"displaylogo": False, "scrollZoom": False, "responsive": True}

_CSS = """
  body { margin: 0 auto; max-width: 1100px; padding: 24px 32px 48px;
         font: 17px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: #1f2328; background: #fff; }
  h1 { font-size: 30px; margin: 0 0 4px; }
  h2 { font-size: 23px; margin: 0 0 8px; border-bottom: 2px solid #e3e6ea; padding-bottom: 4px; }
  .subtitle { color: #57606a; margin: 0 0 18px; }
  section { margin: 28px 0; }
  table { border-collapse: collapse; }
  .facts th { text-align: left; font-weight: 600; padding: 3px 18px 3px 0; vertical-align: top;
              white-space: nowrap; }
  .facts td { padding: 3px 0; overflow-wrap: anywhere; }
  .tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0 14px; }
  .tile { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 18px; min-width: 120px; }
  .tile .label { color: #57606a; font-size: 15px; }
  .tile .value { font-size: 28px; font-weight: 600; }
  .note { background: #fff8c5; border-left: 4px solid #d4a72c; padding: 8px 12px; }
  figure { margin: 10px 0 18px; }
  figcaption { color: #57606a; font-size: 15px; margin-top: 6px; }
  .picture { image-rendering: pixelated; border: 1px solid #d0d7de; }
  .routing-row { display: grid; grid-template-columns: 150px minmax(0, 1fr); gap: 12px;
                 align-items: center; }
  .routing-input { text-align: center; font-size: 15px; }
  .numbers td, .numbers th { border: 1px solid #d0d7de; padding: 3px 12px; text-align: right; }
  details { margin-top: 8px; }
  pre { font-size: 13px; background: #f6f8fa; padding: 8px; overflow-x: auto;
        white-space: pre-wrap; }
  footer { color: #57606a; font-size: 14px; border-top: 1px solid #e3e6ea; padding-top: 8px; }
  @media print {
    body { max-width: none; padding: 0; }
    section, figure { break-inside: avoid; }
    .modebar-container, #moa-selection-count, #moa-selection-grid { display: none; }
  }
"""


@dataclass(frozen=True)
class Section:
    """One titled part of the page; `body` is HTML this package built (text already escaped)."""

    title: str
    body: str
    css: str = ""  # style the body needs beyond the page's own (the latent map's panels)
    papers: tuple[str, ...] = ()  # the papers its captions cite, listed under "Sources"


def text(value: object) -> str:
    """Anything from a checkpoint or a dataset, safe to put between tags."""
    return html.escape(str(value))


def figure_html(fig: go.Figure, caption: str = "") -> str:
    """A plotly figure drawn by the page's one plotly.js, with a caption under it."""
    plot = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        config=FIGURE_CONFIG,
        default_width="100%",
        default_height=f"{fig.layout.height or 450}px",
    )
    return f"<figure>{plot}{caption_html(caption)}</figure>"


def caption_html(caption: str) -> str:
    return f"<figcaption>{text(caption)}</figcaption>" if caption else ""


def picture_uri(picture: np.ndarray) -> str:
    """A uint8 `[H, W, 3]` picture as a PNG `data:` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")


def picture_html(uri: str, alt: str, width: int) -> str:
    """An `<img>` of a data URI shown at `width` CSS pixels, crisp when enlarged."""
    return f'<img class="picture" src="{uri}" alt="{text(alt)}" width="{width}">'


def facts_table(rows: list[tuple[str, str]]) -> str:
    """Label / value rows (values plain text)."""
    cells = "".join(f"<tr><th>{text(key)}</th><td>{text(value)}</td></tr>" for key, value in rows)
    return f'<table class="facts">{cells}</table>'


def numbers_table(columns: dict[str, list]) -> str:
    """A small table of numbers, one list per column (all the same length)."""
    head = "".join(f"<th>{text(name)}</th>" for name in columns)
    rows = zip(*columns.values(), strict=True)
    body = "".join("<tr>" + "".join(f"<td>{text(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="numbers"><tr>{head}</tr>{body}</table>'


def render_page(title: str, subtitle: str, sections: list[Section], footer: str) -> str:
    """The whole file: plotly.js once in the head, then the sections in order."""
    css = "".join(s.css for s in sections)
    parts = "\n".join(f"<section><h2>{text(s.title)}</h2>\n{s.body}\n</section>" for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(title)}</title>
<style>{css}{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>{text(title)}</h1>
<p class="subtitle">{text(subtitle)}</p>
{parts}
<footer>{text(footer)}</footer>
</body>
</html>
"""
