"""Judges of lesson 04 (gancourse.judging): reference answers, run in the grader's process."""
import torch

from gancourse import losses
from gancourse.judging import Judge, Wrong
from gancourse.models import MLPDiscriminator, MLPGenerator

NO_LIBRARY_LOSSES = ("gancourse.losses", "gancourse.train", "gancourse.compare")


def _close(got, expected, what: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    if not torch.is_tensor(got) or got.shape != expected.shape:
        raise Wrong(f"{what} returned {type(got).__name__} of the wrong shape, expected shape {tuple(expected.shape)}")
    if not torch.allclose(got.double(), expected.double(), rtol=rtol, atol=atol):
        raise Wrong(f"{what} gave {got.flatten()[:3].tolist()}, expected {expected.flatten()[:3].tolist()}")


def _scores(rng):
    r, f = torch.randn(10, generator=rng) * 5, torch.randn(7, generator=rng) * 5 + 2  # batches of different sizes
    return {"pairs": [(r, f), (torch.full((3,), 1e4), torch.full((3,), -1e4)), (f, r)]}


def _wasserstein(inputs, outputs, smoke):
    for (r, f), c, g in zip(inputs["pairs"], outputs["critic"], outputs["generator"], strict=True):
        _close(c, losses.critic_loss_wasserstein(r, f), "critic_loss")
        _close(g, losses.generator_loss_wasserstein(f), "generator_loss")


def _clip_inputs(rng):
    D = MLPDiscriminator((2,), hidden=32)
    for p in D.parameters():
        p.data = torch.randn(p.shape, generator=rng) * 0.05
    return {"state": D.state_dict(), "c": float(torch.rand((), generator=rng) * 0.02 + 0.005)}


def _clip(inputs, outputs, smoke):
    if outputs["same_objects"] is not True:
        raise Wrong("clip_weights replaced the parameters; clamp them in place so the optimiser keeps them")
    c = inputs["c"]
    for key, value in inputs["state"].items():
        _close(outputs["state"][key], value.clamp(-c, c), f"the clipped {key}")


def _penalty_inputs(rng):
    D = MLPDiscriminator((2,), hidden=16)
    return {"real": torch.randn(6, 1, 8, 8, generator=rng), "fake": torch.randn(6, 1, 8, 8, generator=rng),
            "norm": float(torch.rand((), generator=rng) * 3 + 1.5), "weight": float(torch.rand((), generator=rng) * 5 + 1),
            "mlp": D.state_dict(), "mlp_real": torch.randn(32, 2, generator=rng), "mlp_fake": torch.randn(32, 2, generator=rng)}


def _on_segments(x_hat, real, fake) -> torch.Tensor | None:
    """The per-sample eps with x_hat = eps * real + (1 - eps) * fake, or None when x_hat is not of that form."""
    d = (real - fake).flatten(1)
    eps = ((x_hat - fake).flatten(1) * d).sum(1) / (d * d).sum(1)
    rebuilt = eps.view(-1, *[1] * (real.dim() - 1)) * real + (1 - eps.view(-1, *[1] * (real.dim() - 1))) * fake
    if not torch.allclose(rebuilt, x_hat, atol=1e-4) or (eps < -1e-5).any() or (eps > 1 + 1e-5).any():
        return None
    return eps


def _penalty(inputs, outputs, smoke):
    expected = torch.tensor(inputs["weight"] * (inputs["norm"] - 1) ** 2)
    _close(outputs["linear"], expected, "gradient_penalty with a linear critic of gradient norm "
           f"{inputs['norm']:.3f}", rtol=1e-3)
    x_hat = outputs["x_hat"]
    if not torch.is_tensor(x_hat) or x_hat.shape != inputs["real"].shape:
        raise Wrong("the critic was not called on a batch of interpolates shaped like the real batch")
    eps = _on_segments(x_hat, inputs["real"], inputs["fake"])
    if eps is None:
        raise Wrong("x_hat is not eps * real + (1 - eps) * fake with one eps in [0, 1] per sample")
    if len(eps) > 1 and torch.allclose(eps, eps[:1].expand_as(eps)):
        raise Wrong("every sample got the same eps: draw one eps per sample")
    _close(outputs["quadratic"], ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean(),
           "gradient_penalty with a critic whose gradient is x", rtol=1e-3)
    for name, grad in outputs["grads"].items():
        if name.endswith("weight") and (grad is None or grad.abs().sum() == 0):
            raise Wrong(f"the penalty does not reach the critic's {name}: build it with create_graph=True")


# -- task 4: replay the student's step with the tensors it used ----------------------------------------
def _nets():
    return MLPGenerator(z_dim=2, out_shape=(2,), hidden=16), MLPDiscriminator((2,), hidden=16)


def _step_inputs(rng):
    cases = []
    for n_critic, gp_weight in ((3, 10.0), (1, 2.5)):
        G, D = _nets()
        cases.append({"G": G.state_dict(), "D": D.state_dict(), "n_critic": n_critic, "gp_weight": gp_weight,
                      "real": [torch.randn(32, 2, generator=rng) for _ in range(n_critic)],
                      "seed": int(torch.randint(1 << 30, (1,), generator=rng))})
    return {"cases": cases}


def _replay(case, run):
    """The reference step, fed the z and x_hat the student's step drew (their RNG order is theirs to choose)."""
    G, D = _nets()
    G.load_state_dict(case["G"])
    D.load_state_dict(case["D"])
    opt_G = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.9))
    opt_D = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.9))
    zs, xs = run["zs"], run["xs"]
    if len(zs) != case["n_critic"] + 1:
        raise Wrong(f"G was called {len(zs)} times in a step with n_critic = {case['n_critic']}; expected one call "
                    "per critic update and one for G's update")
    for k, real in enumerate(case["real"]):
        with torch.no_grad():
            fake = G(zs[k])
        found = [x for x in xs if x.shape == real.shape and not torch.equal(x, real) and not torch.allclose(x, fake)
                 and _on_segments(x, real, fake) is not None]
        if not found:
            raise Wrong(f"no interpolates between the real batch and G(z) reached the critic in critic update {k + 1}: "
                        "apply the gradient penalty to every critic update, on fresh real and fake batches")
        x_hat = found[0].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        gp = case["gp_weight"] * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss_d = losses.critic_loss_wasserstein(D(real), D(fake))
        opt_D.zero_grad()
        (loss_d + gp).backward()
        opt_D.step()
    loss_g = losses.generator_loss_wasserstein(D(G(zs[-1])))
    opt_G.zero_grad()
    loss_g.backward()
    opt_G.step()
    return G, D, loss_d.detach(), loss_g.detach()


