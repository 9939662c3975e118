"""Making the built-in benchmark's images: the generators of each split (the tiny
autoencoders, trained here on the train split's generator crops, and an optional TAE), the six
patches of every assigned crop written as PNGs (fakes through their generator), and the
manifest."""

from __future__ import annotations

import csv
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..generators.autoencoders import UPSAMPLERS, apply_generator, train_autoencoder
from ..io import save_png
from .layout import CONTEXT, HELDOUT_GENERATORS, IMAGES_DIR, MANIFEST, MANIFEST_COLUMNS, SEEN_GENERATORS, SPLITS, VIEWS
from .sources import Crop

log = logging.getLogger(__name__)

#: a manifest row: (path relative to the manifest, label, generator, split, source)
Row = tuple[str, int, str, str, str]
#: crops passed through a generator at once
CHUNK = 32


def _to_tensor(batch: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255.0)


def _downscale2(x: torch.Tensor) -> torch.Tensor:
    """2x box downscaling, quantised to the 8-bit grid (as a stored image would be)."""
    return (F.avg_pool2d(x, 2) * 255.0).round_().div_(255.0)


def _views(full: torch.Tensor, half: torch.Tensor, patch: int) -> dict[str, torch.Tensor]:
    """The six patches of one crop: (3, 2p, 2p) full and (3, p, p) half-scale versions."""
    p, q = patch, patch // 2
    return {
        "q00": full[:, :p, :p], "q01": full[:, :p, p:], "q10": full[:, p:, :p], "q11": full[:, p:, p:],
        "ctr": full[:, q:q + p, q:q + p], "half": half,
    }


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", s).strip("_")[:80]


# ----------------------------------------------------------------------------------------------
# generators


def load_tae(tae_dir: Path) -> Any:
    """The TAESD-family autoencoder in ``tae_dir``, named after its weights (renamed
    ``tae-<name>`` when that clashes with an autoencoder family or ``real``)."""
    from ..generators.tae import TinyAutoencoder

    tae = TinyAutoencoder.from_dir(tae_dir)
    tname = _safe(tae.name) or "tae"
    if tname in UPSAMPLERS or tname == "real":
        tname = f"tae-{tname}"
    tae.name = tname
    return tae


def split_generators(tae: Any | None) -> tuple[dict[str, list[str]], list[str]]:
    """(generators of each split, held-out generators): the seen ones everywhere, the held-out
    ones (and the TAE, if any) only in ``test``."""
    heldout = list(HELDOUT_GENERATORS) + ([tae.name] if tae is not None else [])
    gens = {"train": list(SEEN_GENERATORS), "val": list(SEEN_GENERATORS), "test": list(SEEN_GENERATORS) + heldout}
    return gens, heldout


def _training_images(assigned: Sequence[Crop], crops: Sequence[Crop]) -> list[np.ndarray]:
    """The train split's generator crops (else every generator crop, else every crop) in [0, 1]."""
    train_imgs = [c.pixels.astype(np.float32) / 255.0 for c in assigned if c.split == "train" and c.generator != "real"]
    if not train_imgs:
        train_imgs = [c.pixels.astype(np.float32) / 255.0 for c in assigned if c.generator != "real"] or \
                     [c.pixels.astype(np.float32) / 255.0 for c in crops]
    return train_imgs


def train_autoencoders(assigned: Sequence[Crop], crops: Sequence[Crop], *, patch: int, seed: int, steps: int,
                       progress: bool) -> dict[str, Callable[..., Any]]:
    """The tiny autoencoders the assignment uses, trained (seeded per family) on the train
    split's generator crops; name -> model."""
    train_imgs = _training_images(assigned, crops)
    models: dict[str, Callable[..., Any]] = {}
    needed = {c.generator for c in assigned} - {"real"}
    for k, up in enumerate(UPSAMPLERS):
        if up not in needed:
            continue
        t1 = time.time()
        models[up] = train_autoencoder(train_imgs, up, seed=seed * 1009 + k, steps=steps,
                                       patch=min(32, 2 * patch), progress=progress)
        log.info("trained %s autoencoder in %.1f s (final L1 %.4f)", up, time.time() - t1,
                 float(np.mean(models[up].history[-10:])) if models[up].history else float("nan"))  # type: ignore[attr-defined]
    return models


# ----------------------------------------------------------------------------------------------
# post-processing shared by both classes


