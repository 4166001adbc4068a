"""The one training loop every lesson uses."""
from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gancourse.train.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from gancourse.train.ema import EMA, decay_for_half_life, ramped_decay, standing_statistics
from gancourse.train.gan import GAN, as_rng
from gancourse.train.precision import Precision, choose_dtype
from gancourse.utils import describe_device, is_main_process, pick_device, progress_bar, seed_everything, smoke_mode


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step and the loss."""


@dataclass
class StepContext:
    """What a `GAN.train_step` gets from the Trainer: data, batch size, how far training has gone,
    and the precision tools (`autocast()`, `optimize(loss, optimizer)`).

    total_steps / seconds: the budget (either may be None); `fraction` is the share of it spent
    before this step, in [0, 1], for schedules such as a learning-rate decay or a fade-in.
    """

    data: object
    batch_size: int
    step: int
    device: torch.device
    precision: Precision = field(default_factory=Precision)
    total_steps: int | None = None
    seconds: float | None = None
    elapsed: float = 0.0
    optimizer_names: dict[int, str] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """How much of the budget is spent: step / total_steps, or elapsed / seconds (the larger)."""
        done = [self.step / self.total_steps] if self.total_steps else []
        if self.seconds:
            done.append(self.elapsed / self.seconds)
        return min(1.0, max(done)) if done else 0.0

    def autocast(self):
        """Mixed precision inside the block where the Trainer chose it (see train/precision.py); else a no-op."""
        return self.precision.autocast()

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, retain_graph: bool = False):
        """Zero the optimiser's gradients, back-propagate `loss` and take one step (loss-scaled in fp16)."""
        name = self.optimizer_names.get(id(optimizer), f"optimizer-{id(optimizer)}")
        self.precision.optimize(loss, optimizer, name, retain_graph=retain_graph)


