"""Compact embeddings of aligned faces: PCA and autoencoder reconstruction error.

Mundra, Aniano Porcile, Marvaniya, Verbus, Farid, "Exposing GAN-generated profile photos from
compact embeddings", CVPR Workshops 2023. The idea: GAN profile photos (StyleGAN 1-3) share a
rigid facial geometry -- the generator's training faces were aligned so that the eyes sit at
fixed positions, and every generated face inherits that alignment (the average of a few hundred
StyleGAN faces is a sharp face; the average of real profile photos is a blur). A low-dimensional
(128-D) embedding learned FROM GAN FACES -- linear (PCA) or non-linear (autoencoder) -- therefore
reconstructs new GAN faces well and real photos, with their free pose, framing and scale, badly.

Score and sign (> 0 means synthetic, as every fakebench detector):

    logit = log(tau) - log(mse(x, reconstruct(x)))

where ``mse`` is the mean squared pixel error of the reconstruction (pixels in [0, 1], after
the detector's own resize) and ``tau`` is a buffer set at fit time to a quantile (default 95 %)
of the errors of held-out synthetic faces. A face that the GAN-face model reconstructs better
than ``tau`` gets a positive logit ("synthetic"); a face it cannot reconstruct ("real") gets a
negative one. The embedding is fitted on synthetic faces only (one-class, as in the paper).

Both detectors are differentiable: PCA is a fixed linear map (``mean`` and ``components``
buffers), the autoencoder an ordinary network; the resize is bilinear with antialiasing.
Inputs are face crops (a face detector/aligner upstream, the way profile photos arrive); the
detectors do not look for faces themselves. No public checkpoints exist (LinkedIn-internal
models), so there is no official loader; fit with :func:`fakebench.train.embeddings.fit_pca` / ``fit_autoencoder``.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import Detector

log = logging.getLogger(__name__)

_EPS = 1e-12
ImagesLike = torch.Tensor | Sequence[torch.Tensor]


class EmbeddingDetector(Detector):
    """Shared part: resize to ``size`` x ``size`` (optionally grey), reconstruct, score.

    Args:
        dim: embedding dimension (128 in the paper).
        size: side in pixels that faces are resized to inside ``forward``.
        grayscale: embed luminance only (ITU-R BT.601 weights) instead of RGB.
        standardize: give every resized face zero mean and unit variance over its pixels before
            embedding (our reading: the cue is facial geometry, not exposure; lighting and
            contrast otherwise dominate the reconstruction error). The error is then relative
            to the face's own contrast.
    """


    def __init__(self, dim: int = 128, size: int = 64, grayscale: bool = False, standardize: bool = True) -> None:
        super().__init__()
        if int(dim) < 1:
            raise ConfigError(f"dim: must be >= 1, got {dim}")
        if int(size) < 8:
            raise ConfigError(f"size: must be >= 8 pixels, got {size}")
        self.dim, self.size, self.grayscale = int(dim), int(size), bool(grayscale)
        self.standardize = bool(standardize)
        self.channels = 1 if self.grayscale else 3
        #: log of the error threshold tau (see module docstring); set by the fit functions
        self.register_buffer("log_tau", torch.zeros(()))
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)

    # -- preprocessing ---------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, C, size, size) resized (grey, standardized if asked)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.registry_name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        if self.grayscale:
            x = (x * self.luma).sum(1, keepdim=True)
        if self.standardize:
            flat = x.flatten(1)
            mu = flat.mean(1).view(-1, 1, 1, 1)
            sd = flat.std(1).view(-1, 1, 1, 1)
            x = (x - mu) / (sd + 1e-3)
        return x

    # -- subclass API ----------------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(N, 3, H, W) -> (N, dim) compact embedding."""
        raise NotImplementedError

    def _reconstruct_prepared(self, p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- scoring ---------------------------------------------------------------------------------
    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) mean squared reconstruction error per pixel of the prepared face (pixel values in
        [0, 1], or in units of the face's standard deviation with ``standardize``)."""
        p = self.prepare(x)
        return (self._reconstruct_prepared(p) - p).pow(2).flatten(1).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) logits ``log(tau) - log(error)``: > 0 = reconstructs like the synthetic faces."""
        return self.log_tau - torch.log(self.reconstruction_error(x) + _EPS)

    def set_tau_from_errors(self, errors: torch.Tensor, quantile: float) -> float:
        """Set ``tau`` to the ``quantile`` of ``errors`` (errors of synthetic faces not used for
        fitting); returns tau."""
        tau = float(torch.quantile(errors.detach().double().cpu(), float(quantile)))
        self.log_tau.fill_(float(np.log(max(tau, _EPS))))
        return tau


class EmbeddingPCA(EmbeddingDetector):
    """Linear compact embedding (PCA) of aligned synthetic faces, Mundra et al. 2023.

    ``embed(x) = (v - mean) @ components.T`` with ``v`` the flattened resized face;
    ``reconstruct = mean + embed @ components``. Buffers: ``mean`` (D,), ``components``
    (dim, D) with orthonormal rows, D = channels * size * size."""

    def __init__(self, dim: int = 128, size: int = 64, grayscale: bool = False, standardize: bool = True) -> None:
        super().__init__(dim, size, grayscale, standardize)
        d = self.channels * self.size * self.size
        if self.dim > d:
            raise ConfigError(f"dim: {self.dim} exceeds the pixel dimension {d} of {self.size}x{self.size} faces")
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(self.dim, d))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return (self.prepare(x).flatten(1) - self.mean) @ self.components.t()

    def _reconstruct_prepared(self, p: torch.Tensor) -> torch.Tensor:
        z = (p.flatten(1) - self.mean) @ self.components.t()
        return (self.mean + z @ self.components).view_as(p)


class _FaceAutoencoder(nn.Module):
    """Convolutional encoder (3 stride-2 stages) -> linear bottleneck of ``dim`` -> mirror decoder
    (nearest upsampling + conv), linear output (targets may be standardized)."""

    def __init__(self, channels: int, size: int, dim: int, width: int) -> None:
        super().__init__()
        if size % 8:
            raise ConfigError(f"size: the autoencoder needs a multiple of 8, got {size}")
        w = width
        self.grid = size // 8
        self.w4 = 4 * w
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, w, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.ReLU(inplace=True),
        )
        flat = 4 * w * self.grid * self.grid
        self.to_code = nn.Linear(flat, dim)
        self.from_code = nn.Linear(dim, flat)
        self.decoder = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * w, 2 * w, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * w, w, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, channels, 3, 1, 1),
        )

    def encode(self, p: torch.Tensor) -> torch.Tensor:
        return self.to_code(torch.flatten(self.encoder(p), 1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_code(z).view(-1, self.w4, self.grid, self.grid)
        return self.decoder(h)


class EmbeddingAE(EmbeddingDetector):
    """Non-linear compact embedding (autoencoder) of aligned synthetic faces, Mundra et al. 2023.

    Args (besides ``dim``/``size``/``grayscale``):
        width: channels of the first encoder stage (doubling twice).
    """

    def __init__(self, dim: int = 128, size: int = 64, grayscale: bool = False, standardize: bool = True,
                 width: int = 32) -> None:
        super().__init__(dim, size, grayscale, standardize)
        self.ae = _FaceAutoencoder(self.channels, self.size, self.dim, int(width))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.ae.encode(self.prepare(x))

    def _reconstruct_prepared(self, p: torch.Tensor) -> torch.Tensor:
        return self.ae.decode(self.ae.encode(p))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"encoder": self.ae.encoder, "code": self.ae.to_code}

