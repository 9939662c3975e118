"""``fakebench spectrum --detectors A,B --attacks pgd,di-fgsm --data DATASET --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import load_detectors, parse_options


def run(args: argparse.Namespace) -> int:
    from .. import attacks
    from ..data.pipeline import load_dataset_tensors
    from ..experiments.spectrum import analyze

    dets = load_detectors(args.detectors, "detectors")
    names = [a.strip() for a in args.attacks.split(",") if a.strip()]
    opts = parse_options(args.opt or [])
    factories = {}
    for name in names:
        attacks.create_seeded(name, args.seed, **opts)  # fail early on bad options

        def make(name: str = name) -> Any:
            return attacks.create_seeded(name, args.seed, **opts)

        factories[name] = make
    x, y, _ = load_dataset_tensors(args.data, split=args.split, limit=args.limit, size=args.size, seed=args.seed)
    rows = analyze(dets, factories, x, y, out=args.out, seed=args.seed)
    for (atk, det), r in rows.items():
        print(f"{atk:12s} {det:16s} low {r['low']:.3f}  mid {r['mid']:.3f}  high {r['high']:.3f}")
    print(f"wrote {Path(args.out) / 'perturbation_spectra.png'}, .csv, .json")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("spectrum", help="mean power spectrum of each attack's perturbations on each detector")
    s.add_argument("--detectors", required=True, help="comma-separated fakebench checkpoint folders")
    s.add_argument("--attacks", default="pgd", help="comma-separated registered attack names (default pgd)")
    s.add_argument("--opt", action="append", default=None, metavar="KEY=VALUE",
                   help="option for every attack, repeatable: --opt eps=8/255 --opt direction=both")
    s.add_argument("--data", required=True, help="dataset folder or manifest CSV")
    s.add_argument("--split", default="test")
    s.add_argument("--limit", type=int, default=64, help="seeded random subset of this many images (default 64)")
    s.add_argument("--size", type=int, default=None, help="centre-crop side (default: the smallest image side)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="folder for perturbation_spectra.png / .csv / .json")
    s.set_defaults(func=run)
