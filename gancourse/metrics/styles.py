"""Lesson 07's measures of a style-based generator, on the faces whose factors the course knows.

- `mixing_locality`: draw A and B, give the layers before a crossover A's code and the rest B's, and let the
  factor model read all three pictures: how often does the mix keep A's coarse factors and take B's fine ones?
- `path_length`: perceptual path length (StyleGAN sec. 4.2) in W or in Z, on the feature classifier's features:
  how much the picture changes for a tiny step along a path between two codes, over eps^2.
- `noise_effect`: what resampling the noise changes: the per-pixel spread over noise draws, and how often the
  factor model still reads the same factors.
- `truncation_sweep`: FID, precision and recall along psi (truncation in W) or along the threshold of
  BigGAN's truncated normal (truncation in Z).
- `draw_samples`: G's pictures for many codes, a cache-sized batch at a time.
- `activation_peaks`: how far the largest activation of each feature map stands above its typical one, per
  layer: AdaIN invites a few huge values (the "droplets" StyleGAN2 traced to it).
Every function takes the generator itself (e.g. the averaged one) and draws its codes from a seed.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F

from gancourse.data.faces import COARSE, FINE
from gancourse.metrics.quality import fid_from_features, precision_recall
from gancourse.models.stylegan import StyleGenerator, truncated_normal
from gancourse.train.gan import sampling_mode


def _codes(G: StyleGenerator, n: int, seed: int, streams: int = 1) -> list[torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    device = G.const.device
    return [torch.randn(n, G.z_dim, generator=rng).to(device) for _ in range(streams)]


# Samples per forward pass. On a CPU small batches keep the activations near the cache: the shipped generator
# draws 2,000 pictures in 5.5 s in batches of 16, 7.7-9.1 s in batches of 64 and 18 s in one batch (2 threads of
# a 2-core Zen 4, idle; on one thread 10.2, 14.1 and 25.4 s). Batches of 8 or 24 are no faster than 16.
DRAW_BATCH = 16


def _rows(value, start: int, stop: int):
    """value's rows start:stop when it is a batch (a tensor, or a list of them such as per-layer noise)."""
    if torch.is_tensor(value):
        return value[start:stop]
    if isinstance(value, (list, tuple)) and value and all(torch.is_tensor(v) for v in value):
        return [v[start:stop] for v in value]
    return value


def draw_samples(G: StyleGenerator, *args, batch_size: int = DRAW_BATCH, **kw) -> torch.Tensor:
    """G(*args, **kw) in display mode, in batches along the first dimension of the tensors in args (and of lists
    of tensors in kw, such as noise maps), on the CPU."""
    n = len(args[0])
    out = []
    with sampling_mode(G):
        for start in range(0, n, batch_size):
            stop = start + batch_size
            out.append(G(*[_rows(a, start, stop) for a in args], **{k: _rows(v, start, stop) for k, v in kw.items()})
                       .clamp(-1, 1).float().cpu())
    return torch.cat(out)


# -- style mixing ----------------------------------------------------------------------------------------
def mixing_locality(G: StyleGenerator, factor_model, crossovers=None, *, n: int = 1000, seed: int = 0,
                    psi: float = 1.0) -> list[dict]:
    """For each crossover k: the share of mixes whose factors, as the factor model reads them, are A's (for the
    coarse factors) and B's (for the fine ones). Per factor `from_A` and `from_B` (both can hold when A and B
    agree), and jointly `coarse_from_A` (every coarse factor is A's) and `fine_from_B` (every fine one is B's).
    The same stored noise everywhere, so only the codes differ."""
    crossovers = range(1, G.num_ws) if crossovers is None else crossovers
    za, zb = _codes(G, n, seed, 2)
    read_a = factor_model.read(draw_samples(G, za, psi, noise="const"))
    read_b = factor_model.read(draw_samples(G, zb, psi, noise="const"))
    rows = []
    for k in crossovers:
        read = factor_model.read(draw_samples(G, za, psi, zb, k, noise="const"))
        per_factor = {name: {"from_A": float((read[name] == read_a[name]).float().mean()),
                             "from_B": float((read[name] == read_b[name]).float().mean())} for name in read}
        coarse = torch.stack([read[f] == read_a[f] for f in COARSE]).all(0)
        fine = torch.stack([read[f] == read_b[f] for f in FINE]).all(0)
        rows.append({"crossover": int(k), "coarse_from_A": float(coarse.float().mean()),
                     "fine_from_B": float(fine.float().mean()), "both": float((coarse & fine).float().mean()),
                     "factors": per_factor})
    return rows


