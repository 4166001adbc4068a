"""The one adversarial step (AdversarialGAN): every objective, conditioning, n_critic and regulariser,
and how they compose. Losses on their own are in test_wgan.py and test_losses_metrics.py."""
import dataclasses
import math

import pytest
import torch

from gancourse import losses
from gancourse.data import load
from gancourse.models import (ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, DCGANCritic,
                              DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator)
from gancourse.train import AdversarialGAN, Precision, StepContext, Trainer

OBJECTIVE_NAMES = tuple(losses.OBJECTIVES)
MODES = ("concat", "projection")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ring():
    return load("ring8", n=4000)


@pytest.fixture(scope="module")
def digits32():
    return load("digits", size=32)


def make_gan(seed=0, **kw):
    torch.manual_seed(seed)
    return AdversarialGAN(MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32), **kw)


def ctx_for(data, batch=16, step=0, dtype=None):
    return StepContext(data, batch, step, torch.device("cpu"), Precision("cpu", dtype))


# -- objectives through the one step --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_every_objective_trains_with_finite_metrics(ring, name):
    gan = make_gan(objective=name)
    t = Trainer(gan, ring, steps=3, batch_size=64, log_every=1, progress=False, verbose=False)
    t.fit()
    assert len(t.history) == 3
    keys = {"loss_D", "loss_G", "W1", "D_real", "D_fake"} | ({"GP"} if name == "wgan-gp" else set())
    assert set(t.history.keys()) == keys
    assert all(math.isfinite(r[k]) for r in t.history.records for k in keys)
    if losses.objective(name).probabilities:  # D outputs logits there: the plotted D outputs are probabilities
        assert all(0 <= r["D_real"] <= 1 for r in t.history.records)
    D = gan.nets["D"]
    assert hasattr(D.net[1], "parametrizations") == (name == "spectral-norm")
    optimizer = torch.optim.RMSprop if name == "wgan-clip" else torch.optim.Adam
    assert all(isinstance(o, optimizer) for o in gan.opts.values())


@pytest.mark.parametrize("name, n_critic, expected", [("wgan-gp", None, 5), ("wgan-clip", None, 5),
                                                       ("hinge", None, 1), ("wgan-gp", 2, 2)])
def test_critic_steps_per_generator_step(ring, name, n_critic, expected):
    gan = make_gan(objective=name, n_critic=n_critic)
    counts = {"D": 0, "G": 0}
    for key, opt in gan.opts.items():
        opt.register_step_post_hook(lambda opt, args, kwargs, key=key: counts.__setitem__(key, counts[key] + 1))
    Trainer(gan, ring, steps=3, batch_size=16, progress=False, verbose=False).fit()
    assert counts == {"D": 3 * expected, "G": 3}


def test_each_critic_step_sees_fresh_real_data(ring):
    class Counting:
        def __init__(self, data):
            self.data, self.calls = data, 0

        def sample(self, n):
            self.calls += 1
            return self.data.sample(n)

    data = Counting(ring)
    make_gan(objective="wgan-gp").train_step(ctx_for(data))
    assert data.calls == 5


def test_weight_clipping_keeps_every_critic_weight_in_bounds(ring):
    gan = make_gan(objective="wgan-clip", lr=1e-2)  # a large lr pushes weights to the bound at once
    Trainer(gan, ring, steps=3, batch_size=32, progress=False, verbose=False).fit()
    weights = torch.cat([p.detach().flatten() for p in gan.nets["D"].parameters()])
    assert weights.abs().max() <= 0.01
    assert (weights.abs() == 0.01).float().mean() > 0.1  # they pile up at +-c
    unclipped = make_gan(objective="wgan-clip", clip=0)
    assert unclipped.clip is None


