"""Make ``docs/report.png``: a small real run (a tiny CNN trained for a few seconds on a
checkerboard-trace dataset, JPEG / blur / PGD at 1, 2, 4 /255 / Square), its report.html, and a
headless-Chromium screenshot of the page's top.

    python bench/report_screenshot.py [--out DIR] [--png docs/report.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml


def make_data(root: Path, n_per_class: int = 80, size: int = 32, seed: int = 0) -> Path:
    from fakebench.io import save_png

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * 0.06
    lines = ["path,label,generator,split"]
    for i in range(2 * n_per_class):
        label = i % 2
        base = np.kron(rng.random((size // 8, size // 8, 3)), np.ones((8, 8, 1))) * 0.6 + 0.2
        amp = 1.0 if i % 4 == 1 else 0.6  # two "generators" with traces of different strength
        img = np.clip(base + rng.normal(0, 0.03, base.shape) + (checker * amp if label else 0.0), 0, 1)
        name = f"img_{i:04d}.png"
        save_png(root / name, img)
        k = i // 2
        split = "train" if k < 0.5 * n_per_class else ("val" if k < 0.65 * n_per_class else "test")
        gen = "real" if not label else ("ganA" if amp == 1.0 else "ganB")
        lines.append(f"{name},{label},{gen},{split}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--png", default=str(Path(__file__).resolve().parents[1] / "docs" / "report.png"))
    args = ap.parse_args()
    from fakebench.report import build_report
    from fakebench.runner import evaluate, load_experiment
    from fakebench.train import TrainConfig, train_detector

    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fakebench-shot-"))
    manifest = make_data(root / "data")
    train_detector("res50nodown", manifest, root / "cnn", TrainConfig(epochs=4, batch_size=8, lr=1e-3, crop=0, seed=0,
                                                                   progress=False), arch="resnet10", width=8)
    pgd = {"direction": "evade", "steps": 10, "step_size": "0.5/255"}
    cfg = {"run": "example", "output": str(root / "run"), "seed": 0, "batch_size": 16,
           "dataset": {"path": str(manifest), "split": "test"},
           "detectors": [{"name": "tiny-cnn", "checkpoint": str(root / "cnn")}],
           "attacks": [{"attack": "jpeg", "options": {"quality": 75}}, {"attack": "blur", "options": {"sigma": 1}},
                       {"name": "pgd", "attack": "pgd", "options": pgd, "grid": {"eps": ["1/255", "2/255", "4/255"]}},
                       {"attack": "square", "options": {"direction": "evade", "eps": "4/255", "n_queries": 200}}]}
    (root / "exp.yaml").write_text(yaml.safe_dump(cfg))
    exp = load_experiment(root / "exp.yaml")
    store = evaluate(exp, progress=False)
    build_report(store, "example", exp.output, title="fakebench: example run")
    page = exp.output / "report.html"
    print(f"report: {page}")
    if browser is None:
        print("no chromium: no screenshot")
        return 1
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                    "--window-size=1280,1500", f"--user-data-dir={root / 'profile'}", f"--screenshot={args.png}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    print(f"screenshot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
