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
                              DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,
                              PatchDiscriminator, ProDiscriminator, ProGenerator, ResnetGenerator, StyleDiscriminator,
                              StyleGenerator)
from gancourse.train import (AdaptiveAugment, AdversarialGAN, CycleGAN, NonFiniteLossError, Pix2Pix, ProGAN, StyleGAN,
                             Trainer, load_checkpoint)
from gancourse.widgets import Dashboard


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


def cyclegan_without_z():
    """Two generators (EMA of both), two discriminators, image pools and a decaying lr as family state."""
    G = lambda: ResnetGenerator(width=4, n_down=2, n_blocks=1)
    D = lambda: PatchDiscriminator(width=4, n_layers=1)
    return CycleGAN(G(), G(), D(), D(), pool_size=8), load("glyphs", size=16, limit=256), {"direction": "B2A"}


def pix2pix_paired():
    gan = Pix2Pix(ResnetGenerator(width=4, n_blocks=1), PatchDiscriminator(6, width=4, n_layers=1))
    return gan, load("glyphs", size=16, limit=256, paired=True), {}


def progan_growing():
    """Stage and alpha as buffers; at step 6 (the interrupt) the run is in the middle of the 16x16 fade-in."""
    G = ProGenerator(z_dim=8, final_size=16, channels=1, width=8, max_channels=16)
    D = ProDiscriminator(final_size=16, channels=1, width=8, max_channels=16)
    return ProGAN(G, D, phase_images=28), _digits(), {}


def stylegan_mixing_ada():
    """Style mixing, lazy R1 and path length every 2 steps; ADA's p, its tally and the path-length mean as family
    state; sampling with truncation and a crossover."""
    G = StyleGenerator(z_dim=8, w_dim=8, final_size=8, width=4, max_channels=8, mapping_layers=2, fused=False)
    D = StyleDiscriminator(final_size=8, width=4, max_channels=8)
    gan = StyleGAN(G, D, r1=1.0, r1_every=2, pl_every=2, ada=AdaptiveAugment(speed=200, every=2, p=0.2))
    return gan, load("faces", size=8, limit=256), {"psi": 0.7, "crossover": 2}


FAMILIES = {f.__name__: f for f in (unconditional_dcgan, conditional_projection_hinge, wgan_gp_critic, mlp_lazy_r1,
                                    cyclegan_without_z, pix2pix_paired, progan_growing, stylegan_mixing_ada)}


def build(family, seed=0):
    torch.manual_seed(seed)
    return FAMILIES[family]()


def trainer_for(family, steps, ckpt=None, seed_init=0, **kw):
    gan, data, _ = build(family, seed_init)
    return Trainer(gan, data, steps=steps, batch_size=16, seed=1, log_every=2, checkpoint_dir=ckpt,
                   checkpoint_every=4, ema=0.9, progress=False, verbose=False, **kw)


def _same(a, b) -> bool:
    """Equal family state: nested dicts and lists of tensors and plain values."""
    if torch.is_tensor(a):
        return torch.is_tensor(b) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


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
    assert _same(extra, loaded)
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
