"""Judges of lesson 02 (gancourse.judging): reference answers, run in the grader's process."""
import torch
from torch import nn

from gancourse import losses
from gancourse.judging import Judge, Wrong
from gancourse.models.dcgan import DCGANDiscriminator, DCGANGenerator


def _sizes(rng):
    cases = [(4 * 2 ** j, 4, 2, 1) for j in range(4)] + [(1, 7, 1, 0)]
    for _ in range(6):
        i, k, s = (int(v) for v in torch.randint(1, 9, (3,), generator=rng))
        cases.append((i, k, s, int(torch.randint(0, k // 2 + 1, (1,), generator=rng))))
    return {"cases": cases}


def _output_size(inputs, outputs, smoke):
    for (i, k, s, p), got in zip(inputs["cases"], outputs["sizes"], strict=True):
        if got != (i - 1) * s - 2 * p + k:
            raise Wrong(f"output_size({i}, {k}, {s}, {p}) gave {got!r}, expected {(i - 1) * s - 2 * p + k}")


def _blocks(rng):
    return {"cases": [(3, 5, torch.randn(4, 3, 7, 7, generator=rng)), (8, 2, torch.randn(2, 8, 4, 4, generator=rng))]}


def _generator_block(inputs, outputs, smoke):
    for (c_in, c_out, x), got in zip(inputs["cases"], outputs["blocks"], strict=True):
        state = got["state"]
        conv = [v for v in state.values() if v.dim() == 4]
        if len(conv) != 1 or tuple(conv[0].shape) != (c_in, c_out, 4, 4):
            raise Wrong(f"generator_block({c_in}, {c_out}) should hold one ConvTranspose2d with a 4x4 kernel")
        if got["parameters"] != c_in * c_out * 16 + 2 * c_out:
            raise Wrong("generator_block has the wrong number of parameters: no bias in the convolution, "
                        "and one BatchNorm2d")
        ref = nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        ref[0].weight.data.copy_(conv[0])
        bn = {k.rsplit(".", 1)[-1]: v for k, v in state.items() if v.dim() == 1}
        ref[1].weight.data.copy_(bn["weight"])
        ref[1].bias.data.copy_(bn["bias"])
        expected = ref.train()(x)
        if not torch.is_tensor(got["out"]) or got["out"].shape != expected.shape:
            raise Wrong(f"generator_block({c_in}, {c_out}) maps {tuple(x.shape)} to the wrong shape")
        if not torch.allclose(got["out"], expected, atol=1e-4):
            raise Wrong("generator_block's output is not ConvTranspose2d(4, 2, 1) → BatchNorm2d → ReLU")


def _init_module():
    return nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 200, 3), nn.ConvTranspose2d(200, 20, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(300))


def _init_inputs(rng):
    module = _init_module()
    for p in module.parameters():
        p.data = torch.rand(p.shape, generator=rng) + 0.5
    return {"state": module.state_dict()}


def _init(inputs, outputs, smoke):
    before, after = inputs["state"], outputs["state"]
    if not all(torch.equal(before[k], after[k]) for k in ("0.weight", "0.bias")):
        raise Wrong("init_weights_ changed a Linear layer: leave layers other than convolutions and BatchNorm alone")
    for key in ("1.weight", "2.weight"):
        w = after[key]
        if abs(w.mean().item()) > 0.003 or abs(w.std().item() - 0.02) > 0.002:
            raise Wrong(f"convolution weights should be N(0, 0.02); got mean {w.mean():.4f}, std {w.std():.4f}")
    if after["1.bias"].abs().max() > 0:
        raise Wrong("convolution biases should be zero")
    w = after["3.weight"]
    if abs(w.mean().item() - 1) > 0.006 or abs(w.std().item() - 0.02) > 0.004:
        raise Wrong(f"BatchNorm weights should be N(1, 0.02); got mean {w.mean():.4f}, std {w.std():.4f}")
    if after["3.bias"].abs().max() > 0:
        raise Wrong("BatchNorm biases should be zero")


def _nets():
    return DCGANGenerator(z_dim=8, image_size=16, width=8), DCGANDiscriminator(image_size=16, width=8)


def _step_inputs(rng):
    G, D = _nets()
    return {"G": G.state_dict(), "D": D.state_dict(), "real": torch.rand(6, 1, 16, 16, generator=rng) * 2 - 1,
            "seed": int(torch.randint(1 << 30, (1,), generator=rng))}


def _reference_step(G, D, opt_D, real, z_dim):
    z = torch.randn(len(real), z_dim)
    loss = losses.discriminator_loss(D(real), D(G(z).detach()))
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return loss


def _discriminator_step(inputs, outputs, smoke):
    with torch.random.fork_rng(devices=[]):
        G, D = _nets()
        G.load_state_dict(inputs["G"])
        D.load_state_dict(inputs["D"])
        opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
        torch.manual_seed(inputs["seed"])
        expected = [_reference_step(G, D, opt, inputs["real"], 8).detach() for _ in range(5)]
    for got, ref in zip(outputs["losses"], expected, strict=True):
        if not torch.is_tensor(got) or got.shape != () or not torch.allclose(got, ref, atol=1e-5):
            raise Wrong(f"the D loss of a step was {got!r}, expected {ref.item():.5f}")
    for key, ref in D.state_dict().items():
        if not torch.allclose(outputs["D"][key].float(), ref.float(), atol=1e-5):
            raise Wrong(f"after five of your steps D's {key} differs from the reference step's")
    for key, _ in G.named_parameters():
        if not torch.equal(outputs["G"][key], inputs["G"][key]):
            raise Wrong(f"G's {key} changed during D's steps; only opt_D may step")


# -- task 5: kernel copies per pixel ----------------------------------------------------------------------
def _kernel_strides(rng):
    pairs = {(int(k), int(s)) for k, s in zip(torch.randint(1, 13, (12,), generator=rng).tolist(),
                                               torch.randint(1, 6, (12,), generator=rng).tolist())}
    return {"cases": sorted(pairs) + [(6, 2), (5, 3), (2, 4)]}  # always an even, an uneven and a gappy overlap


def _overlap_range(inputs, outputs, smoke):
    from gancourse.checks.lesson02 import overlap_problem

    for (k, s), got in zip(inputs["cases"], outputs["ranges"], strict=True):
        problem = overlap_problem(got, k, s)
        if problem:
            raise Wrong(problem)


JUDGES = {
    "task1_tests": Judge(_sizes, _output_size, forbidden=("gancourse.models",)),
    "task2_tests": Judge(_blocks, _generator_block, forbidden=("gancourse.models",)),
    "task3_tests": Judge(_init_inputs, _init, forbidden=("gancourse.models", "gancourse.train")),
    "task4_tests": Judge(_step_inputs, _discriminator_step, forbidden=("gancourse.train",)),
    "task5_tests": Judge(_kernel_strides, _overlap_range),
}
