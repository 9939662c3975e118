"""Two-stage detector of Stable Diffusion image laundering (patch-averaged CNN scores).

Mandelli, Bestagini, Tubaro, "When synthetic traces hide real content: analysis of Stable
Diffusion image laundering", WIFS 2024 (arXiv 2407.10736). *Laundering* passes a real photo
through a latent-diffusion autoencoder (encode, decode, strength 0): the result carries the
generator's traces but real content. The paper's pipeline:

1. stage 1, real vs synthetic (laundered and fully synthetic are both synthetic);
2. stage 2, only for images stage 1 calls synthetic: fully synthetic (generated from noise or
   a text prompt) vs laundered.

Each stage scores many random patches of the image with one CNN and aggregates them. Facts of
the authors' code (github.com/polimi-ispl/synthetic-image-detection): images whose shorter side
is under 256 px are first upscaled (bilinear) to 256; 800 random 96x96 patches are drawn with a
fixed seed; the image score is the mean of the M highest patch scores of the class of
interest (M in [200, 600], 600 by default); the patch CNN is an EfficientNet-B4, ImageNet-
normalised. Here the patch scorer is the project's :class:`~fakebench.detectors.resnet.ResNetBackbone`
(small arch/width options, stem stride 1 by default so the fine traces survive), and all of it
-- resize, patch extraction, scoring, top-M mean -- happens inside ``forward`` and is
differentiable (``torch.topk`` passes gradients to the selected patches).

Sign conventions (fakebench: logit > 0 means synthetic):

* ``laundering-stage1``: > 0 synthetic (laundered or fully synthetic), < 0 real (as the paper);
* ``laundering-stage2``: > 0 FULLY synthetic, < 0 laundered (real content). The paper's stage-2
  score has the opposite sign (> 0 laundered); its top-M selection (the M patches most in
  favour of "laundered") is kept, i.e. here the M LOWEST patch logits are averaged.

:class:`LaunderingTwoStage` combines the two into the three-way verdict
``real`` / ``laundered`` / ``synthetic`` (:func:`two_stage_verdict`).
:func:`build_laundering_dataset` makes the three classes from the built-in benchmark (real
patches; the same patches through a TAESD-family round trip; fully synthetic patches decoded
by the same decoder from latents with no photograph behind them, drawn from a Gaussian latent
prior) and :func:`train_laundering` trains both stages with the shared trainer.

No official checkpoints are published (the repository's README links are placeholders), and the
official network is an ``efficientnet_pytorch`` B4, which this module does not replicate; see
``weights_hint``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from . import register
from .base import IMAGENET_MEAN, IMAGENET_STD, Detector
from .resnet import ResNetBackbone

log = logging.getLogger(__name__)

_PAPER = ("Mandelli, Bestagini, Tubaro, When synthetic traces hide real content: analysis of Stable Diffusion "
          "image laundering, WIFS 2024")
REAL, LAUNDERED, SYNTHETIC = "real", "laundered", "synthetic"
VERDICTS = (REAL, LAUNDERED, SYNTHETIC)
_HINT = ("no public checkpoint (the authors' README links are placeholders; theirs is an efficientnet_pytorch B4 "
         "that this ResNet patch scorer does not load); train with fakebench.detectors.laundering.train_laundering "
         "or load a fakebench checkpoint folder with detectors.load(DIR)")


class LaunderingStage(Detector):
    """One stage of the Mandelli et al. (WIFS 2024) laundering detector: a patch CNN whose image
    score aggregates M of ``num_patches`` patch logits.

    Args:
        arch, width, stride0: the :class:`ResNetBackbone` patch scorer (``resnet18``, 32, 1 by
            default; ``resnet10`` with width 8 is enough for CPU tests).
        patch: patch side in pixels (96 in the paper).
        num_patches: patches drawn per image (800 in the paper).
        M: how many of them are averaged (600 by default; the paper suggests 200-600). With
            ``M >= num_patches`` every patch counts (a plain mean).
        sampling: ``"random"`` (seeded, uniform positions, the paper's) or ``"grid"`` (an even
            grid of about ``num_patches`` positions).
        min_side: images whose shorter side is below this are upscaled to it first (bilinear;
            256 in the paper; 0 disables). Images smaller than ``patch`` are always upscaled
            to it.
        seed: seed of the random patch positions (fixed: the same image always gets the same
            score, which attacks and ``save``/``load`` need).
        residual: feed the backbone the noise residual ``10 * (x - mean3x3(x))`` (computed on
            the whole image, reflect-padded, before cutting patches) instead of ImageNet-
            normalised RGB. Not in the paper (their EfficientNet sees RGB); it makes the faint
            traces of an autoencoder decoder learnable from a few hundred patches in seconds,
            which the CPU-sized stage-1 training here needs.
        patch_batch: patches per backbone call (memory bound only; no effect on the result).

    Identical positions are scored once (an image of exactly ``patch`` pixels costs one patch),
    so the patch-sized crops used in training are cheap.
    """

    paper: ClassVar[str] = _PAPER
    weights_hint: ClassVar[str] = _HINT
    stage: ClassVar[int] = 0
    #: +1: average the M highest patch logits; -1: the M lowest (see the module docstring)
    _select_sign: ClassVar[int] = 1
    # our reading: random patch crops of the paper's size, light blur/JPEG augmentation;
    # set TrainConfig(crop=patch) when ``patch`` differs (train_laundering does)
    train_recipe: ClassVar[dict[str, Any]] = {"crop": 96, "lr": 1e-4, "batch_size": 64,
                                              "blur_prob": 0.1, "jpeg_prob": 0.1}

    def __init__(self, arch: str = "resnet18", width: int = 32, stride0: int = 1, patch: int = 96,
                 num_patches: int = 800, M: int = 600, sampling: str = "random", min_side: int = 256,
                 seed: int = 21, patch_batch: int = 256, residual: bool = False) -> None:
        super().__init__()
        if int(patch) < 8:
            raise ConfigError(f"patch: must be >= 8 pixels, got {patch}")
        if int(num_patches) < 1 or int(M) < 1:
            raise ConfigError(f"num_patches and M: must be >= 1, got {num_patches} and {M}")
        if sampling not in ("random", "grid"):
            raise ConfigError(f"sampling: must be 'random' or 'grid', got {sampling!r}")
        if int(min_side) < 0 or int(patch_batch) < 1:
            raise ConfigError(f"min_side must be >= 0 and patch_batch >= 1, got {min_side} and {patch_batch}")
        self.net = ResNetBackbone(arch, width, stride0)
        self.patch, self.num_patches, self.M = int(patch), int(num_patches), int(M)
        self.sampling, self.min_side, self.seed = sampling, int(min_side), int(seed)
        self.patch_batch = int(patch_batch)
        self.residual = bool(residual)
        self._positions_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # -- geometry --------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale (bilinear) so the shorter side is at least ``max(min_side, patch)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.registry_name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        target = max(self.min_side, self.patch)
        if min(h, w) < target:
            s = target / min(h, w)
            size = (max(target, round(h * s)), max(target, round(w * s)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def positions(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-left corners for an (h, w) image already prepared: (unique (U, 2) long tensor,
        (K,) index of each drawn patch into the unique ones). Deterministic (``seed``)."""
        key = (int(h), int(w))
        if key not in self._positions_cache:
            p = self.patch
            ny, nx = h - p + 1, w - p + 1
            if self.sampling == "random":
                g = torch.Generator().manual_seed(self.seed)
                pos = torch.stack([torch.randint(0, ny, (self.num_patches,), generator=g),
                                   torch.randint(0, nx, (self.num_patches,), generator=g)], 1)
            else:
                rows = max(1, min(ny, round(math.sqrt(self.num_patches * ny / nx))))
                cols = max(1, min(nx, math.ceil(self.num_patches / rows)))
                ys = torch.linspace(0, ny - 1, rows).round().long()
                xs = torch.linspace(0, nx - 1, cols).round().long()
                pos = torch.cartesian_prod(ys, xs)
            uniq, inverse = torch.unique(pos, dim=0, return_inverse=True)
            self._positions_cache[key] = (uniq, inverse)
        return self._positions_cache[key]

    # -- scoring ---------------------------------------------------------------------------------
    def patch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) logits of the K drawn patches (K = ``num_patches``, or the grid size)."""
        x = self.prepare(x)
        n, _, h, w = x.shape
        uniq, inverse = self.positions(h, w)
        p = self.patch
        if self.residual:
            xn = 10.0 * (x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, 1))
        else:
            xn = (x - self.mean) / self.std
        scores = []
        step = max(1, self.patch_batch // max(n, 1))  # positions per backbone call
        for s in range(0, len(uniq), step):
            part = uniq[s:s + step].tolist()
            crops = torch.stack([xn[:, :, i:i + p, j:j + p] for i, j in part], 1)  # (N, u, 3, p, p)
            scores.append(self.net(crops.flatten(0, 1)).view(n, len(part)))
        return torch.cat(scores, 1)[:, inverse.to(x.device)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) image logits: mean of the M selected patch logits."""
        z = self.patch_logits(x)
        k = min(self.M, z.shape[1])
        if k >= z.shape[1]:
            return z.mean(1)
        sgn = float(self._select_sign)
        return sgn * torch.topk(sgn * z, k, dim=1).values.mean(1)

    def feature_layers(self) -> dict[str, nn.Module]:
        n = self.net
        return {"layer1": n.layer1, "layer2": n.layer2, "layer3": n.layer3, "layer4": n.layer4, "pool": n.avgpool}


