"""Judges of lesson 01 (gancourse.judging): the reference answers the hidden tests are compared with.

They live beside the solutions, which students neither install nor see in the grading sandbox, and run
in the grader's process on what the student's code returned for inputs drawn for that submission.
"""
import torch

from gancourse import losses
from gancourse.judging import Judge, Wrong

NO_LIBRARY_LOSSES = ("gancourse.losses", "gancourse.train", "gancourse.compare")


def _close(got, expected, what: str, atol: float = 1e-5) -> None:
    if not torch.is_tensor(got):
        raise Wrong(f"{what} returned {got!r}, not a tensor")
    if got.shape != expected.shape:
        raise Wrong(f"{what} returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if not torch.isfinite(got).all():
        raise Wrong(f"{what} returned a non-finite value on large logits; use F.logsigmoid")
    if not torch.allclose(got.double(), expected.double(), atol=atol, rtol=1e-4):
        raise Wrong(f"{what} gave {got.flatten()[:3].tolist()}, expected {expected.flatten()[:3].tolist()}")


def _logit_pairs(rng):
    a, b = torch.randn(33, generator=rng) * 4, torch.randn(20, generator=rng) * 4
    wide = torch.linspace(-40, 40, 81)
    return {"pairs": [(a, b), (wide, wide.flip(0)), (torch.zeros(7), torch.zeros(3)), (b, a)], "logits": [a, b, wide]}


def _discriminator_loss(inputs, outputs, smoke):
    for (r, f), got in zip(inputs["pairs"], outputs["values"], strict=True):
        _close(got, losses.discriminator_loss(r, f), "discriminator_loss")


def _generator_losses(inputs, outputs, smoke):
    for x, sat, non in zip(inputs["logits"], outputs["saturating"], outputs["nonsaturating"], strict=True):
        _close(sat, losses.generator_loss_saturating(x), "generator_loss_saturating")
        _close(non, losses.generator_loss_nonsaturating(x), "generator_loss_nonsaturating")


def _densities(rng):
    return {"pairs": [(torch.rand(5, 7, generator=rng) + 0.01, torch.rand(5, 7, generator=rng) + 0.01),
                      (torch.full((4,), 0.3), torch.full((4,), 0.3))]}


def _optimal_discriminator(inputs, outputs, smoke):
    for (pd, pg), got in zip(inputs["pairs"], outputs["values"], strict=True):
        _close(got, pd / (pd + pg), "optimal_discriminator")


# -- task 4: one step of Algorithm 1 -----------------------------------------------------------------
def _nets():
    G = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    D = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 1),
                            torch.nn.Flatten(0))
    return G, D


def _reference_step(G, D, opt_G, opt_D, real, z_dim):
    z = torch.randn(len(real), z_dim)
    loss_d = losses.discriminator_loss(D(real), D(G(z).detach()))
    opt_D.zero_grad()
    loss_d.backward()
    opt_D.step()
    z = torch.randn(len(real), z_dim)
    loss_g = losses.generator_loss_nonsaturating(D(G(z)))
    opt_G.zero_grad()
    loss_g.backward()
    opt_G.step()
    return loss_d, loss_g


def _run_steps(case, step):
    """What the hidden test does with the student's step, here with the reference step."""
    G, D = _nets()
    G.load_state_dict(case["G"])
    D.load_state_dict(case["D"])
    opt_G, opt_D = torch.optim.Adam(G.parameters(), 1e-2), torch.optim.Adam(D.parameters(), 1e-2)
    torch.manual_seed(case["seed"])
    out = [step(G, D, opt_G, opt_D, case["real"], 3) for _ in range(3)]
    return G.state_dict(), D.state_dict(), out


def _step_cases(rng):
    cases = []
    for _ in range(2):
        G, D = _nets()
        for p in [*G.parameters(), *D.parameters()]:
            p.data = torch.randn(p.shape, generator=rng) * 0.5
        cases.append({"G": G.state_dict(), "D": D.state_dict(), "real": torch.randn(16, 2, generator=rng),
                      "seed": int(torch.randint(1 << 30, (1,), generator=rng))})
    return {"cases": cases}


def _train_step(inputs, outputs, smoke):
    with torch.random.fork_rng(devices=[]):
        for case, got in zip(inputs["cases"], outputs["runs"], strict=True):
            G, D, expected = _run_steps(case, _reference_step)
            for (loss_d, loss_g), (got_d, got_g) in zip(expected, got["losses"], strict=True):
                _close(torch.as_tensor(got_d), loss_d.detach(), "loss_D of train_step")
                _close(torch.as_tensor(got_g), loss_g.detach(), "loss_G of train_step")
            for name, ref in (("D", D), ("G", G)):
                for key, value in ref.items():
                    _close(got[name][key], value, f"{name}'s weights after three of your steps")


# -- task 5: the trained GAN, rebuilt here from its weights ------------------------------------------
def _samples(rng):
    return {"z": torch.randn(2500, 2, generator=rng)}


def _trained_gan(inputs, outputs, smoke):
    from gancourse.data import load
    from gancourse.metrics import mode_coverage
    from gancourse.models import MLPGenerator

    G = MLPGenerator(z_dim=2, out_shape=(2,), hidden=256)
    try:
        G.load_state_dict(outputs["G"])
    except (RuntimeError, TypeError, KeyError) as err:
        raise Wrong("the trained generator is not MLPGenerator(z_dim=2, out_shape=(2,), hidden=256) as the task "
                    f"asks ({str(err).splitlines()[0][:120]})") from None
    with torch.no_grad():
        x = G.eval()(inputs["z"])
    if not torch.isfinite(x).all():
        raise Wrong("the trained generator outputs non-finite values")
    if smoke:
        return
    ring = load("ring8")
    score = mode_coverage(x, ring.centers, ring.sigma)
    if score.modes_covered < 6 or score.high_quality < 0.5:
        raise Wrong(f"{score}; the task asks for at least 6 modes and 50% high-quality samples")


# -- task 6: where D* is unsure ----------------------------------------------------------------------------
def _gaussians(rng):
    mus = (torch.rand(4, generator=rng) * 6 - 3).tolist()
    widths = (torch.rand(4, generator=rng) * 2.2 + 0.3).tolist()
    return {"cases": [(round(m, 3), round(s, 3)) for m, s in zip(mus, widths)] + [(round(mus[0], 3) or 0.5, 1.0)]}


def _unsure_points(inputs, outputs, smoke):
    from gancourse.checks.lesson01 import unsure_points_problem

    for (mu, s), got in zip(inputs["cases"], outputs["values"], strict=True):
        problem = unsure_points_problem(got, mu, s)
        if problem:
            raise Wrong(problem)


JUDGES = {
    "task1_tests": Judge(_logit_pairs, _discriminator_loss, forbidden=NO_LIBRARY_LOSSES),
    "task2_tests": Judge(_logit_pairs, _generator_losses, forbidden=NO_LIBRARY_LOSSES),
    "task3_tests": Judge(_densities, _optimal_discriminator, forbidden=NO_LIBRARY_LOSSES),
    "task4_tests": Judge(_step_cases, _train_step, forbidden=("gancourse.train", "gancourse.compare")),
    "task5_tests": Judge(_samples, _trained_gan),
    "task6_tests": Judge(_gaussians, _unsure_points),
}
