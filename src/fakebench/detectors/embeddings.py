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
models), so there is no official loader; fit with :func:`fit_pca` / :func:`fit_autoencoder`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import register
from .base import Detector

log = logging.getLogger(__name__)

_PAPER = ("Mundra, Aniano Porcile, Marvaniya, Verbus, Farid, Exposing GAN-generated profile photos from compact "
          "embeddings, CVPR Workshops 2023")
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

    paper: ClassVar[str] = _PAPER
    weights_hint: ClassVar[str] = ("no public checkpoint (LinkedIn-internal); fit on aligned synthetic faces with "
                                   "fit_pca(images) / fit_autoencoder(images) and save(); "
                                   "load with detectors.load(DIR)")
    #: not trained by the shared classifier trainer: fitted one-class on synthetic faces
    train_recipe: ClassVar[dict[str, Any]] = {}

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


@register("embedding-pca", "128-D PCA of aligned synthetic faces; logit = log(tau) - log(reconstruction MSE)",
          paper=_PAPER)
def _embedding_pca(dim: int = 128, size: int = 64, grayscale: bool = False, standardize: bool = True) -> EmbeddingPCA:
    return EmbeddingPCA(dim=dim, size=size, grayscale=grayscale, standardize=standardize)


@register("embedding-ae", "128-D autoencoder of aligned synthetic faces; logit = log(tau) - log(reconstruction MSE)",
          paper=_PAPER)
def _embedding_ae(dim: int = 128, size: int = 64, grayscale: bool = False, standardize: bool = True,
                  width: int = 32) -> EmbeddingAE:
    return EmbeddingAE(dim=dim, size=size, grayscale=grayscale, standardize=standardize, width=width)


_embedding_pca.weights_hint = EmbeddingDetector.weights_hint  # type: ignore[attr-defined]
_embedding_ae.weights_hint = EmbeddingDetector.weights_hint  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------
# fitting


def _as_batch(images: ImagesLike) -> torch.Tensor:
    """A (N, 3, H, W) tensor, or a sequence of (3, H, W) / (1, 3, H, W) tensors of one size."""
    if isinstance(images, torch.Tensor):
        x = images
    else:
        items = [t if t.ndim == 4 else t.unsqueeze(0) for t in images]
        if not items:
            raise ConfigError("images: empty")
        sizes = {tuple(t.shape[-2:]) for t in items}
        if len(sizes) > 1:  # resize to the largest so they can be stacked (the detector resizes anyway)
            h = max(s[0] for s in sizes)
            w = max(s[1] for s in sizes)
            items = [F.interpolate(t.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
                     if tuple(t.shape[-2:]) != (h, w) else t for t in items]
        x = torch.cat(items)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"images: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
    return x.float()


def _split(n: int, calib_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    n_cal = int(round(n * float(calib_fraction)))
    if n_cal < 2 or n - n_cal < 2:
        return perm, perm  # too few: fit and calibrate on the same faces
    return perm[n_cal:], perm[:n_cal]


@torch.no_grad()
def _errors(det: EmbeddingDetector, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    det.eval()
    return torch.cat([det.reconstruction_error(x[i:i + batch]) for i in range(0, len(x), batch)])


def fit_pca(images: ImagesLike, dim: int = 128, size: int = 64, grayscale: bool = False, standardize: bool = True,
            calib_fraction: float = 0.2, quantile: float = 0.95, seed: int = 0) -> EmbeddingPCA:
    """Fit an ``embedding-pca`` detector on SYNTHETIC (aligned) faces.

    Args:
        images: (N, 3, H, W) in [0, 1] or a list of such images.
        dim: embedding dimension; clipped to (number of fitting faces - 1) with a warning.
        calib_fraction: share of ``images`` held out (seeded) to set ``tau`` (their errors'
            ``quantile``); the PCA is fitted on the rest. With fewer than 2 faces either side,
            everything is used for both.
    Returns:
        the fitted detector (eval mode), created through the registry so it saves/loads.
    """
    from . import create

    x = _as_batch(images)
    fit_idx, cal_idx = _split(len(x), calib_fraction, seed)
    probe = EmbeddingPCA(dim=1, size=size, grayscale=grayscale, standardize=standardize)
    with torch.no_grad():
        v = probe.prepare(x[fit_idx]).flatten(1).double()
    if len(v) < 2:
        raise ConfigError("images: PCA needs at least 2 fitting faces")
    k = min(int(dim), len(v) - 1, v.shape[1])
    if k < int(dim):
        log.warning("embedding-pca: dim %d clipped to %d (only %d fitting faces)", dim, k, len(v))
    mean = v.mean(0)
    _, _, vh = torch.linalg.svd(v - mean, full_matrices=False)
    comps = vh[:k]
    # deterministic sign: largest-magnitude entry of each component positive
    idx = comps.abs().argmax(1)
    comps = comps * torch.sign(comps.gather(1, idx[:, None]))
    det = create("embedding-pca", dim=k, size=size, grayscale=grayscale, standardize=standardize)
    assert isinstance(det, EmbeddingPCA)
    det.mean.copy_(mean.float())
    det.components.copy_(comps.float())
    tau = det.set_tau_from_errors(_errors(det, x[cal_idx]), quantile)
    det.meta = {"fit": "pca", "n_fit": len(fit_idx), "n_calib": len(cal_idx), "tau": tau, "quantile": quantile,
                "seed": seed}
    return det.eval()


def fit_autoencoder(images: ImagesLike, steps: int = 2000, seed: int = 0, dim: int = 128, size: int = 64,
                    grayscale: bool = False, standardize: bool = True, width: int = 32, batch_size: int = 32,
                    lr: float = 1e-3, calib_fraction: float = 0.2, quantile: float = 0.95) -> EmbeddingAE:
    """Fit an ``embedding-ae`` detector on SYNTHETIC (aligned) faces: Adam on the mean squared
    reconstruction error for ``steps`` mini-batches, seeded; ``tau`` from held-out faces as in
    :func:`fit_pca`. Returns the detector in eval mode."""
    from . import create

    x = _as_batch(images)
    fit_idx, cal_idx = _split(len(x), calib_fraction, seed)
    torch.manual_seed(int(seed))
    det = create("embedding-ae", dim=dim, size=size, grayscale=grayscale, standardize=standardize, width=width)
    assert isinstance(det, EmbeddingAE)
    with torch.no_grad():
        data = det.prepare(x[fit_idx])
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(det.ae.parameters(), lr=lr)
    det.train()
    losses = []
    for _ in range(int(steps)):
        b = data[torch.randint(len(data), (min(batch_size, len(data)),), generator=gen)]
        loss = (det._reconstruct_prepared(b) - b).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    tau = det.set_tau_from_errors(_errors(det, x[cal_idx]), quantile)
    det.meta = {"fit": "autoencoder", "n_fit": len(fit_idx), "n_calib": len(cal_idx), "tau": tau,
                "quantile": quantile, "steps": int(steps),
                "final_loss": float(np.mean(losses[-20:])) if losses else None,
                "seed": seed}
    return det.eval()