class LaunderingStage1(LaunderingStage):
    """Stage 1 of Mandelli et al. (WIFS 2024): real (< 0) vs synthetic (> 0); the image score is
    the mean of the M highest patch logits."""

    stage = 1
    _select_sign = 1


class LaunderingStage2(LaunderingStage):
    """Stage 2 of Mandelli et al. (WIFS 2024): laundered (< 0) vs fully synthetic (> 0); meant
    for images stage 1 calls synthetic. The image score is the mean of the M LOWEST patch
    logits (the M patches most in favour of "laundered", as the authors' code selects)."""

    stage = 2
    _select_sign = -1


def _stage_factory(cls: type[LaunderingStage]):
    def make(arch: str = "resnet18", width: int = 32, stride0: int = 1, patch: int = 96, num_patches: int = 800,
             M: int = 600, sampling: str = "random", min_side: int = 256, seed: int = 21,
             patch_batch: int = 256, residual: bool = False) -> LaunderingStage:
        return cls(arch=arch, width=width, stride0=stride0, patch=patch, num_patches=num_patches, M=M,
                   sampling=sampling, min_side=min_side, seed=seed, patch_batch=patch_batch, residual=residual)

    make.weights_hint = _HINT  # type: ignore[attr-defined]
    return make


register("laundering-stage1", "laundering detector stage 1: real vs synthetic, mean of top-M of 800 patch scores",
         paper=_PAPER)(_stage_factory(LaunderingStage1))
