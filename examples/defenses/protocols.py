"""One detector, two reporting protocols: how much the threshold rule decides "robust TPR".

    python examples/defenses/protocols.py DATA CHECKPOINT [CHECKPOINT ...] [--eps 4] [--steps 20]

For each checkpoint, on every test image of DATA: clean AUC; then plain Linf PGD (evade,
``--steps`` steps) on the test fakes, with the TPR read at two thresholds set on the clean
validation split: (a) the one maximising balanced accuracy, (b) 10% FPR on the validation reals
(the rule of `fakebench robustness`). Also prints the FPR that threshold (b) gives on the TEST
reals. PGD alone is not the adaptive ensemble: `fakebench robustness` gives the number to quote.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fakebench import detectors, metrics
from fakebench.attacks.base import ThreatModel
from fakebench.attacks.gradient import PGD
from fakebench.data import load_dataset, select
from fakebench.data.pipeline import load_stack


def stack(samples: list) -> tuple[torch.Tensor, np.ndarray]:
    x, keep = load_stack(samples)
    return x, np.array([samples[i].label for i in keep])


def thresholds(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a) the balanced-accuracy threshold, (b) 10% FPR on the reals (`fakebench robustness`'s rule)."""
    return metrics.calibrate_threshold(y, s, "balanced"), metrics.threshold_at_fpr(s[y == 0], 0.10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--eps", type=float, default=4.0, help="Linf budget in grey levels (of 255)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    samples = load_dataset(args.data)
    xv, yv = stack(select(samples, split="val"))
    xt, yt = stack(select(samples, split="test"))
    attack = PGD(ThreatModel(direction="evade", eps=args.eps / 255, steps=args.steps))
    print(f"| detector | clean AUC | (a) balanced-accuracy threshold: clean TPR | (a) PGD-{args.steps} TPR "
          f"| (b) 10% val FPR: clean TPR | (b) PGD-{args.steps} TPR | (b) test FPR |\n|---|---|---|---|---|---|---|")
    for ck in args.checkpoints:
        det = detectors.load(ck).eval()
        sv, st = det.score(xv, 128).flatten().numpy(), det.score(xt, 128).flatten().numpy()
        ta, tb = thresholds(sv, yv)
        xf = xt[yt == 1]  # evade: only the fakes are attacked
        xa = torch.cat([attack(det, xf[i:i + 64], torch.ones(len(xf[i:i + 64]), dtype=torch.long))
                        for i in range(0, len(xf), 64)])
        sa, sf = det.score(xa, 128).flatten().numpy(), st[yt == 1]
        print(f"| {ck} | {metrics.auc(yt, st):.3f} | {np.mean(sf > ta):.3f} | {np.mean(sa > ta):.3f} "
              f"| {np.mean(sf > tb):.3f} | {np.mean(sa > tb):.3f} | {np.mean(st[yt == 0] > tb):.3f} |")


if __name__ == "__main__":
    main()
