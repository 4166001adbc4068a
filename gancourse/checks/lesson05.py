"""Checks for lesson 05, CycleGAN. Each takes the student's code and explains a wrong answer."""
from __future__ import annotations

import torch
from torch import nn

from gancourse.checks import CheckFailed, call, expect_close, expect_tensor, keeps_rng, passed


def mapping(state: int | dict) -> nn.Module:
    """A small image-to-image network (3 -> 3 channels), a stand-in for G or F: seeded weights for an int,
    or the given state dict (what the grader's hidden tests build)."""
    if isinstance(state, int):
        torch.manual_seed(state)
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    if isinstance(state, dict):
        net.load_state_dict(state)
    return net


def patch_critic(state: int | dict) -> nn.Module:
    """A small patch discriminator (3 channels -> a grid of scores), seeded or from a state dict."""
    if isinstance(state, int):
        torch.manual_seed(state)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))
    if isinstance(state, dict):
        net.load_state_dict(state)
    return net



def _batches(seed: int, n: int = 4, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


def _diagnose(value: torch.Tensor, expected: torch.Tensor, name: str, wrong: dict[str, torch.Tensor]) -> None:
    """Name the mistake when the value matches a known wrong answer, else say what was expected."""
    if torch.allclose(value.detach().float(), expected.detach().float(), rtol=1e-4, atol=1e-6):
        return
    for message, candidate in wrong.items():
        if torch.allclose(value.detach().float(), candidate.detach().float(), rtol=1e-4, atol=1e-6):
            raise CheckFailed(f"{name} gave {value.item():.5g}, expected {expected.item():.5g}: {message}")
    expect_close(value, expected, name)


def _backward(loss: torch.Tensor, name: str) -> None:
    if not loss.requires_grad:
        raise CheckFailed(f"{name} returned a value that no gradient can flow through (computed under torch.no_grad(), "
                          "detached, or rebuilt from numbers): return the tensor the networks produced")
    loss.backward()


# -- task 1: the cycle loss -------------------------------------------------------------------------
@keeps_rng
def check_cycle_loss(fn) -> None:
    """fn(G, F, a, b) -> |F(G(a)) - a|_1 + |G(F(b)) - b|_1, each a mean."""
    G, F = mapping(1), mapping(2)
    a, b = _batches(0)
    out = expect_tensor(call(fn, G, F, a, b, name="cycle_loss"), "cycle_loss", shape=())
    with torch.no_grad():
        forward, backward = _l1(F(G(a)), a), _l1(G(F(b)), b)
        wrong = {
            "only the A -> B -> A cycle is there; add G(F(b)) against b": forward,
            "only the B -> A -> B cycle is there; add F(G(a)) against a": backward,
            "the maps are composed the wrong way round: a goes through G first (A -> B), then F back to A": _l1(G(F(a)), a) + _l1(F(G(b)), b),
            "that is the squared error; the cycle loss is the L1 distance (mean absolute difference)":
                ((F(G(a)) - a) ** 2).mean() + ((G(F(b)) - b) ** 2).mean(),
            "that is half the sum: the two cycles are added, not averaged": (forward + backward) / 2,
            "a round trip must come back to where it started: compare F(G(a)) with a, not with b":
                _l1(F(G(a)), b) + _l1(G(F(b)), a),
            "a sum over pixels, not a mean: use .mean() so the loss does not grow with the image size":
                (F(G(a)) - a).abs().sum() + (G(F(b)) - b).abs().sum(),
        }
    _diagnose(out, forward + backward, "cycle_loss", wrong)
    G.zero_grad(), F.zero_grad()
    _backward(call(fn, G, F, a, b, name="cycle_loss"), "cycle_loss")
    got = [None if p.grad is None else p.grad.clone() for net in (G, F) for p in net.parameters()]
    G.zero_grad(), F.zero_grad()
    (_l1(F(G(a)), a) + _l1(G(F(b)), b)).backward()
    want = [p.grad for net in (G, F) for p in net.parameters()]
    if any(g is None or not torch.allclose(g, w, rtol=1e-4, atol=1e-7) for g, w in zip(got, want)):
        raise CheckFailed("the value is right but the gradient is not: it must flow through the whole round trip, "
                          "into G and F on both cycles, so do not .detach() a translation on its way")
    passed("cycle_loss: both round trips, L1, gradients reach G and F")


# -- task 2: the identity loss -----------------------------------------------------------------------
@keeps_rng
def check_identity_term(fn) -> None:
    """fn(G, F, a, b, lambda_cycle) -> 0.5 * lambda_cycle * (|G(b) - b|_1 + |F(a) - a|_1)."""
    G, F = mapping(3), mapping(4)
    a, b = _batches(1)
    for lam in (10.0, 4.0):
        out = expect_tensor(call(fn, G, F, a, b, lam, name="identity_term"), "identity_term", shape=())
        with torch.no_grad():
            raw = _l1(G(b), b) + _l1(F(a), a)
            wrong = {
                "the weight is 0.5 * lambda_cycle, not a fixed 5 (it is 5 only when lambda_cycle = 10)": 5 * raw,
                "the weight is 0.5 * lambda_cycle: the 0.5 is missing": lam * raw,
                "the weight is 0.5 * lambda_cycle: lambda_cycle is missing": 0.5 * raw,
                "the identity loss is unweighted here; multiply by 0.5 * lambda_cycle": raw,
                "G maps A -> B, so its identity input is an image already in B: G(b) against b, F(a) against a":
                    0.5 * lam * (_l1(G(a), a) + _l1(F(b), b)),
                "that is the squared error; the identity loss is L1, like the cycle loss":
                    0.5 * lam * (((G(b) - b) ** 2).mean() + ((F(a) - a) ** 2).mean()),
            }
        _diagnose(out, 0.5 * lam * raw, f"identity_term(..., lambda_cycle={lam:g})", wrong)
    passed("identity_term: G(b) ~ b and F(a) ~ a, weighted 0.5 * lambda_cycle")


# -- task 3: the image pool --------------------------------------------------------------------------
def _ids(images: torch.Tensor) -> list[int]:
    return [int(round(float(im.flatten()[0]))) for im in images]


@keeps_rng
def check_image_pool(cls) -> None:
    """cls(size) with .query(images): fills, then for each image half the time hands out a stored one
    (storing the new one in its place), detached."""
    try:
        pool = call(cls, 4, name="HistoryPool")
    except CheckFailed:
        raise
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2).clone()
    out = call(pool.query, first, name="HistoryPool.query")
    out = expect_tensor(out, "HistoryPool.query", shape=first.shape)
    if _ids(out) != [0, 1, 2, 3]:
        raise CheckFailed(f"while the pool is filling, query must return the new images themselves; the first batch "
                          f"0, 1, 2, 3 came back as {_ids(out)}")
    torch.manual_seed(0)
    stored, old, handed_out = {0, 1, 2, 3}, 0, 400
    for step in range(handed_out):
        new_id = 100 + step
        image = torch.full((1, 3, 2, 2), float(new_id), requires_grad=True)
        got = call(pool.query, image * 1, name="HistoryPool.query")
        got = expect_tensor(got, "HistoryPool.query", shape=(1, 3, 2, 2))
        if got.requires_grad:
            raise CheckFailed("query returned an image that still tracks gradients: store and return detached images "
                              "(.detach()), or every stored image keeps the graph of its step alive and D's loss "
                              "sends gradients back into G")
        (got_id,) = _ids(got)
        if got_id == new_id:
            continue
        if got_id not in stored:
            raise CheckFailed(f"query handed out image {got_id}, which is not in the pool any more (an old image came "
                              "out twice, or was never stored): when you hand out a stored image, put the new one in "
                              "its place")
        old += 1
        stored.remove(got_id)
        stored.add(new_id)
    share = old / handed_out
    if share == 0:
        raise CheckFailed("once the pool is full, query always returned the newest image: half the time it should "
                          "return a stored one (and keep the new one in its place)")
    if share == 1:
        raise CheckFailed("once the pool is full, query always returned a stored image: half the time it should "
                          "return the new image itself")
    if not 0.38 <= share <= 0.62:
        raise CheckFailed(f"a stored image came out for {100 * share:.0f}% of 400 queries; it should be about 50% "
                          "(draw one random number per image)")
    passed(f"HistoryPool: fills first, then a stored image {100 * share:.0f}% of the time, each handed out once, detached")


