"""How far is each built-in test fake from the real crop it was generated from, against a Linf budget?

    python examples/defenses/source_gap.py DATA [CHECKPOINT ...] [--eps 4]

DATA is a `fakebench data builtin` folder built from the bundled photographs only (the sources
are re-cut from them; a build with `--real-dir` photos or post-processing is refused). Prints,
per generator, the median Linf and the RMS distance of the fakes to their sources, the fraction
of values within eps of the source, and what is left after the "source oracle": each fake moved
eps towards its own source (the best a Linf-eps attacker can do to look like that real photo,
with no detector in the loop). With checkpoints, each detector's TPR (threshold at 10% FPR on
clean val reals) on the fakes, on the source-oracle images and on the sources themselves.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from fakebench import detectors, metrics
from fakebench.builtin.generate import _downscale2, _views
from fakebench.builtin.sources import bundled_photos
from fakebench.data import load_dataset, select
from fakebench.data.pipeline import load_stack

SOURCE = re.compile(r"(.+)@y(\d+)_x(\d+)_s(\d+)$")
VIEW = re.compile(r"_(q00|q01|q10|q11|ctr|half)\.png$")


def sources(fakes: list, keep: list[int], patch: int) -> torch.Tensor:
    photos = {p.name: p.image for p in bundled_photos()}
    out = []
    for i in keep:
        s = fakes[i]
        m, v = SOURCE.match(s.source), VIEW.search(str(s.path))
        if m is None or v is None or m.group(1) not in photos:
            raise SystemExit(f"{s.path}: source {s.source!r} is not a crop of a bundled photo")
        y, x, size = (int(m.group(k)) for k in (2, 3, 4))
        full = torch.from_numpy(photos[m.group(1)][y:y + size, x:x + size].copy()).permute(2, 0, 1).float() / 255
        out.append(_views(full, _downscale2(full[None])[0], patch)[v.group(1)])
    return torch.stack(out)


def tpr(det: torch.nn.Module, x: torch.Tensor, t: float) -> float:
    return float((det.score(x, 128).flatten() > t).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("checkpoints", nargs="*")
    ap.add_argument("--eps", type=float, default=4.0, help="Linf budget in grey levels (of 255)")
    args = ap.parse_args()
    settings = json.loads((Path(args.data) / "settings.json").read_text())["settings"]
    if settings.get("real_files") or settings.get("postprocess"):
        raise SystemExit(f"{args.data}: built with real files or post-processing; sources cannot be re-cut")
    samples = load_dataset(args.data)
    fakes = [s for s in select(samples, split="test") if s.label == 1]
    xf, keep = load_stack(fakes)
    src = sources(fakes, keep, xf.shape[-1])
    gens = np.array([fakes[i].generator for i in keep])
    eps = args.eps / 255
    diff = src - xf
    oracle = (xf + diff.clamp(-eps, eps)).mul(255).round().div(255).clamp(0, 1)
    print(f"| generator | fakes | median Linf to source | RMS to source | values within {args.eps:g}/255 "
          f"| RMS left after the source oracle |\n|---|---|---|---|---|---|")
    for g in ["all", *sorted(set(gens))]:
        m = torch.ones(len(gens), dtype=torch.bool) if g == "all" else torch.from_numpy(gens == g)
        d = diff[m]
        print(f"| {g} | {int(m.sum())} | {float(d.abs().flatten(1).amax(1).median()) * 255:.0f}/255 "
              f"| {float(d.pow(2).mean().sqrt()) * 255:.1f}/255 | {float((d.abs() <= eps + 1e-6).float().mean()):.2f} "
              f"| {float((src[m] - oracle[m]).pow(2).mean().sqrt()) * 255:.1f}/255 |")
    if args.checkpoints:
        val = select(samples, split="val")
        xv, kv = load_stack(val)
        yv = np.array([val[i].label for i in kv])
        print("\n| detector | TPR on the fakes | TPR after the source oracle | TPR on the sources |\n|---|---|---|---|")
    for ck in args.checkpoints:
        det = detectors.load(ck).eval()
        t = metrics.threshold_at_fpr(det.score(xv, 128).flatten().numpy()[yv == 0], 0.10)
        print(f"| {ck} | {tpr(det, xf, t):.3f} | {tpr(det, oracle, t):.3f} | {tpr(det, src, t):.3f} |")


if __name__ == "__main__":
    main()
