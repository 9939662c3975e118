"""Probe training with cached features: time of a second training relative to the first.

    python bench/probe_training.py [--n 200] [--detector univfd|clipdet] [--width 256 --layers 4]

Both trainings run in this process on the same images with a fresh feature cache: the first
embeds every image through a random-weight open_clip ViT (224 px input, patch 16; a small
stand-in for ViT-L/14, which has the same preprocessing and is ~60x slower) and fits the head;
the second finds every feature in the on-disk cache and only refits. Images: 256 px crops of
the Kodak suite (../shared/data/kodak) when present, else generated colour fields; half of them
pass through a 2x down/up "generator". Target: ratio <= 0.1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fakebench import detectors
from fakebench.train.probes import train_probe
from fakebench.detectors.feature_cache import FeatureCache
from fakebench.io import load_image, save_png

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"


def make_images(root: Path, n: int, size: int = 256, seed: int = 0) -> tuple[list[Path], list[int]]:
    rng = np.random.default_rng(seed)
    sources = sorted(KODAK.glob("*.png")) if KODAK.is_dir() else []
    photos = [load_image(p) for p in sources]
    paths, labels = [], []
    for i in range(n):
        if photos:
            ph = photos[i % len(photos)]
            t, l = rng.integers(0, ph.shape[0] - size), rng.integers(0, ph.shape[1] - size)
            img = ph[t : t + size, l : l + size]
        else:
            img = np.kron(rng.random((size // 16, size // 16, 3)), np.ones((16, 16, 1)))
            img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
        label = i % 2
        if label:  # 2x down/up: a crude generator fingerprint
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
            x = torch.nn.functional.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")
            img = x[0].permute(1, 2, 0).numpy()
        p = root / f"{'fake' if label else 'real'}_{i:04d}.png"
        save_png(p, img)
        paths.append(p)
        labels.append(label)
    return paths, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--detector", default="univfd", choices=["univfd", "clipdet"])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    cfg = {"embed_dim": args.width // 2,
           "vision_cfg": {"image_size": 224, "layers": args.layers, "width": args.width, "patch_size": 16,
                          "head_width": 64}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "imgs").mkdir()
        paths, labels = make_images(root / "imgs", args.n)
        det = detectors.create(args.detector, backbone_weights="random", model_config=cfg).eval()
        with FeatureCache(root / "cache") as cache:
            t0 = time.perf_counter()
            r1 = train_probe(det, paths, labels, cache=cache, batch_size=32)
            t1 = time.perf_counter() - t0
            w1 = det.head.weight.detach().clone()
            t0 = time.perf_counter()
            r2 = train_probe(det, paths, labels, cache=cache, batch_size=32)
            t2 = time.perf_counter() - t0
        same = torch.equal(w1, det.head.weight)
    src = "Kodak crops" if KODAK.is_dir() else "generated images"
    print(f"{args.detector} probe on {args.n} {src}, random ViT width {args.width} x {args.layers} layers, "
          f"{torch.get_num_threads()} threads")
    print(f"first  training: {t1:8.3f} s  (computed {r1['computed']}, features {r1['feature_seconds']:.3f} s, "
          f"fit {r1['fit_seconds']:.3f} s)")
    print(f"second training: {t2:8.3f} s  (cache hits {r2['cache_hits']}, features {r2['feature_seconds']:.3f} s, "
          f"fit {r2['fit_seconds']:.3f} s)")
    print(f"same probe: {same}")
    print(f"ratio second/first: {t2 / t1:.4f}  (target <= 0.1)")
    return 0 if same and r2["computed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
