"""Image arrays for the app: grids of samples, the reconstruction grid, PNG thumbnails.

Inputs are float images `[C, H, W]` in [0, 1] (C = 1 or 3), as every dataset and model in
`moa_core` produces them; outputs are uint8 `H×W×3` arrays (what `st.image` shows without
resampling) or `data:` URIs (what a browser shows without a server round trip).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

WINNER_COLOR = (0, 170, 80)  # frame around the expert the gate picks
# Grey between tiles and around the grid: a white tile (the all-ones probe) stays visible on a
# white page, and a black one on a dark theme.
GAP_COLOR = 150


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """`[C, H, W]` float in [0, 1] → `[H, W, 3]` uint8; grey is repeated over RGB.

    Values are clipped first, so a reconstruction that overshoots shows as white, not noise.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image [C, H, W] with C = 1 or 3, got {image.shape}")
    pixels = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if pixels.shape[0] == 1:
        pixels = np.repeat(pixels, 3, axis=0)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of `[H, W, 3]`, so 16×16 digits stay crisp on screen."""
    if scale < 1:
        raise ValueError("scale must be ≥ 1")
    if scale == 1:
        return image
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def image_grid(images: np.ndarray, columns: int = 8, scale: int = 1, gap: int = 0) -> np.ndarray:
    """`[N, C, H, W]` → one uint8 `[H, W, 3]` image, row-major.

    Each tile is enlarged `scale`×; `gap` grey pixels separate tiles (tightly packed digits
    read as one squiggle) and a grey border of `max(gap, 1)` pixels frames the grid, so no
    tile melts into the page. Cells after the last image stay black. The size is
    `rows·H·scale + (rows − 1)·gap + 2·border` by the same for columns.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected images [N, C, H, W] with N ≥ 1, got {images.shape}")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    height, width = images.shape[2] * scale, images.shape[3] * scale
    border = grid_border(gap)
    grid = np.full(
        (
            rows * height + (rows - 1) * gap + 2 * border,
            columns * width + (columns - 1) * gap + 2 * border,
            3,
        ),
        GAP_COLOR,
        dtype=np.uint8,
    )
    for i in range(rows * columns):
        r, c = divmod(i, columns)
        top, left = border + r * (height + gap), border + c * (width + gap)
        cell = grid[top : top + height, left : left + width]
        cell[:] = upscale(to_rgb_uint8(images[i]), scale) if i < len(images) else 0
    return grid


def grid_border(gap: int) -> int:
    """Width of the grey frame `image_grid` draws around a grid with this gap."""
    return max(gap, 1)


def reconstruction_grid(
    inputs: np.ndarray,
    reconstructions: np.ndarray,
    gate_probs: np.ndarray | None = None,
    scale: int = 1,
    gap: int = 0,
) -> np.ndarray:
    """Rows = samples; column 0 the input, column k the k-th expert's reconstruction.

    `inputs` is `[R, C, H, W]`, `reconstructions` `[R, M, C, H, W]`; without a gap the result
    is `[R·H·s, (M+1)·W·s, 3]` uint8 inside `image_grid`'s frame. With `gate_probs` `[R, M]`,
    a green frame marks the expert the gate routes each sample to, which is what shows
    collapse: one column framed in every row.
    """
    inputs = np.asarray(inputs)
    reconstructions = np.asarray(reconstructions)
    if reconstructions.ndim != 5 or reconstructions.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"expected reconstructions [R, M, C, H, W] for {inputs.shape[0]} inputs, "
            f"got {reconstructions.shape}"
        )
    rows, experts = reconstructions.shape[:2]
    tiles = np.concatenate([inputs[:, None], reconstructions], axis=1)  # [R, M+1, C, H, W]
    flat = tiles.reshape(rows * (experts + 1), *tiles.shape[2:])
    grid = image_grid(flat, experts + 1, scale, gap)
    if gate_probs is not None:
        height, width = inputs.shape[2] * scale, inputs.shape[3] * scale
        thickness, border = max(1, (scale + 1) // 2), grid_border(gap)
        for row, expert in enumerate(np.asarray(gate_probs).argmax(1)):
            top = border + row * (height + gap)
            left = border + (int(expert) + 1) * (width + gap)
            _frame(grid[top : top + height, left : left + width], thickness)
    return grid


def _frame(tile: np.ndarray, thickness: int) -> None:
    tile[:thickness] = WINNER_COLOR
    tile[-thickness:] = WINNER_COLOR
    tile[:, :thickness] = WINNER_COLOR
    tile[:, -thickness:] = WINNER_COLOR


def png_bytes(picture: np.ndarray) -> bytes:
    """A uint8 `[H, W, 3]` picture (a grid from this module) as PNG bytes, for a download."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def png_data_uri(image: np.ndarray) -> str:
    """`[C, H, W]` float image → `data:image/png;base64,…` (grey stays one channel: smaller)."""
    pixels = to_rgb_uint8(image)
    if np.asarray(image).shape[0] == 1:
        picture = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))  # mode L
    else:
        picture = Image.fromarray(pixels)  # mode RGB
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnails(images: np.ndarray) -> list[str]:
    """One PNG data URI per image of `[N, C, H, W]`, for hover and selection in the browser."""
    return [png_data_uri(image) for image in np.asarray(images)]
