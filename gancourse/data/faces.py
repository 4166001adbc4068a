"""Faces: cartoon faces drawn by a program from factors the course knows (lesson 07, StyleGAN).

StyleGAN's claims (coarse styles carry pose and shape, fine styles carry colour and texture; W is more
disentangled than Z) are usually shown with hand-picked grids of photographs. Here every image is drawn
from a handful of factors, and the factors are kept beside the images, for measurement only (no model
trains on them), so each claim becomes a number: does mixing in B's fine styles change the colours and
keep A's shape?

Coarse factors (large structure): `shape` (round, tall, wide), `pose` (turned left, facing front, turned
right: where the eyes and the mouth sit), `size` (small, large). Fine factors (colour and texture): `skin`,
`hair` and `background` colour (four each) and `stripes`, the background's texture (plain, wide stripes,
narrow stripes). Every image also gets a small random shift, which is not a factor.

- `load("faces")`: 10,000 training images; `split="test"`: 2,000 others. Labels `y` are the coarse class
  (shape x pose, 9 classes), which the lesson's feature classifier learns; `data.factors` holds every factor
  as a LongTensor (N,), named in `FACTORS`.
- `render(factors, size)`: draw faces with chosen factors (a dict of equal-length integer tensors), e.g.
  the same face with another hair colour.

Drawn with tensor operations at twice the size and average-pooled (anti-aliased edges); 10,000 images take
about a second on a CPU.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.images import check_image_size
from gancourse.data.registry import register

FACTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    # name: (scale, the names of its values)
    "shape": ("coarse", ("round", "tall", "wide")),
    "pose": ("coarse", ("left", "front", "right")),
    "size": ("coarse", ("small", "large")),
    "skin": ("fine", ("pale", "light", "tan", "brown")),
    "hair": ("fine", ("black", "chestnut", "blond", "red")),
    "background": ("fine", ("sky", "mint", "sand", "lilac")),
    "stripes": ("fine", ("plain", "wide", "narrow")),
}
COARSE = tuple(name for name, (scale, _) in FACTORS.items() if scale == "coarse")
FINE = tuple(name for name, (scale, _) in FACTORS.items() if scale == "fine")
SPLITS = {"train": (10_000, 0), "test": (2_000, 1)}  # size, seed

_SKIN = torch.tensor([(0.98, 0.86, 0.74), (0.89, 0.69, 0.53), (0.71, 0.50, 0.33), (0.47, 0.31, 0.20)])
_HAIR = torch.tensor([(0.08, 0.06, 0.05), (0.45, 0.24, 0.10), (0.93, 0.80, 0.36), (0.80, 0.28, 0.10)])
_BACKGROUND = torch.tensor([(0.55, 0.74, 0.95), (0.66, 0.90, 0.70), (0.95, 0.86, 0.62), (0.82, 0.70, 0.93)])
_FEATURES = torch.tensor((0.12, 0.10, 0.16))  # eyes
_MOUTH = torch.tensor((0.62, 0.12, 0.16))
_RADII = torch.tensor([(0.56, 0.56), (0.46, 0.66), (0.66, 0.48)])  # (rx, ry) per shape
_SCALE = torch.tensor([0.78, 1.0])  # per size
_STRIPE_CYCLES = torch.tensor([0.0, 2.5, 5.0])  # stripes across the image, per stripes value


def random_factors(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n independent draws of every factor, uniform over its values."""
    return {name: torch.randint(len(values), (n,), generator=generator) for name, (_, values) in FACTORS.items()}


def _check_factors(factors: dict) -> int:
    missing = [name for name in FACTORS if name not in factors]
    unknown = [name for name in factors if name not in FACTORS and name != "shift"]
    if missing or unknown:
        raise ValueError(f"render needs every factor {list(FACTORS)}; missing {missing}, unknown {unknown}")
    lengths = {len(factors[name]) for name in FACTORS}
    if len(lengths) != 1:
        raise ValueError(f"every factor needs the same number of values; got lengths {sorted(lengths)}")
    for name, (_, values) in FACTORS.items():
        v = torch.as_tensor(factors[name])
        if v.dtype.is_floating_point or v.min() < 0 or v.max() >= len(values):
            raise ValueError(f"factor {name!r} takes integers 0..{len(values) - 1} ({', '.join(values)})")
    return lengths.pop()


