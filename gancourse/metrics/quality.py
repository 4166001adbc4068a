"""Sample quality on a classifier's features: FID and KID (statistics from torchmetrics), precision and recall
(Kynkäänniemi et al. 2019), class accuracy of conditional samples, and an evaluator that puts FID next to
the real-vs-real floor.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from gancourse.metrics.classifier import FeatureClassifier, feature_classifier


# -- checking features ----------------------------------------------------------------------------
def _check_features(f, what: str, *, min_rows: int = 2) -> torch.Tensor:
    if not isinstance(f, torch.Tensor) or f.dim() != 2:
        shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(f"{what} must be a feature matrix (N, F), e.g. classifier.features(images); got {shape}.")
    if f.shape[0] < min_rows:
        raise ValueError(f"{what} has {f.shape[0]} rows; this measure needs at least {min_rows} samples: "
                         "pass more images.")
    if not torch.isfinite(f).all():
        raise ValueError(f"{what} contains NaN or infinite values; check the images they came from.")
    return f.detach()


def _check_pair(real_f, fake_f, *, min_rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    real_f = _check_features(real_f, "real features", min_rows=min_rows)
    fake_f = _check_features(fake_f, "fake features", min_rows=min_rows)
    if real_f.shape[1] != fake_f.shape[1]:
        raise ValueError(f"real and fake features differ in width ({real_f.shape[1]} vs {fake_f.shape[1]}); "
                         "compute both with the same classifier.")
    return real_f, fake_f


class _GivenFeatures(nn.Module):
    """Hands precomputed features to torchmetrics unchanged: its metrics take a `feature=` module, and
    computing features once lets FID, KID and precision/recall share them."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features  # read by FrechetInceptionDistance instead of a 299x299 probe

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


# -- a spectral check ------------------------------------------------------------------------------
def checkerboard_energy(images: torch.Tensor) -> float:
    """The share of the images' power (their mean removed) at the three frequencies with period 2 pixels,
    (pi, 0), (0, pi) and (pi, pi): the pattern a stride-2 layer with uneven kernel overlap prints on its
    output. Averaged over images and channels; about 3/(H*W - 1) for white noise, near 0 for smooth images."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] % 2 or images.shape[-2] % 2:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"checkerboard_energy needs images (N, C, H, W) with even H and W; got {shape}")
    x = images.detach().float()
    power = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs().pow(2)
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    period2 = power[..., h, 0] + power[..., 0, w] + power[..., h, w]
    total = power.sum(dim=(-2, -1))
    return float((period2 / total.clamp_min(1e-12)).mean())


# -- FID and KID ----------------------------------------------------------------------------------
def fid_from_features(real_f: torch.Tensor, fake_f: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017), in float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    real_f, fake_f = _check_pair(real_f, fake_f)
    # On the CPU: the statistics are small, and float64 (which torchmetrics uses) does not exist on MPS.
    metric = FrechetInceptionDistance(feature=_GivenFeatures(real_f.shape[1]))
    metric.update(real_f.cpu().double(), real=True)
    metric.update(fake_f.cpu().double(), real=False)
    return float(metric.compute())


def kid_from_features(real_f: torch.Tensor, fake_f: torch.Tensor, *, subsets: int = 100,
                      subset_size: int | None = None, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std of an unbiased MMD² over random subsets.

    subset_size=None takes half the smaller set, at most 1000: a subset as large as the set would be the
    same every time and give a standard deviation of 0.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    real_f, fake_f = _check_pair(real_f, fake_f, min_rows=4)
    n_min = min(len(real_f), len(fake_f))
    if subset_size is None:
        subset_size = min(1000, n_min // 2)
    if not 2 <= subset_size <= n_min:
        raise ValueError(f"subset_size must lie between 2 and the smaller set's size {n_min}; got {subset_size}.")
    with warnings.catch_warnings():
        # torchmetrics warns on every construction that it keeps all features in memory; ours are small.
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=_GivenFeatures(real_f.shape[1]), subsets=subsets,
                                         subset_size=subset_size)
    metric.update(real_f.cpu().double(), real=True)
    metric.update(fake_f.cpu().double(), real=False)
    # torchmetrics draws its subsets with the global RNG; a private stream keeps the caller's seed intact.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def fid(real: torch.Tensor, fake: torch.Tensor, classifier: FeatureClassifier) -> float:
    """FID between two image batches in [-1, 1], on `classifier`'s features. Lower is better; 0 is identical."""
    return fid_from_features(classifier.features(real), classifier.features(fake))