# -- perceptual path length --------------------------------------------------------------------------------
def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b (directions; the length is interpolated linearly)."""
    a_n, b_n = F.normalize(a, dim=1), F.normalize(b, dim=1)
    omega = torch.acos((a_n * b_n).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    direction = (torch.sin((1 - t) * omega) * a_n + torch.sin(t * omega) * b_n) / torch.sin(omega)
    return direction * torch.lerp(a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True), t)


def path_length(G: StyleGenerator, features, space: str = "w", *, n: int = 1000, eps: float = 1e-3,
                seed: int = 0) -> dict:
    """Perceptual path length in W ("w": lerp between w of two codes) or Z ("z": slerp between the codes), with
    `features(images)` as the perceptual space: E[||f(g(t)) - f(g(t + eps))||^2] / eps^2 over t ~ U(0, 1). The
    paper's full-path version; the values outside the 1st-99th percentiles are dropped, as in its code."""
    if space not in ("w", "z"):
        raise ValueError(f"space must be 'w' or 'z'; got {space!r}")
    z0, z1 = _codes(G, n, seed, 2)
    t = torch.rand(n, 1, generator=torch.Generator().manual_seed(seed + 1)).to(z0.device)
    with sampling_mode(G):
        if space == "z":
            ends = [slerp(z0, z1, t), slerp(z0, z1, t + eps)]
            ws = [G.styles(z) for z in ends]
        else:
            w0, w1 = G.mapping(z0), G.mapping(z1)
            ws = [torch.lerp(w0, w1, t).unsqueeze(1).repeat(1, G.num_ws, 1),
                  torch.lerp(w0, w1, t + eps).unsqueeze(1).repeat(1, G.num_ws, 1)]
        images = [torch.cat([G.synthesis(part, "const").clamp(-1, 1).float().cpu() for part in w.split(DRAW_BATCH)])
                  for w in ws]
    distances = (features(images[0]) - features(images[1])).pow(2).sum(1) / eps ** 2
    low, high = torch.quantile(distances, 0.01), torch.quantile(distances, 0.99)
    kept = distances[(distances >= low) & (distances <= high)]
    return {"space": space, "ppl": float(kept.mean()), "median": float(distances.median()), "n": n, "eps": eps}


# -- noise ------------------------------------------------------------------------------------------------
def noise_effect(G: StyleGenerator, factor_model=None, *, n: int = 200, draws: int = 8, seed: int = 0,
                 layers: slice | None = None) -> dict:
    """Resample the noise `draws` times for the same codes: `pixel_std` (H, W), the spread of each pixel over the
    draws averaged over samples and channels; `mean_change`, its mean; with a factor model, `factors_kept`, the
    share of (sample, draw) pairs whose every factor reads as with the first draw. `layers` resamples only those
    layers' noise (the others keep their stored maps)."""
    (z,) = _codes(G, n, seed)
    rng = torch.Generator().manual_seed(seed + 1)
    stored = G._noise(n, "const", z.device)
    pictures = []
    for _ in range(draws):
        fresh = G.make_noise(n, rng, z.device)
        chosen = range(len(fresh))[layers] if layers is not None else range(len(fresh))
        noise = [fresh[j] if j in chosen else stored[j].expand(n, -1, -1, -1) for j in range(len(fresh))]
        pictures.append(draw_samples(G, z, noise=noise))
    stack = torch.stack(pictures)  # (draws, n, C, H, W)
    pixel_std = stack.std(dim=0).mean(dim=(0, 1))
    out = {"pixel_std": pixel_std, "mean_change": float(pixel_std.mean())}
    if factor_model is not None:
        reads = [factor_model.read(p) for p in pictures]
        same = torch.stack([torch.stack([r[f] == reads[0][f] for f in r]).all(0) for r in reads[1:]])
        out["factors_kept"] = float(same.float().mean())
    return out


