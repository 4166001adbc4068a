"""Judges of lesson 03 (gancourse.judging): reference answers, run in the grader's process."""
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.judging import Judge, Wrong

NO_LIBRARY_CONDITIONING = ("gancourse.models", "gancourse.train", "gancourse.widgets")


def _planes(y, num_classes, height, width):
    return F.one_hot(y, num_classes).float()[:, :, None, None].expand(-1, -1, height, width)


def _with_labels(z, y, num_classes):
    return torch.cat([z, F.one_hot(y, num_classes).to(z.dtype)], dim=1)


def _plane_cases(rng):
    return {"cases": [(torch.randint(7, (33,), generator=rng), 7, 5, 9), (torch.tensor([0]), 2, 1, 1),
                      (torch.randint(10, (4,), generator=rng), 10, 16, 16)]}


def _one_hot_planes(inputs, outputs, smoke):
    for (y, k, h, w), got in zip(inputs["cases"], outputs["planes"], strict=True):
        expected = _planes(y, k, h, w)
        if not torch.is_tensor(got) or got.shape != expected.shape or not torch.equal(got.float(), expected):
            raise Wrong(f"one_hot_planes is wrong for {len(y)} labels, {k} classes, {h}x{w} planes")


def _input_cases(rng):
    y = torch.randint(5, (17,), generator=rng)
    z = torch.randn(17, 11, generator=rng)
    return {"cases": [(z, y, 5), (z.double(), y, 5), (torch.zeros(2, 3), torch.tensor([9, 0]), 10)]}


def _generator_input(inputs, outputs, smoke):
    for (z, y, k), got in zip(inputs["cases"], outputs["values"], strict=True):
        expected = _with_labels(z, y, k)
        if not torch.is_tensor(got) or got.shape != expected.shape or not torch.allclose(got.double(), expected.double()):
            raise Wrong(f"generator_input is wrong for z of shape {tuple(z.shape)} and {k} classes")
        if got.dtype != z.dtype:
            raise Wrong(f"generator_input returned {got.dtype} for z in {z.dtype}: keep z's dtype")


def _grid_cases(rng):
    return {"cases": [(5, 2, 6), (3, 4, 8), (int(torch.randint(2, 6, (1,), generator=rng)), 3, 4)]}


def _class_grid(inputs, outputs, smoke):
    if any(outputs["requires_grad"]):
        raise Wrong("class_grid's output tracks gradients: sample under torch.no_grad()")
    if list(outputs["shape"]) != [12, 1, 16, 16]:
        raise Wrong(f"class_grid(G, 3, 4, 8) with a 16x16 generator gave shape {outputs['shape']}, expected (12, 1, 16, 16)")
    for (k, n, zd), grid in zip(inputs["cases"], outputs["grids"], strict=True):
        if not torch.is_tensor(grid) or tuple(grid.shape) != (k * n, 1, 2, zd):
            raise Wrong(f"class_grid(G, {k}, {n}, {zd}) returned the wrong number of images")
        labels = grid[:, 0, 1, 0].round().long()
        if not torch.equal(labels, torch.arange(k).repeat_interleave(n)):
            raise Wrong("class_grid should ask for class r in row r: labels 0,...,0, 1,...,1, ...")
        z = grid[:, 0, 0].view(k, n, zd)
        if not torch.equal(z, z[:1].expand(k, -1, -1)):
            raise Wrong("each column of class_grid should reuse one z in every row")
        if n > 1 and torch.allclose(z[0, 0], z[0, 1]):
            raise Wrong("the columns of class_grid share one z: draw per_class different z")


class _G(nn.Module):
    """The lesson's TinyConditionalG, with the reference forward."""

    def __init__(self, z_dim=32, num_classes=10, size=16):
        super().__init__()
        self.z_dim, self.num_classes, self.size = z_dim, num_classes, size
        self.net = nn.Sequential(
            nn.Linear(z_dim + num_classes, 64 * (size // 4) ** 2), nn.ReLU(),
            nn.Unflatten(1, (64, size // 4, size // 4)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z, y):
        return self.net(_with_labels(z, y, self.num_classes))


class _D(nn.Module):
    """The lesson's TinyConditionalD, with the reference forward."""

    def __init__(self, num_classes=10, size=16):
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(
            nn.Conv2d(1 + num_classes, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 1),
        )

    def forward(self, x, y):
        return self.net(torch.cat([x, _planes(y, self.num_classes, x.shape[2], x.shape[3]).to(x.dtype)], 1)).flatten()


def _network_inputs(rng):
    y = torch.arange(500) % 10
    return {"z": torch.randn(500, 32, generator=rng), "y": y, "x": torch.rand(500, 1, 16, 16, generator=rng) * 2 - 1}


def _load(net: nn.Module, state, name: str) -> nn.Module:
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as err:
        raise Wrong(f"the trained {name} does not have the layers the task gives ({str(err).splitlines()[0][:100]})") from None
    return net.eval()


def _trained(inputs, outputs, smoke):
    G, D = _load(_G(), outputs["G"], "generator"), _load(_D(), outputs["D"], "discriminator")
    with torch.no_grad():
        images, logits = G(inputs["z"], inputs["y"]), D(inputs["x"], inputs["y"])
    if not torch.is_tensor(outputs["g_out"]) or not torch.allclose(outputs["g_out"], images, atol=1e-4):
        raise Wrong("TinyConditionalG.forward does not give the images the task asks for: "
                    "G(z, y) = net(generator_input(z, y, num_classes))")
    if not torch.is_tensor(outputs["d_out"]) or not torch.allclose(outputs["d_out"], logits, atol=1e-4):
        raise Wrong("TinyConditionalD.forward does not give the logits the task asks for: label planes stacked "
                    "onto the image, then net, flattened to (N,)")
    if smoke:
        return
    from gancourse.metrics import class_accuracy, feature_classifier

    accuracy = class_accuracy(images, inputs["y"], feature_classifier("digits", 16, device="cpu"))
    if accuracy < 0.8:
        raise Wrong(f"class accuracy {100 * accuracy:.0f}% of 500 samples; the task asks for at least 80%")


# -- task 5: D* when the fake labels are uniform ----------------------------------------------------------
def _label_shares(rng):
    cases = []
    for classes in (3, 5, 10):
        shares = torch.rand(classes, generator=rng) + 0.05
        cases.append((shares / shares.sum()).double())
    with_gap = torch.rand(4, generator=rng).double() + 0.1
    with_gap[int(torch.randint(4, (1,), generator=rng))] = 0.0  # a class no real image has
    cases.append(with_gap / with_gap.sum())
    return {"cases": cases}


def _best_d_at_perfect_g(inputs, outputs, smoke):
    from gancourse.checks.lesson03 import label_share_problem

    for shares, got in zip(inputs["cases"], outputs["values"], strict=True):
        problem = label_share_problem(got, shares)
        if problem:
            raise Wrong(problem)


JUDGES = {
    "task1_tests": Judge(_plane_cases, _one_hot_planes, forbidden=NO_LIBRARY_CONDITIONING),
    "task2_tests": Judge(_input_cases, _generator_input, forbidden=NO_LIBRARY_CONDITIONING),
    "task3_tests": Judge(_grid_cases, _class_grid, forbidden=NO_LIBRARY_CONDITIONING),
    # the task trains with the course's Trainer: only the library's conditional networks are off limits
    "task4_tests": Judge(_network_inputs, _trained, forbidden=("gancourse.models",)),
    "task5_tests": Judge(_label_shares, _best_d_at_perfect_g),
}
