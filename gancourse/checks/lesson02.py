"""Checks for lesson 02, DCGAN: transposed-convolution arithmetic, a generator block, init, D's step."""
from __future__ import annotations

import torch
from torch import nn

from gancourse import losses
from gancourse.checks import CheckFailed, call, expect_close, expect_tensor, passed


def check_output_size(fn) -> None:
    """fn(i, k, s, p) must give the output size of nn.ConvTranspose2d."""
    for i, k, s, p in [(1, 4, 1, 0), (4, 4, 2, 1), (7, 3, 2, 1), (5, 5, 3, 2), (10, 2, 2, 0), (3, 7, 1, 3)]:
        got = call(fn, i, k, s, p, name="output_size")
        actual = nn.ConvTranspose2d(1, 1, k, s, p)(torch.zeros(1, 1, i, i)).shape[-1]
        if not isinstance(got, int):
            raise CheckFailed(f"output_size should return an int, got {type(got).__name__} ({got!r})")
        if got != actual:
            hint = " The stride multiplies (i - 1), not i." if got == i * s - 2 * p + k else ""
            raise CheckFailed(f"output_size({i}, k={k}, s={s}, p={p}) = {got}, but nn.ConvTranspose2d gives "
                              f"{actual}.{hint} Recall o = (i - 1)·s - 2p + k.")
    passed("output_size agrees with nn.ConvTranspose2d on every case")


def check_generator_block(fn) -> None:
    """fn(c_in, c_out) -> a module that doubles H and W: ConvT(4, 2, 1, no bias), BatchNorm, ReLU."""
    block = call(fn, 16, 8, name="generator_block")
    if not isinstance(block, nn.Module):
        raise CheckFailed(f"generator_block should return an nn.Module (e.g. nn.Sequential), got {type(block).__name__}")
    out = call(block, torch.randn(2, 16, 4, 4), name="your block")
    expect_tensor(out, "the block's output", shape=(2, 8, 8, 8))
    layers = list(block.modules())
    convs = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
    if len(convs) != 1 or convs[0].kernel_size != (4, 4) or convs[0].stride != (2, 2):
        raise CheckFailed("use one nn.ConvTranspose2d with kernel_size=4, stride=2, padding=1")
    if convs[0].bias is not None:
        raise CheckFailed("the transposed convolution should have bias=False: the BatchNorm after it has its own "
                          "shift, so a bias would be wasted")
    if not any(isinstance(m, nn.BatchNorm2d) for m in layers):
        raise CheckFailed("the block needs nn.BatchNorm2d(c_out) after the convolution (a DCGAN guideline)")
    if not any(isinstance(m, nn.ReLU) for m in layers) or any(isinstance(m, nn.LeakyReLU) for m in layers):
        raise CheckFailed("G uses plain nn.ReLU (LeakyReLU belongs in D)")
    order = [type(m) for m in layers if isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU))]
    if order != [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU]:
        raise CheckFailed(f"layer order is {[t.__name__ for t in order]}; expected ConvTranspose2d, BatchNorm2d, ReLU")
    if (out < 0).any():
        raise CheckFailed("the block's output has negative values: the ReLU must come last")
    passed("generator_block doubles the size with ConvTranspose2d(4, 2, 1) → BatchNorm2d → ReLU")


