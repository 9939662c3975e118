"""``fakebench transfer --sources A,B --targets C,D --data DATASET --out DIR [...]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import load_detectors, parse_options


def run(args: argparse.Namespace) -> int:
    from .. import attacks
    from ..data.pipeline import load_dataset_tensors
    from ..experiments.transfer import transfer_matrix

    sources = load_detectors(args.sources, "sources")
    targets = load_detectors(args.targets, "targets")
    opts = parse_options(args.opt or [])
    for key in ("eps", "steps", "step_size", "direction", "norm"):
        v = getattr(args, key)
        if v is not None:
            opts[key] = parse_options([f"{key}={v}"])[key]
    x, y, _ = load_dataset_tensors(args.data, split=args.split, limit=args.limit, size=args.size, seed=args.seed)
    attacks.create(args.attack, **opts)  # fail early on bad options
    table = transfer_matrix(sources, targets, x, y, lambda: attacks.create_seeded(args.attack, args.seed, **opts),
                            batch_size=args.batch_size, out=args.out, seed=args.seed)
    from ..report.experiment_pages import transfer_page

    page = transfer_page(table, args.out, {k: v for k, v in vars(args).items() if k != "func"},
                         log_file=getattr(args, "log_file", None))
    print(table.markdown())
    print(f"wrote {Path(args.out) / 'transfer.csv'}, transfer.md, transfer.png, {page.name}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("transfer", help="transfer matrix: craft on each source detector, evaluate every target")
    s.add_argument("--sources", required=True, help="comma-separated fakebench checkpoint folders (name = folder name)")
    s.add_argument("--targets", required=True, help="comma-separated fakebench checkpoint folders")
    s.add_argument("--data", required=True, help="dataset folder or manifest CSV")
    s.add_argument("--split", default="test", help="split to use ('' or 'all' for every sample)")
    s.add_argument("--limit", type=int, default=None, help="seeded random subset of this many images")
    s.add_argument("--size", type=int, default=None, help="centre-crop side (default: the smallest image side)")
    s.add_argument("--attack", default="pgd", help="registered attack name (default pgd)")
    s.add_argument("--eps", default=None, help="budget, e.g. 8/255")
    s.add_argument("--steps", default=None)
    s.add_argument("--step-size", dest="step_size", default=None)
    s.add_argument("--direction", default=None, help="evade, spoof, both (default: the attack's)")
    s.add_argument("--norm", default=None)
    s.add_argument("--opt", action="append", default=None, metavar="KEY=VALUE", help="further attack option (repeat)")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="folder for transfer.csv / .md / .png")
    s.set_defaults(func=run)