def test_options_override_the_objective_recipe():
    gan = make_gan(objective="hinge", gp_weight=5.0, lr=1e-3, lr_g=3e-4, betas=(0.0, 0.99), n_critic=2)
    assert gan.gp_weight == 5.0 and gan.n_critic == 2
    assert gan.opts["D"].param_groups[0]["lr"] == 1e-3 and gan.opts["G"].param_groups[0]["lr"] == 3e-4
    assert gan.opts["D"].param_groups[0]["betas"] == (0.0, 0.99)
    assert make_gan(objective="wgan-gp", gp_weight=0).gp_weight == 0
    assert make_gan(objective="wgan-gp").gp_weight == 10.0 and make_gan(objective="lsgan").gp_weight == 0
    custom = dataclasses.replace(losses.objective("wgan-gp"), name="mine", n_critic=3)
    assert make_gan(objective=custom).n_critic == 3
    for bad in ({"n_critic": 0}, {"gp_weight": -1.0}, {"drift": -1.0}, {"clip": -0.1}):
        with pytest.raises(ValueError):
            make_gan(**bad)


def test_generator_step_leaves_the_critic_alone(ring):
    gan = make_gan(objective="wgan-gp", drift=1e-3)
    D = gan.nets["D"]
    after_critic = {}
    gan.opts["D"].register_step_post_hook(lambda *a: after_critic.update(
        grads=[p.grad.clone() for p in D.parameters()], weights=[p.detach().clone() for p in D.parameters()]))
    metrics = gan.train_step(ctx_for(ring))
    assert all(torch.equal(a, p.grad) for a, p in zip(after_critic["grads"], D.parameters()))
    assert all(torch.equal(a, p) for a, p in zip(after_critic["weights"], D.parameters()))
    assert all(p.requires_grad for p in D.parameters())
    assert metrics["GP"] > 0 and not metrics["W1"].requires_grad


def test_gradient_penalty_runs_in_fp32_outside_autocast(ring):
    gan = make_gan(objective="wgan-gp", n_critic=2)
    calls = []
    gan.nets["D"].register_forward_pre_hook(
        lambda m, args: calls.append((args[0].requires_grad, args[0].dtype, torch.is_autocast_enabled("cpu"))))
    ctx = ctx_for(ring, dtype=torch.bfloat16)
    metrics = gan.train_step(ctx)
    penalty_calls = [c for c in calls if c[0] and not c[2]]
    assert penalty_calls == [(True, torch.float32, False)] * 2  # one x_hat batch per critic step, in fp32
    assert sum(c[2] for c in calls) == 2 * 2 + 1  # real and fake per critic step, and G's step, in autocast
    assert all(torch.isfinite(v) for v in metrics.values())


def test_wgan_gp_on_images_with_the_dcgan_critic():
    data = load("digits", size=16)
    torch.manual_seed(0)
    for name, norm in (("wgan-gp", "layer"), ("spectral-norm", "none")):
        gan = AdversarialGAN(DCGANGenerator(z_dim=8, image_size=16, width=8),
                             DCGANCritic(image_size=16, width=8, norm=norm), objective=name, n_critic=2)
        t = Trainer(gan, data, steps=2, batch_size=8, log_every=1, progress=False, verbose=False)
        t.fit()
        assert t.step == 2 and all(math.isfinite(v) for v in t.history.records[-1].values())
        assert t.sample(4).shape == (4, 1, 16, 16)


# -- DCGAN and conditional networks through the Trainer -----------------------------------------------------------------
def _finite_metrics(trainer):
    records = trainer.history.records
    assert len(records) == 5
    for key in ("loss_D", "loss_G", "D_real", "D_fake"):
        values = [r[key] for r in records]
        assert all(math.isfinite(v) for v in values), (key, values)
    assert all(0 <= r["D_real"] <= 1 and 0 <= r["D_fake"] <= 1 for r in records)


def test_classic_gan_with_dcgan_nets_trains(digits32):
    torch.manual_seed(0)
    gan = AdversarialGAN(DCGANGenerator(z_dim=16, image_size=32, width=8), DCGANDiscriminator(image_size=32, width=8))
    before = [p.detach().clone() for p in gan.nets["G"].parameters()]
    trainer = Trainer(gan, digits32, steps=5, batch_size=16, seed=0, log_every=1, progress=False, verbose=False)
    trainer.fit()
    _finite_metrics(trainer)
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.nets["G"].parameters()))
    assert trainer.sample(6).shape == (6, 1, 32, 32)


