"""Fitting the compact-embedding detectors (Mundra et al., CVPRW 2023) on aligned synthetic
faces: :func:`fit_pca` (closed form) and :func:`fit_autoencoder` (Adam, seeded). One-class: the
embedding is fitted on synthetic faces only; the threshold tau on the reconstruction error is
calibrated on held-out synthetic faces. The detectors are :mod:`fakebench.detectors.embeddings`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from ..detectors.embeddings import EmbeddingAE, EmbeddingDetector, EmbeddingPCA, ImagesLike
from ..detectors import create
from ..errors import ConfigError

log = logging.getLogger(__name__)


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
    x = _as_batch(images)
    fit_idx, cal_idx = _split(len(x), calib_fraction, seed)
    with torch.random.fork_rng(devices=[]):  # initial weights from ``seed``, caller's RNG untouched
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
