"""A small CNN trained on the lesson's own data: the offline feature extractor behind FID, KID and friends.

FID is usually computed on Inception-v3 features, but Inception was trained on ImageNet photos at 299x299
and its weights need a download. A classifier trained on the same data set (digits, MNIST, ...) sees what
matters for that data, trains in seconds and works offline. Its penultimate layer gives the features.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CACHE_ENV = "GANCOURSE_CACHE"
# Bump when the architecture or the training recipe changes, so old cache files are not reused.
VERSION = 1
NUM_FEATURES = 128
MIN_SIZE = 8
_RANGE_TOLERANCE = 1e-3


def default_cache_dir() -> Path:
    """Where trained classifiers are kept: $GANCOURSE_CACHE, else ~/.cache/gancourse/classifiers."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gancourse" / "classifiers").expanduser()


def cache_file_name(data_name: str, size: int, channels: int) -> str:
    """One file per data set, image size, channel count and recipe version."""
    return f"{data_name}-{size}px-{channels}ch-v{VERSION}.pt"


# -- checking what users pass in ------------------------------------------------------------------
def check_images(x, *, channels: int, size: int, what: str = "images") -> torch.Tensor:
    """Return `x` as float (N, C, H, W) in [-1, 1], or raise an error that says how to fix it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (N, {channels}, {size}, {size}); "
                        f"got {type(x).__name__}. Convert with torch.as_tensor(...).")
    if x.dim() == 3 and x.shape[0] == channels:
        raise ValueError(f"{what} has shape {tuple(x.shape)}: one image without a batch dimension; "
                         "add one with x.unsqueeze(0).")
    if x.dim() == 2 and x.shape[1] == channels * size * size:
        raise ValueError(f"{what} has shape {tuple(x.shape)}: flat vectors; reshape them to images with "
                         f"x.view(-1, {channels}, {size}, {size}).")
    if x.dim() != 4:
        raise ValueError(f"{what} must have shape (N, C, H, W) = (N, {channels}, {size}, {size}); "
                         f"got {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {tuple(x.shape)}); pass at least one image.")
    if x.shape[1] != channels:
        fix = ("convert to grayscale with x.mean(dim=1, keepdim=True)" if channels == 1
               else f"repeat the channel with x.expand(-1, {channels}, -1, -1)" if x.shape[1] == 1
               else f"pass images with {channels} channels")
        raise ValueError(f"{what} has {x.shape[1]} channels but the classifier was trained on {channels}; {fix}.")
    if tuple(x.shape[2:]) != (size, size):
        raise ValueError(f"{what} are {x.shape[2]}x{x.shape[3]} but the classifier was trained on {size}x{size}; "
                         f"resize with gancourse.data.images.resize(x, {size}) or build the classifier with "
                         f"size={x.shape[2]}.")
    if x.dtype == torch.uint8:
        raise ValueError(f"{what} are uint8 (0..255); the course works with floats in [-1, 1]: "
                         "convert with x.float() / 127.5 - 1.")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be floats in [-1, 1]; got dtype {x.dtype}. Convert with x.float().")
    x = x.detach()
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or infinite values; check the generator's output "
                         "(a diverged training run produces them).")
    low, high = (float(v) for v in x.aminmax())
    if low < -1 - _RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        fix = ("they look like 0..255 pixels: convert with x / 127.5 - 1" if high > 2
               else "end the generator with tanh, or clamp with x.clamp(-1, 1)")
        raise ValueError(f"{what} range over [{low:.3g}, {high:.3g}] but must lie in [-1, 1]; {fix}.")
    return x.float()


# -- the network ----------------------------------------------------------------------------------
def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FeatureClassifier(nn.Module):
    """A small CNN classifier whose forward pass returns penultimate-layer features (N, num_features).

    `forward` is what torchmetrics' FrechetInceptionDistance(feature=...) calls, so the module always stays
    in eval mode and never tracks gradients. Features are divided by one constant so that real training
    images have a mean square of 1 per feature: FID values do not depend on an arbitrary training scale.
    """

    def __init__(self, channels: int, size: int, num_classes: int, *, data_name: str = "custom") -> None:
        super().__init__()
        if size < MIN_SIZE:
            raise ValueError(f"the feature classifier needs images of at least {MIN_SIZE}x{MIN_SIZE}; got {size}.")
        self.channels, self.size, self.num_classes, self.data_name = channels, size, num_classes, data_name
        self.num_features = NUM_FEATURES  # torchmetrics reads this instead of probing with a 299x299 image
        # Strided convolutions halve the resolution three times (cheaper on a CPU than max pooling); global
        # average pooling, as in Inception's pool3, makes the same network work for any size from 8 to 64.
        self.body = nn.Sequential(
            *_conv_bn_relu(channels, 32, stride=2),
            *_conv_bn_relu(32, 64, stride=2),
            *_conv_bn_relu(64, 128, stride=2),
            *_conv_bn_relu(128, NUM_FEATURES),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(NUM_FEATURES, num_classes)
        self.register_buffer("feature_scale", torch.ones(()))
        self.test_accuracy: float | None = None  # held-out accuracy, filled in by feature_classifier()
        self.train_seconds: float | None = None
        self.loaded_from_cache = False
        self.eval()

    def train(self, mode: bool = True) -> FeatureClassifier:
        """Stay in eval mode: as a metric's feature extractor, BatchNorm must never update (see fit_classifier)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def _check(self, x) -> torch.Tensor:
        return check_images(x, channels=self.channels, size=self.size).to(self.device)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, num_features) of images in [-1, 1]; the call torchmetrics makes."""
        return self.body(self._check(x)) / self.feature_scale

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Penultimate-layer features (N, num_features), computed in batches on the classifier's device."""
        x = self._check(x)
        return torch.cat([self.body(chunk) for chunk in x.split(batch_size)]) / self.feature_scale

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Class scores (N, num_classes)."""
        return self.head(self.features(x, batch_size) * self.feature_scale)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class of each image, (N,) long."""
        return self.logits(x).argmax(dim=1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Share of images whose predicted class equals `y`."""
        y = torch.as_tensor(y).long().to(self.device).flatten()
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"need one label per image: {x.shape[0]} images but {y.shape[0]} labels.")
        return float((self.predict(x) == y).float().mean())

    def extra_repr(self) -> str:
        acc = "untrained" if self.test_accuracy is None else f"held-out accuracy {100 * self.test_accuracy:.1f}%"
        return f"data={self.data_name!r}, size={self.size}, channels={self.channels}, {acc}"


# -- training -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """How the classifier is trained; the defaults take a few seconds on a CPU for digits."""

    epochs: int | None = None  # None: enough epochs to see about `examples` images, at least one
    examples: int = 6_000
    batch_size: int = 64
    lr: float = 3e-3
    max_shift: float = 1 / 16  # random translation, as a fraction of the image side
    seed: int = 0


def _random_shift(x: torch.Tensor, max_shift: float, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by a random sub-pixel offset, filling with the -1 background."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    # affine_grid works in [-1, 1] coordinates, so a shift of s image sides is 2s there.
    theta[:, :, 2] = (torch.rand(n, 2, generator=generator) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def fit_classifier(model: FeatureClassifier, x: torch.Tensor, y: torch.Tensor,
                   config: TrainConfig = TrainConfig()) -> FeatureClassifier:
    """Train `model` on images `x` with labels `y` (Adam, one-cycle learning rate, light random shifts)."""
    generator = torch.Generator().manual_seed(config.seed)
    epochs = config.epochs or max(1, math.ceil(config.examples / len(x)))
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    params = list(model.body.parameters()) + list(model.head.parameters())
    opt = torch.optim.Adam(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=epochs * steps_per_epoch)
    # FeatureClassifier.train() is pinned to eval mode; switch the layers themselves for training.
    nn.Module.train(model, True)
    try:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator).to(x.device)
            for rows in order.split(config.batch_size):
                if len(rows) < 2:  # BatchNorm cannot normalise a batch of one
                    continue
                batch = x[rows]
                if config.max_shift > 0:
                    batch = _random_shift(batch, config.max_shift, generator)
                loss = F.cross_entropy(model.head(model.body(batch)), y[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
    finally:
        nn.Module.train(model, False)
    with torch.no_grad():
        raw = torch.cat([model.body(chunk) for chunk in x.split(500)])
        model.feature_scale.fill_(float(raw.square().mean().sqrt().clamp_min(1e-8)))
    return model


# -- loading, caching ----------------------------------------------------------------------------
def _load_cached(path: Path, model: FeatureClassifier) -> bool:
    """Fill `model` from a cache file; False (with a warning) when the file cannot be used."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        expected = {"version": VERSION, "data_name": model.data_name, "size": model.size,
                    "channels": model.channels, "num_classes": model.num_classes}
        found = {key: saved.get(key) for key in expected}
        if found != expected:
            raise ValueError(f"it was written for {found}, not {expected}")
        model.load_state_dict(saved["state_dict"])
        model.test_accuracy = float(saved["test_accuracy"])
        model.train_seconds = float(saved["train_seconds"])
    except Exception as err:  # a truncated file, a pickle error, a stale format: all mean "train again"
        warnings.warn(f"the cached classifier {path} cannot be used ({type(err).__name__}: {err}); "
                      "training a new one and overwriting it.", RuntimeWarning, stacklevel=3)
        return False
    return True