register("laundering-stage2", "laundering detector stage 2: laundered (<0) vs fully synthetic (>0), patch scores",
         paper=_PAPER)(_stage_factory(LaunderingStage2))


# ------------------------------------------------------------------------------------------------
# the three-way verdict


@torch.no_grad()
def two_stage_verdict(stage1: Detector, stage2: Detector, x: torch.Tensor, batch_size: int = 32) -> list[str]:
    """Three-way verdict per image: ``"real"`` when stage 1's logit is not above its
    ``threshold``; otherwise ``"synthetic"`` (fully synthetic) when stage 2's logit is above its
    threshold, else ``"laundered"`` (real content through a generator's autoencoder). Stage 2 is
    run only on the images stage 1 flags."""
    s1 = stage1.score(x, batch_size=batch_size)
    out = [REAL] * len(x)
    flagged = torch.nonzero(s1 > stage1.threshold).flatten()
    if len(flagged):
        s2 = stage2.score(x[flagged], batch_size=batch_size)
        for i, v in zip(flagged.tolist(), s2.tolist()):
            out[i] = SYNTHETIC if v > stage2.threshold else LAUNDERED
    return out


class LaunderingTwoStage(nn.Module):
    """Both stages together (Mandelli et al., WIFS 2024). ``forward(x)`` returns the (N, 2)
    logits ``[stage1, stage2]`` (both differentiable); :meth:`verdict` the three-way labels."""

    def __init__(self, stage1: Detector, stage2: Detector) -> None:
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.stage1(x), self.stage2(x)], 1)

    def verdict(self, x: torch.Tensor, batch_size: int = 32) -> list[str]:
        return two_stage_verdict(self.stage1, self.stage2, x, batch_size)

    def save(self, directory: str | Path) -> Path:
        """``<dir>/stage1`` and ``<dir>/stage2``, each a fakebench checkpoint folder."""
        d = Path(directory)
        self.stage1.save(d / "stage1")
        self.stage2.save(d / "stage2")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "LaunderingTwoStage":
        from . import load

        d = Path(directory)
        return cls(load(d / "stage1"), load(d / "stage2")).eval()


