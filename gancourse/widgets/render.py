"""Composing widget pictures: image tiles, text labels, parts stacked into one PNG.

Images are enlarged by whole factors, each pixel becoming a block of identical pixels, so they stay
crisp on screen; a redraw costs milliseconds, which a slider dragged in a browser needs.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from gancourse.utils import to_display

FRAME_PX = 56  # smallest side of one strip frame on screen
TILE_GAP, PANEL_GAP, PART_GAP, MARGIN = 3, 12, 10, 8
BACKGROUND, INK, MARK = (255, 255, 255), (40, 40, 40), (214, 39, 40)
FONT_SIZE = 13


# ---------------------------------------------------------------------------------------------
# integer pixel scaling


def scale_for(side: int, target: int) -> int:
    """The smallest whole factor that makes `side` pixels at least `target` pixels."""
    return max(1, math.ceil(target / max(side, 1)))


def enlarge(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Every pixel repeated scale x scale times: nearest-neighbour scaling by a whole factor, no blur."""
    return images.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


# ---------------------------------------------------------------------------------------------
# tiles


def near_square(n: int) -> int:
    """Columns of the most nearly square grid of n tiles."""
    return max(1, math.ceil(math.sqrt(n)))


def tiles(images: torch.Tensor, nrow: int | None = None, scale: int = 1, gap: int = TILE_GAP) -> np.ndarray:
    """Images in [-1, 1] tiled nrow per row, each enlarged `scale` times, with white gaps: (H, W, 3) uint8.

    The gaps stay `gap` pixels whatever the scale; nrow=None makes a near-square grid.
    """
    from torchvision.utils import make_grid

    x = to_display(torch.nan_to_num(images))
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"can show images (N, C, H, W) with 1 or 3 channels; got shape {tuple(x.shape)}")
    grid = make_grid(enlarge(x, scale), nrow=nrow or near_square(len(x)), padding=gap, pad_value=1.0)
    if len(x) > 1 and gap:  # make_grid also frames the whole grid (not a lone image): margins come later
        grid = grid[:, gap:-gap, gap:-gap]
    return (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


# ---------------------------------------------------------------------------------------------
# text


@lru_cache(maxsize=4)
def _font(size: int = FONT_SIZE):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(text: str) -> tuple[int, int]:
    left, top, right, bottom = _font().getbbox(text)
    return right - left, bottom - top


def _line_height() -> int:
    return _text_size("Ag|z")[1] + 6


def labelled(tiles: np.ndarray, *, title: str | None = None, col_labels: Sequence[str] = (),
             col_pitch: int = 0, row_labels: Sequence[str] = (), row_pitch: int = 0, tile: int = 0):
    """Tiles with an optional title, a label centred over each column and one left of each row.

    Returns (PIL image, (x, y) of the tiles' top-left corner in it).
    """
    from PIL import Image, ImageDraw

    line = _line_height()
    left = max((_text_size(s)[0] for s in row_labels), default=-8) + 8
    top = (line if title else 0) + (line if col_labels else 0)
    height, width = tiles.shape[:2]
    width_needed = max(left + width, _text_size(title)[0] if title else 0)
    picture = Image.new("RGB", (width_needed, top + height), BACKGROUND)
    picture.paste(Image.fromarray(tiles), (left, top))
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((0, 0), title, fill=INK, font=_font())
    for i, text in enumerate(col_labels):
        x = left + i * col_pitch + tile / 2 - _text_size(text)[0] / 2
        draw.text((max(0, x), top - line), text, fill=INK, font=_font())
    for i, text in enumerate(row_labels):
        y = top + i * row_pitch + tile / 2 - line / 2
        draw.text((0, y), text, fill=INK, font=_font())
    return picture, (left, top)


def mark_below(part: Any, x: float) -> Any:
    """`part` with a red triangle under it pointing up at x, e.g. where t lies along a strip."""
    from PIL import Image, ImageDraw

    marked = Image.new("RGB", (part.width, part.height + 10), BACKGROUND)
    marked.paste(part, (0, 0))
    y = part.height + 2
    ImageDraw.Draw(marked).polygon([(x, y), (x - 5, y + 7), (x + 5, y + 7)], fill=MARK)
    return marked


# ---------------------------------------------------------------------------------------------
# one picture


def stack(parts: Sequence[Any]):
    """Parts one under another, centred, with a margin; returns (image, [(x, y) of each part])."""
    from PIL import Image

    width = max(p.width for p in parts) + 2 * MARGIN
    height = sum(p.height for p in parts) + PART_GAP * (len(parts) - 1) + 2 * MARGIN
    picture = Image.new("RGB", (width, height), BACKGROUND)
    offsets, y = [], MARGIN
    for part in parts:
        x = (width - part.width) // 2
        picture.paste(part, (x, y))
        offsets.append((x, y))
        y += part.height + PART_GAP
    return picture, offsets


def to_png(picture: Any) -> bytes:
    """PNG bytes of a PIL image or an (H, W, 3) uint8 array."""
    from PIL import Image

    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
