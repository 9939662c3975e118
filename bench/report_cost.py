"""Cost of the report: size of report.html and time to build it, against the run it reports.

    python bench/report_cost.py [--n 1000] [--size 64] [--out DIR] [--keep]

A real run: ``--n`` images (half real, half with a 2x pixel-repetition trace; two
"generators"), a small CNN (resnet10, width 16, random weights, threshold 0), five attacks
(JPEG q75, blur sigma 1, PGD evade at 2/255 and 4/255 with 10 steps, FGSM spoof at 4/255),
the default gallery (6 per chunk of 32). Then ``build_report`` writes results.json, report.md and
report.html. Prints the run time, the report time, their ratio and the HTML size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml


def make_data(root: Path, n: int, size: int) -> Path:
    from fakebench.io import save_png

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["path,label,generator"]
    for i in range(n):
        label = i % 2
        base = np.kron(rng.random((size // 8, size // 8, 3)), np.ones((8, 8, 1)))
        img = np.clip(base * 0.8 + rng.normal(0, 0.05, base.shape), 0, 1)
        if label:
            img = np.kron(img[::2, ::2], np.ones((2, 2, 1)))
        name = f"img_{i:05d}.png"
        save_png(root / name, img)
        lines.append(f"{name},{label},{'real' if not label else ('genA' if i % 4 == 1 else 'genB')}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", default=None, help="keep everything here (default: a temporary folder)")
    args = ap.parse_args()
    from fakebench import detectors
    from fakebench.report import build_report
    from fakebench.runner import evaluate, load_experiment

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fakebench-report-cost-"))
    try:
        manifest = make_data(root / "data", args.n, args.size)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            det = detectors.create("cnnspot", arch="resnet10", width=16).eval()
        det.save(root / "det")
        pgd = {"direction": "evade", "steps": 10, "step_size": "1/255"}
        cfg = {"run": "cost", "output": str(root / "run"), "seed": 0, "batch_size": 32,
               "dataset": {"path": str(manifest)}, "detectors": [{"name": "cnn", "checkpoint": str(root / "det")}],
               "attacks": [{"attack": "jpeg", "options": {"quality": 75}}, {"attack": "blur", "options": {"sigma": 1}},
                           {"name": "pgd", "attack": "pgd", "options": pgd, "grid": {"eps": ["2/255", "4/255"]}},
                           {"attack": "fgsm", "options": {"direction": "spoof", "eps": "4/255"}}]}
        (root / "exp.yaml").write_text(yaml.safe_dump(cfg))
        exp = load_experiment(root / "exp.yaml")
        t0 = time.perf_counter()
        store = evaluate(exp, progress=False)
        run_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        build_report(store, "cost", exp.output, title="report cost")
        report_s = time.perf_counter() - t1
        html = exp.output / "report.html"
        thumbs = list((exp.output / "gallery").rglob("*.png"))
        res = {"images": args.n, "size": args.size, "attack_settings": 5, "threads": torch.get_num_threads(),
               "run_s": round(run_s, 2), "report_s": round(report_s, 2), "ratio": round(report_s / run_s, 4),
               "html_mb": round(html.stat().st_size / 2**20, 3),
               "thumbnails": len(thumbs), "thumbnails_mb": round(sum(p.stat().st_size for p in thumbs) / 2**20, 3)}
        print(json.dumps(res, indent=1))
        print(f"report {report_s:.1f} s / run {run_s:.1f} s = {100 * report_s / run_s:.1f}% ; "
              f"report.html {res['html_mb']:.2f} MB")
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
