"""UnpairedData: two domains, "A" and "B", with no pairing between them (CycleGAN's horses and zebras).

Each domain is any one-domain sampler (in-memory or streaming); `sample(n, domain="A")` draws from one.
"""
from __future__ import annotations

import torch

DOMAINS = ("A", "B")


class UnpairedData:
    """Two one-domain samplers behind one protocol; every `sample` call names its domain."""

    domains = DOMAINS

    def __init__(self, a, b, *, name: str, split: str | None = None) -> None:
        for label, side in zip(DOMAINS, (a, b)):
            if not hasattr(side, "sample") or getattr(side, "domains", None) is not None:
                raise TypeError(f"{name}: domain {label} must be a one-domain data set (InMemoryData or "
                                f"StreamingData); got {type(side).__name__}.")
        if a.kind != b.kind:
            raise ValueError(f"{name}: domain A holds {a.kind} and domain B holds {b.kind}; both must hold the same.")
        if a.device != b.device:
            raise ValueError(f"{name}: domain A is on {a.device} and domain B on {b.device}; "
                             "move both with UnpairedData(...).to(device).")
        self._sides = {"A": a, "B": b}
        self.name = name
        self.split = split if split is not None else a.split
        self.kind = a.kind
        self.num_classes = None  # the domains are the only grouping
        self.classes = None

    def domain(self, domain: str):
        """The one-domain sampler behind "A" or "B"."""
        return self._sides[self._check(domain)]

    def _check(self, domain) -> str:
        if domain is None:
            raise ValueError(f"{self.name} has two domains, {DOMAINS[0]!r} and {DOMAINS[1]!r}: "
                             "say which, e.g. sample(n, domain='A').")
        if domain not in DOMAINS:
            raise ValueError(f"{self.name} has domains 'A' and 'B'; got domain={domain!r}.")
        return domain

    # --- shape and place -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Images in the larger domain: one epoch, as the CycleGAN code counts it."""
        return max(len(side) for side in self._sides.values())

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, the same in both domains (else ask a domain: data.domain('A').shape)."""
        a, b = self._sides["A"].shape, self._sides["B"].shape
        if a != b:
            raise AttributeError(f"{self.name}: domain A has samples of shape {a} and domain B {b}; "
                                 "ask one domain, e.g. data.domain('A').shape.")
        return a

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self.kind != "images":
            raise AttributeError(f"{self.name} holds {self.kind}, not images; use .shape.")
        return self.shape  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self._sides["A"].device

    def to(self, device: torch.device | str, memory_format: torch.memory_format | None = None) -> UnpairedData:
        """A copy with both domains moved to `device` (memory_format as in InMemoryData.to)."""
        return type(self)(self._sides["A"].to(device, memory_format=memory_format),
                            self._sides["B"].to(device, memory_format=memory_format), name=self.name,
                            split=self.split)

    # --- sampling --------------------------------------------------------------------------------
    def sample(self, n: int, *, domain: str | None = None) -> torch.Tensor:
        """n samples from one domain, float32 (images in [-1, 1]) on `device`."""
        return self.domain(domain).sample(n)

    def sample_with_labels(self, n: int, *, domain: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples and their labels from one domain (that domain must have labels)."""
        return self.domain(domain).sample_with_labels(n)

    # --- display ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        a, b = self._sides["A"], self._sides["B"]
        return (f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, split={self.split!r}, "
                f"A: N={len(a)} shape={a.shape}, B: N={len(b)} shape={b.shape}, device={self.device})")


class PairedData(UnpairedData):
    """Two domains whose rows correspond: row i of B is the translation of row i of A (pix2pix's setting,
    or the hidden ground truth of a test split). `sample` still draws each domain on its own;
    `sample_pairs` draws matching rows."""

    paired = True

    def __init__(self, a, b, *, name: str, split: str | None = None) -> None:
        super().__init__(a, b, name=name, split=split)
        if len(a) != len(b):
            raise ValueError(f"{name}: paired domains need the same number of rows; A has {len(a)}, B {len(b)}.")
        if not hasattr(a, "_rows"):
            raise TypeError(f"{name}: paired domains must be in memory (InMemoryData), to draw matching rows.")

    def sample_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n pairs (a, b) drawn uniformly with replacement: b[i] is the translation of a[i]."""
        a = self.domain("A")
        rows = a._random_rows(n)
        return a._rows(rows), self.domain("B")._rows(rows)

    def pairs(self, rows: slice | torch.Tensor = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """The pairs at `rows` (all of them by default), in order: for measuring, not training."""
        return self.domain("A").x[rows], self.domain("B").x[rows]