@dataclass
class History:
    """Metrics logged during training: one dict per logged step."""

    records: list[dict] = field(default_factory=list)
    interrupted: bool = False

    def append(self, record: dict) -> None:
        self.records.append(record)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(k for k in r if k not in ("step", "time")))
        return list(seen)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        rows = [r for r in self.records if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    def last(self, key: str | None = None):
        if not self.records:
            return None
        return self.records[-1] if key is None else self.records[-1].get(key)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:  # a notebook cell ending in fit() shows this, not thousands of records
        if not self.records:
            return "History(empty)"
        last = self.records[-1]
        shown = ", ".join(f"{k} {last[k]:.3g}" for k in self.keys() if k in last)
        return (f"History({len(self.records)} records up to step {last['step']}"
                + (", interrupted" if self.interrupted else "") + f"; last: {shown})")

    def state_dict(self) -> dict:
        return {"records": [dict(r) for r in self.records]}

    def load_state_dict(self, state: dict) -> None:
        self.records = [dict(r) for r in state["records"]]


class Trainer:
    """Runs a `GAN` for a step and/or time budget, with checkpoints, EMA, mixed precision and callbacks.

    steps: train until this many steps in total (a resumed run continues up to it).
    seconds: stop after this much wall time in this call to `fit`.
    checkpoint_dir: where `checkpoint.pt` is written every `checkpoint_every` steps, at the end and
        on interrupt; None turns checkpoints off.
    ema: decay of an exponential moving average of the GAN's generators (e.g. 0.999), or
    ema_half_life: the same given as a half-life in images (StyleGAN's convention; 10_000 at batch
        32 is a decay of 0.9978). `trainer.sample` then uses the average. ema_nets: which networks
        to average (default: the family's `generator_names`, e.g. both generators of a CycleGAN).
    ema_rampup: with ema_half_life, let the half-life grow with training: at most this share of the
        images seen so far (StyleGAN2-ADA's 0.05), so the average of a short run forgets its first
        steps as well as that of a long one does (lesson 01 uses it; the other lessons move to it in turn).
    seed: reseed every generator at the start of a fresh run (None leaves the RNG as it is).
    amp: mixed precision. None (default): native bf16 on CUDA GPUs that have it (Ampere and newer),
        fp16 with loss scaling on older ones (a T4, a V100); bf16 for image data on a CPU with native
        bf16 instructions (AVX512-BF16 or AMX), where a DCGAN step measured 1.7x faster
        (benchmarks/README.md); fp32 elsewhere. False: fp32. True, "bf16", "fp16": see
        `gancourse.train.precision.choose_dtype`.
    channels_last: keep conv weights and image batches NHWC. None (default) turns it on for image
        data on the CPU, where oneDNN's convolutions measured faster that way; on CUDA it is opt-in.

    Sampling (`sample`) follows the GAN's sampling contract (display mode: eval, no gradients); an
    EMA generator's BatchNorm statistics are re-measured for its current weights before it is sampled
    ("standing statistics"), since averaged weights have no statistics of their own.
    """

    def __init__(self, gan: GAN, data, *, steps: int | None = None, seconds: float | None = None,
                 batch_size: int = 64, device=None, seed: int | None = None, amp: bool | str | None = None,
                 ema: float | None = None, ema_half_life: float | None = None, ema_nets=None,
                 ema_rampup: float | None = None,
                 callbacks=(), log_every: int = 10, checkpoint_dir: str | Path | None = None,
                 checkpoint_every: int = 500, progress: bool | None = None, channels_last: bool | None = None,
                 verbose: bool = True):
        if steps is None and seconds is None:
            raise ValueError("give the Trainer a budget: steps=<int>, seconds=<float>, or both")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if ema is not None and ema_half_life is not None:
            raise ValueError("give the EMA as a decay (ema=0.999) or as a half-life in images "
                             "(ema_half_life=10_000), not both")
        self.gan = gan
        self.max_steps = steps
        self.seconds = seconds
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.seed = seed
        self.log_every = max(1, log_every)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.callbacks = list(callbacks)
        if progress is None:  # a live dashboard already shows progress; CI logs want no bar
            progress = not smoke_mode() and not any(getattr(cb, "shows_progress", False) for cb in callbacks)
        self.progress = progress and is_main_process()
        self.verbose = verbose and is_main_process()
        self.history = History()
        self.step = 0
        self.elapsed = 0.0  # training seconds over all fit() calls, resumes included

        images = getattr(data, "kind", None) == "images"
        kind = self.device.type if self.device.type in ("cpu", "cuda") else "cpu"
        self.precision = Precision(kind, choose_dtype(self.device, amp, images))
        if channels_last is None:
            channels_last = images and self.device.type == "cpu"
        # NHWC is a layout of 4-D image batches; it means nothing for points.
        self.channels_last = bool(channels_last) and images and self.device.type in ("cpu", "cuda")
        memory_format = torch.channels_last if self.channels_last else None
        self.gan.to(self.device, memory_format=memory_format)
        if hasattr(data, "to"):  # once here, so no batch changes device or layout inside a step
            data = data.to(self.device, memory_format=memory_format) if memory_format else data.to(self.device)
        self.data = data

        if ema_rampup is not None and ema_half_life is None:
            raise ValueError("ema_rampup lets a half-life grow with training; give ema_half_life=<images> with it")
        if ema_half_life is not None:
            ema = decay_for_half_life(ema_half_life, batch_size)
            ramped_decay(ema_half_life, batch_size, 0, ema_rampup)  # a bad ramp-up fails here, not mid-run
        self.ema_decay = ema
        self.ema_half_life, self.ema_rampup = ema_half_life, ema_rampup
        self.ema_nets = tuple(ema_nets) if ema_nets is not None else tuple(gan.generator_names)
        self.ema: EMA | None = None
        self._stop_requested = False
        self._fitting = False  # live views during fit measure standing statistics on fewer batches

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype in use (None: fp32)."""
        return self.precision.dtype

    # -- public API ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "checkpoint.pt"

    def fit(self, resume: bool | str | Path = False) -> History:
        """Train until the budget is spent. resume=True continues from `checkpoint_dir` if a
        checkpoint is there; a path resumes from that file."""
        if resume:
            path = self.checkpoint_path if resume is True else Path(resume)
            if path is None:
                raise ValueError("resume=True needs checkpoint_dir=...; or pass resume=<checkpoint path>")
            if path.exists():
                self.load(path)
            elif self.verbose:
                print(f"gancourse: no checkpoint at {path} yet; starting from step 0")
        if self.step == 0 and self.seed is not None:
            seed_everything(self.seed)
        if self.verbose:
            print(f"gancourse: training on {describe_device(self.device)}, {self.precision.describe()}")
        self._follow_ema()
        self._fitting = True
        try:
            for cb in self.callbacks:
                _call(cb, "on_fit_start", self)
            self._run()
        finally:
            self._fitting = False
            if self.ema is not None:
                self.ema.stale = True  # measured again, on the full budget, for the final samples
        for cb in self.callbacks:
            _call(cb, "on_fit_end", self)
        return self.history

    def sample(self, n: int = 64, seed: int | None = 0, **inputs) -> torch.Tensor:
        """n generated samples on the CPU, from the EMA generators when there are any.

        With a seed, the same z is used every time, so successive calls show G's progress; the
        global RNG is never touched. `inputs` go to the GAN's `generate` (labels=..., z=..., ...).
        """
        return self.gan.generate(n, rng=seed, net=self.sampling_nets(), data=self.data, **inputs).float().cpu()

    def sampling_nets(self) -> dict[str, torch.nn.Module]:
        """The generators that `sample` runs: the EMA copies (statistics re-measured) or the live ones."""
        if self.ema is None:
            return {name: self.gan.nets[name] for name in self.gan.generator_names}
        self.ema.refresh_statistics(self._measure_statistics)
        return {**{name: self.gan.nets[name] for name in self.gan.generator_names}, **self.ema.nets}

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint atomically (default: checkpoint_dir/checkpoint.pt); only the main process writes."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint_dir was given; pass a path to save()")
        if not is_main_process():
            return None
        return save_atomic({
            "step": self.step, "elapsed": self.elapsed, "gan_class": type(self.gan).__qualname__,
            "gan": self.gan.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "history": self.history.state_dict(), "rng": rng_state(), "precision": self.precision.state_dict(),
        }, path)

    def load(self, path: str | Path) -> None:
        """Restore networks, optimisers, schedulers, EMA, history, loss scales and RNG from a checkpoint."""
        state = load_checkpoint(path, map_location=self.device)
        if state["gan_class"] != type(self.gan).__qualname__:
            raise ValueError(f"{path} holds a {state['gan_class']} but this Trainer trains a "
                             f"{type(self.gan).__qualname__}; resume with the same kind of GAN")
        self.gan.load_state_dict(state["gan"])
        self.gan.to(self.device)
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.history.load_state_dict(state["history"])
        if state["ema"] is not None:
            self._follow_ema()
            self.ema.load_state_dict(state["ema"])
        self.precision.load_state_dict(state.get("precision"))
        set_rng_state(state["rng"])
        if self.verbose:
            print(f"gancourse: resumed from {path} at step {self.step}")

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        start = time.perf_counter()
        elapsed_before = self.elapsed
        self.history.interrupted = False
        bar = progress_bar(total=self.max_steps, initial=self.step, disable=not self.progress,
                   desc=type(self.gan).__name__, dynamic_ncols=True)
        self._stop_requested = False
        restore = self._install_interrupt_handler()
        last_saved_step = None
        try:
            while not self._budget_spent(start):
                ctx = StepContext(self.data, self.batch_size, self.step, self.device, self.precision,
                                  self.max_steps, self.seconds, time.perf_counter() - start,
                                  {id(opt): name for name, opt in self.gan.opts.items()})
                self.gan.schedule(ctx)
                self._follow_ema()  # the schedule may have replaced a network (a growth step)
                metrics = self.gan.train_step(ctx)
                for scheduler in self.gan.schedulers.values():
                    scheduler.step()
                self.step += 1
                if self.ema is not None:
                    self.ema.update(self.gan.nets, self._ema_decay_now())
                self.elapsed = elapsed_before + time.perf_counter() - start

                logging = self.step % self.log_every == 0
                if logging or self.device.type != "cuda":  # on a GPU, check only when we sync anyway
                    values = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in metrics.items()}
                    self._guard(values)
                if logging:
                    self.history.append({"step": self.step, "time": round(self.elapsed, 4), **values})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k.startswith("loss")},
                                    refresh=False)
                    for cb in self.callbacks:
                        _call(cb, "on_step_end", self, self.step, values)
                bar.update(1)
                if self.checkpoint_dir and self.step % self.checkpoint_every == 0:
                    self.save()
                    last_saved_step = self.step
                if self._stop_requested:
                    self.history.interrupted = True
                    break
        except KeyboardInterrupt:  # a second interrupt, or one outside the main thread
            self.history.interrupted = True
        finally:
            restore()
            bar.close()
        path = None
        if self.checkpoint_dir is not None:
            path = self.checkpoint_path if last_saved_step == self.step else self.save()
        if self.history.interrupted:  # always said: the user asked for it and must know how to go on
            where = f"checkpoint saved to {path}" if path else "no checkpoint_dir, so it lives in this Trainer only"
            print(f"gancourse: interrupted at step {self.step}; {where}. Call fit(resume=True) to continue.")

    def _budget_spent(self, start: float) -> bool:
        if self.max_steps is not None and self.step >= self.max_steps:
            return True
        return self.seconds is not None and time.perf_counter() - start >= self.seconds

    def _guard(self, values: dict[str, float]) -> None:
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        name, value = next(iter(bad.items()))
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            saved = load_checkpoint(self.checkpoint_path)["step"]
            keep = f"The last good checkpoint (step {saved}) is kept at {self.checkpoint_path}."
        else:
            keep = "No checkpoint was written (set checkpoint_dir= to keep one)."
        raise NonFiniteLossError(
            f"{name} became {value} at step {self.step}; training stopped. {keep} "
            "Lower the learning rate or check the data range ([-1, 1]), then fit(resume=True).")

    def _ema_decay_now(self) -> float | None:
        """The decay of this step's EMA update: the fixed one, or the ramped half-life's."""
        if self.ema_rampup is None:
            return None
        return ramped_decay(self.ema_half_life, self.batch_size, self.step * self.batch_size, self.ema_rampup)

    def _follow_ema(self) -> None:
        if self.ema_decay is None:
            return
        if self.ema is None:
            self.ema = EMA(self.gan.nets, self.ema_nets, self.ema_decay)
        else:
            self.ema.follow(self.gan.nets)

    def _measure_statistics(self, name: str, net: torch.nn.Module, batches: int | None = None,
                            size: int = 256) -> int:
        """Standing statistics for one EMA generator, on inputs from the GAN's sampling contract.

        20 batches of 256 for final samples; 4 while training runs, so a dashboard that looks every few
        dozen steps costs little (4 batches already give every channel thousands of values).
        """
        if batches is None:
            batches = 2 if smoke_mode() else (4 if self._fitting else 20)
        device = next(net.parameters()).device

        def inputs(n: int, rng: torch.Generator) -> tuple:
            return self.gan.generator_inputs(n, rng=as_rng(rng), device=device, data=self.data,
                                             **self.gan.sampling_inputs(name))

        return standing_statistics(net, inputs, batches=batches, size=size)

    def _install_interrupt_handler(self):
        """First Ctrl-C / kernel interrupt: finish the step, save, stop. A second one: stop now."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self._stop_requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self._stop_requested = True

        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)


def _call(callback, method: str, *args) -> None:
    fn = getattr(callback, method, None)
    if fn is not None:
        fn(*args)
