"""The shared training loop: budgets, bit-for-bit resume, interrupts, the non-finite guard, EMA."""
import copy
import os
import signal

import pytest
import torch

from gancourse.data import load
from gancourse.models import MLPDiscriminator, MLPGenerator
from gancourse.train import CheckpointError, ClassicGAN, NonFiniteLossError, Trainer, load_checkpoint


def make_gan(seed=0, **kw):
    torch.manual_seed(seed)
    return ClassicGAN(MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32), **kw)


@pytest.fixture(scope="module")
def ring():
    return load("ring8", n=4000)


def params(gan):
    return [p.detach().clone() for net in gan.nets.values() for p in net.parameters()]


def run(ring, steps, ckpt=None, resume=False, gan=None, **kw):
    gan = gan or make_gan()
    trainer = Trainer(gan, ring, steps=steps, batch_size=32, seed=1, log_every=5, checkpoint_dir=ckpt,
                      checkpoint_every=10, progress=False, verbose=False, **kw)
    trainer.fit(resume=resume)
    return trainer


def test_resume_is_bit_for_bit(ring, tmp_path):
    whole = run(ring, 40)
    run(ring, 20, ckpt=tmp_path)  # first half, then a fresh process-like Trainer resumes it
    resumed = run(ring, 40, ckpt=tmp_path, resume=True, gan=make_gan(seed=123))  # other init: must be overwritten
    assert resumed.step == 40
    for a, b in zip(params(whole.gan), params(resumed.gan)):
        assert torch.equal(a, b)
    untimed = lambda t: [{k: v for k, v in r.items() if k != "time"} for r in t.history.records]
    assert untimed(whole) == untimed(resumed)  # history before and after the resume
    # the optimiser state came back too: Adam's moments are equal
    sa, sb = whole.gan.opts["G"].state_dict()["state"], resumed.gan.opts["G"].state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_interrupt_saves_and_resume_finishes_the_same(ring, tmp_path, capsys):
    class Interrupt:
        def on_step_end(self, trainer, step, metrics):
            if step == 15:
                os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's "interrupt kernel" sends

    t = run(ring, 40, ckpt=tmp_path, callbacks=[Interrupt()])
    assert t.history.interrupted and t.step == 15
    assert "interrupted at step 15" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 15
    resumed = run(ring, 40, ckpt=tmp_path, resume=True)
    whole = run(ring, 40)
    assert all(torch.equal(a, b) for a, b in zip(params(whole.gan), params(resumed.gan)))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


class ExplodingGAN(ClassicGAN):
    def train_step(self, ctx):
        metrics = super().train_step(ctx)
        if ctx.step >= 24:
            metrics["loss_D"] = torch.tensor(float("nan"))
        return metrics


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(ring, tmp_path):
    gan = ExplodingGAN(MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32))
    with pytest.raises(NonFiniteLossError) as err:
        run(ring, 100, ckpt=tmp_path, gan=gan)
    message = str(err.value)
    assert "loss_D became nan at step 25" in message and "step 20" in message
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 20


def test_corrupt_checkpoint_has_a_clear_error(ring, tmp_path):
    run(ring, 10, ckpt=tmp_path)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:100])  # truncated, as after a crash mid-copy
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        run(ring, 20, ckpt=tmp_path, resume=True)
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="Delete"):
        load_checkpoint(path)


def test_atomic_write_leaves_no_temporary_files(ring, tmp_path):
    run(ring, 30, ckpt=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_time_budget_stops(ring):
    t = Trainer(make_gan(), ring, seconds=0.5, batch_size=16, progress=False, verbose=False)
    t.fit()
    assert t.step > 0 and t.elapsed < 5


def test_budget_and_arguments_are_checked(ring):
    with pytest.raises(ValueError, match="budget"):
        Trainer(make_gan(), ring)
    with pytest.raises(ValueError, match="steps"):
        Trainer(make_gan(), ring, steps=0)


def test_ema_and_sampling_do_not_disturb_training(ring):
    class Peek:
        def on_step_end(self, trainer, step, metrics):
            trainer.sample(16)  # a dashboard looking at samples must not change the run

    plain, peeked = run(ring, 20), run(ring, 20, callbacks=[Peek()])
    assert all(torch.equal(a, b) for a, b in zip(params(plain.gan), params(peeked.gan)))
    ema = run(ring, 20, ema=0.9)
    assert ema.ema is not None
    assert not torch.equal(ema.sample(8), ema.gan.generate(8, rng=torch.Generator().manual_seed(0)))
    assert torch.equal(ema.sample(8), ema.sample(8))  # same seed, same z


def test_history_records_standard_metrics(ring):
    t = run(ring, 20)
    assert [r["step"] for r in t.history.records] == [5, 10, 15, 20]
    assert {"loss_D", "loss_G", "D_real", "D_fake"} <= set(t.history.keys())
    steps, values = t.history.series("D_real")
    assert steps == [5, 10, 15, 20] and all(0 < v < 1 for v in values)


def test_resume_with_another_kind_of_gan_is_refused(ring, tmp_path):
    run(ring, 10, ckpt=tmp_path)
    with pytest.raises(ValueError, match="same kind of GAN"):
        run(ring, 20, ckpt=tmp_path, resume=True, gan=ExplodingGAN(
            MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32)))


