"""StyleGAN's networks (lesson 07), after Karras et al. 2019 (StyleGAN, arXiv 1812.04948) and 2020 (StyleGAN2,
arXiv 1912.04958).

The generator is two networks. The mapping network turns z into w, a code in an intermediate space W that
need not follow a fixed distribution (sec. 4 of the StyleGAN paper: that freedom is why W can be less
entangled than Z). The synthesis network starts from a learned 4x4 constant, not from z, and each of its
layers reads its own copy of w ("styles"): one entry of `ws` (N, num_ws, w_dim) per layer, so different layers
can take different codes (style mixing) and codes can be pulled towards the average w (truncation).

How a layer uses its style, the two versions the lesson compares:
- "adain" (StyleGAN): a plain convolution, then adaptive instance normalisation: every feature map is
  normalised to zero mean and unit variance over its pixels, then scaled and shifted by the style;
- "modulated" (StyleGAN2): the style scales the convolution's input channels by scaling its weights
  (modulation), and the output channels are divided by the norm the scaled weights would give a unit input
  (demodulation). It controls the same statistics without measuring them from the feature maps, which
  removes the "droplets" AdaIN invites (G can hide a strong spike in a map to dominate its normalisation).
Both versions add per-pixel noise with a learned per-channel strength, and sum one RGB output per resolution
("skip" architecture), up-sampled. Up-sampling is bilinear here (StyleGAN2 uses a transposed convolution
with a low-pass filter); nothing in the lesson depends on the difference at 32x32.

The discriminator is StyleGAN2's residual one, built from lesson 06's pieces: equalized learning rate and
the minibatch standard-deviation layer.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.models.progan import (EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, channels_at,
                                     check_final_size, check_image_input)

STYLES = ("modulated", "adain")
SQRT2 = math.sqrt(2)


# -- the mapping network ----------------------------------------------------------------------------------
class MappingNetwork(nn.Module):
    """z (N, z_dim) -> w (N, w_dim): z normalised (pixel norm), then `layers` fully connected layers.

    lr_multiplier 0.01 (the paper's value) makes these layers learn 100 times slower than the synthesis
    network: with equalized learning rate the multiplier scales both the run-time constant and the initial
    weights, so only the effective step size changes, not the function at initialisation.
    """

    def __init__(self, z_dim: int = 128, w_dim: int = 128, layers: int = 8, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ValueError(f"the mapping network needs at least one layer; got layers={layers!r}")
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(PixelNorm(), *[module for d_in, d_out in zip(dims, dims[1:]) for module in
                                                (EqualizedLinear(d_in, d_out, lr_multiplier=lr_multiplier),
                                                 nn.LeakyReLU(0.2))])
        self.z_dim, self.w_dim, self.lr_multiplier = z_dim, w_dim, lr_multiplier

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """The truncation trick in W: w' = w_avg + psi * (w - w_avg). psi = 1 changes nothing, 0 gives the average."""
    return torch.lerp(w_avg.to(w.dtype), w, psi) if psi != 1 else w


def truncated_normal(n: int, dim: int, threshold: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """BigGAN's truncation in Z (Brock et al. 2018): z ~ N(0, I) with every entry beyond +-threshold drawn again."""
    if not threshold > 0:
        raise ValueError(f"the truncation threshold must be positive; got {threshold!r}")
    z = torch.randn(n, dim, generator=generator)
    while True:
        outside = z.abs() > threshold
        if not outside.any():
            return z
        z[outside] = torch.randn(int(outside.sum()), generator=generator)


# -- how a layer reads its style ----------------------------------------------------------------------------
def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True,
                     padding: int = 0, fused: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """StyleGAN2's modulated convolution (sec. 2.2, eq. 1-3): a different kernel per sample.

    x (N, C_in, H, W); weight (C_out, C_in, k, k), already scaled; styles (N, C_in).
    Modulation: w'_ijk = s_i * w_ijk. Demodulation: w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps), the sum over
    the input channels and the kernel's taps of each output channel j, so that unit-variance inputs give
    unit-variance outputs.
    fused=True builds the N kernels and runs one grouped convolution (N groups); fused=False scales the input
    channels, runs the shared kernel, and scales the output channels: the same numbers, two ways.
    """
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    if styles.shape != (n, c_in):
        raise ValueError(f"styles must have shape ({n}, {c_in}) for this input; got {tuple(styles.shape)}")
    if fused:
        w = weight.unsqueeze(0) * styles.view(n, 1, c_in, 1, 1)  # (N, C_out, C_in, k, k)
        if demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
        out = F.conv2d(x.reshape(1, n * c_in, *x.shape[2:]), w.reshape(n * c_out, *w.shape[2:]), padding=padding,
                       groups=n)
        return out.view(n, c_out, *out.shape[2:])
    out = F.conv2d(x * styles.view(n, c_in, 1, 1).to(x.dtype), weight, padding=padding)
    if demodulate:  # sum_ik (s_i w_ijk)^2 = sum_i s_i^2 (sum_k w_ijk^2): no per-sample kernel needed
        norms = styles.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t()  # (N, C_out)
        out = out * torch.rsqrt(norms + eps).view(n, c_out, 1, 1).to(out.dtype)
    return out


class ModulatedConv2d(nn.Module):
    """A convolution modulated by a style: an affine map of w gives one scale per input channel (starting at 1)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, w_dim: int, *, demodulate: bool = True,
                 fused: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.scale = 1 / math.sqrt(c_in * kernel * kernel)  # equalized learning rate
        self.affine = EqualizedLinear(w_dim, c_in, gain=1.0)
        nn.init.ones_(self.affine.bias)  # styles start at 1: the layer starts as a plain convolution
        self.demodulate, self.fused, self.padding = demodulate, fused, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return modulated_conv2d(x, self.weight * self.scale, self.affine(w), demodulate=self.demodulate,
                                padding=self.padding, fused=self.fused)

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight.shape
        return f"{c_in}, {c_out}, kernel={k}, demodulate={self.demodulate}, fused={self.fused}"


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each feature map of each sample to zero mean and unit variance over its pixels."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps)


class AdaIN(nn.Module):
    """Adaptive instance normalisation (StyleGAN eq. 1): y_s * (x - mean(x)) / std(x) + y_b, per feature map,
    with (y_s, y_b) an affine map of w (y_s starts at 1, y_b at 0)."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(w).view(len(x), 2, -1, 1, 1).unbind(1)
        return scale.to(x.dtype) * instance_norm(x) + shift.to(x.dtype)


class NoiseInjection(nn.Module):
    """x + strength * noise: one Gaussian value per pixel, shared by the channels, each channel with its own
    learned strength (starting at 0, so noise is only used where training finds it useful)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.strength.to(x.dtype) * noise.to(x.dtype)


class StyleLayer(nn.Module):
    """One synthesis layer: [up-sample] -> conv -> noise -> bias -> leaky ReLU, styled by one w.

    style="modulated": the convolution is modulated and demodulated by w (StyleGAN2);
    style="adain": a plain convolution, and AdaIN by w after the activation (StyleGAN).
    """

    def __init__(self, c_in: int, c_out: int, w_dim: int, *, upsample: bool = False, style: str = "modulated",
                 fused: bool = False) -> None:
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}; got {style!r}")
        self.upsample, self.style = upsample, style
        if style == "modulated":
            self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim, fused=fused)
        else:
            self.conv = EqualizedConv2d(c_in, c_out, 3, padding=1, gain=1.0)
            self.adain = AdaIN(c_out, w_dim)
        self.noise = NoiseInjection(c_out)
        self.bias = nn.Parameter(torch.zeros(1, c_out, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w) if self.style == "modulated" else self.conv(x)
        # sqrt(2) keeps unit variance through the leaky ReLU (StyleGAN2's activation gain)
        x = F.leaky_relu(self.noise(x, noise) + self.bias.to(x.dtype), 0.2) * SQRT2
        return self.adain(x, w) if self.style == "adain" else x


class ToRGB(nn.Module):
    """Features -> an RGB picture at this resolution: a 1x1 convolution modulated by w, not demodulated
    (in both versions, so the two differ only in how the feature layers use their styles)."""

    def __init__(self, c_in: int, channels: int, w_dim: int, *, fused: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, w_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)


# -- the generator ------------------------------------------------------------------------------------------
class StyleGenerator(nn.Module):
    """z (N, z_dim) -> images (N, channels, final_size, final_size), linear at the output (no tanh).

    Layers, from 4x4 up: one StyleLayer at 4x4 on the learned constant, then two per resolution (the first
    up-samples); after each resolution a ToRGB, summed into the picture so far (up-sampled). Style inputs:
    layer j reads ws[:, j], the ToRGB of resolution r (r = 0 for 4x4) reads ws[:, 2r + 1]; `num_ws` =
    2 * number of resolutions (8 at 32x32). Lower indices are coarse (4x4, 8x8), higher ones fine.

    forward(z, psi, mix_z, crossover, noise):
        psi: truncation in W towards `w_avg` (1: none); outside [0, 1] warns (extrapolation).
        mix_z, crossover: style mixing: layers [0, crossover) take w(z), layers [crossover, num_ws) w(mix_z).
        noise: None (fresh noise from the global RNG), "const" (the same stored noise every call), "zero",
            or a list of tensors (N, 1, H, W), one per layer (see `make_noise`).
    fused: the modulated convolutions as one grouped convolution (True) or unfused (False, the default: 1.8-2x
        faster for a training step on a CPU, benchmarks/modconv.py; try True on a GPU). Same numbers either way.
    `w_avg` (a buffer) is the running mean of w that truncation pulls towards; the training loop updates it
    with `track_w_avg` on plain (not mixed, not truncated) codes.
    """

    def __init__(self, z_dim: int = 128, w_dim: int = 128, final_size: int = 32, channels: int = 3, *,
                 width: int = 32, max_channels: int = 128, mapping_layers: int = 8, mapping_lr: float = 0.01,
                 style: str = "modulated", fused: bool = False) -> None:
        super().__init__()
        self.final_size = check_final_size(final_size)
        self.num_stages = int(math.log2(final_size)) - 1
        self.z_dim, self.w_dim, self.channels, self.style = z_dim, w_dim, channels, style
        self.config = dict(z_dim=z_dim, w_dim=w_dim, final_size=final_size, channels=channels, width=width,
                           max_channels=max_channels, mapping_layers=mapping_layers, mapping_lr=mapping_lr,
                           style=style, fused=fused)
        ch = [channels_at(4 * 2 ** i, width, max_channels) for i in range(self.num_stages)]
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr)
        self.const = nn.Parameter(torch.randn(1, ch[0], 4, 4))
        layers = [StyleLayer(ch[0], ch[0], w_dim, style=style, fused=fused)]
        for i in range(1, self.num_stages):
            layers += [StyleLayer(ch[i - 1], ch[i], w_dim, upsample=True, style=style, fused=fused),
                       StyleLayer(ch[i], ch[i], w_dim, style=style, fused=fused)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleList([ToRGB(c, channels, w_dim, fused=fused) for c in ch])
        self.num_ws = 2 * self.num_stages
        self.register_buffer("w_avg", torch.zeros(w_dim))
        for j, size in enumerate(self.noise_sizes()):  # for noise="const": one fixed draw per layer
            self.register_buffer(f"noise_const_{j}", torch.randn(1, 1, size, size, generator=torch.Generator()
                                                                  .manual_seed(j)))

    @property
    def fused(self) -> bool:
        return self.config["fused"]

    def set_fused(self, fused: bool) -> "StyleGenerator":
        """Switch every modulated convolution between the grouped (fused) and the unfused form."""
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.fused = bool(fused)
        self.config["fused"] = bool(fused)
        return self

    def noise_sizes(self) -> list[int]:
        """The resolution of each layer's noise input, layer by layer."""
        return [4] + [4 * 2 ** i for i in range(1, self.num_stages) for _ in range(2)]

    def make_noise(self, n: int, generator: torch.Generator | None = None, device=None) -> list[torch.Tensor]:
        """One noise map (n, 1, H, W) per layer, drawn from `generator` (a CPU generator) or the global RNG."""
        device = device if device is not None else self.const.device
        return [torch.randn(n, 1, s, s, generator=generator).to(device) if generator is not None
                else torch.randn(n, 1, s, s, device=device) for s in self.noise_sizes()]

    @torch.no_grad()
    def track_w_avg(self, w: torch.Tensor, beta: float = 0.995) -> None:
        """Move w_avg towards the batch's mean w (StyleGAN's w_avg_beta 0.995). Call with plain codes only."""
        self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - beta)

    def styles(self, z: torch.Tensor, psi: float = 1.0, mix_z: torch.Tensor | None = None,
               crossover: int | None = None) -> torch.Tensor:
        """ws (N, num_ws, w_dim): w(z) for every layer, mixed with w(mix_z) from `crossover` on, truncated by psi."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}); got {tuple(z.shape)}")
        check_psi(psi)
        ws = self.mapping(z).unsqueeze(1).repeat(1, self.num_ws, 1)
        if mix_z is not None or crossover is not None:
            if mix_z is None or crossover is None:
                raise ValueError("style mixing needs both mix_z (the second codes) and crossover (the first layer "
                                 "that takes them)")
            check_crossover(crossover, self.num_ws)
            if mix_z.shape != z.shape:
                raise ValueError(f"mix_z must have the shape of z {tuple(z.shape)}; got {tuple(mix_z.shape)}")
            ws = mix_styles(ws, self.mapping(mix_z), crossover)
        return truncate(ws, self.w_avg, psi)

    def synthesis(self, ws: torch.Tensor, noise: str | list[torch.Tensor] | None = None) -> torch.Tensor:
        """ws (N, num_ws, w_dim) -> images."""
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}); got {tuple(ws.shape)}")
        noises = self._noise(len(ws), noise, ws.device)
        x = self.const.expand(len(ws), -1, -1, -1)
        image = None
        for r in range(self.num_stages):
            for j in ([0] if r == 0 else [2 * r - 1, 2 * r]):
                x = self.layers[j](x, ws[:, j], noises[j])
            rgb = self.to_rgb[r](x, ws[:, 2 * r + 1])
            image = rgb if image is None else F.interpolate(image, scale_factor=2, mode="bilinear",
                                                             align_corners=False) + rgb
        return image

    def forward(self, z: torch.Tensor, psi: float = 1.0, mix_z: torch.Tensor | None = None,
                crossover: int | None = None, noise: str | list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.synthesis(self.styles(z, psi, mix_z, crossover), noise)

    def _noise(self, n: int, noise, device) -> list[torch.Tensor]:
        sizes = self.noise_sizes()
        if noise is None:
            return self.make_noise(n, device=device)
        if isinstance(noise, str):
            if noise == "const":
                return [getattr(self, f"noise_const_{j}") for j in range(len(sizes))]
            if noise == "zero":
                return [torch.zeros(1, 1, s, s, device=device) for s in sizes]
            raise ValueError(f"noise must be None (random), 'const', 'zero' or a list of tensors; got {noise!r}")
        if len(noise) != len(sizes):
            raise ValueError(f"noise must hold one map per layer ({len(sizes)}); got {len(noise)}")
        return list(noise)


def mix_styles(ws: torch.Tensor, other_w: torch.Tensor, crossover: int) -> torch.Tensor:
    """Style mixing: layers [crossover, num_ws) take other_w (N, w_dim) instead of their own."""
    mixed = ws.clone()
    mixed[:, crossover:] = other_w.unsqueeze(1)
    return mixed


def check_psi(psi: float) -> None:
    """psi outside [0, 1] is allowed (it extrapolates past w or past the average) but named in a warning."""
    if not isinstance(psi, (int, float)) or isinstance(psi, bool) or not math.isfinite(psi):
        raise ValueError(f"psi must be a number (1: no truncation, 0: the average w); got {psi!r}")
    if not 0.0 <= psi <= 1.0:
        warnings.warn(f"psi={psi} lies outside [0, 1]: this extrapolates "
                      f"{'beyond each w, away from' if psi > 1 else 'through and past'} the average w, so samples "
                      "may leave the data's range; truncation uses psi in [0, 1]", stacklevel=3)


def check_crossover(crossover, num_ws: int) -> int:
    if isinstance(crossover, bool) or not isinstance(crossover, int) or not 0 <= crossover <= num_ws:
        raise ValueError(f"crossover is the first layer that takes the second code, an int in [0, {num_ws}] for this "
                         f"generator ({num_ws} style inputs; 0: all from the second, {num_ws}: none); got {crossover!r}")
    return crossover


# -- the discriminator ------------------------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions and a 2x down-sample, with a residual path (1x1 conv) summed and scaled by 1/sqrt(2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(EqualizedConv2d(c_in, c_in, 3, padding=1), nn.LeakyReLU(0.2),
                                  EqualizedConv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2))
        self.skip = nn.Sequential(nn.AvgPool2d(2), EqualizedConv2d(c_in, c_out, 1, gain=1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.skip(x)) / SQRT2


class StyleDiscriminator(nn.Module):
    """Images (N, channels, final_size, final_size) -> one logit per image (StyleGAN2's residual D).

    fromRGB at the full resolution, one residual block per halving down to 4x4, then lesson 06's minibatch
    standard deviation, a 3x3 convolution and two fully connected layers.
    """

    def __init__(self, final_size: int = 32, channels: int = 3, *, width: int = 32, max_channels: int = 128,
                 group_size: int = 4) -> None:
        super().__init__()
        self.final_size = check_final_size(final_size)
        self.channels = channels
        resolutions = [final_size // 2 ** i for i in range(int(math.log2(final_size)) - 1)]  # final, ..., 4
        ch = [channels_at(r, width, max_channels) for r in resolutions]
        self.from_rgb = nn.Sequential(EqualizedConv2d(channels, ch[0], 1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[DiscriminatorBlock(a, b) for a, b in zip(ch, ch[1:])])
        self.mbstd = MinibatchStdDev(group_size)
        self.out = nn.Sequential(EqualizedConv2d(ch[-1] + 1, ch[-1], 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 EqualizedLinear(ch[-1] * 16, ch[-1]), nn.LeakyReLU(0.2),
                                 EqualizedLinear(ch[-1], 1, gain=1.0))

    @property
    def group_size(self) -> int:
        return self.mbstd.group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(x, self.channels, self.final_size)
        return self.out(self.mbstd(self.blocks(self.from_rgb(x)))).flatten()
