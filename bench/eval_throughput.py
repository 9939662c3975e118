"""Evaluation throughput (images/s) and peak RSS for two dataset sizes.

    python bench/eval_throughput.py [--sizes 200 800]
    python bench/eval_throughput.py --full-size --sizes 200 2000     # 512-1024 px JPEGs, whole images

Each size runs ``fakebench evaluate`` (clean + JPEG, a small CNN) in a fresh process; peak RSS
is that process's maximum resident set size. The runner streams fixed-size chunks, so peak RSS
must not grow with the dataset size. ``--full-size`` writes photo-sized JPEGs of five sizes
between 512 and 1024 px (as a camera folder mixes orientations and crops), scores them whole,
at full resolution (clean only: the JPEG pass would double the time), batched by size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

CHILD = r"""
import json, resource, sys, time
from fakebench.runner import evaluate, load_experiment
exp = load_experiment(sys.argv[1])
t0 = time.perf_counter()
evaluate(exp, progress=False)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_data(root: Path, n: int, size: int) -> Path:
    from fakebench.io import save_png

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,label,generator"]
    for i in range(n):
        save_png(root / f"{i:05d}.png", rng.random((size, size, 3)))
        lines.append(f"{i:05d}.png,{i % 2},{'real' if i % 2 == 0 else 'noise'}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


#: (height, width) of the full-size images: landscape, portrait, square, 4:3, 3:2
FULL_SIZES = ((512, 768), (768, 512), (1024, 1024), (768, 1024), (683, 1024))


def make_full_size(root: Path, n: int) -> Path:
    """``n`` JPEGs (q 90) of the :data:`FULL_SIZES`, smooth random content (small files)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,label,generator"]
    for i in range(n):
        h, w = FULL_SIZES[i % len(FULL_SIZES)]
        small = (rng.random((h // 16, w // 16, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(root / f"{i:05d}.jpg", quality=90)
        lines.append(f"{i:05d}.jpg,{i % 2},{'real' if i % 2 == 0 else 'noise'}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 800])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--full-size", action="store_true", help="512-1024 px JPEGs of mixed sizes, whole images")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    from fakebench import detectors

    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        torch.manual_seed(0)
        # full size: the smallest CNN (the point is the pipeline's memory, not the model's)
        arch, width = ("resnet10", 4) if args.full_size else ("resnet18", 32)
        detectors.create("cnnspot", arch=arch, width=width).save(td / "ck")
        results = []
        for n in args.sizes:
            manifest = make_full_size(td / f"data{n}", n) if args.full_size else make_data(td / f"data{n}", n,
                                                                                           args.image_size)
            cfg = {"run": f"n{n}", "output": str(td / f"out{n}"), "batch_size": args.batch_size,
                   "dataset": {"path": str(manifest)}, "detectors": [{"name": "cnn", "checkpoint": str(td / "ck")}],
                   "attacks": [] if args.full_size else [{"attack": "jpeg", "options": {"quality": 75}}]}
            (td / f"exp{n}.yaml").write_text(yaml.safe_dump(cfg))
            out = subprocess.run([sys.executable, "-c", CHILD, str(td / f"exp{n}.yaml")], check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            ips = (1 if args.full_size else 2) * n / r["seconds"]  # clean (+ after JPEG)
            results.append((n, ips, r["maxrss_kb"] / 1024))
            print(f"{n:6d} images: {ips:7.1f} image-evaluations/s, peak RSS {r['maxrss_kb'] / 1024:7.1f} MiB")
        (n0, _, m0), (n1, _, m1) = results[0], results[-1]
        print(f"peak RSS ratio ({n1} vs {n0} images) = {m1 / m0:.3f}  (target: ~1.0, must not grow with size)")


if __name__ == "__main__":
    main()
