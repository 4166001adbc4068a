"""Checks for lesson 03, the conditional GAN. Each takes the student's code and explains a wrong answer."""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.checks import CheckFailed, keeps_rng, call, expect_tensor, passed
from gancourse.models.cgan import check_labels


# -- what the checks compare with ----------------------------------------------------------------
def _planes(y: torch.Tensor, num_classes: int, height: int, width: int) -> torch.Tensor:
    """(N, C, H, W) float planes: plane y[i] of image i all ones, every other plane zeros."""
    return F.one_hot(y, num_classes).float()[:, :, None, None].expand(-1, -1, height, width)


def _with_labels(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[z; one_hot(y)]: the noise with the one-hot label appended, (N, z_dim + C)."""
    return torch.cat([z, F.one_hot(y, num_classes).to(z.dtype)], dim=1)


# -- task 1: label planes for D ---------------------------------------------------------------------
def _planes_with_ones(image: torch.Tensor) -> list[int]:
    return [c for c in range(image.shape[0]) if bool((image[c] == 1).all())]


def check_one_hot_planes(fn) -> None:
    """fn(y, num_classes, height, width) -> (N, C, H, W) float, plane y[i] of image i all ones."""
    y = torch.tensor([2, 0, 4, 4, 1])
    out = call(fn, y, 5, 3, 4, name="one_hot_planes")
    if torch.is_tensor(out):
        shape = tuple(out.shape)
        hints = {
            (5, 5): "These are the one-hot vectors (N, C); stretch each entry into an H x W plane, e.g. "
                    "one_hot[:, :, None, None].expand(-1, -1, height, width).",
            (5, 3, 4, 5): "The classes are in the last dimension (N, H, W, C); PyTorch images are (N, C, H, W): "
                          "the planes must be the channel dimension.",
            (5, 5, 4, 3): "Height and width are swapped: the planes must be (height, width) = (3, 4) here.",
            (5, 1, 3, 4): "One plane holding the label's value is not one-hot: make C planes, plane y all ones.",
        }
        if shape in hints:
            raise CheckFailed(f"one_hot_planes(y, 5, 3, 4) returned shape {shape}; expected (5, 5, 3, 4). "
                              + hints[shape])
    out = expect_tensor(out, "one_hot_planes", shape=(5, 5, 3, 4))
    if not out.is_floating_point():
        raise CheckFailed(f"one_hot_planes returned dtype {out.dtype}; the planes are stacked onto float images, "
                          "so return floats (add .float()).")
    expected = _planes(y, 5, 3, 4)
    for i in range(len(y)):
        if not torch.equal(out[i], expected[i]):
            found = _planes_with_ones(out[i])
            raise CheckFailed(f"image {i} has label {int(y[i])}, so its plane {int(y[i])} must be all ones and the "
                              f"other planes all zeros; your planes that are all ones: {found}. "
                              "F.one_hot(y, num_classes) gives the right pattern.")
    # A second call with other sizes catches hard-coded numbers.
    fixed = "use the arguments num_classes, height and width rather than fixed numbers."
    try:
        other = expect_tensor(call(fn, torch.tensor([9, 3]), 10, 2, 2, name="one_hot_planes"),
                              "one_hot_planes(tensor([9, 3]), 10, 2, 2)", shape=(2, 10, 2, 2))
    except CheckFailed as err:
        raise CheckFailed(f"{err} With 10 classes and 2x2 planes it fails: {fixed}") from None
    if not torch.equal(other.float(), _planes(torch.tensor([9, 3]), 10, 2, 2)):
        raise CheckFailed(f"one_hot_planes(tensor([9, 3]), 10, 2, 2) is wrong: {fixed}")
    passed("one_hot_planes makes C planes per image with plane y all ones: ready to stack onto the image")


# -- task 2: the label for G ------------------------------------------------------------------------
def check_generator_input(fn) -> None:
    """fn(z, y, num_classes) -> (N, z_dim + C): z followed by the one-hot label."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 6, generator=g).requires_grad_(True)
    y = torch.tensor([1, 0, 3, 3])
    out = call(fn, z, y, 4, name="generator_input")
    if torch.is_tensor(out):
        hints = {
            (4, 7): "You appended the label as one number; append the one-hot vector F.one_hot(y, num_classes), "
                    "so that no class looks 'between' two others.",
            (4, 4): "That is only the one-hot label; concatenate z and it with torch.cat([...], dim=1).",
            (4, 6): "That is z alone; append the one-hot label to it.",
        }
        if tuple(out.shape) in hints:
            raise CheckFailed(f"generator_input returned shape {tuple(out.shape)}; expected (4, 10). "
                              + hints[tuple(out.shape)])
    out = expect_tensor(out, "generator_input", shape=(4, 10))
    one_hot = F.one_hot(y, 4).float()
    if torch.allclose(out.detach(), torch.cat([one_hot, z.detach()], dim=1)):
        raise CheckFailed("the one-hot label comes first; put z first and the label after it: "
                          "torch.cat([z, one_hot], dim=1). The course's generators expect that order.")
    if not torch.allclose(out[:, :6].detach(), z.detach()):
        raise CheckFailed("the first z_dim columns of generator_input must be z itself, unchanged; "
                          "append the label after it with torch.cat([z, one_hot], dim=1).")
    for i in range(len(y)):
        if not torch.allclose(out[i, 6:].detach(), one_hot[i]):
            raise CheckFailed(f"row {i} has label {int(y[i])}, so its last 4 entries must be the one-hot vector "
                              f"{one_hot[i].tolist()}; yours are {[round(v, 3) for v in out[i, 6:].tolist()]}.")
    if out.grad_fn is None:
        raise CheckFailed("generator_input cut the gradient to z: don't detach z or go through NumPy; "
                          "G's training back-propagates through this input.")
    fixed = "use the num_classes argument, not a fixed number of classes."
    try:
        other = expect_tensor(call(fn, torch.zeros(2, 3), torch.tensor([9, 0]), 10, name="generator_input"),
                              "generator_input(zeros(2, 3), tensor([9, 0]), 10)", shape=(2, 13))
    except CheckFailed as err:
        raise CheckFailed(f"{err} With 10 classes it fails: {fixed}") from None
    if not torch.allclose(other.float(), _with_labels(torch.zeros(2, 3), torch.tensor([9, 0]), 10)):
        raise CheckFailed(f"generator_input(zeros(2, 3), tensor([9, 0]), 10) is wrong: {fixed}")
    passed("generator_input appends the one-hot label to z: (N, z_dim + C)")


# -- task 3: a class-grid sampler -------------------------------------------------------------------
class InputEcho(nn.Module):
    """A stand-in conditional generator whose 'image' shows its inputs: row 0 holds z, row 1 holds y.

    Output shape (N, 1, 2, z_dim). It has one parameter, so its output tracks gradients unless the
    caller switches them off.
    """

    def __init__(self, z_dim: int = 5, num_classes: int = 4, ignore_label: bool = False):
        super().__init__()
        self.z_dim, self.num_classes, self.ignore_label = z_dim, num_classes, ignore_label
        self.gain = nn.Parameter(torch.ones(()))
        self.calls = 0

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if not torch.is_tensor(z) or z.dim() != 2 or z.shape[1] != self.z_dim:
            shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
            raise ValueError(f"G expects z of shape (batch, {self.z_dim}) = (batch, z_dim); got {shape}")
        y = check_labels(y, self.num_classes, z.shape[0], z.device)
        label_row = (y.float() * (0 if self.ignore_label else 1))[:, None].expand(-1, self.z_dim)
        return torch.stack([z * self.gain, label_row], dim=1)[:, None]


@keeps_rng
def check_class_grid(fn) -> None:
    """fn(G, num_classes, per_class, z_dim) -> (num_classes * per_class, C, H, W), row r = class r,
    the same z down each column, no gradients."""
    C, K, Z = 4, 3, 5
    G = InputEcho(Z, C)
    torch.manual_seed(0)
    out = call(fn, G, C, K, Z, name="class_grid")
    if torch.is_tensor(out) and tuple(out.shape) == (C, K, 1, 2, Z):
        raise CheckFailed(f"class_grid returned shape {tuple(out.shape)}; flatten the first two dimensions to "
                          f"(num_classes * per_class, C, H, W) = ({C * K}, 1, 2, {Z}).")
    out = expect_tensor(out, "class_grid", shape=(C * K, 1, 2, Z))
    if out.requires_grad:
        raise CheckFailed("class_grid's images carry gradients: wrap the sampling in `with torch.no_grad():` "
                          "(a picture needs no gradients, and keeping them costs memory).")
    labels = out[:, 0, 1, 0].round().long()
    expected = torch.arange(C).repeat_interleave(K)
    if not torch.equal(labels, expected):
        if torch.equal(labels, torch.arange(C * K) % C):
            why = ("your images go 0, 1, 2, 3, 0, 1, ... (one class per column). The grid is read row by row: "
                   "first all per_class images of class 0, then class 1, ...; "
                   "torch.arange(num_classes).repeat_interleave(per_class) gives those labels.")
        elif len(set(labels.tolist())) == 1:
            why = f"every image was generated with label {int(labels[0])}; give row r the label r."
        else:
            why = f"the labels in order are {labels.tolist()}; expected {expected.tolist()}."
        raise CheckFailed(f"class_grid(G, num_classes={C}, per_class={K}, z_dim={Z}): {why}")
    codes = out[:, 0, 0, :].reshape(C, K, Z)
    if not all(torch.equal(codes[r], codes[0]) for r in range(C)):
        raise CheckFailed("each row uses different noise. Draw per_class codes once and reuse them in every row "
                          "(z.repeat(num_classes, 1)), so that a column shows the same style in every class and "
                          "only the label changes down a column.")
    if any(torch.equal(codes[0, i], codes[0, j]) for i in range(K) for j in range(i + 1, K)):
        raise CheckFailed("some columns use the same z: draw per_class different codes, e.g. "
                          "torch.randn(per_class, z_dim).")
    big = expect_tensor(call(fn, InputEcho(Z, 3), 3, 400, Z, name="class_grid"),
                        "class_grid(G, 3, 400, z_dim)", shape=(1200, 1, 2, Z))
    z = big[:400, 0, 0, :]
    if not (abs(float(z.mean())) < 0.15 and 0.85 < float(z.std()) < 1.15):
        raise CheckFailed(f"the codes have mean {float(z.mean()):.2f} and standard deviation {float(z.std()):.2f}; "
                          "G was trained on z ~ N(0, I): draw them with torch.randn.")
    passed(f"class_grid puts class r in row r and shares each column's z across classes ({C}x{K} grid)")


# -- task 4: the tiny conditional GAN --------------------------------------------------------------
@keeps_rng
def check_conditional_networks(G_class, D_class) -> None:
    """The student's forward methods: shapes, ranges, and that both networks use the label."""
    try:
        G, D = G_class(), D_class()
    except Exception as err:
        raise CheckFailed(f"building the networks with their default arguments raised {type(err).__name__}: {err}. "
                          "Leave the __init__ methods as they were given.") from err
    torch.manual_seed(0)
    G.eval()  # BatchNorm on running statistics: an image must not depend on the rest of the batch here
    n = 2 * G.num_classes
    z = torch.randn(n, G.z_dim)
    y = torch.arange(n) % G.num_classes
    shifted = (y + 1) % G.num_classes
    with torch.no_grad():
        x = call(G, z, y, name="TinyConditionalG.forward")
        size = getattr(G, "size", None)
        x = expect_tensor(x, "TinyConditionalG.forward", shape=(n, 1, size, size) if size else None)
        if x.min() < -1 - 1e-4 or x.max() > 1 + 1e-4:
            raise CheckFailed(f"G's images range over [{float(x.min()):.2f}, {float(x.max()):.2f}]; they must lie "
                              "in [-1, 1] like the data (self.net ends with tanh: use its output as it is).")
        if torch.allclose(x, call(G, z, shifted, name="TinyConditionalG.forward")):
            raise CheckFailed("G gives the same image for every label: feed generator_input(z, y, self.num_classes) "
                              "to self.net, not z alone.")
    G.train()
    x = x.clone().requires_grad_(True)
    logits = call(D, x, y, name="TinyConditionalD.forward")
    if torch.is_tensor(logits) and tuple(logits.shape) == (n, 1):
        raise CheckFailed(f"D returned shape {(n, 1)}; the course's losses expect one logit per image, shape "
                          f"({n},): add .flatten().")
    logits = expect_tensor(logits, "TinyConditionalD.forward", shape=(n,))
    with torch.no_grad():
        if torch.allclose(logits, call(D, x, shifted, name="TinyConditionalD.forward")):
            raise CheckFailed("D gives the same score whatever the label: stack "
                              "one_hot_planes(y, self.num_classes, H, W) onto x (torch.cat along dim=1) before self.net.")
    logits.sum().backward()
    if x.grad is None or not x.grad.abs().sum() > 0:
        raise CheckFailed("no gradient flows from D's logits back to the images: G learns through D, so don't "
                          "detach x inside D.")
    passed("TinyConditionalG and TinyConditionalD both use the label; shapes and ranges are right")


def check_trained_conditional_gan(trainer, min_accuracy: float | None = None) -> None:
    """The last task: the student's conditional GAN trained through the Trainer on labelled digits."""
    from gancourse.metrics import class_accuracy, feature_classifier, per_class_accuracy

    if not getattr(trainer.gan, "conditional", False):
        raise CheckFailed(f"trainer.gan is an unconditional {type(trainer.gan).__name__}; build it with "
                          "AdversarialGAN(G, D, ...) from conditional networks (G and D with num_classes), "
                          "so the step passes labels to both.")
    if trainer.step == 0:
        raise CheckFailed("the trainer has not trained yet: call trainer.fit() first")
    finite = all(math.isfinite(v) for r in trainer.history.records for k, v in r.items() if k.startswith("loss"))
    if not finite:
        raise CheckFailed("a loss became NaN or infinite during training: check the networks' outputs "
                          "(G ends with tanh, D returns raw logits).")
    data = trainer.data
    size = data.image_shape[-1]
    with warnings.catch_warnings():  # a graded cell must not write to stderr (nbgrader gives it 0 points)
        warnings.simplefilter("ignore")
        classifier = feature_classifier(data.name, size, device="cpu")
    labels = torch.arange(500) % trainer.gan.num_classes
    samples = trainer.sample(500, labels=labels)
    accuracy = class_accuracy(samples, labels, classifier)
    chance = 1 / trainer.gan.num_classes
    if min_accuracy is not None and accuracy < min_accuracy:
        per_class = per_class_accuracy(samples, labels, classifier)
        detail = ", ".join(f"{c}: {100 * a:.0f}%" for c, a in enumerate(per_class))
        raise CheckFailed(f"class accuracy {100 * accuracy:.0f}% after {trainer.step} steps; expected at least "
                          f"{100 * min_accuracy:.0f}% (chance is {100 * chance:.0f}%). Per class: {detail}. "
                          "Check that both networks use the label, then train for the full budget.")
    passed(f"trained {trainer.step} steps: the classifier recognises the requested class in "
           f"{100 * accuracy:.0f}% of 500 samples (chance {100 * chance:.0f}%)")


# -- task 5: the best discriminator when the label shares differ ------------------------------------------
LABEL_SHARE_CASES = [[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [0.5, 0.3, 0.2], [0.7, 0.3],
                     [0.25, 0.0, 0.45, 0.3], [0.097, 0.101, 0.099, 0.102, 0.1, 0.1, 0.101, 0.1, 0.1, 0.1]]


def best_d_with_uniform_fake_labels(shares: torch.Tensor) -> torch.Tensor:
    """D*(x, y) for every class y when real labels have `shares`, fake labels are uniform and p_g(x|y) = q(x|y)."""
    shares = torch.as_tensor(shares, dtype=torch.float64)
    return shares / (shares + 1 / len(shares))


def label_share_problem(got, shares, name: str = "best_d_at_perfect_g") -> str | None:
    """What is wrong with `got` as D* per class for these real label shares (None: nothing). Shared with the judge."""
    shares = torch.as_tensor(shares, dtype=torch.float64)
    if isinstance(got, (list, tuple)):
        try:
            got = torch.tensor(got, dtype=torch.float64)
        except (TypeError, ValueError):
            return f"{name} returned {got!r}; return a 1-D tensor with one value per class"
    if not torch.is_tensor(got):
        return f"{name} returned {type(got).__name__}; return a 1-D tensor with one value per class"
    if tuple(got.shape) != (len(shares),):
        return (f"for {len(shares)} classes {name} returned shape {tuple(got.shape)}; return one value per class, "
                f"shape ({len(shares)},)")
    got = got.detach().double()
    if not torch.isfinite(got).all():
        return f"{name}({shares.tolist()}) returned non-finite values {got.tolist()}"
    want = best_d_with_uniform_fake_labels(shares)
    if torch.allclose(got, want, atol=1e-5):
        return None
    shown = f"{name}({[round(v, 3) for v in shares.tolist()]}) = {[round(v, 4) for v in got.tolist()]}"
    if torch.allclose(got, torch.full_like(got, 0.5), atol=1e-5):
        hint = ("1/2 would be right if the fake labels followed the real shares. Here G's labels are uniform, so "
                "the joint densities of (x, y) differ even though p_g(x|y) = q(x|y).")
    elif torch.allclose(got, 1 - want, atol=1e-5):
        hint = "that is 1 - D*: the probability that the pair is fake. D* is the probability that it is real."
    elif torch.allclose(got, shares, atol=1e-5):
        hint = "D* compares two joint densities, q(x, y) = pi_y q(x|y) and p(x, y) = p_g(x|y) / C, not one share."
    else:
        hint = ("write D*(x, y) = q(x, y) / (q(x, y) + p(x, y)) with q(x, y) = pi_y q(x|y) for the real pairs and "
                "p(x, y) = (1/C) p_g(x|y) for the generated ones, then use p_g(x|y) = q(x|y).")
    return f"{shown}: {hint}"


def check_best_d_at_perfect_g(fn) -> None:
    """fn(shares) -> D*(x, y) per class, for real label shares, uniform fake labels and a perfect G."""
    for shares in LABEL_SHARE_CASES:
        problem = label_share_problem(call(fn, torch.tensor(shares, dtype=torch.float64), name="best_d_at_perfect_g"),
                                      shares)
        if problem:
            raise CheckFailed(problem)
    passed(f"D* per class is right for all {len(LABEL_SHARE_CASES)} label distributions, a class without real "
           "images included")


__all__ = ["check_one_hot_planes", "check_generator_input", "check_class_grid", "check_conditional_networks",
           "check_trained_conditional_gan", "InputEcho", "check_best_d_at_perfect_g", "label_share_problem"]
