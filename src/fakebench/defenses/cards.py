"""The cards of the defended detectors; registered into the detector registry as one of its
built-in plugin modules (see :mod:`fakebench.registry`). Nothing here imports torch."""

from __future__ import annotations

from ..detectors import REGISTRY
from ..registry import DetectorCard

_M = "fakebench.defenses."
_BASE = "base=CHECKPOINT_DIR (or {detector: NAME, options: ...})"
_WEIGHTS = "the base detector's (base=CHECKPOINT_DIR; saved inside the wrapper's checkpoint)"

CARDS: tuple[DetectorCard, ...] = (
    DetectorCard(
        name="purify", factory=_M + "purification:build_purified",
        summary="input purification before the base detector: method=jpeg|blur|resize-pad|tae; " + _BASE,
        paper="Xie et al., ICLR 2018 (random resize-and-pad); Athalye, Carlini, Wagner, ICML 2018 (BPDA + EOT "
              "break purification); Mandelli et al., WIFS 2024 (latent autoencoder round trip)",
        path_options=("base", "tae_weights"), input_size="the base's (resize-pad enlarges by 331/299)",
        weights_note="the base detector's; method=tae needs tae_weights=DIR (a TAESD-family folder)",
        demo_note="a wrapper: evaluated by fakebench robustness on a trained base"),
    DetectorCard(
        name="smoothed", factory=_M + "smoothing:build_smoothed",
        summary="randomized smoothing with certified L2 radius (PREDICT / CERTIFY, Clopper-Pearson); " + _BASE,
        paper="Cohen, Rosenfeld, Kolter, Certified adversarial robustness via randomized smoothing, ICML 2019",
        path_options=("base",), input_size="the base's", weights_note=_WEIGHTS,
        demo_note="a wrapper: train it (Gaussian-noise augmentation) with fakebench train smoothed"),
    DetectorCard(
        name="knn-detect", factory=_M + "detection:build_knn",
        summary="adversarial-input detection by kNN consistency of internal features (real / synthetic / "
                "rejected); " + _BASE,
        paper="Carrara, Falchi, Caldelli, Amato, Becarelli, Adversarial image detection in deep neural networks, "
              "Multimedia Tools and Applications 2019",
        path_options=("base",), input_size="the base's", weights_note=_WEIGHTS + "; the reference set is fitted",
        demo_note="a wrapper: fit on a reference set with fakebench.defenses.detection.KNNDetection.fit"),
    DetectorCard(
        name="trim", factory=_M + "detection:build_trim",
        summary="TRIM-style training-free rejection: prediction entropy + KL under random feature shifts; " + _BASE,
        paper="after Zhang et al., Adversarially robust AI-generated image detection for free, arXiv 2505.22604 "
              "(2025); fakebench's reading, their exact formulas were not available",
        path_options=("base",), input_size="the base's", weights_note=_WEIGHTS,
        demo_note="a wrapper: calibrate on clean images with fakebench.defenses.detection.TrimDetection.calibrate"),
    DetectorCard(
        name="ensemble", factory=_M + "ensemble:build_ensemble",
        summary="cross-family ensemble of detectors (rule=mean|soft-or|vote), attacked as a whole; "
                "members={name: CHECKPOINT_DIR, ...}",
        paper="soft-OR after Cozzolino et al., CVPRW 2024",
        input_size="each member's own", weights_note="each member's (members={name: CHECKPOINT_DIR})",
        demo_note="a wrapper: give members=CHECKPOINT_DIRS"),
)

for _card in CARDS:
    REGISTRY.register(_card, replace=True)  # replace: importing this module twice is harmless
