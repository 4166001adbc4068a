"""Image-to-image translation (lesson 05): CycleGAN for unpaired domains, pix2pix for paired ones.

CycleGAN (Zhu et al. 2017, arXiv 1703.10593) learns G: A -> B and F: B -> A from two piles of images
with no pairs. Two discriminators judge the domains (D_B: is this a real B, or a G(a)? D_A likewise
for F). The adversarial terms alone would accept any G whose outputs look like B, whatever the input,
so a cycle loss ties each image to its round trip, F(G(a)) ~ a and G(F(b)) ~ b, and an identity loss
asks G to leave images that are already in B alone. The recipe from the paper and its code: least
squares adversarial loss, lambda_cyc = 10, identity weight 0.5 * lambda_cyc, D trained on a pool of
50 past fakes (Shrivastava et al. 2017), Adam 2e-4 with beta1 = 0.5, the learning rate constant for
the first half of training and then decayed linearly to zero.

pix2pix (Isola et al. 2016, arXiv 1611.07004) is the paired counterpart: with each input's true
partner known, G is trained to match it (an L1 term, lambda = 100) while a PatchGAN judges
(input, output) pairs. In lesson 05 it is the upper bound for what an unpaired method can reach.
"""
from __future__ import annotations

import torch
from torch import nn

from gancourse import losses
from gancourse.train.gan import GAN, frozen

DIRECTIONS = {"A2B": ("G", "A"), "B2A": ("F", "B")}  # direction: (the generator that runs, its source domain)


def lr_factor(fraction: float, decay_start: float = 0.5) -> float:
    """CycleGAN's learning-rate multiplier at `fraction` of the budget: 1 until `decay_start`, then a
    straight line down to 0 at the end (100 epochs constant, then 100 decaying, in the paper)."""
    if not 0 <= decay_start < 1:
        raise ValueError(f"decay_start is a fraction of training in [0, 1); got {decay_start!r}")
    fraction = min(max(float(fraction), 0.0), 1.0)
    return min(1.0, (1.0 - fraction) / (1.0 - decay_start))


class ImagePool:
    """A history of up to `size` generated images (Shrivastava et al. 2017; CycleGAN uses 50).

    `query(batch)` returns a batch of the same size for D: while the pool fills, the new images; then,
    for each image, with probability 1/2 a stored image (which the new one replaces) and otherwise the
    new image itself. D so keeps seeing what G used to make, which damps the back-and-forth between
    G and a D that only remembers G's latest mistakes. Draws come from torch's global RNG, which the
    Trainer seeds and checkpoints; the pool's images are saved in checkpoints too.
    """

    def __init__(self, size: int = 50) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"the pool size must be an int >= 0 (0 turns the pool off); got {size!r}")
        self.size = size
        self.images: torch.Tensor | None = None  # (k, C, H, W), k <= size

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.detach()
        if self.size == 0:
            return batch
        out = []
        for image in batch:
            if len(self) < self.size:  # still filling: keep it and show it
                image = image.unsqueeze(0)
                self.images = image.clone() if self.images is None else torch.cat([self.images, image.clone()])
                out.append(image[0])
            elif float(torch.rand(())) < 0.5:  # show an old one, keep the new one in its place
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": None if self.images is None else self.images.detach().cpu().clone()}

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        if state["size"] != self.size:
            raise ValueError(f"the checkpoint's image pool holds up to {state['size']} images, this one {self.size}; "
                             "resume with the same pool_size")
        images = state["images"]
        self.images = None if images is None else images.to(device if device is not None else images.device).clone()


def _check_two_domains(data, family: str, paired: bool = False) -> None:
    if getattr(data, "domains", None) != ("A", "B"):
        raise TypeError(f"{family} trains on a two-domain data set such as load('glyphs') or "
                        f"load('unpaired', path=...); got {type(data).__name__} with one domain.")
    if paired and not getattr(data, "paired", False):
        raise TypeError(f"{family} needs the pairs: load('glyphs', paired=True) (a PairedData), not "
                        f"{type(data).__name__}. Unpaired domains are CycleGAN's setting.")


