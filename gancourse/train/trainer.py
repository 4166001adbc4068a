"""The one training loop every lesson uses."""
from __future__ import annotations

import copy
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from gancourse.train.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from gancourse.train.gan import GAN
from gancourse.utils import describe_device, pick_device, seed_everything, smoke_mode


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step and the loss."""


@dataclass
class StepContext:
    """What a `GAN.train_step` gets from the Trainer: data, batch size, step and precision tools."""

    data: object
    batch_size: int
    step: int
    device: torch.device
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None

    def autocast(self):
        """Mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling); a no-op elsewhere."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, retain_graph: bool = False):
        """Zero the optimiser's gradients, back-propagate `loss` and take one step."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward(retain_graph=retain_graph)
            self.scaler.step(optimizer)
        else:
            loss.backward(retain_graph=retain_graph)
            optimizer.step()


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

    def state_dict(self) -> dict:
        return {"records": [dict(r) for r in self.records]}

    def load_state_dict(self, state: dict) -> None:
        self.records = [dict(r) for r in state["records"]]


class Trainer:
    """Runs a `GAN` for a step and/or time budget, with checkpoints, EMA, AMP and callbacks.

    steps: train until this many steps in total (a resumed run continues up to it).
    seconds: stop after this much wall time in this call to `fit`.
    checkpoint_dir: where `checkpoint.pt` is written every `checkpoint_every` steps, at the end and
        on interrupt; None turns checkpoints off.
    ema: decay of an exponential moving average of G (e.g. 0.999); `trainer.sample` then uses it.
        Only the weights are averaged. At the end of every `fit` (and after `load`) the EMA copy's
        BatchNorm statistics are re-measured on its own activations ("standing statistics", see
        `standing_statistics`), so it can also be run in eval mode.
    seed: reseed every generator at the start of a fresh run (None leaves the RNG as it is).
    amp: mixed precision (autocast). None (default): on CUDA (bf16, or fp16 with loss scaling), and
        bf16 for image data on a CPU with native bf16 instructions (AVX512-BF16 or AMX), where a DCGAN
        step measured 1.7x faster (benchmarks/README.md); off elsewhere. False: always fp32.
    channels_last: keep conv weights and image batches NHWC. None (default) turns it on for image
        data on the CPU, where oneDNN's convolutions measured faster that way (benchmarks/README.md);
        on CUDA it is opt-in.
    """

    def __init__(self, gan: GAN, data, *, steps: int | None = None, seconds: float | None = None,
                 batch_size: int = 64, device=None, seed: int | None = None, amp: bool | None = None,
                 ema: float | None = None, callbacks=(), log_every: int = 10,
                 checkpoint_dir: str | Path | None = None, checkpoint_every: int = 500,
                 progress: bool | None = None, channels_last: bool | None = None, verbose: bool = True):
        if steps is None and seconds is None:
            raise ValueError("give the Trainer a budget: steps=<int>, seconds=<float>, or both")
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
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
        self.progress = progress
        self.verbose = verbose
        self.history = History()
        self.step = 0
        self.elapsed = 0.0  # training seconds over all fit() calls, resumes included

        images = _is_image_data(data)
        if amp is None:  # on where it measured faster: CUDA, and image data on a CPU with bf16 instructions
            amp = self.device.type == "cuda" or (images and self.device.type == "cpu" and cpu_has_bf16())
        self.amp_dtype = None
        self.scaler = None
        if amp and self.device.type == "cuda":
            if torch.cuda.is_bf16_supported():
                self.amp_dtype = torch.bfloat16  # same range as fp32: no loss scaling needed
            else:
                self.amp_dtype = torch.float16
                self.scaler = torch.amp.GradScaler("cuda")
        elif amp and self.device.type == "cpu":
            self.amp_dtype = torch.bfloat16  # the CPU autocast type; fp16 has no fast CPU kernels
        if channels_last is None:
            channels_last = images and self.device.type == "cpu"
        self.channels_last = bool(channels_last) and self.device.type in ("cpu", "cuda")

        self.gan.to(self.device, memory_format=torch.channels_last if self.channels_last else None)
        self.data = data.to(self.device) if hasattr(data, "to") else data
        if self.channels_last and images:  # once here, so no batch changes layout inside a step
            self.data = _channels_last_copy(self.data)
        self.ema_decay = ema
        self.ema = None
        self._ema_source = None
        self._stop_requested = False

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
            print(f"gancourse: training on {describe_device(self.device)}"
                  + (f", autocast {str(self.amp_dtype).replace('torch.', '')}" if self.amp_dtype else ""))
        self._sync_ema()
        for cb in self.callbacks:
            _call(cb, "on_fit_start", self)
        self._run()
        for cb in self.callbacks:
            _call(cb, "on_fit_end", self)
        return self.history

    def sample(self, n: int = 64, seed: int | None = 0) -> torch.Tensor:
        """n generated samples on the CPU (from the EMA generator when there is one).

        With a seed, the same z is used every time, so successive calls show G's progress. The
        global RNG and BatchNorm's stored statistics are left untouched, so looking at samples never
        changes the training run. G runs as it trains (train mode: BatchNorm uses the batch's statistics).
        """
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        devices = [self.device] if self.device.type == "cuda" else []
        net = self.ema.module if self.ema else self.gan.generator
        with torch.random.fork_rng(devices=devices), _statistics_kept(net):
            return self.gan.generate(n, generator_net=net, rng=rng).float().cpu()

    def refresh_ema_statistics(self, batches: int | None = None, size: int = 256) -> None:
        """Re-measure the BatchNorm statistics of the EMA generator (no-op without EMA or BatchNorm)."""
        if self.ema is None:
            return
        if batches is None:
            batches = 2 if smoke_mode() else 20
        standing_statistics(self.gan, self.ema.module, batches=batches, size=size)

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default: checkpoint_dir/checkpoint.pt)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint_dir was given; pass a path to save()")
        return save_atomic({
            "step": self.step, "elapsed": self.elapsed, "gan_class": type(self.gan).__qualname__,
            "gan": self.gan.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "history": self.history.state_dict(), "rng": rng_state(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
        }, path)

    def load(self, path: str | Path) -> None:
        """Restore networks, optimisers, EMA, history and RNG from a checkpoint."""
        state = load_checkpoint(path, map_location=self.device)
        if state["gan_class"] != type(self.gan).__qualname__:
            raise ValueError(f"{path} holds a {state['gan_class']} but this Trainer trains a "
                             f"{type(self.gan).__qualname__}; resume with the same kind of GAN")
        self.gan.load_state_dict(state["gan"])
        self.gan.to(self.device)
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.history.load_state_dict(state["history"])
        if state["ema"] is not None:
            self._sync_ema(force=True)
            self.ema.load_state_dict(state["ema"])
            self.refresh_ema_statistics()
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if self.verbose:
            print(f"gancourse: resumed from {path} at step {self.step}")

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        start = time.perf_counter()
        elapsed_before = self.elapsed
        self.history.interrupted = False
        bar = tqdm(total=self.max_steps, initial=self.step, disable=not self.progress,
                   desc=type(self.gan).__name__, dynamic_ncols=True)
        self._stop_requested = False
        restore = self._install_interrupt_handler()
        last_saved_step = None
        try:
            while not self._budget_spent(start):
                ctx = StepContext(self.data, self.batch_size, self.step, self.device, self.amp_dtype, self.scaler)
                self.gan.schedule(ctx)
                self._sync_ema()  # the schedule may have replaced G (ProGAN growth)
                metrics = self.gan.train_step(ctx)
                if self.scaler is not None:
                    self.scaler.update()
                self.step += 1
                if self.ema is not None:
                    self.ema.update_parameters(self.gan.generator)
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
        self.refresh_ema_statistics()
        path = None
        if self.checkpoint_dir is not None:
            fresh = last_saved_step == self.step and self.ema is None  # else the EMA's statistics just changed
            path = self.checkpoint_path if fresh else self.save()
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

    def _sync_ema(self, force: bool = False) -> None:
        if self.ema_decay is None:
            return
        generator = self.gan.generator
        if force or self._ema_source is not generator:
            # use_buffers=False: average the weights only. Averaging BatchNorm's running statistics
            # too would give statistics of many past generators, none of which is the average one.
            self.ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay),
                                     use_buffers=False)
            self._ema_source = generator

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


@torch.no_grad()
def standing_statistics(gan: GAN, net: torch.nn.Module | None = None, batches: int = 20, size: int = 256,
                        seed: int = 0) -> int:
    """Re-measure the BatchNorm running statistics of `net` (default: the GAN's generator).

    The statistics stored during training describe the activations of the weights at each step;
    for an averaged (EMA) generator they describe none of them. BigGAN (Brock et al. 2018,
    arXiv 1809.11096) re-estimates them before sampling, "standing statistics": reset every
    BatchNorm layer, run the network in train mode on `batches` batches of fresh noise (and
    labels, through `gan.generate`), and keep the plain average. The global RNG is untouched, so
    calling this never changes a training run. Returns the number of BatchNorm layers updated.
    """
    net = gan.generator if net is None else net
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = net.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over the batches below
    net.train()
    rng = torch.Generator().manual_seed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            for _ in range(batches):
                gan.generate(size, generator_net=net, rng=rng)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.train(was_training)
    return len(norms)


@contextmanager
def _statistics_kept(net: torch.nn.Module):
    """Run `net` in train mode without BatchNorm updating its running statistics (momentum 0)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield net
    finally:
        for m, (momentum, count) in zip(norms, saved):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 autocast is slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers renamed in a future torch: stay in fp32
        return False


def _is_image_data(data) -> bool:
    x = getattr(data, "x", None)
    return torch.is_tensor(x) and x.dim() == 4


def _channels_last_copy(data):
    """A shallow copy of `data` whose image tensor `x` is stored NHWC (the caller's object is untouched)."""
    if data.x.is_contiguous(memory_format=torch.channels_last):
        return data
    data = copy.copy(data)
    data.x = data.x.contiguous(memory_format=torch.channels_last)
    return data


def _call(callback, method: str, *args) -> None:
    fn = getattr(callback, method, None)
    if fn is not None:
        fn(*args)
