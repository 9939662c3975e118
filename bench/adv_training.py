"""Cost of one adversarial-training epoch relative to one clean epoch, and to the floor.

    python bench/adv_training.py [--arch resnet10] [--width 16] [--batch 32] [--size 48] [--batches 12] [--steps 3]

Both epochs run the shared training step (forward, loss, backward, Adam update) of
``fakebench.train`` on the same batches; the adversarial one uses
:class:`fakebench.defenses.adversarial.AdversarialObjective` (PGD-AT, TRADES, FGSM-RS).
An adversarial step with ``k`` inner steps needs at least ``k`` extra forward+backward passes,
so the floor of the ratio is ``k + 1`` (FGSM-RS: 2); the second ratio says how close to the
floor the implementation is (1.0 = no overhead beyond the extra passes). Epochs alternate
(clean, pgd, trades, fgsm-rs, clean, ...) and medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fakebench import detectors
from fakebench.defenses.adversarial import AdvConfig, AdversarialObjective


def _epoch(det, opt, batches, objective) -> float:
    det.train()
    t0 = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        loss = objective(det, x, y) if objective else F.binary_cross_entropy_with_logits(det(x), y.float())
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet10")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    det = detectors.create("cnnspot", arch=args.arch, width=args.width)
    opt = torch.optim.Adam(det.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(args.batch, 3, args.size, args.size, generator=g),
                torch.randint(0, 2, (args.batch,), generator=g)) for _ in range(args.batches)]
    kinds = {"clean": None}
    for kind in ("pgd", "trades", "fgsm-rs"):
        kinds[kind] = AdversarialObjective(AdvConfig(kind=kind, eps=4 / 255, steps=args.steps, direction="both"))
    times: dict[str, list[float]] = {k: [] for k in kinds}
    _epoch(det, opt, batches[:2], None)  # warm-up
    for _ in range(args.repeats):
        for name, obj in kinds.items():
            times[name].append(_epoch(det, opt, batches, obj))
    clean = statistics.median(times["clean"])
    print(f"{args.batches} batches of {args.batch} x {args.size}px, {args.arch} width {args.width}, "
          f"{args.steps} inner steps; median of {args.repeats}")
    print(f"{'objective':10s} {'s/epoch':>8s} {'x clean':>8s} {'floor':>6s} {'x floor':>8s}")
    print(f"{'clean':10s} {clean:8.2f} {1.0:8.2f} {1:6d} {1.0:8.2f}")
    for name in ("pgd", "trades", "fgsm-rs"):
        t = statistics.median(times[name])
        floor = 2 if name == "fgsm-rs" else args.steps + 1
        print(f"{name:10s} {t:8.2f} {t / clean:8.2f} {floor:6d} {t / clean / floor:8.2f}")


if __name__ == "__main__":
    main()