class _Translator(GAN):
    """What both translation families share: sampling by direction and the learning-rate schedule."""

    def __init__(self, lr: float, decay_start: float) -> None:
        super().__init__()
        lr_factor(0.0, decay_start)  # validates decay_start
        self.lr, self.decay_start = float(lr), float(decay_start)
        self.current_lr_factor = 1.0

    def schedule(self, ctx) -> None:
        self.current_lr_factor = lr_factor(ctx.fraction, self.decay_start)
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = self.lr * self.current_lr_factor

    def generator_name(self, inputs) -> str:
        direction = inputs.get("direction", "A2B")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'A2B' or 'B2A'; got {direction!r}")
        name = DIRECTIONS[direction][0]
        if name not in self.nets:
            raise ValueError(f"{type(self).__name__} has no generator for {direction}; it translates A2B only")
        return name

    def sampling_inputs(self, name: str) -> dict:
        return {"direction": next(d for d, (g, _) in DIRECTIONS.items() if g == name)}

    def generator_inputs(self, n: int, *, rng: torch.Generator, device: torch.device, data=None,
                         source: torch.Tensor | None = None, direction: str = "A2B", z=None) -> tuple:
        """The images to translate: `source` as given, or n drawn (with `rng`) from the source domain of
        `direction` in `data`. There is no z: the randomness of a CycleGAN is in its input."""
        if z is not None:
            raise ValueError("a translation network takes no z; pass source=<images> or data=<the two domains>")
        self.generator_name({"direction": direction})
        if source is None:
            if data is None:
                raise ValueError("pass source=<images to translate> or data=<a two-domain set such as load('glyphs')>")
            _check_two_domains(data, type(self).__name__)
            side = data.domain(DIRECTIONS[direction][1])
            rows = torch.randint(len(side), (n,), generator=rng).to(side.device)
            source = side._rows(rows)
        elif len(source) != n:
            raise ValueError(f"asked for {n} translations of {len(source)} source images; leave n out or match it")
        return (source.to(device),)

    def translate(self, images: torch.Tensor, direction: str = "A2B", net=None) -> torch.Tensor:
        """G(images) (or F(images) for "B2A") in display mode, on the generator's device."""
        return self.generate(rng=0, net=net, source=images, direction=direction)

    def extra_state(self) -> dict:
        return {"lr_factor": self.current_lr_factor}

    def load_extra_state(self, state: dict) -> None:
        self.current_lr_factor = state.get("lr_factor", 1.0)