def _train_step(inputs, outputs, smoke):
    with torch.random.fork_rng(devices=[]):
        for case, run in zip(inputs["cases"], outputs["runs"], strict=True):
            G, D, loss_d, loss_g = _replay(case, run)
            _close(torch.as_tensor(run["out"][0]), loss_d, "loss_D (the last critic loss, without the penalty)")
            _close(torch.as_tensor(run["out"][1]), loss_g, "loss_G")
            for name, key_, net in (("critic", "D", D), ("generator", "G", G)):
                for key, value in net.state_dict().items():
                    _close(run[key_][key], value, f"the {name}'s {key} after your step "
                           f"(n_critic = {case['n_critic']}, gp_weight = {case['gp_weight']})")


# -- task 5: W1 on a line --------------------------------------------------------------------------------------
def _line_samples(rng):
    n = int(torch.randint(20, 80, (1,), generator=rng))
    return {"cases": [(torch.randn(n, generator=rng) * 2, torch.rand(n, generator=rng) * 3 - 1),
                      (torch.randn(n, generator=rng), torch.randn(n, generator=rng) + 4),
                      (torch.randint(0, 3, (n,), generator=rng).double(), torch.randint(0, 3, (n,), generator=rng).double())]}


def _w1_on_a_line(inputs, outputs, smoke):
    from gancourse.checks.lesson04 import w1_problem

    for (x, y), got in zip(inputs["cases"], outputs["values"], strict=True):
        problem = w1_problem(got, x, y)
        if problem:
            raise Wrong(problem)


JUDGES = {
    "task1_tests": Judge(_scores, _wasserstein, forbidden=NO_LIBRARY_LOSSES),
    "task2_tests": Judge(_clip_inputs, _clip, forbidden=NO_LIBRARY_LOSSES),
    "task3_tests": Judge(_penalty_inputs, _penalty, forbidden=NO_LIBRARY_LOSSES),
    "task4_tests": Judge(_step_inputs, _train_step, forbidden=("gancourse.train", "gancourse.compare")),
    "task5_tests": Judge(_line_samples, _w1_on_a_line),
}
