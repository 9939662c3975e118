"""Fully synthetic latents for a latent autoencoder: images with no photograph behind them.

Used to make the "fully synthetic" class of the laundering dataset (Mandelli, Bestagini,
Tubaro, WIFS 2024 distinguish laundered photos from images generated from noise): latents drawn
from a stationary Gaussian prior fitted on real latents, or real latents with randomised phase,
decoded by the autoencoder's decoder.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


class LatentGaussianPrior:
    """The simplest generative model of an autoencoder's latents: a stationary Gaussian field
    with the channel means, the channel covariance and the (whitened) spatial power spectrum of
    the latents it is fitted on. Samples are latents with no photograph behind them; decoded by
    the autoencoder's decoder they are fully synthetic images ("generated from noise").

    All fitted latents must share one shape (C, h, w); samples have that shape."""

    def __init__(self, z: torch.Tensor) -> None:
        if z.ndim != 4 or len(z) < 2:
            raise ConfigError(f"LatentGaussianPrior: need (N >= 2, C, h, w) latents, got {tuple(z.shape)}")
        zd = z.detach().double().cpu()
        n, c, h, w = zd.shape
        self.shape = (c, h, w)
        self.mean = zd.mean((0, 2, 3)).view(1, c, 1, 1)
        zc = zd - self.mean
        cov = torch.einsum("nchw,ndhw->cd", zc, zc) / (n * h * w)
        self.chol = torch.linalg.cholesky(cov + 1e-6 * cov.diagonal().mean() * torch.eye(c, dtype=cov.dtype))
        white = torch.linalg.solve_triangular(self.chol, zc.permute(1, 0, 2, 3).reshape(c, -1), upper=False)
        white = white.view(c, n, h, w).permute(1, 0, 2, 3)
        amp = torch.fft.fft2(white).abs().pow(2).mean((0, 1)).sqrt()
        self.amp = amp / amp.pow(2).mean().sqrt()  # unit variance per channel after filtering

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, C, h, w) float32 latents."""
        c, h, w = self.shape
        noise = torch.randn(n, c, h, w, generator=generator, dtype=torch.float64)
        white = torch.fft.ifft2(torch.fft.fft2(noise) * self.amp).real
        z = torch.einsum("cd,ndhw->nchw", self.chol, white) + self.mean
        return z.float()


def phase_randomize(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Fully synthetic latents from real ones by phase randomisation: every channel keeps its
    amplitude spectrum (and the channels their cross-spectra: one random phase field is shared)
    while the spatial arrangement -- the photograph's content -- is replaced by a random field;
    the mean (DC) is kept. (N, C, h, w) -> same shape. Harder for stage 2 than the Gaussian
    prior: flat patches stay flat and keep their colour."""
    n, _, h, w = z.shape
    noise = torch.randn(n, 1, h, w, generator=generator, dtype=torch.float64)
    phase = torch.angle(torch.fft.fft2(noise))
    phase[..., 0, 0] = 0.0
    zf = torch.fft.fft2(z.double()) * torch.exp(1j * phase)
    return torch.fft.ifft2(zf).real.to(z.dtype)
