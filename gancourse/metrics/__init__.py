"""Sample-quality measures: mode coverage for toy mixtures (FID, KID, precision/recall come with lesson 02)."""
from gancourse.metrics.toy import CoverageTracker, ModeCoverage, mode_coverage

__all__ = ["CoverageTracker", "ModeCoverage", "mode_coverage"]
