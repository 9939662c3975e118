"""Randomized smoothing with a certified L2 radius (Cohen, Rosenfeld, Kolter, ICML 2019).

The smoothed classifier ``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)`` in [0, 1]
pixel units, where ``f`` is the base detector's decision at its threshold. For two classes,
when ``p_A = P(f(x + e) = c_A) > 1/2``, ``g`` is constant within the L2 ball of radius
``sigma * Phi^-1(p_A)`` around ``x``. Monte Carlo as in the authors' ``core.py``:

- :meth:`Smoothed.predict` (PREDICT): ``n`` noisy copies; the top class if a two-sided
  binomial test of its count against 1/2 gives p <= ``alpha``, else abstain;
- :meth:`Smoothed.certify` (CERTIFY): the top class from ``n0`` samples, then ``n`` fresh
  samples; ``p_A_lower`` = the one-sided (1 - alpha) Clopper-Pearson lower bound of its count
  (``beta.ppf(alpha, n_A, n - n_A + 1)``); abstain if ``p_A_lower < 1/2``, else radius
  ``sigma * Phi^-1(p_A_lower)``.

As a detector in the pipeline, ``forward`` (eval mode) returns the soft smoothed logit
``logit(mean_k sigmoid(z(x + e_k)))`` over ``mc_samples`` draws from the defense's own
generator (randomised: attack it with EOT, which is the adaptive attack on smoothed
classifiers of Salman et al., NeurIPS 2019). In training mode ``forward`` is the base logit of
one noisy copy, so training the wrapper is Cohen's Gaussian-noise augmentation.

Labels: ``1`` synthetic, ``0`` real, :data:`ABSTAIN` = -1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .base import Defense

ABSTAIN = -1


@dataclass
class Certificate:
    """Per image: ``prediction`` (1, 0 or :data:`ABSTAIN`), ``radius`` (L2, [0, 1] pixel units;
    0 when abstaining), ``p_lower`` (the bound on the top class's probability), ``counts``
    of the top class among ``n``."""

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    counts: np.ndarray
    n: int


class Smoothed(Defense):
    """Randomized smoothing of a one-logit base detector (see the module docstring).

    Args:
        sigma: noise standard deviation in [0, 1] pixel units (Cohen et al. use 0.12-1.0).
        n0, n, alpha: CERTIFY's selection samples, estimation samples and failure probability.
        mc_samples: noise draws of the soft ``forward``.
        batch: noisy copies per base forward.
    """

    stochastic = True

    def __init__(self, base: Any, sigma: float = 0.25, n0: int = 100, n: int = 1000, alpha: float = 0.001,
                 mc_samples: int = 16, batch: int = 256, seed: int = 0) -> None:
        super().__init__(base, seed)
        for name, v in (("n0", n0), ("n", n), ("mc_samples", mc_samples), ("batch", batch)):
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {v!r}")
        if int(n) < int(n0):
            raise ConfigError(f"n: the estimation samples ({n}) must be at least the selection samples n0 ({n0})")
        if not float(sigma) > 0 or not math.isfinite(float(sigma)):
            raise ConfigError(f"sigma: expected a positive number, got {sigma!r}")
        if not 0 < float(alpha) < 0.5:
            raise ConfigError(f"alpha: expected a probability in (0, 0.5), got {alpha!r}")
        self.sigma, self.n0, self.n, self.alpha = float(sigma), int(n0), int(n), float(alpha)
        self.mc_samples, self.batch = int(mc_samples), int(batch)

    def defense_options(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "n0": self.n0, "n": self.n, "alpha": self.alpha, "mc_samples": self.mc_samples,
                "batch": self.batch}

    def _noise(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        return (torch.randn(shape, generator=self.generator) * self.sigma).to(like)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.base(x + self._noise(x.shape, x))
        p = 0.0
        for _ in range(self.mc_samples):
            p = p + torch.sigmoid(self.base(x + self._noise(x.shape, x)) - self.base.threshold)
        p = (p / self.mc_samples).clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)

    @torch.no_grad()
    def counts(self, x: torch.Tensor, num: int) -> np.ndarray:
        """(N,) number of the ``num`` noisy copies of each image the base calls synthetic."""
        out = np.zeros(len(x), dtype=np.int64)
        was = self.base.training
        self.base.eval()
        try:
            for i in range(len(x)):
                left = num
                while left > 0:
                    b = min(self.batch, left)
                    xi = x[i : i + 1].expand(b, -1, -1, -1)
                    z = self.base(xi + self._noise(xi.shape, xi))
                    out[i] += int((z > self.base.threshold).sum())
                    left -= b
        finally:
            self.base.train(was)
        return out

    def predict(self, x: torch.Tensor, n: int | None = None, alpha: float | None = None) -> np.ndarray:
        """PREDICT: (N,) labels (1 synthetic, 0 real) or :data:`ABSTAIN`."""
        from scipy.stats import binomtest

        n, alpha = int(n or self.n), float(alpha or self.alpha)
        c1 = self.counts(x, n)
        out = np.full(len(x), ABSTAIN, dtype=np.int64)
        for i, k in enumerate(c1):
            top, n_top = (1, int(k)) if k * 2 >= n else (0, int(n - k))
            if binomtest(n_top, n, 0.5).pvalue <= alpha:
                out[i] = top
        return out

    def certify(self, x: torch.Tensor, n0: int | None = None, n: int | None = None,
                alpha: float | None = None) -> Certificate:
        """CERTIFY: per image the prediction and its certified L2 radius (or abstain)."""
        from scipy.stats import beta, norm

        n0, n, alpha = int(n0 or self.n0), int(n or self.n), float(alpha or self.alpha)
        if n < n0:
            raise ConfigError(f"n: the estimation samples ({n}) must be at least the selection samples n0 ({n0})")
        guess = (self.counts(x, n0) * 2 >= n0).astype(np.int64)
        c1 = self.counts(x, n)
        n_a = np.where(guess == 1, c1, n - c1)
        p_lower = np.where(n_a > 0, beta.ppf(alpha, np.maximum(n_a, 1), n - n_a + 1), 0.0)
        ok = p_lower >= 0.5
        radius = np.where(ok, self.sigma * norm.ppf(np.clip(p_lower, 0.5, 1 - 1e-16)), 0.0)
        pred = np.where(ok, guess, ABSTAIN)
        return Certificate(pred, radius, p_lower, n_a, n)


def certified_accuracy(cert: Certificate, labels: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Fraction of images predicted correctly with a certified radius >= r, for each r."""
    y = np.asarray(labels)
    correct = cert.prediction == y
    return np.array([float(np.mean(correct & (cert.radius >= r))) for r in np.asarray(radii)])


def build_smoothed(base: Any = None, sigma: float = 0.25, n0: int = 100, n: int = 1000, alpha: float = 0.001,
                   mc_samples: int = 16, batch: int = 256, seed: int = 0) -> Smoothed:
    if base is None:
        raise ConfigError("base: smoothed needs a base detector (checkpoint folder or {detector: NAME, options: ...})")
    return Smoothed(base, sigma=sigma, n0=n0, n=n, alpha=alpha, mc_samples=mc_samples, batch=batch, seed=seed)