@pytest.mark.parametrize("mode", MODES)
def test_conditional_gan_trains_and_samples_by_class(digits32, mode):
    torch.manual_seed(0)
    G = ConditionalDCGANGenerator(z_dim=16, num_classes=10, image_size=32, width=8)
    D = ConditionalDCGANDiscriminator(num_classes=10, image_size=32, width=8, mode=mode)
    gan = AdversarialGAN(G, D)
    assert gan.conditional and gan.num_classes == 10
    trainer = Trainer(gan, digits32, steps=5, batch_size=16, seed=0, log_every=1, ema=0.9,
                      progress=False, verbose=False)
    trainer.fit()
    _finite_metrics(trainer)
    assert trainer.sample(20).shape == (20, 1, 32, 32)  # through the EMA copy of G

    default = gan.generate(20, rng=3)
    cycled = gan.generate(20, rng=3, labels=torch.arange(20) % 10)
    assert torch.equal(default, cycled)  # labels cycle 0..9 when none are given
    sevens = trainer.sample(4, seed=3, labels=7)
    assert sevens.shape == (4, 1, 32, 32)
    assert torch.equal(sevens, trainer.sample(4, seed=3, labels=torch.full((4,), 7)))
    with pytest.raises(ValueError, match="0..9"):
        trainer.sample(2, labels=10)
    with pytest.raises(ValueError, match="not conditional"):
        AdversarialGAN(DCGANGenerator(z_dim=8, width=8), DCGANDiscriminator(width=8)).generate(2, labels=1)


def test_conditional_gan_is_repeatable(digits32):
    def run():
        torch.manual_seed(0)
        gan = AdversarialGAN(ConditionalDCGANGenerator(z_dim=8, num_classes=10, width=8),
                             ConditionalDCGANDiscriminator(num_classes=10, width=8))
        Trainer(gan, digits32, steps=3, batch_size=8, seed=1, progress=False, verbose=False).fit()
        return [p.detach().clone() for p in gan.nets["G"].parameters()]
    assert all(torch.equal(a, b) for a, b in zip(run(), run()))


def test_conditional_gan_checks_the_data(digits32):
    from gancourse.data import InMemoryData
    gan = AdversarialGAN(ConditionalDCGANGenerator(z_dim=8, num_classes=3, width=8),
                         ConditionalDCGANDiscriminator(num_classes=3, width=8))
    with pytest.raises(ValueError, match="10 classes.*built for 3"):
        Trainer(gan, digits32, steps=1, batch_size=4, progress=False, verbose=False).fit()
    unlabelled = InMemoryData(digits32.x[:20], name="unlabelled", kind="images")
    with pytest.raises(ValueError, match="no labels"):
        Trainer(gan, unlabelled, steps=1, batch_size=4, progress=False, verbose=False).fit()


# -- objective x conditioning x regularisers compose -----------------------------------------------
@pytest.mark.parametrize("objective", ["hinge", "wgan-gp", "lsgan", "spectral-norm"])
@pytest.mark.parametrize("mode", MODES)
def test_every_objective_composes_with_every_conditional_discriminator(objective, mode):
    """SNGAN's pairing (hinge + projection) and a conditional WGAN-GP need no class of their own."""
    data = load("digits", size=16, limit=200)
    torch.manual_seed(0)
    gan = AdversarialGAN(ConditionalDCGANGenerator(z_dim=8, num_classes=10, image_size=16, width=8),
                         ConditionalDCGANDiscriminator(num_classes=10, image_size=16, width=8, mode=mode),
                         objective=objective, n_critic=2)
    seen = []
    gan.nets["D"].register_forward_pre_hook(lambda m, args: seen.append(args[1].clone()))
    t = Trainer(gan, data, steps=2, batch_size=8, log_every=1, progress=False, verbose=False)
    t.fit()
    assert all(math.isfinite(v) for r in t.history.records for v in r.values())
    assert seen and all(y.dtype == torch.long and len(y) == 8 for y in seen)  # D always got labels
    if objective == "wgan-gp":  # the penalty's segment joins a real and a fake image of the same class
        assert "GP" in t.history.keys()
    assert t.sample(10, labels=4).shape == (10, 1, 16, 16)