class CycleGAN(_Translator):
    """Unpaired translation: G: A -> B, F: B -> A, D_A and D_B, one step updating all four.

    lambda_cycle: weight of both cycle losses (10). identity: weight of the identity loss as a share of
        lambda_cycle (0.5, so 5 in all; 0 turns it off).
    adversarial: False drops the adversarial terms and the discriminators' updates: the cycle (and
        identity) losses alone, lesson 05's ablation.
    pool_size: past fakes each D draws from (50; 0 shows D only the newest).
    lr, betas, decay_start: Adam for the generators together and for the discriminators together,
        lr constant until `decay_start` of the budget, then linear to 0.

    Metrics: loss_G (everything G and F minimise), adv (their adversarial terms), cycle, identity, loss_D
    (both discriminators, each halved), D_real / D_fake (mean scores on real and on pooled fakes).
    """

    generator_names = ("G", "F")

    def __init__(self, G: nn.Module, F: nn.Module, D_A: nn.Module, D_B: nn.Module, *, lambda_cycle: float = 10.0,
                 identity: float = 0.5, adversarial: bool = True, pool_size: int = 50, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), decay_start: float = 0.5) -> None:
        super().__init__(lr, decay_start)
        for name, value in (("lambda_cycle", lambda_cycle), ("identity", identity)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0; got {value!r}")
        self.lambda_cycle, self.identity, self.adversarial = float(lambda_cycle), float(identity), bool(adversarial)
        self.nets = {"G": G, "F": F, "D_A": D_A, "D_B": D_B}
        self.opts = {"G": torch.optim.Adam([*G.parameters(), *F.parameters()], lr=lr, betas=betas),
                     "D": torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=lr, betas=betas)}
        self.pools = {"A": ImagePool(pool_size), "B": ImagePool(pool_size)}

    def train_step(self, ctx) -> dict[str, torch.Tensor]:
        _check_two_domains(ctx.data, "CycleGAN")
        G, F, D_A, D_B = (self.nets[k] for k in ("G", "F", "D_A", "D_B"))
        a, b = ctx.data.sample(ctx.batch_size, domain="A"), ctx.data.sample(ctx.batch_size, domain="B")

        # G and F: fool both discriminators, come back around the cycle, leave the target domain alone
        with frozen(D_A), frozen(D_B), ctx.autocast():
            fake_b, fake_a = G(a), F(b)
            cycle = losses.cycle_consistency_loss(a, F(fake_b)) + losses.cycle_consistency_loss(b, G(fake_a))
            loss_g = self.lambda_cycle * cycle
            adv = torch.zeros((), device=a.device)
            if self.adversarial:
                # 2 x LSGAN's 1/2 E[(D(G(a)) - 1)^2]: the authors' code weighs it E[(D(G(a)) - 1)^2]
                adv = 2 * (losses.generator_loss_lsgan(D_B(fake_b)) + losses.generator_loss_lsgan(D_A(fake_a)))
                loss_g = loss_g + adv
            identity = torch.zeros((), device=a.device)
            if self.identity > 0:
                identity = losses.identity_loss(b, G(b)) + losses.identity_loss(a, F(a))
                loss_g = loss_g + self.identity * self.lambda_cycle * identity
        ctx.optimize(loss_g, self.opts["G"])
        metrics = {"loss_G": loss_g.detach(), "adv": adv.detach(), "cycle": cycle.detach(),
                   "identity": identity.detach()}
        if not self.adversarial:
            return metrics

        # D_A and D_B: real images against fakes from the pools; the fakes are detached, so no gradient
        # reaches G and F from D's loss. LSGAN's D loss already carries the paper's halving.
        pooled_b, pooled_a = self.pools["B"].query(fake_b.detach()), self.pools["A"].query(fake_a.detach())
        with ctx.autocast():
            real_b, fake_b_scores = D_B(b), D_B(pooled_b)
            real_a, fake_a_scores = D_A(a), D_A(pooled_a)
            loss_d = (losses.discriminator_loss_lsgan(real_b, fake_b_scores)
                      + losses.discriminator_loss_lsgan(real_a, fake_a_scores))
        ctx.optimize(loss_d, self.opts["D"])
        metrics.update(loss_D=loss_d.detach(), D_real=(real_a.mean() + real_b.mean()).detach() / 2,
                       D_fake=(fake_a_scores.mean() + fake_b_scores.mean()).detach() / 2)
        return metrics

    def extra_state(self) -> dict:
        return {**super().extra_state(), "pools": {k: pool.state_dict() for k, pool in self.pools.items()}}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        for k, pool in self.pools.items():
            pool.load_state_dict(state["pools"][k], device=self.device)


class Pix2Pix(_Translator):
    """Paired translation A -> B: G(a) should be the pair's b (L1, weight lambda_l1 = 100) and fool a
    PatchGAN D that judges (a, G(a)) against (a, b), both as 2C-channel images. D's loss is halved and
    uses binary cross-entropy on each patch's logit, as in the paper.
    """

    generator_names = ("G",)

    def __init__(self, G: nn.Module, D: nn.Module, *, lambda_l1: float = 100.0, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), decay_start: float = 0.5) -> None:
        super().__init__(lr, decay_start)
        self.lambda_l1 = float(lambda_l1)
        self.nets = {"G": G, "D": D}
        self.opts = {"G": torch.optim.Adam(G.parameters(), lr=lr, betas=betas),
                     "D": torch.optim.Adam(D.parameters(), lr=lr, betas=betas)}

    def train_step(self, ctx) -> dict[str, torch.Tensor]:
        _check_two_domains(ctx.data, "Pix2Pix", paired=True)
        G, D = self.nets["G"], self.nets["D"]
        a, b = ctx.data.sample_pairs(ctx.batch_size)
        with ctx.autocast():
            fake = G(a)
            real_scores, fake_scores = D(torch.cat([a, b], 1)), D(torch.cat([a, fake.detach()], 1))
            loss_d = 0.5 * losses.discriminator_loss(real_scores, fake_scores)
        ctx.optimize(loss_d, self.opts["D"])
        with frozen(D), ctx.autocast():
            adv = losses.generator_loss_nonsaturating(D(torch.cat([a, fake], 1)))
            l1 = losses.reconstruction_loss(b, fake)
            loss_g = adv + self.lambda_l1 * l1
        ctx.optimize(loss_g, self.opts["G"])
        return {"loss_G": loss_g.detach(), "adv": adv.detach(), "L1": l1.detach(), "loss_D": loss_d.detach(),
                "D_real": torch.sigmoid(real_scores).mean().detach(), "D_fake": torch.sigmoid(fake_scores).mean().detach()}
