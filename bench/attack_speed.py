"""Seconds per PGD step: fakebench's PGD vs torchattacks' PGD on the same model and batch.

    python bench/attack_speed.py [--arch resnet18] [--width 32] [--batch 8] [--size 96] [--steps 10]

Both attack the same one-logit detector (torchattacks through the two-class view ``[0, z]``)
with the same budget (Linf 8/255, step 2/255, no random start); repeats are interleaved so
that drifts in machine load hit both alike, and the medians are compared. fakebench's attack
also does its bookkeeping (target selection, 8-bit rounding inside the eps-ball; with several
restarts, a final scoring forward per restart to pick the best); all of it counts. Target: ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fakebench import attacks, detectors


class TwoClass(torch.nn.Module):
    def __init__(self, det: torch.nn.Module) -> None:
        super().__init__()
        self.det = det

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.det(x)
        return torch.stack([torch.zeros_like(z), z], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detector", default="cnnspot")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    import torchattacks

    torch.manual_seed(0)
    det = detectors.create(args.detector, arch=args.arch, width=args.width).eval()
    x = torch.round(torch.rand(args.batch, 3, args.size, args.size) * 255) / 255
    y = torch.ones(args.batch, dtype=torch.long)
    eps, alpha = 8 / 255, 2 / 255
    ours = attacks.create("pgd", eps=eps, steps=args.steps, step_size=alpha, direction="evade")
    ref = torchattacks.PGD(TwoClass(det).eval(), eps=eps, alpha=alpha, steps=args.steps, random_start=False)

    def run_ours() -> torch.Tensor:
        return ours(det, x, y)

    def run_ref() -> torch.Tensor:
        return ref(x, y)

    a, b = run_ours(), run_ref()  # warm-up (and a sanity check: same update rule)
    agree = float(((a - torch.round(b * 255) / 255).abs() < 1.5 / 255).float().mean())
    t_ours, t_ref = [], []
    for r in range(args.repeats):
        order = (run_ours, run_ref) if r % 2 == 0 else (run_ref, run_ours)
        for fn in order:
            t0 = time.perf_counter()
            fn()
            dt = (time.perf_counter() - t0) / args.steps
            (t_ours if fn is run_ours else t_ref).append(dt)
    mo, mr = statistics.median(t_ours), statistics.median(t_ref)
    print(f"detector {args.detector} ({args.arch}, width {args.width}), batch {args.batch}x3x{args.size}x{args.size}, "
          f"{args.steps} steps, {args.repeats} interleaved repeats, threads {torch.get_num_threads()}")
    print(f"fakebench PGD: {mo * 1000:.1f} ms/step   torchattacks PGD: {mr * 1000:.1f} ms/step   "
          f"pixels agreeing within 1 grey level: {agree:.3f}")
    print(f"ratio fakebench / torchattacks = {mo / mr:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
