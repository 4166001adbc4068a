"""The contract every GAN family keeps with the Trainer, checked once per family.

A family is added by one line in FAMILIES: a function that builds (gan, data, sampling inputs).
Each family must resume bit-for-bit on the CPU after an interrupt, survive a checkpoint round trip
(networks, optimisers, schedulers, EMA, its own state), sample through the one sampling contract
(repeatable per seed, global RNG and train/eval flags untouched, its inputs honoured), stop with a
clear error on a non-finite loss, and keep an EMA that differs from the live weights and follows them.
"""
from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from gancourse import losses
from gancourse.data import load
from gancourse.models import (ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, DCGANCritic,
                              DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator)
from gancourse.train import GAN, AdversarialGAN, NonFiniteLossError, Trainer, frozen, load_checkpoint
from gancourse.widgets import Dashboard


class TranslationGAN(GAN):
    """A family without z: G turns a digit image into its colour negative's domain (a stand-in for
    CycleGAN in this contract). G has BatchNorm, so its EMA needs standing statistics; it keeps an
    image pool of past fakes as family state and a learning-rate scheduler."""

    def __init__(self, pool_size: int = 8):
        super().__init__()
        G = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 1, 3, 1, 1), nn.Tanh())
        D = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 8 * 8, 1),
                          nn.Flatten(0))
        self.nets = {"G": G, "D": D}
        self.opts = {k: torch.optim.Adam(v.parameters(), lr=1e-3, betas=(0.5, 0.999)) for k, v in self.nets.items()}
        self.schedulers = {"G": torch.optim.lr_scheduler.LambdaLR(self.opts["G"], lambda i: 1.0 / (1 + 0.01 * i))}
        self.pool_size = pool_size
        self.pool = torch.zeros(0, 1, 16, 16)

    def generator_inputs(self, n, *, rng, device, data=None, source=None):
        if source is None:  # draw the sources from domain A of the training data with this rng
            if data is None:
                raise ValueError("pass source=<images of domain A> or data=<the unpaired set>")
            domain = data.domain("A")
            source = domain.x[torch.randint(len(domain), (n,), generator=rng).to(domain.device)]
        return (source.to(device),)

    def train_step(self, ctx):
        G, D = self.nets["G"], self.nets["D"]
        a, b = ctx.data.sample(ctx.batch_size, domain="A"), ctx.data.sample(ctx.batch_size, domain="B")
        with torch.no_grad():
            fake = G(a)
        self.pool = torch.cat([fake.detach().cpu(), self.pool])[: self.pool_size]
        loss_d = losses.discriminator_loss(D(b), D(fake))
        ctx.optimize(loss_d, self.opts["D"])
        with frozen(D):
            loss_g = losses.generator_loss_nonsaturating(D(G(a)))
        ctx.optimize(loss_g, self.opts["G"])
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach()}

    def extra_state(self):
        return {"pool": self.pool.clone()}

    def load_extra_state(self, state):
        self.pool = state["pool"].clone()


def _digits():
    return load("digits", size=16, limit=256)


def unconditional_dcgan():
    gan = AdversarialGAN(DCGANGenerator(z_dim=8, image_size=16, width=8), DCGANDiscriminator(image_size=16, width=8))
    return gan, _digits(), {}


def conditional_projection_hinge():
    gan = AdversarialGAN(ConditionalDCGANGenerator(z_dim=8, num_classes=10, image_size=16, width=8),
                         ConditionalDCGANDiscriminator(num_classes=10, image_size=16, width=8, mode="projection"),
                         objective="hinge")
    return gan, _digits(), {"labels": 3}


def wgan_gp_critic():
    gan = AdversarialGAN(DCGANGenerator(z_dim=8, image_size=16, width=8), DCGANCritic(image_size=16, width=8),
                         objective="wgan-gp", n_critic=2)
    return gan, _digits(), {}


def mlp_lazy_r1():
    gan = AdversarialGAN(MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32),
                         r1=1.0, r1_every=4)
    return gan, load("ring8", n=2000), {}


def translation_without_z():
    from gancourse.data import UnpairedData

    digits = _digits()
    negatives = type(digits)(-digits.x, digits.y, name="negatives", kind="images", num_classes=10)
    return TranslationGAN(), UnpairedData(digits, negatives, name="digits-to-negatives"), {}


FAMILIES = {f.__name__: f for f in (unconditional_dcgan, conditional_projection_hinge, wgan_gp_critic, mlp_lazy_r1,
                                    translation_without_z)}


def build(family, seed=0):
    torch.manual_seed(seed)
    return FAMILIES[family]()


def trainer_for(family, steps, ckpt=None, seed_init=0, **kw):
    gan, data, _ = build(family, seed_init)
    return Trainer(gan, data, steps=steps, batch_size=16, seed=1, log_every=2, checkpoint_dir=ckpt,
                   checkpoint_every=4, ema=0.9, progress=False, verbose=False, **kw)