def kid(real: torch.Tensor, fake: torch.Tensor, classifier: FeatureClassifier, **options) -> tuple[float, float]:
    """KID (mean, std) between two image batches in [-1, 1]; unbiased, so it can dip below 0 for equal sets."""
    return kid_from_features(classifier.features(real), classifier.features(fake), **options)


# -- precision and recall -------------------------------------------------------------------------
def _rows_per_chunk(n_columns: int, budget: int = 1 << 24) -> int:
    """How many rows of an (rows, n_columns) distance matrix fit in `budget` floats (64 MB)."""
    return max(1, budget // max(1, n_columns))


def _kth_neighbour_radius(f: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of f to its k-th nearest other row: the radius of its ball on the manifold."""
    radii = []
    for rows in f.split(_rows_per_chunk(len(f))):
        # k + 1 smallest, because every point is its own nearest neighbour at distance 0
        radii.append(torch.cdist(rows, f).topk(k + 1, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def _share_inside(query: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of query points that lie inside at least one ball (centre, radius)."""
    inside = [(torch.cdist(rows, centres) <= radii).any(dim=1) for rows in query.split(_rows_per_chunk(len(centres)))]
    return float(torch.cat(inside).float().mean())


def precision_recall(real_f: torch.Tensor, fake_f: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-nearest-neighbour manifolds.

    Precision: share of fake samples inside the real manifold (realism). Recall: share of real samples
    inside the fake manifold (coverage; a mode-collapsed G has low recall). Each manifold is the union of
    balls around its points reaching to the k-th nearest neighbour.
    """
    real_f, fake_f = _check_pair(real_f, fake_f)
    if not isinstance(k, int) or not 1 <= k < min(len(real_f), len(fake_f)):
        raise ValueError(f"k must be a whole number from 1 to {min(len(real_f), len(fake_f)) - 1} "
                         f"(fewer than the samples in each set); got {k!r}.")
    real_f, fake_f = real_f.float(), fake_f.to(real_f.device).float()
    precision = _share_inside(fake_f, real_f, _kth_neighbour_radius(real_f, k))
    recall = _share_inside(real_f, fake_f, _kth_neighbour_radius(fake_f, k))
    return precision, recall


# -- conditional models ---------------------------------------------------------------------------
def _predicted_and_requested(images, requested_labels, classifier) -> tuple[torch.Tensor, torch.Tensor]:
    requested = torch.as_tensor(requested_labels).long().flatten()
    if not isinstance(images, torch.Tensor) or requested.shape[0] != images.shape[0]:
        n = images.shape[0] if isinstance(images, torch.Tensor) else "?"
        raise ValueError(f"need one requested label per image: {n} images but {requested.shape[0]} labels.")
    if requested.numel() and not 0 <= int(requested.min()) <= int(requested.max()) < classifier.num_classes:
        raise ValueError(f"labels must lie in 0..{classifier.num_classes - 1} (the classifier's classes); "
                         f"got {int(requested.min())}..{int(requested.max())}.")
    return classifier.predict(images).cpu(), requested.cpu()


def class_accuracy(images: torch.Tensor, requested_labels: torch.Tensor, classifier: FeatureClassifier) -> float:
    """Share of conditional samples that the classifier assigns to the class they were generated for."""
    predicted, requested = _predicted_and_requested(images, requested_labels, classifier)
    return float((predicted == requested).float().mean())


def per_class_accuracy(images: torch.Tensor, requested_labels: torch.Tensor,
                       classifier: FeatureClassifier) -> list[float]:
    """Class accuracy for each class 0..num_classes-1 (NaN for a class with no samples)."""
    predicted, requested = _predicted_and_requested(images, requested_labels, classifier)
    hits = torch.bincount(requested[predicted == requested], minlength=classifier.num_classes).float()
    totals = torch.bincount(requested, minlength=classifier.num_classes).float()
    return (hits / totals).tolist()  # 0/0 gives NaN for absent classes


# -- the evaluator the lessons use ------------------------------------------------------------------
class FIDEvaluator:
    """Scores generated images against one data set, next to the real-vs-real floor.

    Holds the feature classifier and the features of the real training images. The floor is the same score
    for held-out real test images, which no generator beats honestly: a G whose FID is far below the floor
    is likely copying training images. FID is biased upwards for small N, so compare scores at the same N
    (`evaluator.n`, the test-set size, is the natural choice). At most `max_real` training images are used,
    which keeps precision/recall's distance matrices affordable for MNIST-sized sets on a CPU.
    """

    def __init__(self, data_name: str = "digits", size: int = 32, *, classifier: FeatureClassifier | None = None,
                 device: torch.device | str | None = None, cache_dir=None, k: int = 3, max_real: int = 10_000,
                 verbose: bool = False) -> None:
        from gancourse.data import load

        if classifier is None:
            classifier = feature_classifier(data_name, size, device=device, cache_dir=cache_dir, verbose=verbose)
        train = load(data_name, split="train", size=size)
        test = load(data_name, split="test", size=size)
        if (classifier.data_name, classifier.size) != (train.name, size):
            raise ValueError(f"the classifier was trained on {classifier.data_name} at {classifier.size}x"
                             f"{classifier.size}, not {train.name} at {size}x{size}; pass a matching one or "
                             "classifier=None to build it.")
        self.data_name, self.size, self.k, self.classifier = train.name, size, k, classifier
        self.real_features = classifier.features(train.x[:max_real])
        self.test_features = classifier.features(test.x)
        self.n = len(test)
        self._floors: dict[int, dict[str, float]] = {}

    def _compare(self, fake_f: torch.Tensor) -> dict[str, float]:
        kid_mean, kid_std = kid_from_features(self.real_features, fake_f)
        precision, recall = precision_recall(self.real_features, fake_f, k=self.k)
        return {"fid": fid_from_features(self.real_features, fake_f), "kid": kid_mean, "kid_std": kid_std,
                "precision": precision, "recall": recall}

    def floor(self, n: int | None = None) -> dict[str, float]:
        """Scores of the first n held-out real images (all of them when n is larger or None)."""
        n = min(self.n if n is None else n, self.n)
        if n not in self._floors:
            self._floors[n] = {**self._compare(self.test_features[:n]), "n": n}
        return self._floors[n]

    def score(self, fake: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """FID, KID, precision, recall of images `fake` in [-1, 1], each with its `*_floor`.

        Give `labels` (the classes requested from a conditional G) to add `class_accuracy`.
        """
        fake_f = self.classifier.features(fake)
        report = {**self._compare(fake_f), "n": len(fake_f)}
        floor = self.floor(len(fake_f))
        report.update({f"{key}_floor": value for key, value in floor.items() if key != "kid_std"})
        if labels is not None:
            report["class_accuracy"] = class_accuracy(fake, labels, self.classifier)
        return report

    def __repr__(self) -> str:
        return (f"FIDEvaluator(data={self.data_name!r}, size={self.size}, real={len(self.real_features)}, "
                f"held-out={self.n}, k={self.k})")


def quality_report(samples: torch.Tensor, data_name: str = "digits", size: int | None = None, *,
                   labels: torch.Tensor | None = None, **options) -> dict[str, float]:
    """One-off `FIDEvaluator(data_name, size).score(samples, labels)`; size defaults to the samples' side."""
    if size is None:
        size = samples.shape[-1] if isinstance(samples, torch.Tensor) and samples.dim() == 4 else 32
    return FIDEvaluator(data_name, size, **options).score(samples, labels)
