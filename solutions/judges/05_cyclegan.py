"""Judges of lesson 05 (gancourse.judging): reference answers, run in the grader's process."""
import torch
from torch import nn

from gancourse.judging import Judge, Wrong

# the library implements each of these pieces; an answer must not call it (nor the visible checks' helpers)
NO_LIBRARY = ("gancourse.losses", "gancourse.train", "gancourse.models", "gancourse.checks", "gancourse.metrics")


def _mapping() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())


def _critic() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))


def _random_state(net: nn.Module, rng: torch.Generator, scale: float = 0.3) -> dict:
    return {k: torch.randn(v.shape, generator=rng) * scale for k, v in net.state_dict().items()}


def _built(make, state) -> nn.Module:
    net = make()
    net.load_state_dict(state)
    return net


def _images(rng, n, size):
    return torch.rand(n, 3, size, size, generator=rng) * 2 - 1


def _close(got, expected, what: str, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    if not torch.is_tensor(got) or got.shape != expected.shape:
        raise Wrong(f"{what} returned {type(got).__name__} of shape {getattr(got, 'shape', None)}, expected a "
                    f"tensor of shape {tuple(expected.shape)}")
    if not torch.allclose(got.double(), expected.double(), rtol=rtol, atol=atol):
        raise Wrong(f"{what} gave {got.flatten()[:3].tolist()}, expected {expected.flatten()[:3].tolist()}")


def _l1(x, y):
    return (x - y).abs().mean()


# -- task 1: cycle loss -----------------------------------------------------------------------------
def _two_maps(rng):
    return {"G": _random_state(_mapping(), rng), "F": _random_state(_mapping(), rng),
            "cases": [(_images(rng, 3, 8), _images(rng, 3, 8)), (_images(rng, 1, 5), _images(rng, 2, 12)),
                      (_images(rng, 4, 16), _images(rng, 4, 16))]}


def _cycle(inputs, outputs, smoke):
    G, F = _built(_mapping, inputs["G"]), _built(_mapping, inputs["F"])
    for i, ((a, b), got) in enumerate(zip(inputs["cases"], outputs["values"], strict=True)):
        expected = _l1(F(G(a)), a) + _l1(G(F(b)), b)
        if i == 0:
            expected.backward()
        _close(got, expected.detach(), f"cycle_loss on case {i + 1}")
    for net, key, name in ((G, "grad_G", "G"), (F, "grad_F", "F")):
        for got, p in zip(outputs[key], net.parameters(), strict=True):
            if got is None:
                raise Wrong(f"no gradient reached {name} through cycle_loss; it trains both maps")
            _close(got, p.grad, f"the gradient of cycle_loss for {name}")


# -- task 2: identity term ----------------------------------------------------------------------------
def _identity_inputs(rng):
    inputs = _two_maps(rng)
    inputs["lambdas"] = [float(torch.rand((), generator=rng) * 8 + 2), 10.0, float(torch.rand((), generator=rng) * 20 + 12)]
    return inputs


def _identity(inputs, outputs, smoke):
    G, F = _built(_mapping, inputs["G"]), _built(_mapping, inputs["F"])
    with torch.no_grad():
        for (a, b), lam, got in zip(inputs["cases"], inputs["lambdas"], outputs["values"], strict=True):
            _close(got, 0.5 * lam * (_l1(G(b), b) + _l1(F(a), a)), f"identity_term with lambda_cycle = {lam:.3g}")


# -- task 3: the pool ------------------------------------------------------------------------------------
def _pool_inputs(rng):
    return {"size": int(torch.randint(3, 9, (), generator=rng)), "seed": int(torch.randint(2**31, (), generator=rng)),
            "batches": 300}


def _pool(inputs, outputs, smoke):
    size, batches = inputs["size"], inputs["batches"]
    if any(outputs["tracked"]):
        raise Wrong("query returned images that track gradients; store and return detached images")
    stored, old, after_full = set(), 0, 0
    for i, out in enumerate(outputs["outputs"]):
        if not torch.is_tensor(out) or tuple(out.shape) != (2, 3, 2, 2):
            raise Wrong(f"query returned {type(out).__name__} of shape {getattr(out, 'shape', None)} for a batch "
                        "of shape (2, 3, 2, 2); return a batch of the same shape")
        for j, image in enumerate(out):
            new_id, got = 2 * i + j, image.flatten()
            if not torch.all(got == got[0]):
                raise Wrong("query returned an image that is none of the images it was given")
            got_id = int(got[0])
            if len(stored) < size:
                if got_id != new_id:
                    raise Wrong(f"while the pool holds fewer than {size} images, query must return the new image")
                stored.add(new_id)
                continue
            after_full += 1
            if got_id == new_id:
                continue
            if got_id not in stored:
                raise Wrong("query handed out an image that was not in the pool (one came out twice, was never "
                            "stored, or the pool held more than `size` images)")
            old += 1
            stored.remove(got_id)
            stored.add(new_id)
    share = old / max(after_full, 1)
    if not 0.38 <= share <= 0.62:
        raise Wrong(f"once full, the pool handed out a stored image for {100 * share:.0f}% of {after_full} images; "
                    "it should be about half")


# -- task 4: receptive field --------------------------------------------------------------------------------
def _layer_cases(rng):
    cases = [[(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)], [(3, 1)]]
    for _ in range(6):
        n = int(torch.randint(1, 7, (), generator=rng))
        cases.append([(int(torch.randint(1, 8, (), generator=rng)), int(torch.randint(1, 4, (), generator=rng)))
                      for _ in range(n)])
    return {"cases": cases}


def _receptive(inputs, outputs, smoke):
    for layers, got in zip(inputs["cases"], outputs["values"], strict=True):
        r = 1
        for k, s in reversed(layers):
            r = (r - 1) * s + k
        if not isinstance(got, int) or isinstance(got, bool) or got != r:
            raise Wrong(f"receptive_field({[tuple(x) for x in layers]}) gave {got!r}, expected {r}")


# -- task 5: the schedule -----------------------------------------------------------------------------------
def _schedule_inputs(rng):
    fractions = [0.0, 0.5, 1.0] + (torch.rand(20, generator=rng)).tolist()
    starts = (torch.rand(12, generator=rng) * 0.9).tolist()
    cases = [(f, s) for s in starts for f in (1.0, s, (1 + s) / 2, float(torch.rand((), generator=rng)))]
    return {"fractions": fractions, "cases": cases}


def _decay(f, s):
    return min(1.0, (1.0 - f) / (1.0 - s))


def _schedule(inputs, outputs, smoke):
    for f, got in zip(inputs["fractions"], outputs["default"], strict=True):
        if abs(got - _decay(f, 0.5)) > 1e-6:
            raise Wrong(f"linear_decay({f:.3f}) gave {got:.4g}, expected {_decay(f, 0.5):.4g}")
    for (f, s), got in zip(inputs["cases"], outputs["given"], strict=True):
        if abs(got - _decay(f, s)) > 1e-6:
            raise Wrong(f"linear_decay({f:.3f}, decay_start={s:.3f}) gave {got:.4g}, expected {_decay(f, s):.4g}")


# -- task 6: D's loss, detached ---------------------------------------------------------------------------
def _d_inputs(rng):
    return {"D": _random_state(_critic(), rng), "G": _random_state(_mapping(), rng),
            "real": _images(rng, 5, 12), "source": _images(rng, 5, 12)}


def _d_loss(inputs, outputs, smoke):
    D, G = _built(_critic, inputs["D"]), _built(_mapping, inputs["G"])
    fake = G(inputs["source"])
    expected = 0.5 * ((D(inputs["real"]) - 1) ** 2).mean() + 0.5 * (D(fake.detach()) ** 2).mean()
    expected.backward()
    _close(outputs["loss"], expected.detach(), "discriminator_loss")
    if any(g is not None and torch.is_tensor(g) and g.abs().sum() > 0 for g in outputs["grad_G"]):
        raise Wrong("D's loss sent gradients into the generator; pass fake.detach() to D")
    for got, p in zip(outputs["grad_D"], D.parameters(), strict=True):
        if got is None:
            raise Wrong("no gradient reached D through discriminator_loss")
        _close(got, p.grad, "the gradient of discriminator_loss for D")


JUDGES = {
    "task1_tests": Judge(_two_maps, _cycle, forbidden=NO_LIBRARY),
    "task2_tests": Judge(_identity_inputs, _identity, forbidden=NO_LIBRARY),
    "task3_tests": Judge(_pool_inputs, _pool, forbidden=NO_LIBRARY),
    "task4_tests": Judge(_layer_cases, _receptive, forbidden=NO_LIBRARY),
    "task5_tests": Judge(_schedule_inputs, _schedule, forbidden=NO_LIBRARY),
    "task6_tests": Judge(_d_inputs, _d_loss, forbidden=NO_LIBRARY),
}