# -- truncation -------------------------------------------------------------------------------------------
def truncation_sweep(G: StyleGenerator, evaluator, values, *, mode: str = "w", n: int | None = None,
                     seed: int = 0) -> list[dict]:
    """FID, precision and recall of n samples (default `evaluator.n`) for each psi (mode "w") or each
    truncated-normal threshold (mode "z"), from the same seed. Precision and recall compare against as many
    training images as samples (their k-NN balls then have comparable sizes), which also keeps them cheap."""
    if mode not in ("w", "z"):
        raise ValueError(f"mode must be 'w' (psi) or 'z' (threshold); got {mode!r}")
    n = evaluator.n if n is None else n
    real_f = evaluator.real_features[:n]
    rows = []
    for value in values:
        if mode == "w":
            (z,) = _codes(G, n, seed)
            samples = draw_samples(G, z, float(value), noise="const")
        else:
            z = truncated_normal(n, G.z_dim, float(value), torch.Generator().manual_seed(seed)).to(G.const.device)
            samples = draw_samples(G, z, noise="const")
        fake_f = evaluator.classifier.features(samples)
        precision, recall = precision_recall(real_f, fake_f, k=evaluator.k)
        rows.append({"mode": mode, "value": float(value), "fid": fid_from_features(evaluator.real_features, fake_f),
                     "precision": precision, "recall": recall})
    return rows


# -- AdaIN's droplets ----------------------------------------------------------------------------------------
def activation_peaks(G: StyleGenerator, *, n: int = 64, seed: int = 0) -> list[dict]:
    """Per synthesis layer: the median over feature maps and samples of max|a| / mean|a| over a map's pixels,
    where a is what the style acts on next: the activations AdaIN normalises (style "adain") or the layer's
    output (style "modulated"). A map with a droplet has one pixel far above the rest."""
    records: list[torch.Tensor] = []

    def keep(module, inputs, output=None):
        a = (inputs[0] if output is None else output).detach().float().abs()
        records.append((a.amax(dim=(2, 3)) / a.mean(dim=(2, 3)).clamp_min(1e-12)).flatten())

    hooks = [layer.adain.register_forward_pre_hook(keep) if layer.style == "adain" else layer.register_forward_hook(keep)
             for layer in G.layers]
    try:
        (z,) = _codes(G, n, seed)
        draw_samples(G, z, noise="const", batch_size=n)  # one pass: one record per layer
    finally:
        for h in hooks:
            h.remove()
    sizes = G.noise_sizes()
    return [{"layer": j, "resolution": sizes[j], "peak_ratio": float(r.median()),
             "peak_ratio_p99": float(torch.quantile(r, 0.99)), "max_possible": sizes[j] ** 2}
            for j, r in enumerate(records)]


# -- ADA's leak check ----------------------------------------------------------------------------------------
def orientation_model(size: int = 32, *, limit: int = 4000, epochs: int = 2, seed: int = 0):
    """A factor model with one head, `quarter_turns` (0-3), trained on real faces turned by k x 90 degrees: it
    tells whether a picture stands upright. A few seconds on a CPU; not cached."""
    from gancourse.data import load
    from gancourse.metrics.factors import FactorModel, fit_factor_model

    x = load("faces", size=size, limit=limit).x
    x = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()
    turns = torch.randint(4, (len(x),), generator=torch.Generator().manual_seed(seed))
    turned = torch.stack([torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(x, turns)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FactorModel({"quarter_turns": 4}, size)
        return fit_factor_model(model, turned, {"quarter_turns": turns}, epochs=epochs, seed=seed)


def turned_share(images: torch.Tensor, model) -> float:
    """Share of images the orientation model reads as turned by 90, 180 or 270 degrees (a rotation leak)."""
    return float((model.read(images)["quarter_turns"] != 0).float().mean())
