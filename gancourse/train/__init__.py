"""The shared training loop: a `GAN` says what one step does, the `Trainer` runs it."""
from gancourse.train.adversarial import AdversarialGAN
from gancourse.train.checkpoint import CheckpointError, load_checkpoint, save_atomic
from gancourse.train.ema import EMA, decay_for_half_life, standing_statistics
from gancourse.train.gan import GAN, frozen, sampling_mode
from gancourse.train.precision import Precision, choose_dtype, cpu_has_bf16, cuda_has_bf16
from gancourse.train.progan import ProGAN, blend_reals, growth_schedule, total_images
from gancourse.train.augment import AdaptiveAugment, augment
from gancourse.train.stylegan import StyleGAN, lazy_adam
from gancourse.train.translation import CycleGAN, ImagePool, Pix2Pix, lr_factor
from gancourse.train.trainer import History, NonFiniteLossError, StepContext, Trainer

__all__ = ["GAN", "AdversarialGAN", "Trainer", "History", "StepContext", "NonFiniteLossError", "EMA",
           "Precision", "choose_dtype", "cpu_has_bf16", "cuda_has_bf16", "decay_for_half_life", "frozen",
           "sampling_mode", "standing_statistics", "CheckpointError", "load_checkpoint", "save_atomic",
           "CycleGAN", "Pix2Pix", "ImagePool", "lr_factor", "ProGAN", "blend_reals", "growth_schedule",
           "total_images", "StyleGAN", "AdaptiveAugment", "augment", "lazy_adam"]
