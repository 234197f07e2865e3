"""Gallery thumbnails: a bundled run's lesson at a glance, 320×200 and without text (the Start
page's card says the words), as uint8 `[H, W, 3]` pictures that `thumbnail_png` writes.

- `image_rows`: one row of images per expert and a bar of its share of the data, so a
  collapsed mixture is one full row beside empty ones;
- `point_clusters`: 2-D points coloured by the cluster that wins them, on its region;
- `gate_ranges`: every routing gate's range over the inputs, dead ones in the red bands.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from moa_core.metrics import DEAD_ABOVE, DEAD_BELOW
from moa_core.viz.images import WINNER_COLOR, to_rgb_uint8, upscale
from moa_core.viz.latent import category_color

WIDTH, HEIGHT = 320, 200
MARGIN, GAP = 6, 2
BACKGROUND = (250, 250, 250)
EMPTY = (60, 60, 60)  # an expert's image slot it won no image for
TRACK = (225, 225, 225)  # the whole length of a share bar (100 %)
BAR_SPACE, BAR_LENGTH = 8, 60
LIVE, DEAD, MEDIAN = (31, 119, 180), (214, 39, 40), (255, 255, 255)
MIN_BAR = 5  # half the height of a gate's bar at least: a gate that never moves stays visible
DEAD_BAND = (253, 226, 226)
PALETTE = 32  # colours a thumbnail's PNG keeps: a third of the bytes, digits look the same
TINT = 0.18  # how strongly a cluster's region takes its colour behind the points


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    picture = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    return picture, ImageDraw.Draw(picture)


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    """`[C, H, W]` float → a `size`-pixel square, enlarged crisply by whole factors."""
    pixels = to_rgb_uint8(image)
    if size % pixels.shape[0] == 0:
        return upscale(pixels, size // pixels.shape[0])
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BOX))


def image_rows(groups: Sequence[np.ndarray], shares: Sequence[float] | None = None) -> np.ndarray:
    """Row k: the images of `groups[k]` (`[N_k, C, H, W]`, N_k may be 0) as many as fit, dark
    slots where it has none, then a bar of `shares[k]` (a fraction of all samples)."""
    if not groups:
        raise ValueError("image_rows needs at least one group")
    picture, draw = _canvas()
    rows = len(groups)
    side = next(g.shape[-1] for g in groups if g.ndim == 4)
    room = (HEIGHT - 2 * MARGIN + GAP) // rows - GAP
    tile = side * (room // side) if room >= side else max(room, 4)
    bar = BAR_SPACE + BAR_LENGTH if shares is not None else 0
    columns = max(1, (WIDTH - 2 * MARGIN - bar + GAP) // (tile + GAP))
    width = columns * (tile + GAP) - GAP + bar
    left, top = (WIDTH - width) // 2, (HEIGHT - rows * (tile + GAP) + GAP) // 2
    for row, group in enumerate(groups):
        y = top + row * (tile + GAP)
        for column in range(columns):
            x = left + column * (tile + GAP)
            if column < len(group):
                picture.paste(Image.fromarray(_tile(group[column], tile)), (x, y))
            else:
                draw.rectangle((x, y, x + tile - 1, y + tile - 1), fill=EMPTY)
        if shares is not None:
            x = left + columns * (tile + GAP) - GAP + BAR_SPACE
            draw.rectangle((x, y, x + BAR_LENGTH - 1, y + tile - 1), fill=TRACK)
            length = round(float(np.clip(shares[row], 0.0, 1.0)) * BAR_LENGTH)
            if length:
                draw.rectangle((x, y, x + length - 1, y + tile - 1), fill=WINNER_COLOR)
    return np.asarray(picture)


def _plane_frame(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(data point at the canvas centre, pixels per data unit): `points` fill the canvas less
    the margin, at equal scale on both axes."""
    low, high = points.min(0), points.max(0)
    extent = np.maximum(high - low, 1e-9)
    scale = min((WIDTH - 2 * MARGIN) / extent[0], (HEIGHT - 2 * MARGIN) / extent[1])
    return (low + high) / 2, float(scale)


