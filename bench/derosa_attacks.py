"""De Rosa et al. (2024) attacks on the attack-suite benchmark detector: the numbers of the
README's "Faithful to the papers" table.

    python bench/derosa_attacks.py [--seeds 4] [--fit 96]

Builds the built-in benchmark and the CPU-sized cnnspot of ``tests/attacks/_bench.py`` (about a
minute on 2 cores), then prints (1) Robust FGSM (preset derosa2024) vs plain PGD at the same
budget (8/255, step 2/255, 10 steps): success under each of Robust FGSM's 17 transforms on the
correctly detected synthetic test images; (2) the DeepFool UAP (preset derosa2024) fitted on
the first ``--fit`` synthetic train images: fooling rate per pass on the fit set's held-out
20% and on the held-out test fakes, for ``--seeds`` seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "attacks"))
from _bench import _load, asr, build_bench

from fakebench import attacks
from fakebench.attacks.robust import robust_transforms
from fakebench.data import load_dataset, select


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--fit", type=int, default=96)
    args = ap.parse_args()
    b = build_bench()
    det, x, y = b.detector, b.fake_x, b.fake_y
    print(f"{len(x)} correctly detected synthetic test images of {b.side} px")
    t0 = time.perf_counter()
    robust = attacks.create("robust-fgsm", preset="derosa2024", seed=0)(det, x, y)
    t1 = time.perf_counter()
    pgd = attacks.create("pgd", eps=8 / 255, step_size=2 / 255, steps=10, seed=0)(det, x, y)
    t2 = time.perf_counter()
    print(f"robust-fgsm {t1 - t0:.1f} s, pgd {t2 - t1:.1f} s")
    print(f"{'transform':12s} robust-fgsm   pgd")
    for name, f in robust_transforms():
        with torch.no_grad():
            r = asr(det, f(robust, torch.Generator().manual_seed(1)))
            p = asr(det, f(pgd, torch.Generator().manual_seed(1)))
        print(f"{name:12s} {r:11.3f} {p:5.3f}")
    fakes = [s for s in select(load_dataset(b.manifest), split="train") if int(s.label) == 1]
    xf = _load(fakes, args.fit, tuple(x.shape[-2:]))
    for seed in range(args.seeds):
        atk = attacks.create("uap", preset="derosa2024", seed=seed)
        atk.fit(det, xf, torch.ones(len(xf), dtype=torch.long))
        rates = [round(v, 3) for v in atk.fit_report(det)["fooling_rate"]]
        print(f"uap seed {seed}: passes {rates}, held-out test fakes fooled {asr(det, atk(det, x, y)):.4f}")


if __name__ == "__main__":
    main()
