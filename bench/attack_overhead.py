"""Overhead of one PGD step relative to one forward+backward of the same detector and batch.

    python bench/attack_overhead.py [--detector cnnspot] [--arch resnet50] [--batch 8] [--size 96]

Both are measured side by side in one run (median of repeats). Target: ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fakebench import attacks, detectors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detector", default="cnnspot")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    det = detectors.create(args.detector, arch=args.arch, width=args.width).eval()
    x = torch.rand(args.batch, 3, args.size, args.size)
    y = torch.ones(args.batch, dtype=torch.long)
    atk = attacks.create("pgd", eps=8 / 255, steps=args.steps, step_size=2 / 255, quantize=False)

    def fwd_bwd() -> None:
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(det(xi).sum(), xi)

    def pgd() -> None:
        atk(det, x, y)

    fwd_bwd(), pgd()  # warm-up
    t_fb, t_pgd = [], []
    for _ in range(args.repeats):  # interleaved so drifts in machine load hit both alike
        t0 = time.perf_counter()
        for _ in range(args.steps):
            fwd_bwd()
        t_fb.append((time.perf_counter() - t0) / args.steps)
        t0 = time.perf_counter()
        pgd()
        t_pgd.append((time.perf_counter() - t0) / args.steps)
    fb, step = statistics.median(t_fb), statistics.median(t_pgd)
    print(f"detector {args.detector} ({args.arch}, width {args.width}), batch {args.batch}x3x{args.size}x{args.size}")
    print(f"forward+backward: {fb * 1000:.1f} ms   PGD step: {step * 1000:.1f} ms")
    print(f"ratio PGD step / forward+backward = {step / fb:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