def canvas_plane(points: np.ndarray) -> np.ndarray:
    """The data coordinates `[HEIGHT·WIDTH, 2]` of every pixel centre of `point_clusters`'
    picture of `points`, row by row: where to ask a model which cluster wins."""
    center, scale = _plane_frame(np.asarray(points, dtype=np.float64))
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    x = center[0] + (columns - WIDTH / 2) / scale
    y = center[1] - (rows - HEIGHT / 2) / scale
    return np.stack([x.ravel(), y.ravel()], 1).astype(np.float32)


def point_clusters(
    points: np.ndarray, clusters: np.ndarray, k: int, regions: np.ndarray | None = None
) -> np.ndarray:
    """Points `[N, 2]` as dots coloured by their cluster (the Latent page's colours), at equal
    scale, in a seeded random order so no cluster hides under another; `regions`, the cluster
    winning each pixel of `canvas_plane(points)` (`[HEIGHT·WIDTH]`), tints the background."""
    points = np.asarray(points, dtype=np.float64)
    colors = np.array([ImageColor.getrgb(category_color(c, k)) for c in range(k)])
    if regions is None:
        picture = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    else:
        tint = colors[np.asarray(regions).reshape(HEIGHT, WIDTH) % k] * TINT + 255 * (1 - TINT)
        picture = Image.fromarray(tint.round().astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    center, scale = _plane_frame(points)
    for i in np.random.default_rng(0).permutation(len(points)):
        x = WIDTH / 2 + (points[i, 0] - center[0]) * scale
        y = HEIGHT / 2 - (points[i, 1] - center[1]) * scale
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=tuple(colors[int(clusters[i]) % k]))
    return np.asarray(picture)


def gate_ranges(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Each routing layer's gates (`[N, m, n]` over N inputs) as bars from their 5th to 95th
    percentile on a 0–1 scale, a white line at the median. A gate that stays below 0.1 or
    above 0.9 for every input is dead (paper 003, Fig. 5.1): its bar is red, and so are the
    bands where dead gates live."""
    gates = [np.asarray(layer).reshape(len(layer), -1) for layer in layers]
    count = sum(g.shape[1] for g in gates)
    if not count:
        raise ValueError("gate_ranges needs at least one gate")
    picture, draw = _canvas()

    def y(value: float) -> float:
        return HEIGHT - MARGIN - value * (HEIGHT - 2 * MARGIN)

    draw.rectangle((0, y(DEAD_BELOW), WIDTH, HEIGHT), fill=DEAD_BAND)
    draw.rectangle((0, 0, WIDTH, y(DEAD_ABOVE)), fill=DEAD_BAND)
    slots = count + len(gates) - 1  # an empty slot between layers
    pitch = (WIDTH - 2 * MARGIN) / slots
    half = max(2.0, pitch * 0.3)
    slot = 0
    for layer in gates:
        for values in layer.T:
            x = MARGIN + (slot + 0.5) * pitch
            low, mid, high = np.percentile(values, (5, 50, 95))
            dead = values.max() < DEAD_BELOW or values.min() > DEAD_ABOVE
            top, bottom = min(y(high), y(mid) - MIN_BAR), max(y(low), y(mid) + MIN_BAR)
            draw.rectangle((x - half, top, x + half, bottom), fill=DEAD if dead else LIVE)
            draw.line((x - half, y(mid), x + half, y(mid)), fill=MEDIAN, width=2)
            slot += 1
        slot += 1
    return np.asarray(picture)


def thumbnail_png(picture: np.ndarray) -> bytes:
    """A picture from this module as a PNG of at most `PALETTE` colours (a few KB)."""
    image = Image.fromarray(np.ascontiguousarray(picture)).quantize(
        PALETTE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
