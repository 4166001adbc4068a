"""The shared training loop: a `GAN` says what one step does, the `Trainer` runs it."""
from gancourse.train.checkpoint import CheckpointError, load_checkpoint, save_atomic
from gancourse.train.gan import GAN, ClassicGAN
from gancourse.train.trainer import History, NonFiniteLossError, StepContext, Trainer

__all__ = ["GAN", "ClassicGAN", "Trainer", "History", "StepContext", "NonFiniteLossError",
           "CheckpointError", "load_checkpoint", "save_atomic"]
