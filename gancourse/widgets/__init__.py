"""Notebook views over training state; each has a headless path chosen by an explicit flag."""
from gancourse.widgets.dashboard import Dashboard
from gancourse.widgets.classes import ClassPicker, ClassState, class_grid
from gancourse.widgets.latent import LatentExplorer, LatentState, interpolate
from gancourse.widgets.plots import figure_to_png, plot_curves, plot_samples
from gancourse.widgets.stability import LabRun, StabilityLab
from gancourse.widgets.growth import GrowthExplorer, GrowthState
from gancourse.widgets.styles import StyleExplorer, StyleState
from gancourse.widgets.translation import TranslationExplorer, TranslationState

__all__ = ["Dashboard", "figure_to_png", "plot_curves", "plot_samples",
           "LatentExplorer", "LatentState", "interpolate", "ClassPicker", "ClassState", "class_grid",
           "StabilityLab", "LabRun", "TranslationExplorer", "TranslationState",
           "GrowthExplorer", "GrowthState", "StyleExplorer", "StyleState"]
