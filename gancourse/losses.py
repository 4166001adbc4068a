"""GAN objectives as pure functions of discriminator outputs (logits unless said otherwise).

Each function takes tensors and returns a scalar tensor; none holds state. Taking logits rather
than probabilities lets us use the numerically stable `logsigmoid` / `softplus` forms.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy for D: -E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, eq. 1)."""
    # log D = logsigmoid(l); log(1 - D) = logsigmoid(-l)
    return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss E[log(1 - D(G(z)))]; its gradient vanishes when D wins."""
    return F.logsigmoid(-fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -E[log D(G(z))], the heuristic the GAN paper recommends."""
    return -F.logsigmoid(fake_logits).mean()


GENERATOR_LOSSES = {
    "saturating": generator_loss_saturating,
    "minimax": generator_loss_saturating,
    "nonsaturating": generator_loss_nonsaturating,
    "non-saturating": generator_loss_nonsaturating,
}


def generator_loss(name: str):
    """Look a generator loss up by name ("nonsaturating" or "saturating")."""
    try:
        return GENERATOR_LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown generator loss {name!r}; choose one of {sorted(set(GENERATOR_LOSSES))}"
        ) from None