def state_tensors(trainer):
    gan = trainer.gan
    out = [p.detach().clone() for net in gan.nets.values() for p in net.state_dict().values()]
    out += [p.detach().clone() for net in trainer.ema.nets.values() for p in net.parameters()]
    return out


pytestmark = pytest.mark.parametrize("family", list(FAMILIES))


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def test_resume_after_an_interrupt_is_bit_for_bit(family, tmp_path):
    class Interrupt:
        def on_step_end(self, trainer, step, metrics):
            if step == 6:
                os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's "interrupt kernel" sends

    whole = trainer_for(family, 12)
    whole.fit()
    cut = trainer_for(family, 12, ckpt=tmp_path, callbacks=[Interrupt()])
    cut.fit()
    assert cut.history.interrupted and cut.step == 6
    resumed = trainer_for(family, 12, ckpt=tmp_path, seed_init=99)  # other init: the checkpoint must overwrite it
    resumed.fit(resume=True)
    assert resumed.step == 12
    assert all(torch.equal(a, b) for a, b in zip(state_tensors(whole), state_tensors(resumed)))
    untimed = lambda t: [{k: v for k, v in r.items() if k != "time"} for r in t.history.records]
    assert untimed(whole) == untimed(resumed)


def test_checkpoint_round_trip(family, tmp_path):
    trainer = trainer_for(family, 8, ckpt=tmp_path)
    trainer.fit()
    fresh = trainer_for(family, 8, seed_init=7)
    fresh.load(tmp_path / "checkpoint.pt")
    assert fresh.step == 8 and len(fresh.history) == len(trainer.history)
    assert all(torch.equal(a, b) for a, b in zip(state_tensors(trainer), state_tensors(fresh)))
    for name, opt in trainer.gan.opts.items():
        assert opt.state_dict()["state"].keys() == fresh.gan.opts[name].state_dict()["state"].keys()
    for name, scheduler in trainer.gan.schedulers.items():
        assert scheduler.state_dict() == fresh.gan.schedulers[name].state_dict()
    extra, loaded = trainer.gan.extra_state(), fresh.gan.extra_state()
    assert extra.keys() == loaded.keys()
    assert all(torch.equal(extra[k], loaded[k]) if torch.is_tensor(extra[k]) else extra[k] == loaded[k] for k in extra)
    assert torch.equal(trainer.sample(4, seed=3), fresh.sample(4, seed=3))


def test_sampling_contract(family):
    gan, data, inputs = build(family)
    trainer = Trainer(gan, data, steps=3, batch_size=16, seed=0, ema=0.9, progress=False, verbose=False)
    trainer.fit()
    flags = {name: [m.training for m in net.modules()] for name, net in gan.nets.items()}
    rng_before = torch.get_rng_state()
    a, b = trainer.sample(6, seed=5, **inputs), trainer.sample(6, seed=5, **inputs)
    other = trainer.sample(6, seed=6, **inputs)
    assert torch.equal(torch.get_rng_state(), rng_before)  # looking never moves the training stream
    assert flags == {name: [m.training for m in net.modules()] for name, net in gan.nets.items()}
    assert a.device.type == "cpu" and a.dtype == torch.float32 and len(a) == 6 and a.shape[1:] == data.shape
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert torch.isfinite(a).all()
    # the GAN's own generate: live weights, unseeded calls differ, the given net is the one that runs
    live = gan.generate(6, rng=5, data=data, **inputs)
    assert live.shape == a.shape and not torch.equal(live.cpu(), a)
    assert not torch.equal(gan.generate(6, data=data, **inputs), gan.generate(6, data=data, **inputs))
    assert torch.equal(gan.generate(6, rng=5, net=trainer.sampling_nets(), data=data, **inputs).cpu(), a)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(family, tmp_path):
    trainer = trainer_for(family, 30, ckpt=tmp_path)
    step = trainer.gan.train_step

    def exploding(ctx):
        metrics = step(ctx)
        if ctx.step >= 9:
            metrics["loss_G"] = torch.tensor(float("inf"))
        return metrics

    trainer.gan.train_step = exploding
    with pytest.raises(NonFiniteLossError, match=r"loss_G became inf at step 10.*last good checkpoint \(step 8\)"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 8


def test_ema_averages_and_follows_the_generators(family):
    trainer = trainer_for(family, 10)
    trainer.fit()
    names = trainer.gan.generator_names
    assert set(trainer.ema.nets) == set(names)
    for name in names:
        live = list(trainer.gan.nets[name].parameters())
        avg = list(trainer.ema[name].parameters())
        assert len(live) == len(avg) and not all(torch.equal(a, b) for a, b in zip(live, avg))
        assert not any(p.requires_grad for p in avg)
    # the dashboard shows any family, with or without z
    board = Dashboard(interactive=False, lesson="contract")
    board.on_fit_start(trainer)
    assert board.samples_figure(trainer) is not None