# ------------------------------------------------------------------------------------------------
# the laundering dataset


DATASET_VERSION = 1
STAGE_FILES = {"manifest": "manifest.csv", "stage1": "stage1.csv", "stage2": "stage2.csv"}
SYNTHETIC_MODES = ("gaussian", "phase")


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


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _padded(x: torch.Tensor, context: int) -> tuple[torch.Tensor, int]:
    """Reflect-pad by ``context`` and up to a multiple of 8 (the TAE grid); returns (xp, c)."""
    c = min(context, x.shape[-2] - 1, x.shape[-1] - 1)
    xp = F.pad(x, (c, c, c, c), mode="reflect") if c > 0 else x
    ph, pw = (-xp.shape[-2]) % 8, (-xp.shape[-1]) % 8
    if ph or pw:
        xp = F.pad(xp, (0, pw, 0, ph), mode="reflect")
    return xp, c


def _write_csv(path: Path, items: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(items)
    tmp.replace(path)


def build_laundering_dataset(out: str | Path, tae_weights: str | Path, builtin: str | Path | None = None, *,
                             seed: int = 0, synthetic: str = "gaussian", max_reals_per_split: int | None = None,
                             include_builtin_fakes: bool = False, context: int = 8,
                             builtin_options: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Path]:
    """Build the three-class laundering dataset from the built-in benchmark.

    Classes (``kind`` column), all derived from the benchmark's REAL patches, so that the
    benchmark's disjoint-source splits carry over (a patch and its laundered / synthetic
    versions share ``source`` and ``split``):

    * ``real``: the benchmark's real patches;
    * ``laundered``: each real patch through the TAESD-family round trip in ``tae_weights``
      (reflect-padded by ``context`` pixels, cropped back, saved as 8-bit PNG). The benchmark's
      own fakes made by the same autoencoder, if any, are laundered reals too and join them;
    * ``synthetic`` (fully synthetic): the SAME decoder applied to latents with no photograph
      behind them, one per real patch, same padding and crop. ``synthetic="gaussian"``
      (default) draws them from a :class:`LatentGaussianPrior` fitted on the train split's
      real latents; ``"phase"`` phase-randomises each real patch's own latent
      (:func:`phase_randomize`; a harder stage 2);
    * ``generated`` (only with ``include_builtin_fakes``): the benchmark's other fakes (tiny
      convolutional autoencoders): synthetic for stage 1, left out of stage 2.

    Args:
        out: output folder: ``images/<split>/<kind>/*.png``, three CSVs and ``settings.json``
            (a build with the same settings is reused).
        tae_weights: folder with a TAESD-family encoder/decoder pair (e.g. ``taef2``).
        builtin: an existing built-in benchmark (folder or manifest.csv); ``None`` builds one
            in ``<out>/builtin`` with ``builtin_options`` (keyword arguments of
            :func:`fakebench.data.builtin.build_builtin`).
        max_reals_per_split: keep at most this many real patches per split (seeded subset).
    Returns:
        ``{"manifest", "stage1", "stage2"}`` -> CSV path. ``manifest.csv``:
        ``path,label,generator,split,source,kind`` (label 0 real, 1 otherwise); ``stage1.csv``:
        real 0 / every other kind 1; ``stage2.csv``: laundered 0 / fully synthetic 1 only.
        All are manifests that :func:`fakebench.data.load_dataset` reads.
    """
    from ..data import load_dataset
    from ..generators.tae import TinyAutoencoder, find_weight_files
    from ..io import load_image, save_png
    from ..progress import progress_bar

    if synthetic not in SYNTHETIC_MODES:
        raise ConfigError(f"synthetic: must be one of {SYNTHETIC_MODES}, got {synthetic!r}")
    out = Path(out).expanduser()
    if builtin is None:
        from ..data.builtin import build_builtin

        opts: dict[str, Any] = {"seed": seed, "progress": progress}
        opts.update(builtin_options or {})
        builtin = build_builtin(out / "builtin", **opts)
    bpath = Path(builtin)
    bman = bpath / "manifest.csv" if bpath.is_dir() else bpath
    if not bman.is_file():
        raise DataError(f"{bman}: built-in benchmark manifest not found")
    enc, dec, _ = find_weight_files(tae_weights)
    settings = {"version": DATASET_VERSION, "builtin": hashlib.sha256(bman.read_bytes()).hexdigest(),
                "tae": [[p.name, p.stat().st_size] for p in (enc, dec)], "seed": seed, "synthetic": synthetic,
                "max_reals_per_split": max_reals_per_split, "include_builtin_fakes": include_builtin_fakes,
                "context": context}
    digest = _digest(settings)
    paths = {k: out / v for k, v in STAGE_FILES.items()}
    sfile = out / "settings.json"
    if sfile.is_file() and all(p.is_file() for p in paths.values()):
        try:
            if json.loads(sfile.read_text()).get("hash") == digest:
                log.info("reusing laundering dataset in %s", out)
                return paths
        except ValueError:
            pass

    tae = TinyAutoencoder.from_files(enc, dec).eval()
    samples = load_dataset(bman)
    rng = np.random.default_rng(seed)
    reals: list[Any] = []
    for split in sorted({s.split for s in samples if s.label == 0}):
        group = [s for s in samples if s.label == 0 and s.split == split]
        if max_reals_per_split is not None and len(group) > max_reals_per_split:
            keep = np.sort(rng.choice(len(group), max_reals_per_split, replace=False))
            group = [group[i] for i in keep]
        reals.extend(group)
    if not reals:
        raise DataError(f"{bman}: no real images")

    rows: list[tuple[str, int, str, str, str, str]] = []
    out.mkdir(parents=True, exist_ok=True)
    out_real = out.resolve()

    def link(s: Any, kind: str) -> None:
        """List a benchmark file; files outside ``out`` are copied in so paths stay relative."""
        src = Path(s.path).resolve()
        if src.is_relative_to(out_real):
            r = src.relative_to(out_real).as_posix()
        else:
            dst = out / "images" / (s.split or "all") / kind / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            r = dst.relative_to(out).as_posix()
        rows.append((r, 0 if kind == REAL else 1, s.generator, s.split, s.source, kind))

    for s in reals:
        link(s, REAL)
    for s in samples:
        if s.label == 1 and s.generator == tae.name:
            link(s, LAUNDERED)
        elif s.label == 1 and include_builtin_fakes:
            link(s, "generated")

    # encode every real patch once (padded), grouped by size
    groups: dict[tuple[int, ...], list[Any]] = {}
    pixels: dict[str, np.ndarray] = {}
    for s in reals:
        pixels[s.path] = load_image(s.path)
        groups.setdefault(pixels[s.path].shape, []).append(s)
    gen = torch.Generator().manual_seed(int(seed))
    lname, sname = f"laundered-{tae.name}", f"synthetic-{tae.name}"
    bar = progress_bar(2 * len(reals), "laundering", enabled=progress, unit="patch")
    chunk = 32
    for shape in sorted(groups):
        group = groups[shape]
        x = torch.from_numpy(np.stack([pixels[s.path] for s in group])).permute(0, 3, 1, 2).contiguous().float()
        with torch.no_grad():
            parts = []
            for i in range(0, len(x), chunk):
                xp, c = _padded(x[i:i + chunk], context)
                parts.append(tae.encode(xp))
                bar.update(len(parts[-1]))
            z = torch.cat(parts)
            if synthetic == "gaussian":
                fit = [i for i, s in enumerate(group) if s.split == "train"]
                prior = LatentGaussianPrior(z[fit] if len(fit) >= 2 else z)
                zs = prior.sample(len(z), gen)
            else:
                zs = phase_randomize(z, gen)
        h, w = x.shape[-2:]
        for i in range(0, len(x), chunk):
            with torch.no_grad():
                lx = tae.decode(z[i:i + chunk])[..., c:c + h, c:c + w]
                sx = tae.decode(zs[i:i + chunk])[..., c:c + h, c:c + w]
            for s, limg, simg in zip(group[i:i + chunk], lx, sx):
                stem = Path(s.path).stem
                for kind, gname, img in ((LAUNDERED, lname, limg), (SYNTHETIC, sname, simg)):
                    rel = Path("images") / (s.split or "all") / kind / f"{stem}.png"
                    save_png(out / rel, img.numpy())
                    rows.append((rel.as_posix(), 1, gname, s.split, s.source, kind))
            bar.update(len(lx))
    bar.close()

    rows.sort(key=lambda r: (r[3], r[5], r[0]))
    cols = ("path", "label", "generator", "split", "source")
    _write_csv(paths["manifest"], rows, cols + ("kind",))
    _write_csv(paths["stage1"], [r[:5] for r in rows], cols)
    _write_csv(paths["stage2"], [(r[0], int(r[5] == SYNTHETIC), r[2], r[3], r[4]) for r in rows
                                 if r[5] in (LAUNDERED, SYNTHETIC)], cols)
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r[3]}/{r[5]}"] = counts.get(f"{r[3]}/{r[5]}", 0) + 1
    sfile.write_text(json.dumps({"hash": digest, "settings": settings, "counts": counts,
                                 "builtin_manifest": str(bman), "tae": tae.name}, indent=2, sort_keys=True))
    return paths