@dataclass(frozen=True)
class PostProcess:
    """The random post-processing every patch goes through, real or synthetic alike, so that
    neither resampling nor JPEG compression tells the classes apart: with ``resize_prob`` a
    bilinear (antialiased) resize by a scale drawn from ``scale`` and back to the patch size,
    then with ``jpeg_prob`` a JPEG round trip with a quality drawn from ``quality``
    (inclusive). The draws come from a generator seeded by (seed, crop index, view), never by
    the label. Files stay PNG (the JPEG round trip is in the pixels)."""

    resize_prob: float = 0.3
    scale: tuple[float, float] = (0.75, 1.0)
    jpeg_prob: float = 0.5
    quality: tuple[int, int] = (75, 95)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from ..data import degrade

        u = rng.random(4)  # fixed number of draws
        if u[0] < self.resize_prob:
            s = self.scale[0] + u[1] * (self.scale[1] - self.scale[0])
            img = degrade.resize_np(img, scale=float(s), restore=True)
        if u[2] < self.jpeg_prob:
            q = min(self.quality[1], self.quality[0] + int(u[3] * (self.quality[1] - self.quality[0] + 1)))
            img = degrade.jpeg_np(np.clip(img, 0.0, 1.0), q)
        return np.clip(img, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# images and manifest


def _write_chunk(out: Path, gen_name: str, part: Sequence[tuple[int, Crop]], models: dict[str, Callable[..., Any]],
                 patch: int, rows: list[Row], psnr: dict[str, list[float]], bar: Any,
                 post: PostProcess | None = None, seed: int = 0) -> None:
    """Write the six patches of each crop in ``part`` (through ``gen_name`` unless real),
    appending their manifest rows to ``rows`` and the generator's PSNR to ``psnr``; ``bar``
    advances by one crop's patches at a time."""
    full = _to_tensor([c.pixels for _, c in part])
    half = _downscale2(full)
    if gen_name != "real":
        with torch.no_grad():
            gfull = apply_generator(models[gen_name], full, context=CONTEXT)
            ghalf = apply_generator(models[gen_name], half, context=CONTEXT)
        psnr.setdefault(gen_name, []).append(_psnr((gfull * 255).round() / 255, full))
        full, half = gfull, ghalf
    label = 0 if gen_name == "real" else 1
    for j, (idx, c) in enumerate(part):
        for k, (view, img) in enumerate(_views(full[j], half[j], patch).items()):
            rel = Path(IMAGES_DIR) / c.split / gen_name / f"{idx:05d}_{_safe(c.source)}_{view}.png"
            arr = img.numpy()
            if post is not None:  # on (H, W, 3); the draws depend on the crop and the view only
                arr = post(np.ascontiguousarray(arr.transpose(1, 2, 0)), np.random.default_rng([int(seed), int(idx), k]))
            save_png(out / rel, arr)
            rows.append((rel.as_posix(), label, gen_name, c.split, c.source))
        bar.update(len(VIEWS))


def write_patches(out: Path, assigned: Sequence[Crop], models: dict[str, Callable[..., Any]], patch: int,
                  progress: bool, post: PostProcess | None = None, seed: int = 0
                  ) -> tuple[list[Row], dict[str, list[float]]]:
    """Write every assigned crop's patches, generator by generator (sorted by name) in chunks
    of :data:`CHUNK` crops, each through ``post`` (both classes alike); returns (manifest rows,
    per-chunk PSNR of each generator, measured before ``post``)."""
    from ..progress import progress_bar

    rows: list[Row] = []
    psnr: dict[str, list[float]] = {}
    bar = progress_bar(len(assigned) * len(VIEWS), "writing patches", enabled=progress, unit="patch")
    by_gen: dict[str, list[tuple[int, Crop]]] = {}
    for i, c in enumerate(assigned):
        by_gen.setdefault(c.generator, []).append((i, c))
    for gen_name in sorted(by_gen):
        items = by_gen[gen_name]
        for s in range(0, len(items), CHUNK):
            part = items[s:s + CHUNK]
            _write_chunk(out, gen_name, part, models, patch, rows, psnr, bar, post, seed)
    bar.close()
    return rows, psnr


def write_manifest(out: Path, rows: list[Row]) -> None:
    """Sort ``rows`` (split, label, generator, path) in place and write ``<out>/manifest.csv``
    (atomically)."""
    rows.sort(key=lambda r: (SPLITS.index(r[3]), r[1], r[2], r[0]))
    tmp = out / (MANIFEST + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(MANIFEST_COLUMNS)
        w.writerows(rows)
    os.replace(tmp, out / MANIFEST)


def count_rows(rows: Sequence[Row]) -> dict[str, dict[str, int]]:
    """Patches per split and generator."""
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for r in rows:
        counts[r[3]][r[2]] = counts[r[3]].get(r[2], 0) + 1
    return counts


def psnr_summary(psnr: dict[str, list[float]]) -> dict[str, float]:
    """Mean PSNR (dB, 2 decimals) of each generator over its chunks, by generator name."""
    return {g: round(float(np.mean(v)), 2) for g, v in sorted(psnr.items())}
