"""Glyphs: the same characters drawn in two styles, two image domains with a known but hidden pairing.

Domain A ("sans") draws each character in DejaVu Sans, navy ink on cream paper; domain B ("serif") draws
it in DejaVu Serif Bold, dark red ink on pale blue paper. Both fonts ship with matplotlib, so the set is
built offline in about a second. Every image has its own position and scale; a *pair* is one character
at one position and scale drawn in both styles, so the pair's B image is the right translation of its A
image: the hidden ground truth for lesson 05 (CycleGAN).

- `load("glyphs")`: the training split as an `UnpairedData`; A and B are independent draws, so no B
  image is the translation of any A image (the unpaired setting).
- `load("glyphs", paired=True)`: the same A images with their true partners, a `PairedData` (what
  pix2pix trains on, the upper bound an unpaired method can be compared with).
- `load("glyphs", split="test")`: always paired, row i of A with row i of B; measure on it, never train.
- `load("glyphs-sans")`, `load("glyphs-serif")`: one domain with its labels (the character), for the
  classifier that checks whether a translation kept the character.

Copying the input is clearly wrong (the strokes, serifs and colours differ), and so are a mirror image
and a colour inversion (dark paper), so each failure shows up in the error against the truth. The
training code must not flip images: a flipped glyph is another glyph, or none.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch
import torch.nn.functional as F

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.images import check_image_size
from gancourse.data.registry import register
from gancourse.data.unpaired import PairedData, UnpairedData

CHARACTERS = "0123456789ACEFHKLPRT"  # 20 classes; most are not mirror-symmetric, so a flip is an error
STYLES = {
    # name: (font file in matplotlib's fonts/ttf, ink RGB, paper RGB), colours in [0, 1]
    "sans": ("DejaVuSans.ttf", (0.10, 0.18, 0.50), (0.98, 0.94, 0.80)),
    "serif": ("DejaVuSerif-Bold.ttf", (0.62, 0.08, 0.10), (0.82, 0.89, 0.97)),
}
DOMAIN_STYLES = {"A": "sans", "B": "serif"}
TRAIN_SIZE, TEST_SIZE = 4000, 1000
_SEEDS = {"train": 0, "train-B": 1, "test": 2}  # the unpaired B side is its own draw ("train-B")
_CANVAS = 96  # glyphs are rasterised once per font at this size, then placed and resampled per image
SCALE_RANGE = (0.75, 1.0)  # glyph height as a share of the largest
MAX_SHIFT = 0.10  # of the image side, in x and y


@functools.lru_cache(maxsize=None)
def _glyph_masks(font_file: str) -> torch.Tensor:
    """(len(CHARACTERS), _CANVAS, _CANVAS) ink coverage in [0, 1]; each glyph's box centred on the canvas,
    all glyphs of a font at one point size (so a 1 stays narrower than a 0)."""
    import matplotlib
    from matplotlib import ft2font

    font = ft2font.FT2Font(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", font_file))
    font.set_size(_CANVAS * 0.8, 72)  # at 72 dpi a point is a pixel: capitals about 0.6 of the canvas high
    masks = torch.zeros(len(CHARACTERS), _CANVAS, _CANVAS)
    for i, ch in enumerate(CHARACTERS):
        font.set_text(ch, 0.0)
        font.draw_glyphs_to_bitmap(antialiased=True)
        bitmap = torch.from_numpy(np.asarray(font.get_image(), dtype=np.float32) / 255.0)
        rows, cols = torch.nonzero(bitmap > 0, as_tuple=True)
        bitmap = bitmap[int(rows.min()):int(rows.max()) + 1, int(cols.min()):int(cols.max()) + 1]
        h, w = bitmap.shape
        top, left = (_CANVAS - h) // 2, (_CANVAS - w) // 2
        masks[i, top:top + h, left:left + w] = bitmap
    return masks


def _contents(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n random (character, scale, shift) triples from `seed`: what a pair of images has in common."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(CHARACTERS), (n,), generator=g)
    scale = SCALE_RANGE[0] + (SCALE_RANGE[1] - SCALE_RANGE[0]) * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * MAX_SHIFT
    return labels, scale, shift


def render(style: str, labels: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, size: int = 32,
           chunk: int = 1000) -> torch.Tensor:
    """uint8 (N, 3, size, size) images of the characters `labels` in `style` ("sans" or "serif"), each
    scaled by `scale` (N,) and moved by `shift` (N, 2) image sides: the same arguments give a pair."""
    if style not in STYLES:
        raise ValueError(f"unknown glyph style {style!r}; choose one of {sorted(STYLES)}")
    font_file, ink, paper = STYLES[style]
    masks = _glyph_masks(font_file)
    ink_t, paper_t = torch.tensor(ink).view(1, 3, 1, 1), torch.tensor(paper).view(1, 3, 1, 1)
    out = torch.empty(len(labels), 3, size, size, dtype=torch.uint8)
    for start in range(0, len(labels), chunk):
        rows = slice(start, start + chunk)
        n = len(labels[rows])
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale[rows]  # the grid maps output to input: zoom in by 1/scale
        theta[:, :, 2] = -2 * shift[rows] / scale[rows, None]
        # sample at 4x the target size, then average 4x4 blocks: clean anti-aliased edges at any size
        grid = F.affine_grid(theta, [n, 1, 4 * size, 4 * size], align_corners=False)
        coverage = F.grid_sample(masks[labels[rows]].unsqueeze(1), grid, align_corners=False)
        coverage = F.avg_pool2d(coverage, 4)
        rgb = paper_t * (1 - coverage) + ink_t * coverage
        out[rows] = (rgb * 255).round().clamp(0, 255).to(torch.uint8)
    return out


@functools.lru_cache(maxsize=8)
def _draw(split_seed: str, n: int, size: int, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    labels, scale, shift = _contents(n, _SEEDS[split_seed])
    return render(style, labels, scale, shift, size), labels


def _side(split: str, key: str, n: int, size: int, style: str, limit: int | None) -> InMemoryData:
    images, labels = _draw(key, n, size, style)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return InMemoryData(images.clone(), labels.clone(), name=f"glyphs-{style}", kind="images",
                        num_classes=len(CHARACTERS), classes=list(CHARACTERS), split=split)


def _options(name: str, split: str, size, limit) -> tuple[int, int | None]:
    check_split(name, split, ("train", "test"))
    size = check_image_size(name, size)
    if limit is not None:
        limit = check_positive_int(limit, f"{name}: limit")
    return size, limit


@register("glyphs")
def glyphs(*, split: str = "train", size: int = 32, paired: bool = False, limit: int | None = None):
    """Characters in a sans and a serif style (domains A and B). The train split is unpaired unless
    paired=True; the test split is always paired (row i of A translates to row i of B)."""
    size, limit = _options("glyphs", split, size, limit)
    n = TRAIN_SIZE if split == "train" else TEST_SIZE
    a = _side(split, split, n, size, "sans", limit)
    if split == "test" or paired:
        return PairedData(a, _side(split, split, n, size, "serif", limit), name="glyphs", split=split)
    return UnpairedData(a, _side(split, "train-B", n, size, "serif", limit), name="glyphs", split=split)


def _one_style(style: str, split: str, size: int, limit: int | None) -> InMemoryData:
    size, limit = _options(f"glyphs-{style}", split, size, limit)
    n = TRAIN_SIZE if split == "train" else TEST_SIZE
    key = "train-B" if (split, style) == ("train", "serif") else split
    return _side(split, key, n, size, style, limit)


@register("glyphs-sans")
def glyphs_sans(*, split: str = "train", size: int = 32, limit: int | None = None) -> InMemoryData:
    """Domain A of "glyphs" alone, labelled by character."""
    return _one_style("sans", split, size, limit)


@register("glyphs-serif")
def glyphs_serif(*, split: str = "train", size: int = 32, limit: int | None = None) -> InMemoryData:
    """Domain B of "glyphs" alone, labelled by character."""
    return _one_style("serif", split, size, limit)


def domain_data_name(domain: str) -> str:
    """The one-domain data set behind a side of "glyphs" ("A" -> "glyphs-sans")."""
    return f"glyphs-{DOMAIN_STYLES[domain]}"

