"""Measures for image-to-image translation (lesson 05), where a test split knows the true partners.

- error against the truth: mean |G(x) - y| per pixel and channel, on a 0..1 intensity scale, for each
  test image x and its hidden partner y. Its yardstick is the copy baseline |x - y|: a translator that
  does nothing scores that.
- class kept: the share of translations that a classifier trained on the *target* domain reads as the
  source's class (the glyph survives the translation).
- cycle error: mean |F(G(x)) - x|, what the cycle loss trains; a small cycle error alone proves little.
- FID per target domain, with the target classifier's features, next to its real-vs-real floor.
"""
from __future__ import annotations

import torch

from gancourse.metrics.classifier import FeatureClassifier, feature_classifier
from gancourse.metrics.quality import FIDEvaluator, class_accuracy
from gancourse.models.cyclegan import check_image_batch

OTHER = {"A2B": "B2A", "B2A": "A2B"}
SIDES = {"A2B": ("A", "B"), "B2A": ("B", "A")}  # direction: (source domain, target domain)


def image_error(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute difference per pixel and channel, on the 0..1 display scale (images in [-1, 1])."""
    if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("image_error compares two image tensors (N, C, H, W) in [-1, 1]")
    check_image_batch(output, target.shape[1] if target.dim() == 4 else 3, what="output")
    if output.shape != target.shape:
        raise ValueError(f"image_error needs output and target of the same shape; got {tuple(output.shape)} "
                         f"and {tuple(target.shape)}")
    return float((output.float().cpu() - target.float().cpu()).abs().mean() / 2)


def translate_all(gan, images: torch.Tensor, direction: str = "A2B", *, net=None, batch: int = 250) -> torch.Tensor:
    """Translate every image (in batches, display mode); the result is on the CPU."""
    return torch.cat([gan.translate(chunk, direction, net=net).float().cpu() for chunk in images.split(batch)])


def _classifier(domain_data, size: int, classifiers: dict | None, side: str) -> FeatureClassifier | None:
    if classifiers is not None and side in classifiers:
        return classifiers[side]
    if domain_data.y is None:
        return None  # an unlabelled domain (a folder of photos): no class to keep
    return feature_classifier(domain_data.name, size)


def translation_report(gan, test, *, net=None, directions=("A2B", "B2A"), classifiers: dict | None = None,
                       evaluators: dict | None = None, fid: bool = True, batch: int = 250) -> dict[str, dict]:
    """Every measure, per direction, on a test split: {"A2B": {...}, "B2A": {...}}.

    test: a two-domain test split. With pairs (PairedData, e.g. load("glyphs", split="test")) the report
        has error / copy_error against the hidden truth; with labelled domains, class_kept and FID.
    net: the generators to run (e.g. trainer.sampling_nets()); None runs the live ones.
    classifiers, evaluators: per target domain ("A", "B"), to reuse them across calls (built if missing).
    A direction the model cannot run (pix2pix has no B2A) is left out.
    """
    if getattr(test, "domains", None) != ("A", "B"):
        raise TypeError(f"translation_report needs a two-domain test split such as load('glyphs', split='test'); "
                        f"got {type(test).__name__}")
    size = test.shape[-1]
    report: dict[str, dict] = {}
    for direction in directions:
        if direction not in SIDES:
            raise ValueError(f"directions are 'A2B' and 'B2A'; got {direction!r}")
        try:
            gan.generator_name({"direction": direction})
        except ValueError:
            continue
        src_side, dst_side = SIDES[direction]
        source_data, target_data = test.domain(src_side), test.domain(dst_side)
        source = source_data.x
        out = translate_all(gan, source, direction, net=net, batch=batch)
        row: dict[str, float] = {"n": len(source)}
        if getattr(test, "paired", False):
            truth = target_data.x
            row["error"], row["copy_error"] = image_error(out, truth), image_error(source, truth)
        try:
            back = translate_all(gan, out, OTHER[direction], net=net, batch=batch)
            row["cycle_error"] = image_error(back, source)
        except ValueError:  # a one-way model has no cycle
            pass
        clf = _classifier(target_data, size, classifiers, dst_side)
        if clf is not None and source_data.y is not None:
            row["class_kept"] = class_accuracy(out, source_data.y.cpu(), clf)
            if fid:
                evaluator = (evaluators or {}).get(dst_side) or FIDEvaluator(target_data.name, size, classifier=clf)
                scores = evaluator.score(out)
                row["fid"], row["fid_floor"] = scores["fid"], scores["fid_floor"]
        report[direction] = row
    return report


def format_report(report: dict[str, dict], label: str = "") -> str:
    """One line per direction, e.g. for printing several models one under another."""
    lines = []
    for direction, row in report.items():
        parts = [f"{label:<14}{direction}"] if label else [direction]
        if "error" in row:
            parts.append(f"error {row['error']:.4f} (copy {row['copy_error']:.4f})")
        if "class_kept" in row:
            parts.append(f"class kept {100 * row['class_kept']:5.1f}%")
        if "cycle_error" in row:
            parts.append(f"cycle {row['cycle_error']:.4f}")
        if "fid" in row:
            parts.append(f"FID {row['fid']:.2f} (floor {row['fid_floor']:.2f})")
        lines.append("  ".join(parts))
    return "\n".join(lines)
