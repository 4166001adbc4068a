"""The Trainer itself: budgets, checkpoint files, precision, EMA options, schedules. What every family must
keep (resume, round trip, sampling, the non-finite guard) is in test_family_contract.py."""
import math

import pytest
import torch

from gancourse.data import load
from gancourse.models import MLPDiscriminator, MLPGenerator
from gancourse.train import AdversarialGAN, CheckpointError, Trainer, load_checkpoint


def make_gan(seed=0, **kw):
    torch.manual_seed(seed)
    return AdversarialGAN(MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32), **kw)


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


class OtherGAN(AdversarialGAN):
    """Another family with the same networks."""


def test_resume_with_another_kind_of_gan_is_refused(ring, tmp_path):
    run(ring, 10, ckpt=tmp_path)
    with pytest.raises(ValueError, match="same kind of GAN"):
        run(ring, 20, ckpt=tmp_path, resume=True, gan=OtherGAN(
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
    gan = AdversarialGAN(DCGANGenerator(z_dim=8, image_size=16, channels=1, width=8),
                     DCGANDiscriminator(image_size=16, channels=1, width=8))
    t = Trainer(gan, data, steps=2, batch_size=8, progress=False, verbose=False)
    assert t.channels_last
    weights = [m.weight for m in gan.nets["D"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights if w.shape[-1] > 1)
    t.fit()
    assert t.step == 2 and data.x.is_contiguous()  # the caller's tensor keeps its layout
    off = Trainer(gan, data, steps=1, batch_size=8, progress=False, verbose=False, channels_last=False)
    assert not off.channels_last




# -- precision -------------------------------------------------------------------------------------
@pytest.mark.parametrize("gpu, capability, expected", [("Tesla T4", (7, 5), torch.float16),
                                                       ("Tesla V100", (7, 0), torch.float16),
                                                       ("A100", (8, 0), torch.bfloat16),
                                                       ("H100", (9, 0), torch.bfloat16)])
def test_cuda_gets_native_bf16_or_else_fp16_with_loss_scaling(monkeypatch, gpu, capability, expected):
    from gancourse.train import precision

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    # is_bf16_supported() says True on a T4 too (emulation); the choice must not listen to it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    cuda = torch.device("cuda")
    for images in (True, False):
        assert precision.choose_dtype(cuda, None, images) is expected
    assert precision.choose_dtype(cuda, False, True) is None
    assert precision.Precision("cuda", expected).loss_scaling is (expected is torch.float16)


@pytest.mark.parametrize("native", [True, False])
def test_cpu_gets_bf16_for_images_only_where_it_is_native(monkeypatch, native):
    from gancourse.train import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert precision.choose_dtype(cpu, None, images=True) is (torch.bfloat16 if native else None)
    assert precision.choose_dtype(cpu, None, images=False) is None  # small MLPs gain nothing
    assert precision.choose_dtype(cpu, "fp16", images=False) is torch.float16  # asked for: given
    assert precision.choose_dtype(torch.device("mps"), None, images=True) is None
    with pytest.raises(ValueError, match="'bf16' or 'fp16'"):
        precision.choose_dtype(cpu, "half", images=True)


def test_fp16_with_loss_scaling_survives_n_critic_and_matches_fp32(one_thread):
    """Five critic steps of one optimiser per iteration: one GradScaler per optimiser, updated after every step."""
    from gancourse.models import DCGANCritic, DCGANGenerator

    data = load("digits", size=16, limit=256)

    def train(amp):
        torch.manual_seed(0)
        gan = AdversarialGAN(DCGANGenerator(z_dim=8, image_size=16, width=8), DCGANCritic(image_size=16, width=8),
                             objective="wgan-gp", n_critic=5, lr=1e-4)
        trainer = Trainer(gan, data, steps=12, batch_size=16, seed=0, amp=amp, log_every=1, progress=False,
                          verbose=False, channels_last=False)
        trainer.fit()
        return trainer

    fp16, fp32 = train("fp16"), train(False)
    assert fp16.precision.loss_scaling and set(fp16.precision.scalers) == {"G", "D"}
    assert fp32.precision.dtype is None and not fp32.precision.scalers
    for key in ("loss_D", "W1"):
        a, b = fp16.history.series(key)[1], fp32.history.series(key)[1]
        assert all(math.isfinite(v) for v in a)
        # fp16 starts at a loss scale of 2^16, overflows and skips a few critic steps while the scale
        # falls (to 2^12 here); after that it follows fp32 a constant few hundredths behind.
        assert max(abs(x - y) for x, y in zip(a, b)) < 0.1 + 0.1 * max(abs(y) for y in b)
    assert fp16.history.series("W1")[1][-1] > 0.8 * fp32.history.series("W1")[1][-1] > 0.5
    for p, q in zip(fp16.gan.nets["G"].parameters(), fp32.gan.nets["G"].parameters()):
        assert torch.allclose(p, q, atol=2e-3)


def test_loss_scales_are_checkpointed(tmp_path, one_thread):
    gan = make_gan()
    trainer = Trainer(gan, load("ring8", n=500), steps=4, batch_size=16, amp="fp16", checkpoint_dir=tmp_path,
                      progress=False, verbose=False)
    trainer.fit()
    scales = {k: s.get_scale() for k, s in trainer.precision.scalers.items()}
    state = load_checkpoint(tmp_path / "checkpoint.pt")["precision"]
    assert {k: v["scale"] for k, v in state.items()} == scales


# -- schedules and state ---------------------------------------------------------------------------
def test_the_step_sees_the_budget_and_schedulers_are_stepped_and_saved(ring, tmp_path):
    seen = []

    class Decaying(AdversarialGAN):
        def schedule(self, ctx):
            seen.append((ctx.step, ctx.total_steps, ctx.fraction))
            for group in self.opts["D"].param_groups:  # a linear decay written against the budget
                group["lr"] = 1e-3 * (1 - ctx.fraction)

    gan = Decaying(MLPGenerator(z_dim=4, out_shape=(2,), hidden=32), MLPDiscriminator((2,), hidden=32))
    gan.schedulers["G"] = torch.optim.lr_scheduler.StepLR(gan.opts["G"], step_size=5, gamma=0.5)
    run(ring, 20, ckpt=tmp_path, gan=gan)
    assert seen[0] == (0, 20, 0.0) and seen[10] == (10, 20, 0.5) and seen[-1] == (19, 20, 0.95)
    assert gan.opts["G"].param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5 ** 4)
    assert gan.opts["D"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.05)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["gan"]["schedulers"]["G"]
    assert saved["last_epoch"] == 20


def test_a_time_budget_gives_a_fraction_too(ring):
    from gancourse.train import StepContext

    ctx = StepContext(ring, 8, step=3, device=torch.device("cpu"), seconds=10.0, elapsed=2.5)
    assert ctx.fraction == 0.25
    assert StepContext(ring, 8, step=3, device=torch.device("cpu")).fraction == 0.0


# -- EMA ---------------------------------------------------------------------------------------------
def test_ema_half_life_in_images():
    from gancourse.train import decay_for_half_life

    beta = decay_for_half_life(10_000, 32)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    trainer = Trainer(make_gan(), load("ring8", n=500), steps=2, batch_size=32, ema_half_life=10_000,
                      progress=False, verbose=False)
    assert trainer.ema_decay == pytest.approx(beta)
    with pytest.raises(ValueError, match="not both"):
        Trainer(make_gan(), load("ring8", n=500), steps=2, ema=0.9, ema_half_life=100)


def test_ema_rampup_lets_a_short_run_forget_its_start(ring):
    from gancourse.train.ema import decay_for_half_life, ramped_decay

    # the half-life is capped by 5% of the images seen, then reaches the one asked for
    assert ramped_decay(10_000, 32, 3200, 0.05) == pytest.approx(decay_for_half_life(160, 32))
    assert ramped_decay(10_000, 32, 10**7, 0.05) == pytest.approx(decay_for_half_life(10_000, 32))
    assert ramped_decay(10_000, 32, 0, 0.05) == pytest.approx(0.5)  # never below one batch
    # 60 steps with a half-life far longer than the run: without the ramp-up the average is still
    # close to the first weights; with it, close to the last ones
    far = {}
    for rampup in (None, 0.05):
        trainer = run(ring, 60, ema_half_life=10**6, ema_rampup=rampup)
        live, average = trainer.gan.nets["G"], trainer.ema["G"]
        far[rampup] = sum((a - p).norm() for a, p in zip(average.parameters(), live.parameters())).item()
    assert far[0.05] < 0.5 * far[None], far
    with pytest.raises(ValueError, match="ema_half_life"):
        Trainer(make_gan(), ring, steps=2, ema=0.99, ema_rampup=0.05)
    with pytest.raises(ValueError, match="positive share"):
        Trainer(make_gan(), ring, steps=2, ema_half_life=100, ema_rampup=0)


def test_ema_keeps_its_average_when_a_network_is_replaced(ring):
    """A family that builds a bigger network at a growth step keeps the average of every weight that survived."""
    from gancourse.train import EMA

    gan = make_gan()
    ema = EMA(gan.nets, ["G"], decay=0.5)
    ema.update(gan.nets)
    with torch.no_grad():
        for p in gan.nets["G"].parameters():
            p.add_(1.0)
    ema.update(gan.nets)
    before = {k: v.clone() for k, v in ema["G"].named_parameters()}
    grown = MLPGenerator(z_dim=4, out_shape=(2,), hidden=32, depth=4)  # one more layer
    gan.nets["G"] = grown
    ema.follow(gan.nets)
    after = dict(ema["G"].named_parameters())
    kept = [k for k in before if k in after and before[k].shape == after[k].shape]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    assert len(after) > len(before)


def test_ema_copies_non_statistic_buffers_and_remeasures_batchnorm(one_thread):
    """Buffers such as a growth stage follow the live net; BatchNorm statistics are measured for the average."""
    from gancourse.models import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, image_size=16, width=8)
    G.register_buffer("stage", torch.tensor(0))
    gan = AdversarialGAN(G, DCGANDiscriminator(image_size=16, width=8))
    trainer = Trainer(gan, load("digits", size=16, limit=256), steps=30, batch_size=32, seed=0, ema=0.9,
                      progress=False, verbose=False)
    G.stage.fill_(2)
    trainer.fit()
    average = trainer.ema["G"]
    assert int(average.stage) == 2
    assert trainer.ema.stale
    trainer.sample(8)
    assert not trainer.ema.stale
    z = torch.randn(256, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        batch_stats = average.train()(z)
        fixed_stats = average.eval()(z)
    assert (batch_stats - fixed_stats).abs().mean() < 0.05  # eval mode draws what a large batch draws
    for m in average.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
    with torch.no_grad():
        stale = (average.eval()(z) - batch_stats).abs().mean()
    assert stale > 3 * (batch_stats - fixed_stats).abs().mean()


def test_a_checkpoint_of_the_old_format_is_refused_with_the_fix(tmp_path):
    from gancourse.train import save_atomic
    from gancourse.train.checkpoint import VERSION

    path = save_atomic({"step": 1}, tmp_path / "checkpoint.pt")
    state = torch.load(path, weights_only=False)
    state["version"] = VERSION - 1
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="older gancourse.*Delete"):
        load_checkpoint(path)


def test_the_progress_bar_in_a_notebook_is_plain_text_on_stdout(ring, monkeypatch, capsys):
    from gancourse import utils

    monkeypatch.setattr(utils, "in_notebook", lambda: True)  # a widget bar would vanish from a saved notebook
    Trainer(make_gan(), ring, steps=20, batch_size=32, progress=True, verbose=False).fit()
    out = capsys.readouterr().out
    assert "AdversarialGAN" in out and "20/20" in out


def test_torch_threads_gives_back_the_previous_number_even_after_an_error():
    import gancourse

    before = torch.get_num_threads()
    with gancourse.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"):
        with gancourse.torch_threads(1):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive int"):
        with gancourse.torch_threads(0):
            pass
