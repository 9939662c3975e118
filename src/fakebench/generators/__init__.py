"""Image generators used to BUILD fake images (not detectors).

- :mod:`.autoencoders`: AutoGAN-style tiny convolutional autoencoders with four up-sampling
  layers (``tconv``, ``nearest``, ``bilinear``, ``pixelshuffle``), trained in seconds;
- :mod:`.tae`: TAESD-family tiny latent-diffusion autoencoders (TAESD, TAESDXL, TAESD3, TAEF1,
  TAEF2) loaded from their published state dicts; differentiable round trips, seam-free tiling;
- :mod:`.fingerprint`: spectral measures of the periodic traces generators leave.

Every generator maps RGB (N, 3, H, W) in [0, 1] to the same shape via ``roundtrip``.
"""

from .autoencoders import UPSAMPLERS, TinyConvAE, apply_generator, train_autoencoder
from .fingerprint import mean_log_spectrum, noise_residual, peak_prominence, upsampling_prominence
from .tae import TinyAutoencoder, find_weight_files, load_tae

__all__ = [
    "UPSAMPLERS", "TinyConvAE", "apply_generator", "train_autoencoder",
    "mean_log_spectrum", "noise_residual", "peak_prominence", "upsampling_prominence",
    "TinyAutoencoder", "find_weight_files", "load_tae",
]
