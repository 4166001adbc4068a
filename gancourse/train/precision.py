"""Mixed precision: which autocast type a device gets, and loss scaling that survives n_critic loops.

bf16 has fp32's exponent range, so it needs no loss scaling, but it is only fast where the hardware
computes it natively: CUDA GPUs from Ampere on (compute capability 8.0; a T4 is 7.5, a V100 7.0) and
CPUs with AVX512-BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32. fp16 is native on every
CUDA GPU since Pascal but its range is small, so gradients are scaled up before backward and unscaled
before the step (a `GradScaler`). Autocast stays off on MPS.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 autocast is slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers renamed in a future torch: stay in fp32
        return False


def cuda_has_bf16(device: torch.device | None = None) -> bool:
    """Native bf16 on this CUDA GPU: compute capability 8.0 or newer (A100, RTX 30xx, L4, H100, ...).

    `torch.cuda.is_bf16_supported()` also answers True where bf16 is emulated (a T4, a V100), which
    is slower than fp16 there; the capability is what says whether the tensor cores take bf16.
    """
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def choose_dtype(device: torch.device, amp: bool | str | None, images: bool) -> torch.dtype | None:
    """The autocast dtype for `device`, or None for fp32.

    amp=None: CUDA gets native bf16, else fp16; a CPU gets bf16 for image data where it is native
    (small MLPs gain nothing); MPS and everything else fp32. amp=True: the same, for any data.
    amp=False: fp32. amp="bf16" / "fp16": that type, where autocast supports it on this device.
    """
    if amp is False:
        return None
    if isinstance(amp, str):
        if amp not in DTYPES:
            raise ValueError(f"amp={amp!r}: use None (automatic), True, False, 'bf16' or 'fp16'")
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"amp={amp!r} needs a CUDA GPU or the CPU; this Trainer runs on {device.type}. "
                             "Pass amp=None or amp=False.")
        return DTYPES[amp]
    if amp is not None and amp is not True:
        raise ValueError(f"amp={amp!r}: use None (automatic), True, False, 'bf16' or 'fp16'")
    if device.type == "cuda":
        return torch.bfloat16 if cuda_has_bf16(device) else torch.float16
    if device.type == "cpu" and cpu_has_bf16() and (images or amp is True):
        return torch.bfloat16
    return None


@dataclass
class Precision:
    """Autocast and optimiser steps for one Trainer; `StepContext` hands its methods to a GAN's step.

    With fp16 every optimiser gets a GradScaler of its own, and each `optimize` call is a complete
    scale -> backward -> step -> update cycle. A shared scaler would raise when one optimiser steps
    twice between two updates, which is exactly what n_critic > 1 or a lazy regulariser does.
    """

    device_type: str = "cpu"
    dtype: torch.dtype | None = None
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)

    @property
    def loss_scaling(self) -> bool:
        return self.dtype is torch.float16

    def autocast(self):
        """Autocast to `dtype` inside the block; a no-op in fp32."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, name: str,
                 retain_graph: bool = False) -> None:
        """Zero `optimizer`'s gradients, back-propagate `loss` and take one step (scaled in fp16)."""
        optimizer.zero_grad(set_to_none=True)
        if not self.loss_scaling:
            loss.backward(retain_graph=retain_graph)
            optimizer.step()
            return
        scaler = self.scalers.get(name)
        if scaler is None:
            scaler = self.scalers[name] = torch.amp.GradScaler(self.device_type)
        scaler.scale(loss).backward(retain_graph=retain_graph)
        scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        scaler.update()

    def describe(self) -> str:
        if self.dtype is None:
            return "fp32"
        name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return f"autocast {name}" + (" with loss scaling" if self.loss_scaling else "")

    def state_dict(self) -> dict:
        return {name: scaler.state_dict() for name, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict | None) -> None:
        if not self.loss_scaling or not state:
            return
        for name, scaler_state in state.items():
            scaler = self.scalers[name] = torch.amp.GradScaler(self.device_type)
            scaler.load_state_dict(scaler_state)
