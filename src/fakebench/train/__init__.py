"""Training: the shared loop (:mod:`.loop`), and dataset builders + trainers for detectors that
need their own data (:mod:`.laundering`, :mod:`.probes`)."""

from .loop import (
    Objective,
    TrainConfig,
    bce_objective,
    build_trainable,
    calibrate_on,
    fit,
    predict_samples,
    sharing_augmentation,
    train_detector,
)

__all__ = ["Objective", "TrainConfig", "bce_objective", "build_trainable", "calibrate_on", "fit", "predict_samples",
           "sharing_augmentation", "train_detector"]