def render(factors: dict[str, torch.Tensor], size: int = 32, *, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Faces with the given factors, (N, 3, size, size) in [-1, 1]. shift: (N, 2) offsets of the face in
    [-1, 1] image units (None: centred)."""
    n = _check_factors(factors)
    size = check_image_size("faces", size)
    f = {name: torch.as_tensor(factors[name]).long() for name in FACTORS}
    shift = torch.zeros(n, 2) if shift is None else torch.as_tensor(shift, dtype=torch.float32)
    fine = 2 * size  # drawn at twice the size, then average-pooled
    axis = (torch.arange(fine) + 0.5) / fine * 2 - 1
    v, u = torch.meshgrid(axis, axis, indexing="ij")  # v down, u right
    u, v = u.view(1, fine, fine), v.view(1, fine, fine)

    def ellipse(cx, cy, rx, ry):
        return ((u - cx.view(-1, 1, 1)) / rx.view(-1, 1, 1)) ** 2 + ((v - cy.view(-1, 1, 1)) / ry.view(-1, 1, 1)) ** 2 <= 1

    def paint(canvas, mask, colour):
        return torch.where(mask.unsqueeze(1), colour.view(-1, 3, 1, 1), canvas)

    radii = _RADII[f["shape"]] * _SCALE[f["size"]].unsqueeze(1)
    rx, ry = radii[:, 0], radii[:, 1]
    cx, cy = shift[:, 0], 0.06 + shift[:, 1]
    pose = (f["pose"] - 1).float()  # -1 left, 0 front, 1 right

    stripes = torch.sin((u + v).unsqueeze(1) * torch.pi * _STRIPE_CYCLES[f["stripes"]].view(-1, 1, 1, 1))
    canvas = _BACKGROUND[f["background"]].view(-1, 3, 1, 1) * (1 + 0.12 * stripes)
    canvas = paint(canvas, ellipse(cx, cy - 0.14 * ry, rx * 1.1, ry * 0.98), _HAIR[f["hair"]])  # hair behind
    face = ellipse(cx, cy, rx, ry)
    canvas = paint(canvas, face, _SKIN[f["skin"]])
    fringe = face & (v < (cy - 0.5 * ry).view(-1, 1, 1))
    canvas = paint(canvas, fringe, _HAIR[f["hair"]])
    # features turn with the head: shifted towards the side it faces, the far eye a little narrower
    dx = 0.32 * rx * pose
    eye_r = 0.11 * rx
    for side in (-1.0, 1.0):
        narrow = 1 - 0.3 * (pose * side).clamp(min=0)
        eye = ellipse(cx + dx + side * 0.36 * rx * (1 - 0.2 * pose.abs()), cy - 0.08 * ry, eye_r * narrow, eye_r * 1.2)
        canvas = paint(canvas, eye, _FEATURES.expand(n, 3))
    mouth = ellipse(cx + dx, cy + 0.45 * ry, 0.3 * rx * (1 - 0.25 * pose.abs()), 0.07 * ry)
    canvas = paint(canvas, mouth, _MOUTH.expand(n, 3))
    return F.avg_pool2d(canvas, 2).clamp(0, 1) * 2 - 1


@functools.lru_cache(maxsize=4)
def _split(split: str, size: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    n, seed = SPLITS[split]
    generator = torch.Generator().manual_seed(1000 + seed)
    factors = random_factors(n, generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.08
    images = torch.cat([render({k: v[i:i + 1000] for k, v in factors.items()}, size, shift=shift[i:i + 1000])
                        for i in range(0, n, 1000)])
    return ((images + 1) * 127.5).round().to(torch.uint8), factors


def coarse_class(factors: dict[str, torch.Tensor]) -> torch.Tensor:
    """The label the lesson's classifier learns: shape x pose, 9 classes."""
    return factors["shape"] * len(FACTORS["pose"][1]) + factors["pose"]


@register("faces")
def faces(*, split: str = "train", size: int = 32, limit: int | None = None) -> InMemoryData:
    """Cartoon faces drawn from known factors; labels are shape x pose, `data.factors` holds every factor."""
    check_split("faces", split, tuple(SPLITS))
    size = check_image_size("faces", size)
    images, factors = _split(split, size)
    if limit is not None:
        limit = check_positive_int(limit, "faces: limit")
        images, factors = images[:limit], {k: v[:limit] for k, v in factors.items()}
    names = [f"{s}-{p}" for s in FACTORS["shape"][1] for p in FACTORS["pose"][1]]
    data = InMemoryData(images, coarse_class(factors), name="faces", kind="images", num_classes=len(names),
                        classes=names, split=split)
    data.factors = {k: v.clone() for k, v in factors.items()}
    return data
