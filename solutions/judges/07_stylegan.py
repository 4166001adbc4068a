"""Judges of lesson 07 (gancourse.judging): reference answers, run in the grader's process.

The references are the library's pieces, and the known mistakes are the visible checks' tables
(gancourse.checks.lesson07), so a grade's note names a mistake as the check does; the inputs are the grader's.
"""
import torch

from gancourse.checks import CheckFailed, diagnose, same
from gancourse.checks import lesson07 as tables
from gancourse.judging import Judge, Wrong

# the library implements each of these pieces (gancourse.models.stylegan: instance_norm, AdaIN, modulated_conv2d,
# mix_styles, truncate, StyleGenerator.track_w_avg; gancourse.models.progan: EqualizedLinear; gancourse.losses:
# r1_penalty); an answer must not call them, nor the visible checks' helpers
NO_LIBRARY = ("gancourse.losses", "gancourse.train", "gancourse.models", "gancourse.checks", "gancourse.metrics")


def _int(rng, low: int, high: int) -> int:
    """A random int in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=rng))


def _uniform(rng, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=rng))


def _randn(rng, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=rng)


def _close(got, expected: torch.Tensor, what: str, wrong=()) -> None:
    """got must match expected; when it matches a known wrong answer, the note names the mistake."""
    if not torch.is_tensor(got) or got.shape != expected.shape:
        raise Wrong(f"{what} returned {type(got).__name__} of shape {tuple(getattr(got, 'shape', ()))}, expected a "
                    f"tensor of shape {tuple(expected.shape)}")
    if not torch.isfinite(got).all():
        raise Wrong(f"{what} gave NaN or inf (an eps missing under a square root?)")
    try:
        diagnose(got, expected, what, list(wrong))
    except CheckFailed as err:
        raise Wrong(str(err)) from None


def _grads_match(got: list | None, want: list, what: str) -> None:
    if got is None:
        raise Wrong(f"no gradient could be taken of {what}: the output does not depend on them through the graph")
    if not tables._same_grads(list(got), list(want)):
        raise Wrong(f"the gradients of {what} are not right: nothing on the way may be detached")


def _random_state(builder, rng, scale: float) -> dict:
    return {k: _randn(rng, *v.shape) * scale for k, v in builder(None).state_dict().items()}


# -- task 1: adaptive instance normalisation --------------------------------------------------------------
def _maps(rng, n: int, c: int, h: int, w: int) -> torch.Tensor:
    return _randn(rng, n, c, h, w) * (torch.rand(n, c, 1, 1, generator=rng) * 3 + 0.3) + 2 * _randn(rng, n, c, 1, 1)


def _adain_inputs(rng):
    cases = []
    for eps in ([], [], [], [_uniform(rng, 0.1, 2.0)], [_uniform(rng, 0.1, 2.0)]):
        n, c = _int(rng, 1, 4), _int(rng, 2, 5)
        x = _maps(rng, n, c, _int(rng, 2, 4), _int(rng, 2, 4))
        cases.append({"x": x, "scale": _randn(rng, n, c) + 1, "bias": _randn(rng, n, c), "eps": eps})
    cases[1]["x"][0, 1] = _int(rng, -4, 4) / 2  # a map whose pixels are all equal, exactly: its variance is 0
    n, c = _int(rng, 1, 3), _int(rng, 2, 4)
    x = _maps(rng, n, c, 3, 5)
    return {"cases": cases, "grad": [x, _randn(rng, n, c) + 1, _randn(rng, n, c), _randn(rng, *x.shape)]}


def _adain(inputs, outputs, smoke):
    for i, (case, got) in enumerate(zip(inputs["cases"], outputs["values"], strict=True)):
        eps = case["eps"][0] if case["eps"] else 1e-8
        expected, wrong = tables._adain_answers(case["x"], case["scale"], case["bias"], eps)
        _close(got, expected, f"adain on case {i + 1}" + (f" (eps={eps:.3g})" if case["eps"] else ""), wrong)
    leaves = [t.clone().requires_grad_(True) for t in inputs["grad"][:3]]
    want = tables._grads(leaves, tables._adain_answers(*leaves, 1e-8)[0], inputs["grad"][3])
    _grads_match(outputs["grads"], want, "adain for x and the styles")


# -- task 2: the mapping network's slow layer --------------------------------------------------------------
def _linear_inputs(rng):
    fresh = []
    for m in (0.01, _uniform(rng, 0.05, 0.5), 1.0):
        d_in = _int(rng, 48, 128)
        fresh.append({"d_in": d_in, "d_out": _int(rng, 24, 48), "m": m, "x": _randn(rng, 256, d_in)})
    cases = []
    for m in (0.01, _uniform(rng, 0.02, 0.5)):
        d_in, d_out, n = _int(rng, 8, 24), _int(rng, 3, 10), _int(rng, 4, 16)
        cases.append({"d_in": d_in, "d_out": d_out, "m": m, "weight": _randn(rng, d_out, d_in) / m,
                      "bias": _randn(rng, d_out), "x": _randn(rng, n, d_in), "r": _randn(rng, n, d_out)})
    return {"seed": _int(rng, 0, 2**31 - 1), "fresh": fresh, "cases": cases, "lr": _uniform(rng, 2e-3, 1e-2)}


def _linear(inputs, outputs, smoke):
    for case, (weight, bias, out) in zip(inputs["fresh"], outputs["init"], strict=True):
        m, d_in, d_out = case["m"], case["d_in"], case["d_out"]
        if tuple(weight.shape) != (d_out, d_in) or tuple(bias.shape) != (d_out,):
            raise Wrong(f"SlowLinear({d_in}, {d_out}) holds a weight of shape {tuple(weight.shape)} and a bias of "
                        f"shape {tuple(bias.shape)}; expected ({d_out}, {d_in}) and ({d_out},)")
        problem = tables._init_problem(float(out.std()), float(weight.std()), m, d_in)
        if problem:
            raise Wrong(problem)
        if bias.abs().max() > 0:
            raise Wrong("the bias should start at zero")
    for case, (before, after) in zip(inputs["cases"], outputs["steps"], strict=True):
        problem = tables._step_problem(before, after, case["d_in"], case["m"], inputs["lr"])
        if problem:
            raise Wrong(problem)
    for i, (case, got) in enumerate(zip(inputs["cases"], outputs["outputs"], strict=True)):
        expected, wrong = tables._linear_answers(case["x"], case["weight"], case["bias"], case["m"])
        _close(got, expected, f"SlowLinear.forward with the grader's weights on case {i + 1}", wrong)
    for case, (weight, _, _) in zip(inputs["fresh"], outputs["init"], strict=True):
        m = case["m"]
        if not tables._near(float(weight.std()), 1 / m, 0.15) or abs(float(weight.mean())) > 0.15 / m:
            raise Wrong(f"SlowLinear(..., lr_multiplier={m:g}) started with weights of mean {float(weight.mean()):.3g} "
                        f"and std {float(weight.std()):.3g}; they should be drawn from N(0, 1/m^2), std {1 / m:.3g}")
    std = float(outputs["default"].std())
    if not tables._near(std, 100, 0.1):
        raise Wrong(f"SlowLinear(d_in, d_out) started with weights of std {std:.3g}: the default lr_multiplier is "
                    "0.01, so they start at N(0, 1/0.01^2), std 100")


# -- task 3: the modulated convolution ----------------------------------------------------------------------
def _modconv_inputs(rng):
    cases = []
    for c_in, c_out, k, eps, signed in ((_int(rng, 2, 6), _int(rng, 2, 6), 3, [], False), (4, 4, 3, [], False),
                                        (_int(rng, 2, 5), _int(rng, 2, 5), 1, [], True),
                                        (_int(rng, 3, 6), _int(rng, 2, 5), 3, [_uniform(rng, 0.5, 2.0)], False)):
        n, h, w = _int(rng, 1, 3), _int(rng, 3, 6), _int(rng, 3, 6)
        x, weight = _randn(rng, n, c_in, h, w), _randn(rng, c_out, c_in, k, k) * (0.3 if eps else 1.0)
        styles = _randn(rng, n, c_in) if signed else torch.exp(0.6 * _randn(rng, n, c_in))
        if n > 1:
            styles[-1] = 0  # an all-zero kernel: eps keeps its output at 0
        for demodulate in (True, False):
            for fused in (True, False):
                cases.append({"x": x, "weight": weight, "styles": styles, "demodulate": demodulate, "eps": eps,
                              "fused": fused})
    unit = {"x": _randn(rng, 8, 32, 12, 12), "weight": _randn(rng, 8, 32, 3, 3) * _uniform(rng, 0.1, 10),
            "styles": torch.exp(_randn(rng, 8, 32))}
    c_in = _int(rng, 2, 5)
    grad = [_randn(rng, 2, c_in, 5, 5), _randn(rng, _int(rng, 2, 5), c_in, 3, 3), torch.exp(0.5 * _randn(rng, 2, c_in))]
    return {"cases": cases, "unit": unit, "grad": grad + [_randn(rng, 2, grad[1].shape[0], 3, 3)]}


def _modconv(inputs, outputs, smoke):
    for case, got in zip(inputs["cases"], outputs["values"], strict=True):
        eps = case["eps"][0] if case["eps"] else 1e-8
        expected, wrong = tables._modconv_answers(case["x"], case["weight"], case["styles"], case["demodulate"], eps)
        what = (f"modulated_conv2d with demodulate={case['demodulate']}, fused={case['fused']}"
                + (f", eps={eps:.3g}" if case["eps"] else "") + f" on a {tuple(case['x'].shape)} batch")
        _close(got, expected, what, wrong)
    for fused, got in zip((True, False), outputs["unit"], strict=True):
        std = float(got.std()) if torch.is_tensor(got) else float("nan")
        if not 0.9 < std < 1.1:
            raise Wrong(f"with demodulation, unit-normal inputs gave outputs of std {std:.3g} (fused={fused}); "
                        "expected about 1, for any weight and styles")
    for fused, got in zip((True, False), outputs["grads"], strict=True):
        leaves = [t.clone().requires_grad_(True) for t in inputs["grad"][:3]]
        want = tables._grads(leaves, tables._modconv_answers(*leaves, True, 1e-8)[0], inputs["grad"][3])
        _grads_match(got, want, f"modulated_conv2d (fused={fused}) for x, the weight and the styles")


# -- task 4: style mixing -------------------------------------------------------------------------------------
def _mix_inputs(rng):
    cases = []
    for edge in ("inside", "inside", "inside", "first", "last"):
        n, num_ws, w_dim = _int(rng, 1, 4), _int(rng, 3, 10), _int(rng, 2, 6)
        crossover = {"first": 0, "last": num_ws}.get(edge, _int(rng, 1, num_ws - 1))
        cases.append({"ws": _randn(rng, n, num_ws, w_dim), "w_b": _randn(rng, n, w_dim), "crossover": crossover})
    return {"cases": cases}


def _mix(inputs, outputs, smoke):
    for case, got, after in zip(inputs["cases"], outputs["values"], outputs["after"], strict=True):
        what = f"mix_styles with crossover={case['crossover']} of {case['ws'].shape[1]} layers"
        if not torch.equal(after, case["ws"]):
            raise Wrong(f"{what} changed ws in place; mix into a copy")
        expected, wrong = tables._mix_answers(case["ws"], case["w_b"], case["crossover"])
        _close(got, expected, what, wrong)


# -- task 5: truncation and the average w -----------------------------------------------------------------------
def _truncation_inputs(rng):
    d = 4  # the width of tables.style_mapping's codes
    truncate = [{"w": _randn(rng, *shape) * 2, "w_avg": _randn(rng, d), "psi": psi}
                for shape, psi in (((_int(rng, 1, 5), d), _uniform(rng, 0.1, 0.9)),
                                   ((_int(rng, 1, 3), _int(rng, 2, 6), d), _uniform(rng, 0.1, 0.9)),
                                   ((_int(rng, 1, 5), d), 0.0), ((_int(rng, 1, 5), d), 1.0))]
    def some_psi():
        return _uniform(rng, 0.2, 0.9)

    def some_beta():
        return _uniform(rng, 0.5, 0.99)

    styles = []  # sampling, sampling with mixing, training with mixing, training with truncation, and with both
    for psi, mixing, beta in ((some_psi(), False, None), (some_psi(), True, None), (1.0, True, some_beta()),
                              (some_psi(), False, some_beta()), (some_psi(), True, some_beta())):
        n, num_ws = _int(rng, 2, 6), _int(rng, 3, 8)
        styles.append({"z": _randn(rng, n, 3), "num_ws": num_ws, "w_avg": _randn(rng, d), "psi": psi,
                       "z_mix": _randn(rng, n, 3) if mixing else None,
                       "crossover": _int(rng, 1, num_ws - 1) if mixing else None, "beta": beta})
    return {"truncate": truncate, "mapping": _random_state(tables.style_mapping, rng, 0.7), "styles": styles}


def _truncation(inputs, outputs, smoke):
    for case, got, given in zip(inputs["truncate"], outputs["truncated"], outputs["given"], strict=True):
        what = f"truncate with psi={case['psi']:.3g} on w of shape {tuple(case['w'].shape)}"
        if not torch.equal(given, case["w_avg"]):
            raise Wrong(f"{what} changed w_avg in place: truncation (sampling) must never move the average")
        expected, wrong = tables._truncate_answers(case["w"], case["w_avg"], case["psi"])
        _close(got, expected, what, wrong)
    mapping = tables.style_mapping(inputs["mapping"])
    for case, got in zip(inputs["styles"], outputs["styles"], strict=True):
        what = (f"make_styles with psi={case['psi']:.3g}" + ("" if case["z_mix"] is None else
                                                              f", crossover={case['crossover']}")
                + ("" if case["beta"] is None else f", beta={case['beta']:.3g}"))
        if not torch.equal(got["given"], case["w_avg"]):
            raise Wrong(f"{what} changed the w_avg tensor it was given, in place" + (
                ": a sampling call must never move the average" if case["beta"] is None else
                "; return the new average as a new tensor"))
        ws, wrong_ws, avg, wrong_avg = tables._styles_answers(mapping, *(case[key] for key in (
            "z", "num_ws", "w_avg", "psi", "z_mix", "crossover", "beta")))
        if case["beta"] is None and not same(got["w_avg"], case["w_avg"]):
            raise Wrong(f"{what}: a sampling call (beta=None) moved w_avg; only training steps move the average")
        _close(got["w_avg"], avg, f"the average returned by {what}", wrong_avg)
        _close(got["ws"], ws, f"the styles returned by {what}", wrong_ws)
        ws_grad, avg_grad = got["grad"]
        if avg_grad:
            raise Wrong(f"the average returned by {what} carries the mapping network's graph: average w.detach()")
        if not ws_grad:
            raise Wrong(f"the styles returned by {what} carry no gradient: G's loss trains the mapping network "
                        "through them")


# -- task 6: lazy R1 ----------------------------------------------------------------------------------------------
def _r1_inputs(rng):
    cases = []
    # batches of 5 to 7 and intervals outside 5..7: the mistakes' factors (every, N^2, N, 2, ...) all differ
    for every in (4, _int(rng, 8, 15), 16):
        gamma, real = _uniform(rng, 0.5, 20), _randn(rng, _int(rng, 5, 7), 3, 4, 4)
        k = _int(rng, 0, 5)
        for step in (0, every * k, every * k + _int(rng, 1, every - 1), every * (k + 1) - 1, every * (k + 1)):
            cases.append({"real": real, "gamma": gamma, "step": step, "every": every})
    every = _int(rng, 2, 16)
    due = {"real": _randn(rng, _int(rng, 2, 8), 3, 4, 4), "gamma": _uniform(rng, 0.5, 20),
           "step": every * _int(rng, 0, 9), "every": every}
    return {"critic": _random_state(tables.r1_critic, rng, 0.5), "cases": cases, "due": due}


def _r1(inputs, outputs, smoke):
    D = tables.r1_critic(inputs["critic"])
    for case, got in zip(inputs["cases"], outputs["values"], strict=True):
        what = f"lazy_r1 at step {case['step']} with every={case['every']}"
        if case["step"] % case["every"]:
            if got is not None:
                raise Wrong(f"{what} returned a value: R1 is due only when step % every == 0; return None on the other "
                            "steps")
            continue
        if got is None:
            raise Wrong(f"{what} returned None, but R1 is due there (step % every == 0)")
        expected, wrong = tables._r1_answers(D, case["real"], case["gamma"], case["every"])
        _close(got, expected, what, wrong)
    due = inputs["due"]
    x = due["real"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    loss = due["every"] * due["gamma"] / 2 * grad.flatten(1).pow(2).sum(dim=1).mean()
    _grads_match(outputs["grads"], tables._grads(list(D.parameters()), loss, torch.ones(())),
                 "lazy_r1 for D's weights (taken with create_graph=True?)")


JUDGES = {
    "task1_tests": Judge(_adain_inputs, _adain, forbidden=NO_LIBRARY),
    "task2_tests": Judge(_linear_inputs, _linear, forbidden=NO_LIBRARY),
    "task3_tests": Judge(_modconv_inputs, _modconv, forbidden=NO_LIBRARY),
    "task4_tests": Judge(_mix_inputs, _mix, forbidden=NO_LIBRARY),
    "task5_tests": Judge(_truncation_inputs, _truncation, forbidden=NO_LIBRARY),
    "task6_tests": Judge(_r1_inputs, _r1, forbidden=NO_LIBRARY),
}
