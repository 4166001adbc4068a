"""Notebook views over training state; each has a headless path chosen by an explicit flag."""
from gancourse.widgets.dashboard import Dashboard
from gancourse.widgets.explore import (ClassPicker, ClassState, LatentExplorer, LatentState, class_grid,
                                       interpolate)
from gancourse.widgets.plots import figure_to_png, plot_curves, plot_samples
from gancourse.widgets.stability import LabRun, StabilityLab

__all__ = ["Dashboard", "figure_to_png", "plot_curves", "plot_samples",
           "LatentExplorer", "LatentState", "interpolate", "ClassPicker", "ClassState", "class_grid",
           "StabilityLab", "LabRun"]
