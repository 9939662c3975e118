"""Defenses: detectors that hold up, each itself a :class:`~fakebench.detectors.base.Detector`.

- :mod:`.adversarial`: adversarial-training objectives (PGD-AT, TRADES, FGSM-RS) for the shared
  training loop;
- :mod:`.purification`: JPEG / blur / random resize-and-pad / TAE round trip before the base;
- :mod:`.smoothing`: randomized smoothing with PREDICT / CERTIFY and certified radii;
- :mod:`.detection`: adversarial-input detection (Carrara kNN, TRIM-style), three-way verdict;
- :mod:`.ensemble`: cross-family ensembles (mean, soft-OR, vote).

Their cards (:mod:`.cards`) are in the detector registry: ``fakebench.create_detector("purify",
base="runs/cnnspot", method="jpeg")``. Judge them only with adaptive attacks:
:func:`fakebench.experiments.robustness.robustness` (``fakebench robustness``).
"""

from __future__ import annotations

from . import cards  # noqa: F401  (registers the defended detectors)
