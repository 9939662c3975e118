"""Evaluation throughput (images/s) and peak RSS for two dataset sizes.

    python bench/eval_throughput.py [--sizes 200 800]

Each size runs ``fakebench evaluate`` (clean + JPEG, a small CNN) in a fresh process; peak RSS
is that process's maximum resident set size. The runner streams fixed-size chunks, so peak RSS
must not grow with the dataset size.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 800])
    ap.add_argument("--image-size", type=int, default=128)
    args = ap.parse_args()
    from fakebench import detectors

    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        torch.manual_seed(0)
        detectors.create("cnnspot", arch="resnet18", width=32).save(td / "ck")
        results = []
        for n in args.sizes:
            manifest = make_data(td / f"data{n}", n, args.image_size)
            cfg = {"run": f"n{n}", "output": str(td / f"out{n}"), "batch_size": 32, "dataset": {"path": str(manifest)},
                   "detectors": [{"name": "cnn", "checkpoint": str(td / "ck")}],
                   "attacks": [{"attack": "jpeg", "options": {"quality": 75}}]}
            (td / f"exp{n}.yaml").write_text(yaml.safe_dump(cfg))
            out = subprocess.run([sys.executable, "-c", CHILD, str(td / f"exp{n}.yaml")], check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            ips = 2 * n / r["seconds"]  # each image is scored clean and after JPEG
            results.append((n, ips, r["maxrss_kb"] / 1024))
            print(f"{n:6d} images: {ips:7.1f} image-evaluations/s, peak RSS {r['maxrss_kb'] / 1024:7.1f} MiB")
        (n0, _, m0), (n1, _, m1) = results[0], results[-1]
        print(f"peak RSS ratio ({n1} vs {n0} images) = {m1 / m0:.3f}  (target: ~1.0, must not grow with size)")


if __name__ == "__main__":
    main()
