"""Geometric forensics: physics-of-image-formation tests for generated images (Farid 2022).

- Lighting: do the cast and attached shadows agree on one point light? Linear programming
  over the projected light position, both projective cases (light in front of / behind the
  camera); when not, the smallest set of constraints whose removal restores consistency.
  Farid, "Lighting (in)consistency of paint by text", arXiv 2207.13744.
- Perspective: vanishing points of groups of parallel lines, per-segment residuals, the camera
  implied by orthogonal vanishing points and the horizon; an automatic mode that finds the
  lines itself (Hough + RANSAC) and scores a folder without annotations; the ``perspective``
  detector in :mod:`fakebench.detectors.perspective` wraps it.
  Farid, "Perspective (in)consistency of paint by text", arXiv 2206.14617.

Typical use::

    from fakebench.forensics import load_lighting, analyze_lighting, lighting_figure
    ann = load_lighting("shadows.json", image_size=(W, H))
    res = analyze_lighting(ann)
    print(res.verdict()); lighting_figure(res, image, "lighting.png")
"""

from __future__ import annotations

from .annotations import (
    AttachedShadow,
    CastShadow,
    LightingAnnotations,
    LineGroup,
    PerspectiveAnnotations,
    Segment,
    load_lighting,
    load_perspective,
    parse_lighting,
    parse_perspective,
)
from .auto import AutoConfig, analyze_perspective_auto, detect_segments, find_vanishing_points
from .figures import lighting_figure, perspective_figure
from .lighting import LightingResult, analyze_lighting
from .perspective import (
    Calibration,
    GroupResult,
    PerspectiveResult,
    analyze_groups,
    analyze_perspective,
    calibrate,
    horizon_from_vertical,
    horizon_through,
    vanishing_point,
)

__all__ = [
    "AttachedShadow", "CastShadow", "LightingAnnotations", "LineGroup", "PerspectiveAnnotations", "Segment",
    "load_lighting", "load_perspective", "parse_lighting", "parse_perspective",
    "AutoConfig", "analyze_perspective_auto", "detect_segments", "find_vanishing_points",
    "lighting_figure", "perspective_figure",
    "LightingResult", "analyze_lighting",
    "Calibration", "GroupResult", "PerspectiveResult", "analyze_groups", "analyze_perspective", "calibrate",
    "horizon_from_vertical", "horizon_through", "vanishing_point",
]