# ------------------------------------------------------------------------------------------------
# training


def train_laundering(data: dict[str, Path] | str | Path, out: str | Path, cfg1: Any = None, cfg2: Any = None,
                     stage1_options: dict[str, Any] | None = None, stage2_options: dict[str, Any] | None = None,
                     recalibrate: bool = True, **detector_options: Any) -> tuple[LaunderingTwoStage, dict[str, Any]]:
    """Train stage 1 on ``stage1.csv`` and stage 2 on ``stage2.csv`` with the shared trainer
    (:func:`fakebench.train.train_detector`), saving ``<out>/stage1`` and ``<out>/stage2``.

    Args:
        data: the dict returned by :func:`build_laundering_dataset`, or its folder.
        cfg1, cfg2: :class:`fakebench.train.TrainConfig` per stage; a ``crop`` left at None
            becomes the stage's ``patch`` (training sees one random patch per image, as the
            authors trained on patches).
        stage1_options, stage2_options: detector options of one stage, over
            ``detector_options`` (shared by both: arch, width, patch, M, ...).
        recalibrate: the trainer calibrates each threshold on validation crops of ``patch``
            pixels (one patch each); with ``recalibrate`` the threshold is set again
            (balanced accuracy) on the WHOLE validation images, scored the way ``forward``
            scores any image (M of the drawn patches), and the checkpoint re-saved.
    Returns:
        (the two-stage model in eval mode, {"stage1": history, "stage2": history}).
    """
    from dataclasses import replace

    from .. import metrics
    from ..data import load_dataset, select
    from ..data.transforms import EvalTransform
    from ..train import TrainConfig, predict_samples, train_detector

    files = data if isinstance(data, dict) else {k: Path(data) / v for k, v in STAGE_FILES.items()}
    hists: dict[str, Any] = {}
    stages = []
    for key, cfg, extra in (("stage1", cfg1, stage1_options), ("stage2", cfg2, stage2_options)):
        opts = {**detector_options, **(extra or {})}
        c = cfg or TrainConfig()
        if c.crop is None:
            c = replace(c, crop=int(opts.get("patch", 96)))
        torch.manual_seed(c.seed)  # the detector's initial weights: seeded, whatever ran before
        det, hist = train_detector(f"laundering-{key}", Path(files[key]), Path(out) / key, c, **opts)
        val = select(load_dataset(Path(files[key])), split="val")
        if recalibrate and val:
            try:
                yv, sv = predict_samples(det, val, c.eval_batch_size, EvalTransform())
            except RuntimeError:  # images of different sizes cannot share a batch
                yv, sv = predict_samples(det, val, 1, EvalTransform())
            if len(set(yv.tolist())) == 2:
                det.threshold = float(metrics.calibrate_threshold(yv, sv, method="balanced"))
                hist["image_val_auc"] = metrics.auc(yv, sv)
                hist["image_threshold"] = det.threshold
                det.meta["image_val_auc"] = hist["image_val_auc"]
                det.save(Path(out) / key)
        stages.append(det)
        hists[key] = hist
    return LaunderingTwoStage(*stages).eval(), hists
