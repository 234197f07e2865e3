"""A user's own image (an uploaded file or a drawing) turned into one model input.

Any size, any colour mode: transparent parts are filled with the colour that contrasts with
the ink (white strokes on a transparent sheet go onto black, dark strokes onto white),
converted to the model's channels, padded to a square with its own border colour (so a digit
keeps its shape), resized, and inverted when its background is light but the model's data
has a dark one (MNIST-style digits are light strokes on black). Anything that is not an image
is one `ImageInputError` line; the bytes are checked by Pillow, never executed. 16-bit and
float images are rescaled and EXIF orientation is applied first; grayscale inputs get their
contrast stretched to the full range, like the digit sets. An image of one flat colour is an
`ImageInputError` too: there is nothing in it for a model to see.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # Pillow's decompression-bomb guard, stated here rather than inherited
MIN_CONTRAST = 8  # grey levels (of 255) between the darkest and lightest pixel; less is flat


class ImageInputError(ValueError):
    """An upload that cannot become a model input, in one line for the page."""


def read_image(name: str, data: bytes) -> Image.Image:
    """Decode `data` as an image, or raise `ImageInputError` naming the file."""
    if not data:
        raise ImageInputError(f"{name}: the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageInputError(f"{name}: larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ImageInputError(f"{name}: {image.width}×{image.height} pixels is too large")
        image.load()
    except Image.DecompressionBombError:
        raise ImageInputError(f"{name}: too many pixels for a photo or a scan") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageInputError):
            raise
        raise ImageInputError(
            f"{name} is not an image this app can open: save it as PNG or JPEG."
        ) from None
    return ImageOps.exif_transpose(image)  # a phone photo stands the way it was taken


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float images rescaled to 0–255 (Pillow's converters would clip them):
    16-bit by its range, floats in [0, 1] by 255, anything else by its own min and max."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    elif image.mode == "F" and pixels.min() >= 0 and pixels.max() <= 1:
        low, high = 0.0, 1.0
    else:
        low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) / max(high - low, 1e-12) * 255.0
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")


def _flatten(image: Image.Image) -> Image.Image:
    """RGB; transparent parts (RGBA, LA, palette transparency) filled with black when the
    visible ink is light and white when it is dark, so the strokes keep their contrast
    whatever colour the invisible pixels happen to hold."""
    if image.mode not in ("RGBA", "LA") and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
    alpha = rgba[..., 3:] / 255.0
    ink = float((rgba[..., :3] * alpha).sum() / max(3 * alpha.sum(), 1e-12))
    fill = 0.0 if ink > 127.5 else 255.0
    flat = rgba[..., :3] * alpha + fill * (1.0 - alpha)
    return Image.fromarray(np.round(flat).astype(np.uint8), "RGB")


def _border(pixels: np.ndarray) -> np.ndarray:
    """The pixels along the four edges of [H, W, C]."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def to_model_input(
    image: Image.Image,
    channels: int,
    size: int,
    dark_background: bool,
    name: str = "The image",
) -> np.ndarray:
    """`image` as a float32 [channels, size, size] array in [0, 1] (see the module docstring);
    `name` starts the error line."""
    if channels not in (1, 3):
        raise ImageInputError(f"this model takes {channels}-channel data, not pictures")
    rgb = _flatten(_eight_bit(image))
    if int(np.ptp(np.asarray(rgb), axis=(0, 1)).max()) < MIN_CONTRAST:
        raise ImageInputError(
            f"{name} is one flat colour with nothing drawn on it: use a picture with visible "
            "strokes."
        )
    # Grayscale digits span black to white; a grey photo of paper is stretched to match.
    converted = ImageOps.autocontrast(rgb.convert("L")) if channels == 1 else rgb
    pixels = np.asarray(converted, dtype=np.float32).reshape(rgb.height, rgb.width, -1)
    background = np.median(_border(pixels), axis=0)
    side = max(rgb.width, rgb.height)
    square = np.empty((side, side, pixels.shape[2]), np.float32)
    square[:] = background
    top, left = (side - rgb.height) // 2, (side - rgb.width) // 2
    square[top : top + rgb.height, left : left + rgb.width] = pixels
    resized = [
        np.asarray(
            Image.fromarray(square[..., c]).resize((size, size), Image.Resampling.BOX),
            dtype=np.float32,
        )
        for c in range(square.shape[2])
    ]
    out = np.stack(resized) / 255.0
    if dark_background and float(background.mean()) / 255.0 > 0.5:
        out = 1.0 - out
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def has_dark_background(images: np.ndarray) -> bool:
    """Whether a grayscale image set [N, 1, H, W] in [0, 1] has light strokes on a dark
    border (MNIST, USPS, digits); colour sets never get their uploads inverted."""
    if images.shape[1] != 1:
        return False
    edges = (images[:, 0, 0], images[:, 0, -1], images[:, 0, :, 0], images[:, 0, :, -1])
    return float(np.concatenate(edges, axis=1).mean()) < 0.25


def drawing_to_input(rgba: np.ndarray, channels: int, size: int) -> np.ndarray | None:
    """A canvas drawing (light strokes on black, [H, W, 4] uint8) as a model input; None when
    nothing has been drawn yet."""
    pixels = np.asarray(rgba)[..., :3]
    if pixels.max() == 0:
        return None
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    return to_model_input(image, channels, size, dark_background=False)
