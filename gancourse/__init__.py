"""gancourse: the helper library of a Jupyter-first course on generative adversarial networks."""
from gancourse.utils import pick_device, run_dir, save_figure, seed_everything, smoke_mode, to_display, torch_threads

__version__ = "0.1.0"

__all__ = ["pick_device", "run_dir", "save_figure", "seed_everything", "smoke_mode", "to_display", "torch_threads",
           "__version__"]
