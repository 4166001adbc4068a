"""Data sets for the course: `load(name, ...)` returns a sampler with one small protocol.

Every sampler has `kind` ("points" or "images"), `shape`, `num_classes`, `classes`, `name`, `split`,
`domains` (None, or ("A", "B") for two-domain sets), `device`, `len()`, `to(device, memory_format=None)`,
`sample(n, *, domain=None)` and `sample_with_labels(n, *, domain=None)`. Samples are float32; images are
(n, C, H, W) in [-1, 1].

- InMemoryData: the whole set as one tensor on the device (images as uint8), sampled by index.
- StreamingData: the next n samples from a torch Dataset or DataLoader, for sets too big for memory.
- UnpairedData: two one-domain samplers, "A" and "B", for CycleGAN-style translation.

Built in: "ring8", "grid25" (2-D mixtures with known modes), "digits" (scikit-learn's bundled digits,
offline), "mnist", "fashion-mnist", "cifar10", "celeba" (torchvision, downloaded once), "folder" (any
folder of images), "unpaired" (trainA/trainB/testA/testB folders) and "glyphs" (two font styles with a
hidden pairing, for CycleGAN; one style alone: "glyphs-sans", "glyphs-serif") and "faces" (cartoon faces drawn
from known coarse and fine factors, for StyleGAN). Add more with `@register(name)`.
"""
from gancourse.data.dataset import InMemoryData
from gancourse.data.registry import DatasetUnavailableError, UnknownDatasetError, available, load, register
from gancourse.data.streaming import StreamingData
from gancourse.data.unpaired import PairedData, UnpairedData
from gancourse.data.mixtures import MixtureData  # noqa: E402  (importing registers ring8, grid25)
from gancourse.data import images  # noqa: E402,F401  (registers digits, mnist, fashion-mnist, cifar10)
from gancourse.data import folders  # noqa: E402,F401  (registers folder, unpaired)
from gancourse.data import celeba  # noqa: E402,F401  (registers celeba)
from gancourse.data import glyphs  # noqa: E402,F401  (registers glyphs, glyphs-sans, glyphs-serif)
from gancourse.data import faces  # noqa: E402,F401  (registers faces: lesson 07's known factors)

__all__ = ["DatasetUnavailableError", "InMemoryData", "MixtureData", "PairedData", "StreamingData", "UnknownDatasetError",
           "UnpairedData", "available", "load", "register"]