def _save_cached(path: Path, model: FeatureClassifier) -> None:
    """Write atomically (temporary file, then rename), so an interrupted save never leaves a broken file."""
    state = {"version": VERSION, "data_name": model.data_name, "size": model.size, "channels": model.channels,
             "num_classes": model.num_classes, "test_accuracy": model.test_accuracy,
             "train_seconds": model.train_seconds,
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as err:
        warnings.warn(f"could not cache the classifier at {path} ({err}); it will be trained again next time. "
                      f"Set {CACHE_ENV} or pass cache_dir=... to a writable folder.", RuntimeWarning, stacklevel=3)


def feature_classifier(data_name: str = "digits", size: int = 32, *, device: torch.device | str | None = None,
                       cache_dir: str | Path | None = None, retrain: bool = False,
                       config: TrainConfig | None = None, verbose: bool = False) -> FeatureClassifier:
    """The feature classifier for `data_name` at `size`x`size`: loaded from the cache, else trained and cached.

    Trained on the "train" split and scored on the held-out "test" split (`.test_accuracy`). Training runs in
    its own random stream, so it leaves the caller's seeded RNG untouched. `config` is not part of the cache
    key: pass retrain=True with a new config.
    """
    from gancourse.data import load
    from gancourse.utils import pick_device

    device = pick_device() if device is None else torch.device(device)
    need = "the feature classifier needs labelled images such as 'digits' or 'mnist'"
    try:
        test = load(data_name, split="test", size=size)
    except TypeError as err:  # a loader without a size option holds no images
        raise ValueError(f"{data_name!r} cannot be loaded as images ({err}); {need}.") from err
    if test.kind != "images" or test.y is None:
        raise ValueError(f"{data_name!r} holds {test.kind} without class labels; {need}.")
    channels = test.image_shape[0]
    config = config or TrainConfig()
    with torch.random.fork_rng(devices=[]):  # the initial weights come from the config's seed
        torch.manual_seed(config.seed)
        model = FeatureClassifier(channels, size, test.num_classes, data_name=test.name)
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / cache_file_name(test.name, size, channels)

    if not retrain and path.is_file() and _load_cached(path, model):
        model.loaded_from_cache = True
        model.to(device)
    else:
        train = load(data_name, split="train", size=size, device=device)
        model.to(device)
        start = time.perf_counter()
        fit_classifier(model, train.x, train.y, config)
        model.train_seconds = time.perf_counter() - start
        model.test_accuracy = model.accuracy(test.x, test.y)
        _save_cached(path, model)
    if verbose:
        source = f"loaded from {path}" if model.loaded_from_cache else f"trained in {model.train_seconds:.1f} s"
        print(f"feature classifier for {data_name} {size}x{size}: {source}, "
              f"held-out accuracy {100 * model.test_accuracy:.1f}%")
    return model
