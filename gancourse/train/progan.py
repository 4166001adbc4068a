"""ProGAN's training (lesson 06): grow G and D from 4x4 to the final size while they train (Karras et al. 2017).

Training runs in phases counted in real images shown, not epochs: 4x4 alone for `phase_images`, then for
each higher resolution a fade-in of `phase_images` (alpha rising linearly from 0 to 1) and a stable phase of
`phase_images`. The real images D sees are blended the same way (average-pooled to the resolution, and
during a fade-in mixed with their own half-resolution version up-sampled). The loss is WGAN-GP (lambda 10)
with the drift term 0.001 * E[D(x)^2], Adam with betas (0, 0.99), one D step per G step, and the batch size
may change per resolution. The stage, alpha and images seen are state: buffers of both networks and the
family's `extra_state`, so a checkpoint written in the middle of a fade-in resumes exactly there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gancourse import losses
from gancourse.train.gan import GAN, frozen


def growth_schedule(images: int, phase_images: int, num_stages: int) -> tuple[int, float]:
    """(stage, alpha) after `images` real images: stage 0 for one phase, then per stage a fade-in phase
    (alpha = share of it done) and a stable phase (alpha = 1). Past the last stage: (last, 1.0)."""
    if phase_images < 1:
        raise ValueError(f"phase_images must be >= 1; got {phase_images!r}")
    if images < phase_images:
        return 0, 1.0
    done = images - phase_images
    stage = 1 + done // (2 * phase_images)
    if stage >= num_stages:
        return num_stages - 1, 1.0
    return int(stage), min(1.0, (done % (2 * phase_images)) / phase_images)


def total_images(phase_images: int, num_stages: int) -> int:
    """Images until the end of the last stable phase: one phase at 4x4, two per later stage."""
    return phase_images * (2 * num_stages - 1)


def blend_reals(x: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Real images as D should see them at `resolution` during a fade-in by `alpha`, returned at x's size.

    Average-pool to the resolution; while fading in, mix with the half-resolution image up-sampled (what the
    previous stage saw), alpha of the new and 1 - alpha of the old; up-sample back (nearest) to x's size.
    """
    size = x.shape[-1]
    low_res = F.avg_pool2d(x, size // resolution) if resolution < size else x
    if alpha < 1.0 and resolution > 4:
        previous = F.interpolate(F.avg_pool2d(low_res, 2), scale_factor=2, mode="nearest")
        low_res = torch.lerp(previous, low_res, alpha)
    return F.interpolate(low_res, size=size, mode="nearest") if resolution < size else low_res


class ProGAN(GAN):
    """G and D grown together (models.ProGenerator, models.ProDiscriminator), trained as WGAN-GP with drift.

    phase_images: real images per phase. None: fit the whole schedule into the step budget (the Trainer's
        `steps`; the batch sizes per resolution are taken into account).
    growth_budget: with phase_images=None, the share of the step budget the growth schedule takes; the rest
        trains on at the final resolution (a longer last stable phase).
    batch_sizes: {resolution: batch size}, e.g. {4: 64, 8: 64, 16: 32, 32: 32}; unlisted resolutions use
        the Trainer's batch size. Each must be at least D's minibatch-stddev group size.
    growing: False trains at the final resolution from the first step (the baseline growth is compared with);
        everything else (networks, loss, optimiser, batch size at the final resolution) stays the same.
    """

    def __init__(self, G, D, *, phase_images: int | None = None, growth_budget: float = 1.0,
                 batch_sizes: dict[int, int] | None = None, lr: float = 1e-3, betas: tuple[float, float] = (0.0, 0.99),
                 gp_weight: float = 10.0, drift: float = 1e-3, growing: bool = True) -> None:
        super().__init__()
        if G.final_size != D.final_size:
            raise ValueError(f"G grows to {G.final_size}x{G.final_size} but D to {D.final_size}x{D.final_size}; "
                             "build both with the same final_size")
        self.nets = {"G": G, "D": D}
        self.opts = {name: torch.optim.Adam(net.parameters(), lr=lr, betas=betas) for name, net in self.nets.items()}
        if not 0.0 < growth_budget <= 1.0:
            raise ValueError(f"growth_budget is the share of the steps the growth schedule takes, in (0, 1]; "
                             f"got {growth_budget!r}")
        self.phase_images, self.growth_budget, self.growing = phase_images, float(growth_budget), bool(growing)
        self.batch_sizes = dict(batch_sizes or {})
        for resolution, n in self.batch_sizes.items():
            self._check_batch(n, resolution)
        self.gp_weight, self.drift = float(gp_weight), float(drift)
        self.images_seen = 0

    @property
    def final_size(self) -> int:
        return self.nets["G"].final_size

    @property
    def num_stages(self) -> int:
        return self.nets["G"].num_stages

    def _check_batch(self, n: int, resolution: int) -> int:
        group = self.nets["D"].group_size
        if n < group:
            raise ValueError(f"a batch of {n} at {resolution}x{resolution} is smaller than D's minibatch-stddev group "
                             f"size {group}; use a batch of at least {group}")
        return n

    def batch_for(self, resolution: int, default: int) -> int:
        return self._check_batch(self.batch_sizes.get(resolution, default), resolution)

    def _fit_phases(self, ctx) -> int:
        """phase_images that spends the step budget on the whole schedule, batch sizes included."""
        if not ctx.total_steps:
            raise ValueError("ProGAN needs phase_images=... (images per fade-in or stable phase) or a Trainer with "
                             "steps=..., to fit the growth schedule into the budget")
        # steps per image at each stage: the stage-0 phase plus two phases for each later stage
        steps_per_phase_image = 1 / self.batch_for(4, ctx.batch_size) + sum(
            2 / self.batch_for(4 * 2 ** s, ctx.batch_size) for s in range(1, self.num_stages))
        return max(1, int(self.growth_budget * ctx.total_steps / steps_per_phase_image))

    def schedule(self, ctx) -> None:
        if not self.growing:
            stage, alpha = self.num_stages - 1, 1.0
        else:
            if self.phase_images is None:
                self.phase_images = self._fit_phases(ctx)
            stage, alpha = growth_schedule(self.images_seen, self.phase_images, self.num_stages)
        for net in self.nets.values():
            net.grow(stage, alpha)

    def train_step(self, ctx) -> dict[str, torch.Tensor | float]:
        G, D = self.nets["G"], self.nets["D"]
        resolution, alpha = G.resolution, float(G.alpha)
        n = self.batch_for(resolution, ctx.batch_size)
        real = blend_reals(ctx.data.sample(n), resolution, alpha)
        z = torch.randn(n, G.z_dim, device=real.device)
        with torch.no_grad(), ctx.autocast():
            fake = G(z)
        with ctx.autocast():
            real_scores, fake_scores = D(real), D(fake)
            loss_d = losses.critic_loss_wasserstein(real_scores, fake_scores)
            drift = losses.drift_penalty(real_scores.float(), self.drift)
        # fp32, outside autocast. D's minibatch-stddev layer makes a score depend a little on its group, so this
        # gradient is not exactly per sample; the paper's code penalises it the same way.
        gp = losses.gradient_penalty(D, real.float(), fake.float(), weight=self.gp_weight)
        ctx.optimize(loss_d + drift + gp, self.opts["D"])
        with frozen(D), ctx.autocast():
            loss_g = losses.generator_loss_wasserstein(D(G(torch.randn(n, G.z_dim, device=real.device))))
        ctx.optimize(loss_g, self.opts["G"])
        self.images_seen += n
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach(), "GP": gp.detach(),
                "W1": (real_scores.mean() - fake_scores.mean()).detach(), "stage": float(G.stage), "alpha": alpha,
                "resolution": float(resolution)}

    def generate(self, n: int | None = None, **options) -> torch.Tensor:
        """Samples as images: G's output is linear (no tanh), so it is clipped to [-1, 1] here, as the paper's
        code does when it writes pictures; training never clips."""
        return super().generate(n, **options).clamp(-1, 1)

    def extra_state(self) -> dict:
        return {"images_seen": self.images_seen, "phase_images": self.phase_images, "final_size": self.final_size}

    def load_extra_state(self, state: dict) -> None:
        if state.get("final_size", self.final_size) != self.final_size:
            raise ValueError(f"the checkpoint grows to {state['final_size']}x{state['final_size']}, this ProGAN to "
                             f"{self.final_size}x{self.final_size}; resume with final_size={state['final_size']}")
        self.images_seen = int(state.get("images_seen", 0))
        self.phase_images = state.get("phase_images", self.phase_images)
