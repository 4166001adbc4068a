"""The shared training loop: a `GAN` says what one step does, the `Trainer` runs it."""
from gancourse.train.checkpoint import CheckpointError, load_checkpoint, save_atomic
from gancourse.train.gan import GAN, ClassicGAN
from gancourse.train.trainer import History, NonFiniteLossError, StepContext, Trainer, standing_statistics

__all__ = ["GAN", "ClassicGAN", "Trainer", "History", "StepContext", "NonFiniteLossError",
           "CheckpointError", "standing_statistics", "load_checkpoint", "save_atomic"]
