"""Stable Diffusion laundering: pass an image through a latent-diffusion autoencoder.

Mandelli, Bestagini, Tubaro, "When synthetic traces hide real content: analysis of stable
diffusion image laundering" (WIFS 2024) show that encoding a real photograph with the
Stable Diffusion VAE and decoding it again (optionally with a few img2img denoising steps of
low ``strength``) keeps its content but gives it the traces of a synthetic image, so that
detectors call it synthetic. Laundering is therefore registered with direction ``spoof`` by
default (real photos made to look synthetic); ``direction="all"`` launders every image (to
build laundered data sets), ``evade``/``both`` are allowed too (laundering a synthetic image
replaces one generator's traces by another's).

Backends (``backend`` option; picked from the other options when left out):

- ``tae`` (default): a TAESD-family tiny autoencoder (:mod:`fakebench.generators.tae`) from a
  weights folder, ``weights=DIR`` (e.g. the TAEF2 weights of the FLUX.2 VAE; any folder
  with a ``*encoder*``/``*decoder*`` pair). Images larger than ``tile`` pixels are processed
  in overlapping tiles with ``halo`` pixels of context and raised-cosine blending
  (:meth:`TinyAutoencoder.roundtrip_tiled`): with the default halo the result equals the
  untiled round trip up to float rounding, so there are no seams. ``quantize_latents``
  stores the latent on the 8-bit grid in between (as a saved latent would be).
- ``sd-vae``: the full Stable Diffusion VAE through ``diffusers`` (optional extra,
  ``pip install fakebench[sd]``) from a local folder ``vae_path`` (an ``AutoencoderKL``
  folder or a pipeline folder with a ``vae/`` subfolder); never downloaded. The latent is
  the posterior mode (deterministic). Large images use diffusers' VAE tiling.
- ``sd-img2img``: a local diffusers image-to-image pipeline folder ``pipeline_path`` run
  with an empty (or given) ``prompt`` at each ``strength`` of the list (Mandelli et al.'s
  strength sweep), ``num_inference_steps`` and ``guidance_scale``, seeded.

``strength`` may be a list: :meth:`Launder.sweep` returns every strength's output, and the
attack itself keeps, per image, the strength whose output moves the detector's score
furthest in the attack's direction (one detector query per strength and image).
diffusers is imported only when an ``sd-*`` backend is built; without it the error is one
line naming the extra to install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Attack, ThreatModel, push_sign
from .gradient import threat_from

BACKENDS = ("tae", "sd-vae", "sd-img2img")
DIFFUSERS_MISSING = ("launder backend {backend!r} needs the optional package diffusers, which is not installed: "
                     "pip install 'fakebench[sd]'")


def _pad8(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def import_diffusers(backend: str) -> Any:
    """``import diffusers`` or raise the one-line :class:`ConfigError` naming the extra."""
    try:
        import diffusers  # noqa: F401
    except ImportError:
        raise ConfigError(DIFFUSERS_MISSING.format(backend=backend)) from None
    return diffusers


def _local_dir(path: str | os.PathLike[str] | None, option: str, backend: str) -> Path:
    if path is None:
        raise ConfigError(f"launder backend {backend!r}: needs {option}=DIR (a local folder; nothing is downloaded)")
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{p}: {option} folder not found (launder backend {backend!r} loads local folders only)")
    return p


class TAEBackend:
    """Round trip through a TAESD-family tiny autoencoder (tiled for large images)."""

    def __init__(self, weights: str | os.PathLike[str], tile: int = 512, overlap: int = 32, halo: int = 64,
                 quantize_latents: bool = False) -> None:
        from ..generators.tae import TinyAutoencoder

        for label, v in (("tile", tile), ("overlap", overlap), ("halo", halo)):
            if int(v) < 0 or int(v) % 8:
                raise ConfigError(f"{label}: must be a non-negative multiple of 8 pixels, got {v!r}")
        if not 0 <= int(overlap) < int(tile):
            raise ConfigError(f"overlap: must be smaller than tile ({tile}), got {overlap!r}")
        self.model = TinyAutoencoder.from_dir(weights).eval()
        self.tile, self.overlap, self.halo, self.quantize_latents = int(tile), int(overlap), int(halo), bool(quantize_latents)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, strength: float | None, generator: torch.Generator) -> torch.Tensor:
        self.model.to(x.device)
        return self.model.roundtrip_tiled(x, tile=self.tile, overlap=self.overlap, halo=self.halo,
                                          quantize_latents=self.quantize_latents)


class SDVAEBackend:
    """Encode/decode with a local diffusers ``AutoencoderKL`` (posterior mode)."""

    def __init__(self, vae_path: str | os.PathLike[str] | None, tile: int = 512) -> None:
        import_diffusers("sd-vae")
        self.path = _local_dir(vae_path, "vae_path", "sd-vae")
        self.tile = int(tile)
        self._vae: Any = None

    def _load(self) -> Any:
        if self._vae is None:
            from diffusers import AutoencoderKL

            sub = {"subfolder": "vae"} if (self.path / "vae").is_dir() else {}
            try:
                self._vae = AutoencoderKL.from_pretrained(str(self.path), local_files_only=True, **sub).eval()
            except Exception as exc:  # missing config/weights, wrong folder
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConfigError(f"{self.path}: cannot load a diffusers AutoencoderKL ({msg})") from None
        return self._vae

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, strength: float | None, generator: torch.Generator) -> torch.Tensor:
        vae = self._load().to(x.device)
        xp, h, w = _pad8(x)
        if max(xp.shape[-2:]) > self.tile:
            vae.enable_tiling()
        else:
            vae.disable_tiling()
        p = next(vae.parameters())
        z = vae.encode((xp * 2 - 1).to(p.dtype)).latent_dist.mode()
        out = vae.decode(z).sample
        return ((out.float() + 1) / 2).clamp(0, 1)[..., :h, :w].to(x)


class SDImg2ImgBackend:
    """A local diffusers image-to-image pipeline at a given ``strength``."""

    def __init__(self, pipeline_path: str | os.PathLike[str] | None, prompt: str = "", num_inference_steps: int = 50,
                 guidance_scale: float = 1.0, tile: int = 512) -> None:
        import_diffusers("sd-img2img")
        self.path = _local_dir(pipeline_path, "pipeline_path", "sd-img2img")
        self.prompt, self.steps, self.guidance, self.tile = prompt, int(num_inference_steps), float(guidance_scale), int(tile)
        self._pipe: Any = None

    def _load(self) -> Any:
        if self._pipe is None:
            from diffusers import AutoPipelineForImage2Image

            try:
                self._pipe = AutoPipelineForImage2Image.from_pretrained(str(self.path), local_files_only=True)
            except Exception as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConfigError(f"{self.path}: cannot load a diffusers image-to-image pipeline ({msg})") from None
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, strength: float | None, generator: torch.Generator) -> torch.Tensor:
        pipe = self._load().to(x.device)
        xp, h, w = _pad8(x)
        if max(xp.shape[-2:]) > self.tile and hasattr(pipe, "vae"):
            pipe.vae.enable_tiling()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        g = torch.Generator(device=x.device).manual_seed(seed)
        out = pipe(prompt=[self.prompt] * len(xp), image=xp, strength=float(strength if strength is not None else 0.3),
                   num_inference_steps=self.steps, guidance_scale=self.guidance, generator=g, output_type="pt").images
        out = torch.as_tensor(out).float()
        if out.shape[-2:] != xp.shape[-2:]:
            out = F.interpolate(out, size=xp.shape[-2:], mode="bilinear", align_corners=False)
        return out.clamp(0, 1)[..., :h, :w].to(x)


class Launder(Attack):
    """Stable Diffusion laundering (Mandelli, Bestagini, Tubaro, WIFS 2024): latent-diffusion
    autoencoder round trip, optionally with img2img denoising; see the module docstring."""

    name = "launder"
    needs_gradients = False

    def __init__(self, backend: Callable[[torch.Tensor, float | None, torch.Generator], torch.Tensor],
                 threat: ThreatModel | None = None, seed: int = 0, strengths: Sequence[float | None] = (None,),
                 batch_size: int = 8, describe: dict[str, Any] | None = None) -> None:
        super().__init__(threat or ThreatModel(direction="spoof", norm="none", eps=0.0, steps=0), seed)
        self.backend = backend
        self.strengths = list(strengths)
        self.batch_size = max(int(batch_size), 1)
        self.describe = dict(describe or {})

    def params(self) -> dict[str, Any]:
        return {**super().params(), **self.describe, "strengths": self.strengths}

    def launder(self, x: torch.Tensor, strength: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Laundered copy of ``x`` (N, 3, H, W) in [0, 1], same size, in batches."""
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        return torch.cat([self.backend(x[i : i + self.batch_size], strength, generator)
                          for i in range(0, len(x), self.batch_size)])

    def sweep(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[float | None, torch.Tensor]:
        """Every strength's laundered output: ``{strength: (N, 3, H, W)}``."""
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        return {s: self.launder(x, s, generator) for s in self.strengths}

    def run(self, detector, x, y, generator):
        if len(self.strengths) == 1:
            return self.launder(x, self.strengths[0], generator), 0
        outs = self.sweep(x, generator)
        sign = push_sign(y, self.threat.direction).to(x)
        best, best_obj = None, None
        with torch.no_grad():
            for adv in outs.values():
                z = torch.cat([detector(adv[i : i + self.batch_size]) for i in range(0, len(adv), self.batch_size)])
                obj = sign * z.to(x)
                if best is None:
                    best, best_obj = adv.clone(), obj
                else:
                    better = obj > best_obj
                    best[better] = adv[better]
                    best_obj = torch.where(better, obj, best_obj)
        return best, len(self.strengths)


def tae_weights(weights: str | None, who: str) -> str:
    """The TAESD-family weights folder: ``weights`` or ``$FAKEBENCH_TAE_WEIGHTS``; else a one-line error."""
    weights = weights or os.environ.get("FAKEBENCH_TAE_WEIGHTS")
    if not weights:
        raise ConfigError(f"{who}: needs weights=DIR, a TAESD-family weights folder "
                          "(e.g. shared/weights/taef2) or $FAKEBENCH_TAE_WEIGHTS")
    return weights


def make_backend(backend: str | None, weights: str | None, vae_path: str | None, pipeline_path: str | None,
                 tile: int, overlap: int, halo: int, quantize_latents: bool, prompt: str,
                 num_inference_steps: int, guidance_scale: float) -> tuple[str, Any]:
    """Pick and build the backend (see the module docstring)."""
    if backend is None:
        backend = "sd-img2img" if pipeline_path else "sd-vae" if vae_path else "tae"
    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not one of {BACKENDS}")
    if backend == "tae":
        weights = tae_weights(weights, "launder backend 'tae'")
        return backend, TAEBackend(weights, tile=tile, overlap=overlap, halo=halo, quantize_latents=quantize_latents)
    if backend == "sd-vae":
        return backend, SDVAEBackend(vae_path, tile=tile)
    return backend, SDImg2ImgBackend(pipeline_path, prompt=prompt, num_inference_steps=num_inference_steps,
                                     guidance_scale=guidance_scale, tile=tile)


def build_launder(seed: int = 0, backend: str | None = None, weights: str | None = None, vae_path: str | None = None,
             pipeline_path: str | None = None, strength: float | Sequence[float] | None = None, tile: int = 512,
             overlap: int = 32, halo: int = 64, quantize_latents: bool = False, prompt: str = "",
             num_inference_steps: int = 50, guidance_scale: float = 1.0, batch_size: int = 8,
             **options: Any) -> Launder:
    threat = threat_from(options, {"direction": "spoof", "norm": "none", "eps": 0.0, "steps": 0})
    name, be = make_backend(backend, weights, vae_path, pipeline_path, tile, overlap, halo, quantize_latents, prompt,
                            num_inference_steps, guidance_scale)
    if strength is None:
        strengths: list[float | None] = [0.3] if name == "sd-img2img" else [None]
    else:
        strengths = [float(s) for s in (strength if isinstance(strength, (list, tuple)) else [strength])]
        if name != "sd-img2img":
            raise ConfigError(f"strength: only the sd-img2img backend has a denoising strength (backend {name!r})")
        if not strengths or not all(0 < s <= 1 for s in strengths):
            raise ConfigError(f"strength: expected values in (0, 1], got {strength!r}")
    describe = {"backend": name, "weights": weights, "vae_path": vae_path, "pipeline_path": pipeline_path,
                "tile": tile, "overlap": overlap, "halo": halo, "quantize_latents": quantize_latents}
    return Launder(be, threat, seed=seed, strengths=strengths, batch_size=batch_size, describe=describe)
