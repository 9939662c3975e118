"""Certification throughput of randomized smoothing relative to plain forward throughput.

    python bench/certify.py [--arch resnet10] [--width 16] [--size 64] [--images 8] [--n 1000] [--batch 250]

CERTIFY needs ``n0 + n`` noisy forward passes per image; the floor of the ratio (images per
second certified / images per second scored) is therefore ``1 / (n0 + n)``. The table gives
both throughputs, their ratio, and the ratio times ``n0 + n`` (1.0 = no overhead beyond the
noisy passes: batching and counting are free). Runs alternate; medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fakebench import detectors
from fakebench.defenses.smoothing import Smoothed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet10")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--n0", type=int, default=100)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    base = detectors.create("cnnspot", arch=args.arch, width=args.width).eval()
    sm = Smoothed(base, sigma=0.25, n0=args.n0, n=args.n, batch=args.batch).eval()
    x = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    plain_x = x.repeat(args.batch // args.images + 1, 1, 1, 1)[: args.batch]
    fwd, cert = [], []
    with torch.no_grad():
        base(plain_x)  # warm-up
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(4):
                base(plain_x)
            fwd.append(4 * len(plain_x) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            sm.certify(x)
            cert.append(len(x) / (time.perf_counter() - t0))
    f, c = statistics.median(fwd), statistics.median(cert)
    k = args.n0 + args.n
    print(f"{args.arch} width {args.width}, {args.size}px, batch {args.batch}; n0 {args.n0}, n {args.n}")
    print(f"plain forward: {f:10.1f} images/s")
    print(f"certify:       {c:10.3f} images/s")
    print(f"ratio certify/forward: {c / f:.2e}   floor 1/(n0+n) = {1 / k:.2e}   ratio x (n0+n) = {c / f * k:.2f}")


if __name__ == "__main__":
    main()