def test_generator_step_leaves_d_without_gradients_and_frozen_layers_frozen(ring):
    gan = make_gan()
    gan.nets["D"].net[1].weight.requires_grad_(False)  # a layer the user froze on purpose
    run(ring, 3, gan=gan)
    assert all(p.grad is None or p.grad.abs().sum() > 0 for p in gan.nets["G"].parameters())
    assert not gan.nets["D"].net[1].weight.requires_grad
    assert all(p.requires_grad for name, p in gan.nets["D"].named_parameters() if name != "net.1.weight")


def test_channels_last_on_cpu_for_images_and_caller_data_untouched():
    from gancourse.models.dcgan import DCGANDiscriminator, DCGANGenerator

    data = load("digits", size=16)
    torch.manual_seed(0)
    gan = ClassicGAN(DCGANGenerator(z_dim=8, image_size=16, channels=1, width=8),
                     DCGANDiscriminator(image_size=16, channels=1, width=8))
    t = Trainer(gan, data, steps=2, batch_size=8, progress=False, verbose=False)
    assert t.channels_last
    weights = [m.weight for m in gan.nets["D"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights if w.shape[-1] > 1)
    t.fit()
    assert t.step == 2 and data.x.is_contiguous()  # the caller's tensor keeps its layout
    off = Trainer(gan, data, steps=1, batch_size=8, progress=False, verbose=False, channels_last=False)
    assert not off.channels_last


def _dcgan_with_ema(steps, tmp_path=None, resume=False):
    from gancourse.models import DCGANDiscriminator, DCGANGenerator
    torch.manual_seed(0)
    gan = ClassicGAN(DCGANGenerator(z_dim=8, image_size=16, width=8), DCGANDiscriminator(image_size=16, width=8))
    trainer = Trainer(gan, load("digits", size=16), steps=steps, batch_size=32, seed=0, ema=0.9,
                      checkpoint_dir=tmp_path, progress=False, verbose=False)
    trainer.fit(resume=resume)
    return trainer


def test_ema_generator_samples_the_same_in_eval_mode(tmp_path):
    """The EMA copy's BatchNorm statistics are its own after fit, so eval mode (fixed statistics, what
    the explorers use) draws what train mode (statistics of a large batch) draws."""
    from gancourse.train import standing_statistics

    trainer = _dcgan_with_ema(60, tmp_path)
    net = trainer.ema.module
    measured = [b.clone() for b in net.buffers()]  # before train mode below updates them again
    trainer.sample(64)  # looking at samples leaves the statistics as they are
    assert all(torch.equal(a, b) for a, b in zip(measured, net.buffers()))
    z = torch.randn(512, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        batch_stats = net.train()(z)
        fixed_stats = net.eval()(z)
    net.train()
    assert (batch_stats - fixed_stats).abs().mean() < 0.05
    # without the re-measurement the copy would keep the statistics it was made with (step 0's)
    stale = copy.deepcopy(net)
    for m in stale.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
    with torch.no_grad():
        off = (stale.eval()(z) - batch_stats).abs().mean()
    assert off > 3 * (batch_stats - fixed_stats).abs().mean()
    # the checkpoint holds the fresh statistics, and a loaded trainer re-measures them identically
    loaded = Trainer(_dcgan_with_ema(1).gan, load("digits", size=16), steps=60, ema=0.9, verbose=False)
    loaded.load(tmp_path / "checkpoint.pt")
    for a, b in zip(loaded.ema.module.buffers(), measured):
        assert torch.equal(a, b)
    assert standing_statistics(trainer.gan, torch.nn.Linear(2, 2)) == 0  # nothing to do without BatchNorm