def test_conditional_is_worked_out_from_the_networks_and_mismatches_are_named():
    G = ConditionalDCGANGenerator(z_dim=8, num_classes=10, image_size=16, width=8)
    with pytest.raises(ValueError, match="same num_classes.*G: 10, D: None"):
        AdversarialGAN(G, DCGANDiscriminator(image_size=16, width=8))
    with pytest.raises(ValueError, match="G: 10, D: 3"):
        AdversarialGAN(G, ConditionalDCGANDiscriminator(num_classes=3, image_size=16, width=8))
    assert not make_gan().conditional and make_gan().num_classes is None
    with pytest.raises(ValueError, match="same num_classes"):
        make_gan(conditional=True)


def test_r1_penalises_the_gradient_on_real_data_only(ring):
    D = MLPDiscriminator((2,), hidden=16)
    x = ring.sample(32)
    value = losses.r1_penalty(D, x, weight=10.0)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(xg).sum(), xg)
    assert value.item() == pytest.approx(5.0 * grad.pow(2).sum(dim=1).mean().item(), rel=1e-5)
    value.backward()
    assert all(p.grad is not None for name, p in D.named_parameters() if name.endswith("weight"))  # it trains D


def test_lazy_r1_is_a_separate_d_step_every_r1_every_steps(ring):
    gan = make_gan(r1=1.0, r1_every=4)
    d_steps = []
    gan.opts["D"].register_step_post_hook(lambda *a: d_steps.append(1))
    t = Trainer(gan, ring, steps=8, batch_size=16, log_every=1, progress=False, verbose=False)
    t.fit()
    assert len(d_steps) == 8 + 2  # one D step per step, plus R1 at steps 0 and 4
    r1_steps = [r["step"] for r in t.history.records if "R1" in r]
    assert r1_steps == [1, 5]
    every_step = make_gan(r1=1.0)  # r1_every=1: inside D's loss, no extra step
    calls = []
    every_step.opts["D"].register_step_post_hook(lambda *a: calls.append(1))
    metrics = every_step.train_step(ctx_for(ring))
    assert len(calls) == 1 and metrics["R1"] > 0


def test_drift_term_is_added_to_the_critic_loss(ring):
    torch.manual_seed(0)
    plain, drifting = make_gan(objective="wgan-gp", n_critic=1), make_gan(objective="wgan-gp", n_critic=1, drift=10.0)
    for gan in (plain, drifting):
        torch.manual_seed(1)
        gan.train_step(ctx_for(ring))
    moved = [not torch.equal(a, b) for a, b in zip(plain.nets["D"].parameters(), drifting.nets["D"].parameters())]
    assert any(moved)


def test_custom_losses_replace_the_objectives(ring):
    calls = []

    def my_d_loss(real, fake):
        calls.append("d")
        return losses.discriminator_loss(real, fake)

    def my_g_loss(fake):
        calls.append("g")
        return losses.generator_loss_nonsaturating(fake)

    gan = make_gan(d_loss=my_d_loss, g_loss=my_g_loss)
    gan.train_step(ctx_for(ring))
    assert calls == ["d", "g"] and gan.objective.d_loss is my_d_loss
    assert make_gan(g_loss="saturating").objective.g_loss is losses.generator_loss_saturating


def test_the_step_matches_goodfellow_algorithm_1_written_out(ring):
    """The one step, for the non-saturating objective, is Algorithm 1 with k = 1 written by hand."""
    gan = make_gan(seed=4)
    G, D = [m for m in (gan.nets["G"], gan.nets["D"])]
    import copy
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    oG = torch.optim.Adam(G2.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D2.parameters(), lr=2e-4, betas=(0.5, 0.999))
    torch.manual_seed(9)
    gan.train_step(ctx_for(ring))
    torch.manual_seed(9)
    real, z = ring.sample(16), torch.randn(16, 4)
    loss_d = losses.discriminator_loss(D2(real), D2(G2(z).detach()))
    oD.zero_grad(), loss_d.backward(), oD.step()
    loss_g = losses.generator_loss_nonsaturating(D2(G2(torch.randn(16, 4))))
    oG.zero_grad(), loss_g.backward(), oG.step()
    for a, b in zip([*G.parameters(), *D.parameters()], [*G2.parameters(), *D2.parameters()]):
        assert torch.allclose(a, b, atol=1e-7)
