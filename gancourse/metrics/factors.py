"""The factor model of lesson 07: a small CNN that reads every factor of a `faces` image back.

`load("faces")` draws each image from known factors (shape, pose, size; skin, hair and background colour,
background stripes). A network trained on those images and their factors can then read the factors of any
image, a generated one included, so StyleGAN's claims become counts: with coarse styles from face A and
fine styles from face B, how often does the result have A's shape and B's hair colour?

`factor_model(size)` loads the model from the cache folder the feature classifiers use, or trains it
(about a minute on a CPU) and caches it; `model.read(images)` gives each factor's predicted value and
`model.accuracy(images, factors)` the share read right per factor, `model.shares(images)` how often each
value is read (a generator's mix of factors), `model.even_mix(images, n)` a subset whose mix is even.
`model.test_accuracy` is measured on the held-out split: a reading is only as good as that.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.metrics.classifier import _conv_bn_relu, check_images, default_cache_dir

VERSION = 1


class FactorModel(nn.Module):
    """A CNN trunk with one linear head per factor: images (N, 3, size, size) in [-1, 1] -> logits per factor."""

    def __init__(self, factors: dict[str, int], size: int = 32) -> None:
        super().__init__()
        self.factor_sizes, self.size = dict(factors), size
        self.body = nn.Sequential(*_conv_bn_relu(3, 32, stride=2), *_conv_bn_relu(32, 64, stride=2),
                                  *_conv_bn_relu(64, 128, stride=2), *_conv_bn_relu(128, 128),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleDict({name: nn.Linear(128, n) for name, n in self.factor_sizes.items()})
        self.test_accuracy: dict[str, float] | None = None
        self.eval()

    data_name = "faces"  # what FIDEvaluator checks before it uses these features

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(x)
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def read(self, images: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
        """The predicted value of every factor, {name: LongTensor (N,)}, on the CPU."""
        images = check_images(images, channels=3, size=self.size)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        outs = [self(chunk.to(device)) for chunk in images.split(batch_size)]
        self.train(was_training)
        return {name: torch.cat([o[name] for o in outs]).argmax(1).cpu() for name in self.factor_sizes}

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The trunk's 128 features per image (what every head reads), on the CPU: a feature space for FID that
        sees every factor, colours and texture included."""
        images = check_images(images, channels=3, size=self.size)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = torch.cat([self.body(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)])
        self.train(was_training)
        return out

    def shares(self, images: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
        """How often each value of each factor is read in `images`: {name: shares (values,), summing to 1}. On
        generated images, set beside the real ones', it says *where* a generator's FID comes from."""
        read = self.read(images, batch_size)
        return {name: torch.bincount(read[name], minlength=n).float() / max(len(read[name]), 1)
                for name, n in self.factor_sizes.items()}

    def even_mix(self, images: torch.Tensor, n: int, *, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
        """Indices of n of `images`, drawn without replacement, whose mix of every factor comes close to even (every
        value of every factor equally often: how `faces` draws its factors). Each image is drawn with a weight of
        prod over factors of 1 / (its value's share), so an over-drawn value is thinned and a rare one kept. Scored
        against the data, such a subset says how much of a generator's FID is its *mix* of factors (the rest is in
        the pictures). The pool must be larger than n, a few times larger to correct a skewed mix well."""
        read = self.read(images, batch_size)
        if not 0 < n < len(images):
            raise ValueError(f"even_mix picks n of the {len(images)} images: n must be between 1 and {len(images) - 1}"
                             f", got {n}; pass a larger pool of images")
        weight = torch.ones(len(images), dtype=torch.float64)
        for name, values in self.factor_sizes.items():
            shares = torch.bincount(read[name], minlength=values).double() / len(images)
            weight /= shares[read[name]]
        return torch.multinomial(weight, n, replacement=False, generator=torch.Generator().manual_seed(seed))

    def accuracy(self, images: torch.Tensor, factors: dict[str, torch.Tensor]) -> dict[str, float]:
        """Share of images whose factor is read as `factors` says, per factor."""
        read = self.read(images)
        return {name: float((read[name] == torch.as_tensor(factors[name]).cpu()).float().mean()) for name in read}


def fit_factor_model(model: FactorModel, x: torch.Tensor, factors: dict[str, torch.Tensor], *, epochs: int = 3,
                     batch_size: int = 64, lr: float = 3e-3, seed: int = 0) -> FactorModel:
    """Train every head at once (the sum of the cross-entropies), Adam with a one-cycle learning rate."""
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=generator).split(batch_size):
            if len(rows) < 2:
                continue
            logits = model(x[rows])
            loss = sum(F.cross_entropy(logits[name], factors[name][rows]) for name in model.factor_sizes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    model.eval()
    return model


def factor_model(size: int = 32, *, cache_dir: str | Path | None = None, retrain: bool = False, epochs: int = 3,
                 limit: int | None = None, verbose: bool = False) -> FactorModel:
    """The factor model for `faces` at size x size: from the cache, else trained on the train split (all of it,
    or its first `limit` images) and scored on the test split, then cached."""
    from gancourse.data import load
    from gancourse.data.faces import FACTORS

    sizes = {name: len(values) for name, (_, values) in FACTORS.items()}
    with torch.random.fork_rng(devices=[]):  # the same model every time, and the caller's random stream untouched
        torch.manual_seed(VERSION)
        model = FactorModel(sizes, size)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"faces-factors-{size}px-{limit or 'all'}-e{epochs}.pt"
    if path.exists() and not retrain:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("version") != VERSION or saved.get("factors") != sizes:
                raise ValueError(f"it was written for {saved.get('factors')} (version {saved.get('version')})")
            model.load_state_dict(saved["state_dict"])
            model.test_accuracy = dict(saved["test_accuracy"])
            return model
        except Exception as err:  # a broken or stale file: train again
            warnings.warn(f"the cached factor model {path} cannot be used ({type(err).__name__}: {err}); "
                          "training a new one.", RuntimeWarning, stacklevel=2)
    train, test = load("faces", size=size, limit=limit), load("faces", split="test", size=size)
    start = time.perf_counter()
    fit_factor_model(model, train.x, train.factors, epochs=epochs)
    model.test_accuracy = model.accuracy(test.x, test.factors)
    if verbose:
        print(f"factor model trained in {time.perf_counter() - start:.0f} s; held-out accuracy "
              + ", ".join(f"{k} {v:.1%}" for k, v in model.test_accuracy.items()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"version": VERSION, "factors": sizes, "test_accuracy": model.test_accuracy,
                    "state_dict": model.state_dict()}, tmp)
        os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken file
    except OSError as err:
        warnings.warn(f"could not cache the factor model at {path} ({err}); it will be trained again next time.",
                      RuntimeWarning, stacklevel=2)
    return model
