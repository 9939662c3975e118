"""Input purification: transform the input, then score it with the base detector.

Purifiers remove perturbations that live where the transform destroys information. Against an
attacker who ignores them they look strong; against one who attacks through them they
usually fall (Athalye, Carlini, Wagner, ICML 2018). Each purifier here is run three ways:

- *as deployed*: non-differentiable steps (the real JPEG codec; the TAE when run without
  gradients) give zero gradient, which is what a naive attacker sees (plain PGD);
- *BPDA* (:meth:`~fakebench.defenses.base.Defense.bpda`): those steps pass gradients straight
  through (identity);
- *EOT*: randomised purifiers (random resize-and-pad) draw fresh randomness per forward, so
  attacks average gradients over draws (the robustness evaluation's EOT-APGD).

Methods (``method=``):

- ``jpeg``: the real PIL JPEG round trip at ``quality`` (non-differentiable);
- ``blur``: Gaussian blur of ``sigma`` pixels (the ``blur`` degradation; differentiable);
- ``resize-pad``: random resize-and-pad (Xie, Wang, Zhang, Ren, Yuille, ICLR 2018): each image
  is resized (bilinear) to a random side in ``[H, round(H * 331 / 299))`` and padded with grey
  (0.5) at a random offset to ``round(H * 331 / 299)`` (the paper's 299 -> [299, 331) -> 331,
  scaled to the image); randomised, differentiable;
- ``tae``: a TAESD-family latent autoencoder round trip (``tae_weights`` folder; the latent
  laundering of Mandelli et al. 2024 used as a purifier); run without gradients as deployed,
  ``tae_gradient: true`` differentiates through it (the strongest adaptive attack).

The base detector should see purified images in training too: train the wrapper itself
(``fakebench train purify --opt base=... --opt method=jpeg``) so that its clean accuracy is
measured on what it will see.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..data import degrade
from ..errors import ConfigError
from .base import Defense, straight_through

METHODS = ("jpeg", "blur", "resize-pad", "tae")


class Purified(Defense):
    """``base(purify(x))``; see the module docstring for the methods and their gradients."""

    def __init__(self, base: Any, method: str = "jpeg", quality: int = 75, sigma: float = 1.0,
                 ratio: float = 331 / 299, tae_weights: str | None = None, tae_gradient: bool = False,
                 seed: int = 0) -> None:
        super().__init__(base, seed)
        if method not in METHODS:
            raise ConfigError(f"method: {method!r} is not one of {', '.join(METHODS)}")
        if method == "jpeg":
            degrade.jpeg(torch.zeros(1, 3, 8, 8), quality)  # validates quality (1..100) now
        if method == "blur":
            degrade.blur(torch.zeros(1, 3, 8, 8), sigma)  # validates sigma (>= 0) now
        if not 1.0 < float(ratio) <= 2.0:
            raise ConfigError(f"ratio: expected a number in (1, 2], got {ratio!r}")
        self.method, self.quality, self.sigma, self.ratio = method, int(quality), float(sigma), float(ratio)
        self.tae_weights, self.tae_gradient = tae_weights, bool(tae_gradient)
        self.tae = None
        if method == "tae":
            if not tae_weights:
                raise ConfigError("tae_weights: the tae purifier needs a TAESD-family weights folder")
            from ..generators.tae import TinyAutoencoder

            self.tae = TinyAutoencoder.from_dir(tae_weights).eval()
            for p in self.tae.parameters():
                p.requires_grad_(False)
        self.stochastic = method == "resize-pad"

    def defense_options(self) -> dict[str, Any]:
        return {"method": self.method, "quality": self.quality, "sigma": self.sigma, "ratio": self.ratio,
                "tae_weights": self.tae_weights, "tae_gradient": self.tae_gradient}

    @property
    def has_bpda(self) -> bool:
        return self.method == "jpeg" or (self.method == "tae" and not self.tae_gradient)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # the TAE is loaded from its folder
        return {k: v for k, v in super().state_dict(*args, **kwargs).items() if not k.startswith("tae.")}

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        if self.tae is not None:
            state = {**state, **{f"tae.{k}": v for k, v in self.tae.state_dict().items()}}
        return super().load_state_dict(state, strict=strict, assign=assign)

    def purify(self, x: torch.Tensor) -> torch.Tensor:
        """The purified images (N, 3, H', W') with the gradient rule of the current mode."""
        if self.method == "jpeg":
            return straight_through(x, degrade.jpeg(x.detach(), self.quality), self._bpda)
        if self.method == "blur":
            return degrade.blur(x, self.sigma)
        if self.method == "resize-pad":
            return self._resize_pad(x)
        assert self.tae is not None
        if self.tae_gradient:
            return self.tae.roundtrip(x).clamp(0, 1)
        with torch.no_grad():
            y = self.tae.roundtrip(x.detach()).clamp(0, 1)
        return straight_through(x, y, self._bpda)

    def _resize_pad(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        out_h, out_w = int(round(h * self.ratio)), int(round(w * self.ratio))
        sides = torch.randint(h, max(out_h, h + 1), (n,), generator=self.generator).tolist()
        tops = [int(torch.randint(0, out_h - s + 1, (1,), generator=self.generator)) for s in sides]
        lefts = [int(torch.randint(0, out_w - int(round(w * s / h)) + 1, (1,), generator=self.generator))
                 for s in sides]
        parts = []
        for i, (s, t, l_) in enumerate(zip(sides, tops, lefts)):
            sw = min(out_w, int(round(w * s / h)))
            r = F.interpolate(x[i : i + 1], size=(s, sw), mode="bilinear", align_corners=False)
            parts.append(F.pad(r, (l_, out_w - sw - l_, t, out_h - s - t), value=0.5))
        return torch.cat(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.purify(x))


def build_purified(base: Any = None, method: str = "jpeg", quality: int = 75, sigma: float = 1.0,
                   ratio: float = 331 / 299, tae_weights: str | None = None, tae_gradient: bool = False,
                   seed: int = 0) -> Purified:
    if base is None:
        raise ConfigError("base: purify needs a base detector (checkpoint folder or {detector: NAME, options: ...})")
    return Purified(base, method=method, quality=quality, sigma=sigma, ratio=ratio, tae_weights=tae_weights,
                    tae_gradient=tae_gradient, seed=seed)
