"""Lesson 07's pieces: the mapping network's slow learning rate, AdaIN, the modulated convolution in both forms,
noise, style mixing and truncation (and w_avg that only plain codes move), the lazy regularisers, ADA's
controller and augmentations, and the shipped checkpoint's checks."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from gancourse.data import load
from gancourse.models import (AdaIN, MappingNetwork, StyleDiscriminator, StyleGenerator, instance_norm,
                              modulated_conv2d, truncate, truncated_normal)
from gancourse.models.stylegan import ModulatedConv2d
from gancourse.train import AdaptiveAugment, StyleGAN, Trainer, augment, lazy_adam


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def small(final_size=16, **kw):
    G = StyleGenerator(z_dim=16, w_dim=16, final_size=final_size, width=8, max_channels=16, mapping_layers=2, **kw)
    D = StyleDiscriminator(final_size=final_size, width=8, max_channels=16)
    return G, D


# -- how a layer reads its style ------------------------------------------------------------------------
def test_modulated_conv_fused_and_unfused_agree_and_demodulation_gives_unit_std():
    torch.manual_seed(0)
    x, weight = torch.randn(8, 32, 12, 12), torch.randn(24, 32, 3, 3)
    styles = torch.rand(8, 32) * 3 + 0.1
    fused = modulated_conv2d(x, weight, styles, padding=1, fused=True)
    unfused = modulated_conv2d(x, weight, styles, padding=1, fused=False)
    assert fused.shape == (8, 24, 12, 12) and torch.allclose(fused, unfused, atol=1e-4)
    # unit-variance input: every sample's every output channel comes out near unit std, whatever its style
    per_channel = fused[:, :, 1:-1, 1:-1].std(dim=(2, 3))
    assert abs(float(per_channel.mean()) - 1) < 0.1 and float(per_channel.min()) > 0.6
    # demodulation divides each output channel by the norm of its own modulated kernel: over (C_in, k, k)
    kernels = weight.unsqueeze(0) * styles.view(8, 1, 32, 1, 1)
    norms = kernels.pow(2).sum(dim=(2, 3, 4)).sqrt()
    plain = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    assert torch.allclose(fused, plain / norms.view(8, 24, 1, 1), atol=1e-4)
    # without demodulation the style's scale passes straight through
    assert torch.allclose(modulated_conv2d(x, weight, styles * 2, padding=1, demodulate=False), 2 * plain, atol=1e-3)
    with pytest.raises(ValueError, match=r"styles must have shape \(8, 32\)"):
        modulated_conv2d(x, weight, styles[:, :16])


def test_modulated_layer_starts_as_a_plain_convolution():
    layer = ModulatedConv2d(6, 4, 3, w_dim=5, demodulate=False)
    x, w = torch.randn(3, 6, 7, 7), torch.zeros(3, 5)  # w = 0: the style is the affine map's bias, 1
    expected = torch.nn.functional.conv2d(x, layer.weight * layer.scale, padding=1)
    assert torch.allclose(layer(x, w), expected, atol=1e-5)


def test_adain_sets_each_maps_mean_and_std_from_the_style():
    torch.manual_seed(0)
    layer = AdaIN(4, w_dim=6)
    x, w = torch.randn(5, 4, 8, 8) * 3 + 2, torch.randn(5, 6)
    scale, shift = layer.affine(w).view(5, 2, 4).unbind(1)
    out = layer(x, w)
    assert torch.allclose(out.mean(dim=(2, 3)), shift, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-3)
    assert torch.allclose(instance_norm(x).std(dim=(2, 3), unbiased=False), torch.ones(5, 4), atol=1e-4)


def test_mapping_network_learns_slower_by_its_multiplier():
    """One Adam step of the same size moves the mapping's effective weights 100x less than a plain layer's."""
    torch.manual_seed(0)
    slow, fast = MappingNetwork(16, 16, layers=1, lr_multiplier=0.01), MappingNetwork(16, 16, layers=1, lr_multiplier=1.0)

    def effective(net):
        layer = net.net[1]
        return (layer.weight * layer.scale).detach().clone()

    z = torch.randn(64, 16)
    changes = []
    for net in (slow, fast):
        before = effective(net)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        net(z).pow(2).mean().backward()
        opt.step()
        changes.append(float((effective(net) - before).abs().mean()))
    assert changes[1] / changes[0] == pytest.approx(100, rel=0.05)
    # and the same function at initialisation: the multiplier only changes the step size
    assert abs(float(slow(z).detach().std()) / float(fast(z).detach().std()) - 1) < 0.3


# -- the generator: styles, mixing, truncation, noise --------------------------------------------------------
def test_generator_shapes_styles_and_noise_inputs():
    G, D = small(16)
    assert G.num_ws == 6 and G.noise_sizes() == [4, 8, 8, 16, 16]
    z = torch.randn(4, 16)
    images = G(z, noise="const")
    assert images.shape == (4, 3, 16, 16) and D(images).shape == (4,)
    assert torch.equal(G(z, noise="const"), G(z))  # noise strengths start at 0: noise changes nothing yet
    with torch.no_grad():
        for layer in G.layers:
            layer.noise.strength.fill_(0.5)
    assert torch.equal(G(z, noise="const"), G(z, noise="const"))  # stored noise: the same picture again
    assert not torch.equal(G(z), G(z))  # fresh noise every call
    changed = (G(z, noise=G.make_noise(4, torch.Generator().manual_seed(1))) - G(z, noise="const")).abs()
    assert float(changed.detach().max()) > 1e-3
    with pytest.raises(ValueError, match="one map per layer"):
        G(z, noise=G.make_noise(4)[:2])
    with pytest.raises(ValueError, match=r"z must have shape \(N, 16\)"):
        G(torch.randn(4, 8))


def test_style_mixing_takes_layers_from_the_crossover_on():
    G, _ = small(16)
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    wa, wb = G.mapping(a), G.mapping(b)
    ws = G.styles(a, mix_z=b, crossover=2)
    assert torch.equal(ws[:, :2], wa.unsqueeze(1).expand(3, 2, 16)) and torch.equal(ws[:, 2:], wb.unsqueeze(1).expand(3, 4, 16))
    assert torch.allclose(G(a, 1.0, b, 0, "const"), G(b, noise="const"), atol=1e-5)  # 0: all from the second code
    assert torch.allclose(G(a, 1.0, b, G.num_ws, "const"), G(a, noise="const"), atol=1e-5)
    for bad in (-1, 7, 2.5):
        with pytest.raises(ValueError, match=r"crossover .* an int in \[0, 6\]"):
            G.styles(a, mix_z=b, crossover=bad)
    with pytest.raises(ValueError, match="needs both mix_z"):
        G.styles(a, crossover=2)


def test_truncation_pulls_towards_w_avg_and_warns_outside_0_1():
    G, _ = small(16)
    G.w_avg.copy_(torch.randn(16))
    z = torch.randn(5, 16)
    w = G.mapping(z)
    assert torch.allclose(G.styles(z, psi=0.0), G.w_avg.expand(5, 6, 16))
    assert torch.allclose(G.styles(z, psi=0.5)[:, 0], G.w_avg + 0.5 * (w - G.w_avg), atol=1e-6)
    assert torch.equal(truncate(w, G.w_avg, 1.0), w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G.styles(z, psi=0.7)
    for psi in (1.5, -0.2):
        with pytest.warns(UserWarning, match=rf"psi={psi} lies outside \[0, 1\]: this extrapolates"):
            G.styles(z, psi=psi)


def test_truncated_normal_stays_inside_the_threshold():
    z = truncated_normal(2000, 8, 0.5, torch.Generator().manual_seed(0))
    assert float(z.abs().max()) <= 0.5 and z.shape == (2000, 8) and float(z.std()) > 0.2
    with pytest.raises(ValueError, match="positive"):
        truncated_normal(2, 2, 0.0)


def test_w_avg_moves_only_with_plain_codes_in_the_training_step():
    G, D = small(16)
    gan = StyleGAN(G, D, mixing=1.0, w_avg_beta=0.5)
    torch.manual_seed(0)
    before = G.w_avg.clone()
    gan.generate(8, rng=0, psi=0.5, crossover=2)  # looking (truncated, mixed) never moves it
    assert torch.equal(G.w_avg, before)
    gan.mixed_styles(8, "cpu", track=False)
    assert torch.equal(G.w_avg, before)
    torch.manual_seed(1)
    ws = gan.mixed_styles(8, "cpu", track=True)  # mixed for the step, but w_avg follows the first, plain codes
    torch.manual_seed(1)
    plain = G.mapping(torch.randn(8, 16))
    assert torch.allclose(G.w_avg, 0.5 * before + 0.5 * plain.mean(0), atol=1e-6)
    assert torch.allclose(ws[:, 0], plain, atol=1e-6)


# -- training: lazy regularisers, state ----------------------------------------------------------------
class _Spy:
    """A step context that records what each optimiser step was given."""

    def __init__(self, data, step, batch_size=8):
        from contextlib import nullcontext
        self.data, self.step, self.batch_size, self.calls = data, step, batch_size, []
        self.autocast = nullcontext

    def optimize(self, loss, optimizer):
        self.calls.append((optimizer, float(loss.detach())))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_r1_and_path_length_run_lazily_with_their_interval_as_weight(monkeypatch):
    G, D = small(8)
    gan = StyleGAN(G, D, r1=1.0, r1_every=16, pl_every=4)
    data = load("faces", size=8, limit=64)
    penalties = {}
    from gancourse import losses

    real_r1 = losses.r1_penalty
    monkeypatch.setattr(losses, "r1_penalty", lambda *a, **k: penalties.setdefault("R1", real_r1(*a, **k)))
    real_pl = gan.path_length_penalty
    monkeypatch.setattr(gan, "path_length_penalty", lambda *a: penalties.setdefault("PL", real_pl(*a)))
    for step, d_steps, g_steps in ((0, 2, 2), (4, 1, 2), (16, 2, 2), (5, 1, 1)):
        penalties.clear()
        ctx = _Spy(data, step)
        gan.train_step(ctx)
        assert [o is gan.opts["D"] for o, _ in ctx.calls].count(True) == d_steps
        assert [o is gan.opts["G"] for o, _ in ctx.calls].count(True) == g_steps
        if "R1" in penalties:
            assert ctx.calls[1][1] == pytest.approx(16 * float(penalties["R1"].detach()), rel=1e-5)
        if "PL" in penalties:
            assert ctx.calls[-1][1] == pytest.approx(4 * float(penalties["PL"].detach()), rel=1e-5)
    assert gan.pl_mean > 0
    # lazy steps slow the optimisers down to match (StyleGAN2's correction)
    assert gan.opts["D"].defaults["lr"] == pytest.approx(2e-3 * 16 / 17)
    assert lazy_adam(1e-3, (0.0, 0.99), 4)["betas"][1] == pytest.approx(0.99 ** 0.8)
    assert lazy_adam(1e-3, (0.5, 0.99), 0) == {"lr": 1e-3, "betas": (0.5, 0.99)}


def test_a_fixed_generator_leaves_g_and_w_avg_alone_while_d_trains():
    G, D = small(8)
    gan = StyleGAN(G, D, r1=1.0, r1_every=1, pl_every=1)
    gan.train_generator = False  # a fresh D warming up against a pretrained G
    g_before = {k: v.clone() for k, v in G.state_dict().items()}
    d_before = [p.detach().clone() for p in D.parameters()]
    ctx = _Spy(load("faces", size=8, limit=64), step=0)
    gan.train_step(ctx)
    assert all(o is gan.opts["D"] for o, _ in ctx.calls) and len(ctx.calls) == 2  # the loss and R1
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in g_before.items())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters()))
    gan.train_generator = True
    ctx = _Spy(load("faces", size=8, limit=64), step=0)
    gan.train_step(ctx)
    assert sum(o is gan.opts["G"] for o, _ in ctx.calls) == 2  # its loss and the path length


def test_stylegan_trains_and_refuses_a_checkpoint_for_another_size(tmp_path):
    G, D = small(8)
    gan = StyleGAN(G, D, r1=1.0, r1_every=2, pl_every=2, ada=AdaptiveAugment(speed=100, every=2))
    trainer = Trainer(gan, load("faces", size=8, limit=128), steps=6, batch_size=8, seed=0, progress=False, log_every=2,
                      verbose=False, checkpoint_dir=tmp_path)
    trainer.fit()
    record = trainer.history.last()
    assert {"loss_D", "loss_G", "R1", "PL", "pl_mean", "p", "r_t"} <= set(record)
    assert gan.extra_state()["ada"]["p"] == gan.p
    G16, D16 = small(16)
    other = Trainer(StyleGAN(G16, D16), load("faces", size=16, limit=64), steps=1, batch_size=8, progress=False,
                    verbose=False)
    with pytest.raises(ValueError, match=r"checkpoint is for 8x8 images, this StyleGAN for 16x16"):
        other.load(tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="same final_size"):
        StyleGAN(G16, D)


# -- ADA ------------------------------------------------------------------------------------------------
def test_ada_controller_moves_p_by_the_sign_of_d_on_reals_and_clamps():
    ada = AdaptiveAugment(target=0.6, speed=64, every=2)
    ada.observe(torch.ones(8))  # D sure of every real: r_t = 1 > 0.6
    assert ada.update(0, 8) is None and ada.p == 0
    ada.observe(torch.ones(8))
    assert ada.update(1, 8) == 1.0 and ada.p == pytest.approx(16 / 64)
    for step in range(2, 40):
        ada.observe(torch.ones(8))
        ada.update(step, 8)
    assert ada.p == 1.0  # clamped
    for step in range(40, 100):
        ada.observe(-torch.ones(8))
        ada.update(step, 8)
    assert ada.p == 0.0
    with pytest.raises(ValueError, match=r"target .* lies in \(0, 1\)"):
        AdaptiveAugment(target=1.5)


def test_augment_keeps_p0_images_moves_pixels_exactly_and_passes_gradients():
    x = load("faces", size=16, limit=32).sample(32)
    assert torch.equal(augment(x, 0.0), x)
    torch.manual_seed(0)
    out = augment(x, 1.0)
    assert out.shape == x.shape and not torch.allclose(out, x)
    x = x.clone().requires_grad_(True)
    augment(x, 0.5).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# -- measures ------------------------------------------------------------------------------------------
class _Reader:
    """A stand-in factor model: reads each factor from the mean colour of a fixed region, so its answers follow
    the pixels (coarse factors from the top-left quarter, fine ones from the bottom-right)."""

    def read(self, images):
        from gancourse.data.faces import COARSE, FINE
        top = images[:, :, :8, :8].mean(dim=(1, 2, 3))
        bottom = images[:, :, 8:, 8:].mean(dim=(1, 2, 3))
        out = {f: (top > top.median()).long() for f in COARSE}
        out.update({f: (bottom > bottom.median()).long() for f in FINE})
        return out


def test_mixing_locality_counts_which_code_each_factor_follows():
    from gancourse.metrics.styles import mixing_locality

    torch.manual_seed(0)
    G, _ = small(16)
    rows = mixing_locality(G, _Reader(), crossovers=[0, 3, 6], n=64, seed=1)
    assert [r["crossover"] for r in rows] == [0, 3, 6]
    # crossover 0: the mix is B's picture, so every factor reads as B's; 6 (= num_ws): it is A's picture
    assert rows[0]["fine_from_B"] == 1.0 and all(v["from_B"] == 1.0 for v in rows[0]["factors"].values())
    assert rows[2]["coarse_from_A"] == 1.0 and all(v["from_A"] == 1.0 for v in rows[2]["factors"].values())
    assert 0.0 <= rows[1]["both"] <= min(rows[1]["coarse_from_A"], rows[1]["fine_from_B"])


def test_path_length_noise_effect_and_activation_peaks():
    from gancourse.metrics.styles import activation_peaks, noise_effect, path_length

    torch.manual_seed(0)
    G, _ = small(16)
    features = lambda x: x.flatten(1)
    w, z = path_length(G, features, "w", n=32, seed=0), path_length(G, features, "z", n=32, seed=0)
    assert w["ppl"] > 0 and z["ppl"] > 0 and w["space"] == "w"
    assert path_length(G, features, "w", n=32, seed=0)["ppl"] == pytest.approx(w["ppl"])  # repeatable per seed
    with pytest.raises(ValueError, match="'w' or 'z'"):
        path_length(G, features, "x")
    quiet = noise_effect(G, _Reader(), n=8, draws=3)
    assert quiet["mean_change"] == 0.0 and quiet["factors_kept"] == 1.0  # strengths start at zero
    with torch.no_grad():
        G.layers[-1].noise.strength.fill_(1.0)  # only the last (finest) layer uses noise now
    loud = noise_effect(G, n=8, draws=3)
    assert loud["mean_change"] > 0 and loud["pixel_std"].shape == (16, 16)
    assert noise_effect(G, n=8, draws=3, layers=slice(0, 2))["mean_change"] == 0.0  # resampling unused noise
    for style in ("modulated", "adain"):
        G2, _ = small(16, style=style)
        peaks = activation_peaks(G2, n=4)
        assert len(peaks) == len(G2.layers) and all(1.0 <= p["peak_ratio"] <= p["max_possible"] for p in peaks)


def test_draw_samples_in_batches_gives_the_pictures_of_one_pass():
    from gancourse.metrics.styles import draw_samples

    torch.manual_seed(0)
    G, _ = small(16)
    with torch.no_grad():
        for layer in G.layers:
            layer.noise.strength.fill_(0.5)  # so that slicing the noise maps wrongly would show
    z = torch.randn(10, G.z_dim)
    noise = G.make_noise(10, torch.Generator().manual_seed(3), z.device)
    with torch.no_grad():
        whole = G.eval()(z, noise=noise).clamp(-1, 1)
        mixed = G(z, 0.7, z.flip(0), 2, noise="const").clamp(-1, 1)
    assert torch.allclose(draw_samples(G, z, noise=noise, batch_size=3), whole, atol=1e-5)
    assert torch.allclose(draw_samples(G, z, 0.7, z.flip(0), 2, noise="const", batch_size=4), mixed, atol=1e-5)


def test_truncation_sweep_scores_each_value():
    from gancourse.metrics.styles import truncation_sweep

    class _Evaluator:
        n, k = 32, 3
        real_features = torch.randn(64, 5)
        classifier = type("C", (), {"features": staticmethod(lambda x: x.flatten(1)[:, :5])})

    torch.manual_seed(0)
    G, _ = small(16)
    rows = truncation_sweep(G, _Evaluator(), [1.0, 0.0], mode="w", n=32)
    assert [r["value"] for r in rows] == [1.0, 0.0] and all({"fid", "precision", "recall"} <= set(r) for r in rows)
    assert truncation_sweep(G, _Evaluator(), [1.0], mode="z", n=32)[0]["mode"] == "z"


# -- the explorer and the shipped checkpoint ----------------------------------------------------------------
def test_style_explorer_grid_controls_and_static_picture(tmp_path, monkeypatch):
    from gancourse.widgets import StyleExplorer

    monkeypatch.setenv("GANCOURSE_RUN_DIR", str(tmp_path))
    G, D = small(16)
    with torch.no_grad():
        for layer in G.layers:
            layer.noise.strength.fill_(0.3)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    explorer = StyleExplorer(StyleGAN(G, D), interactive=False, rows=2, cols=3)
    grid = explorer.grid(crossover=G.num_ws)
    assert grid.shape == (12, 3, 16, 16)
    b_row = grid[:4]
    assert torch.allclose(grid[5:8], grid[4].expand(3, -1, -1, -1), atol=1e-5)  # crossover = num_ws: all A
    assert torch.allclose(explorer.grid(crossover=0)[5:8], b_row[1:], atol=1e-5)  # crossover 0: all B
    first = explorer.grid()
    explorer.state.new_noise()
    assert not torch.equal(explorer.grid(), first)  # another noise draw, the same codes
    with pytest.raises(ValueError, match="crossover"):
        explorer.state.set_crossover(9)
    with pytest.warns(UserWarning, match="outside"):
        explorer.state.set_psi(1.5)
    explorer.state.set_psi(0.7)
    assert explorer.show()["styles"].is_file()
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())  # looking never changes G
    with pytest.raises(TypeError, match="style-based generator"):
        StyleExplorer(torch.nn.Linear(2, 2))


def test_shipped_checkpoint_loads_checks_its_hash_and_its_size(tmp_path):
    from gancourse.pretrained import PretrainedError, load_pretrained, registry

    G, info = load_pretrained("stylegan-faces32")
    entry = registry()["stylegan-faces32"]
    assert G.final_size == 32 and not G.training and {"steps", "training_seconds", "fid", "fid_floor"} <= set(info)
    assert entry["info"]["fid"] == info["fid"]
    shipped = Path(__file__).resolve().parent.parent / "gancourse" / "pretrained" / entry["file"]
    assert shipped.stat().st_size <= 5_000_000  # the ceiling for a file inside the package
    with torch.no_grad():
        assert G(torch.randn(4, G.z_dim), noise="const").shape == (4, 3, 32, 32)
    broken = tmp_path / "broken.pt"
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken.write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match="corrupt or not the shipped"):
        load_pretrained("stylegan-faces32", path=broken)
    with pytest.raises(PretrainedError, match="is missing"):
        load_pretrained("stylegan-faces32", path=tmp_path / "nothing.pt")
    with pytest.raises(PretrainedError, match=r"draws 32x32 images, not 64x64"):
        load_pretrained("stylegan-faces32", final_size=64)
    with pytest.raises(PretrainedError, match="no shipped checkpoint named"):
        load_pretrained("biggan")


def test_orientation_model_reads_turned_faces():
    from gancourse.metrics.styles import orientation_model, turned_share

    model = orientation_model(16, limit=1000, epochs=2)
    faces = load("faces", split="test", size=16).sample(200)
    assert turned_share(faces, model) < 0.1 and turned_share(torch.rot90(faces, 1, dims=(2, 3)), model) > 0.8