# -- task 4: the receptive field ---------------------------------------------------------------------
def _receptive_field(layers) -> int:
    r = 1
    for k, s in reversed(list(layers)):
        r = (r - 1) * s + k
    return r


def check_receptive_field(fn) -> None:
    """fn([(kernel, stride), ...]) -> the side of the input patch one output unit sees."""
    paper = [(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]
    got = call(fn, paper, name="receptive_field")
    if not isinstance(got, int) and not (torch.is_tensor(got) and got.numel() == 1):
        raise CheckFailed(f"receptive_field should return an int; got {type(got).__name__}")
    got = int(got)
    if got != 70:
        hints = {
            28: "you walked from the input to the output with (r - 1)·s + k; walk back from the output: the last "
                "layer first (reversed(layers))",
            16: "the strides are missing: each stride-2 layer below a unit doubles the step between its inputs",
            20: "adding kernel sizes ignores both the overlap of windows and the strides",
        }
        raise CheckFailed(f"receptive_field of the paper's PatchGAN gave {got}, expected 70. "
                          + hints.get(got, "Start from one output unit (r = 1) and apply r = (r - 1)·s + k from the "
                                       "last layer back to the first."))
    for layers in ([(3, 1), (3, 1)], [(2, 2), (2, 2)], [(7, 1)], [(4, 2), (3, 1), (4, 2)]):
        got, want = int(call(fn, layers, name="receptive_field")), _receptive_field(layers)
        if got != want:
            raise CheckFailed(f"receptive_field({layers}) gave {got}, expected {want}: use the kernels and strides "
                              "you are given, not the paper's numbers")
    passed("receptive_field: 70 for the paper's PatchGAN, and right for other layouts")


# -- task 5: the learning-rate schedule --------------------------------------------------------------
def check_linear_decay(fn) -> None:
    """fn(fraction, decay_start=0.5) -> 1 before decay_start, then linear down to 0 at fraction 1."""
    def value(f, start=None):
        got = call(fn, f, name="linear_decay") if start is None else call(fn, f, start, name="linear_decay")
        if torch.is_tensor(got):
            got = got.item()
        if not isinstance(got, (int, float)):
            raise CheckFailed(f"linear_decay should return a number; got {type(got).__name__}")
        return float(got)

    end = value(1.0)
    if abs(end) > 1e-9:
        raise CheckFailed(f"linear_decay(1.0) = {end:.4g}: the learning rate must reach 0 at the end of training "
                          "(divide by the length of the decay phase, 1 - decay_start)")
    for f in (0.0, 0.2, 0.49, 0.5):
        if abs(value(f) - 1) > 1e-9:
            raise CheckFailed(f"linear_decay({f}) = {value(f):.4g}: the factor stays 1 until decay_start (0.5 by default)")
    if abs(value(0.75) - 0.5) > 1e-6:
        raise CheckFailed(f"linear_decay(0.75) = {value(0.75):.4g}, expected 0.5: halfway through the decay phase the "
                          "factor is halfway from 1 to 0 (a straight line)")
    if abs(value(0.9, 0.8) - 0.5) > 1e-6 or abs(value(0.7, 0.8) - 1) > 1e-9:
        raise CheckFailed("with decay_start=0.8 the factor should be 1 at 0.7 and 0.5 at 0.9: use the decay_start "
                          "argument rather than a fixed 0.5")
    passed("linear_decay: constant, then a straight line to 0 at the end")


# -- task 6: D's loss, with the fakes detached -------------------------------------------------------
@keeps_rng
def check_discriminator_loss(fn) -> None:
    """fn(D, real, fake) -> 1/2 [E(D(real) - 1)^2 + E D(fake)^2], with no gradient reaching G through fake."""
    D, G = patch_critic(5), mapping(6)
    a, real = _batches(2)
    fake = G(a)
    out = expect_tensor(call(fn, D, real, fake, name="discriminator_loss"), "discriminator_loss", shape=())
    with torch.no_grad():
        r, f = D(real), D(fake)
        expected = 0.5 * (((r - 1) ** 2).mean() + (f ** 2).mean())
        wrong = {
            "D's loss is halved in CycleGAN (the 1/2 in front)": 2 * expected,
            "the targets are swapped: real images should score 1 and fakes 0": 0.5 * ((r ** 2).mean() + ((f - 1) ** 2).mean()),
            "least squares, not cross-entropy: (D(real) - 1)^2 and D(fake)^2":
                0.5 * (torch.nn.functional.softplus(-r).mean() + torch.nn.functional.softplus(f).mean()),
        }
    _diagnose(out, expected, "discriminator_loss", wrong)
    G.zero_grad(), D.zero_grad()
    _backward(out, "discriminator_loss")
    if any(p.grad is not None and p.grad.any() for p in G.parameters()):
        raise CheckFailed("the gradient of D's loss reached the generator: pass fake.detach() to D. Without it, "
                          "D's update would also push G (towards making its fakes easier to spot)")
    if all(p.grad is None or not p.grad.any() for p in D.parameters()):
        raise CheckFailed("no gradient reaches D through your loss: do not wrap D's scores in torch.no_grad()")
    passed("discriminator_loss: least squares, halved, fakes detached")
