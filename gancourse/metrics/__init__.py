"""Sample-quality measures: mode coverage for toy mixtures; FID, KID, precision/recall and class accuracy
on the features of a small classifier trained on the lesson's data (offline, no Inception download);
errors against a hidden ground truth for translation (lesson 05); FID and SWD per growth stage (lesson 06)."""
from gancourse.metrics.classifier import FeatureClassifier, TrainConfig, feature_classifier
from gancourse.metrics.quality import (FIDEvaluator, checkerboard_energy, class_accuracy, fid, fid_from_features, kid, kid_from_features,
                                       per_class_accuracy, precision_recall, quality_report)
from gancourse.metrics.progressive import StageEvaluator, StageLog
from gancourse.metrics.swd import laplacian_pyramid, sliced_wasserstein, swd_per_level
from gancourse.metrics.translation import format_report, image_error, translate_all, translation_report
from gancourse.metrics.toy import CoverageTracker, ModeCoverage, mode_coverage

__all__ = ["CoverageTracker", "FIDEvaluator", "checkerboard_energy", "FeatureClassifier", "ModeCoverage", "TrainConfig", "class_accuracy",
           "feature_classifier", "fid", "fid_from_features", "kid", "kid_from_features", "mode_coverage",
           "per_class_accuracy", "precision_recall", "quality_report", "format_report", "image_error", "translate_all",
           "translation_report", "laplacian_pyramid", "sliced_wasserstein", "swd_per_level", "StageEvaluator", "StageLog"]