def check_init(fn) -> None:
    """fn(module) initialises like DCGAN: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), biases 0."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 4), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 64, 4), nn.BatchNorm2d(64),
                        nn.Conv2d(64, 32, 3))
    call(fn, net, name="init_weights_")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            std, mean = m.weight.std().item(), m.weight.mean().item()
            if not (0.017 < std < 0.023 and abs(mean) < 0.003):
                raise CheckFailed(f"a {type(m).__name__} has weights with mean {mean:.4f} and std {std:.4f}; "
                                  "expected N(0, 0.02): nn.init.normal_(m.weight, 0.0, 0.02)")
            if m.bias is not None and m.bias.abs().max() > 0:
                raise CheckFailed(f"a {type(m).__name__}'s bias is not zero: nn.init.zeros_(m.bias)")
        if isinstance(m, nn.BatchNorm2d):
            mean, std = m.weight.mean().item(), m.weight.std().item()
            if not (abs(mean - 1) < 0.01 and 0.01 < std < 0.03):
                raise CheckFailed(f"BatchNorm weights have mean {mean:.3f}, std {std:.3f}; expected N(1, 0.02)")
            if m.bias.abs().max() > 0:
                raise CheckFailed("BatchNorm biases should be zero")
    passed("init_weights_ sets conv weights to N(0, 0.02), BatchNorm weights to N(1, 0.02) and biases to 0")


def _d_step(G, D, opt_D, real, z_dim):
    z = torch.randn(len(real), z_dim)
    loss = losses.discriminator_loss(D(real), D(G(z).detach()))
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return loss


def _tiny(seed):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Unflatten(1, (6, 1, 1)), nn.ConvTranspose2d(6, 4, 4, 1, 0), nn.ReLU(),
                      nn.ConvTranspose2d(4, 1, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, 1, 0), nn.Flatten(0))
    return G, D


def check_discriminator_step(fn) -> None:
    """fn(G, D, opt_D, real, z_dim) -> loss: one update of D only, on real and detached fake images."""
    results = []
    for step in (fn, _d_step):
        G, D = _tiny(0)
        opt_D = torch.optim.SGD(D.parameters(), lr=0.1)
        real = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
        g_before = [p.detach().clone() for p in G.parameters()]
        torch.manual_seed(5)
        loss = call(step, G, D, opt_D, real, 6, name="discriminator_step")
        results.append((loss, G, D, g_before))
    (loss, G, D, g_before), (ref, _, D_ref, _) = results
    loss = expect_tensor(loss, "discriminator_step's return value", shape=())
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters()):
        raise CheckFailed("G's parameters received gradients during D's step: detach the fake images "
                          "(G(z).detach()) so D's loss stops at G's output")
    if any(not torch.equal(a, b) for a, b in zip(G.parameters(), g_before)):
        raise CheckFailed("G's weights changed during D's step; only opt_D may step")
    expect_close(loss, ref, "the D loss", hint="Use discriminator_loss(D(real), D(fake)) with "
                 "z = torch.randn(len(real), z_dim) and fake = G(z).detach().")
    if not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(D.parameters(), D_ref.parameters())):
        raise CheckFailed("the loss is right but D's new weights are not: call opt_D.zero_grad(), "
                          "loss.backward() and opt_D.step(), in that order")
    passed("discriminator_step updates D only, on real and detached fake images")


# -- task 5: how many kernel copies land on a pixel ------------------------------------------------------
OVERLAP_CASES = [(4, 2), (3, 2), (5, 2), (6, 3), (7, 3), (2, 3), (9, 4), (8, 4), (1, 1), (5, 1)]


def overlap_counts(k: int, s: int) -> tuple[int, int]:
    """(fewest, most) kernel copies on an interior output pixel of a 2-D transposed convolution, counted the
    lesson's way: all-ones weights on an all-ones input, the border cut off."""
    n = 2 * (k // s + 2) + 2
    layer = nn.ConvTranspose2d(1, 1, kernel_size=k, stride=s, bias=False)
    nn.init.ones_(layer.weight)
    with torch.no_grad():
        counts = layer(torch.ones(1, 1, n, n))[0, 0]
    inner = counts[k:-k, k:-k]
    return int(inner.min().round()), int(inner.max().round())


def overlap_problem(got, k: int, s: int, name: str = "overlap_range") -> str | None:
    """What is wrong with `got` as (fewest, most) copies for kernel k, stride s (None: nothing). Shared with the judge."""
    if isinstance(got, torch.Tensor) and got.numel() == 2:
        got = tuple(got.tolist())
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"{name}({k}, {s}) returned {got!r}; return a pair (fewest, most)"
    if any(isinstance(v, float) and not float(v).is_integer() for v in got):
        return f"{name}({k}, {s}) returned {got!r}; copies come in whole numbers"
    fewest, most = (int(v) for v in got)
    want = overlap_counts(k, s)
    if (fewest, most) == want:
        return None
    per_axis = (k // s, -(-k // s))
    if (fewest, most) == per_axis and per_axis != want:
        hint = ("that is the count along one axis. A pixel's row and column each collect copies independently, so in "
                "2-D the count is a product.")
    elif k % s == 0:
        hint = f"when the stride divides the kernel ({k} = {k // s}·{s}), every interior pixel gets the same number."
    elif k < s:
        hint = "when the kernel is smaller than the stride, the copies do not even touch: some pixels get none."
    else:
        hint = ("along one axis, a pixel at position x collects the copies of inputs i with i·s <= x < i·s + k; how "
                "many integers i is that, at least and at most?")
    return f"{name}({k}, {s}) = {(fewest, most)}, but counting gives {want}: {hint}"


def check_overlap_range(fn) -> None:
    """fn(k, s) -> (fewest, most) kernel copies on an interior output pixel."""
    for k, s in OVERLAP_CASES:
        problem = overlap_problem(call(fn, k, s, name="overlap_range"), k, s)
        if problem:
            raise CheckFailed(problem)
    passed(f"overlap_range matches the counted copies for all {len(OVERLAP_CASES)} (kernel, stride) pairs")
