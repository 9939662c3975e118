"""``fakebench robustness --detectors A,B --data DIR --eps 2/255,4/255,8/255 --out DIR``:
adaptive robustness leaderboard (see :mod:`fakebench.experiments.robustness`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import detector_folders, parse_value


def run(args: argparse.Namespace) -> int:
    from ..experiments.robustness import Settings, robustness

    names = detector_folders(args.detectors, "detectors")
    eps = parse_value(args.eps)
    eps = eps if isinstance(eps, list) else [eps]
    s = Settings(eps=tuple(eps), norm=args.norm, fpr=args.fpr, steps=args.steps, restarts=args.restarts,
                 queries=args.queries, eot_iter=args.eot_iter, batch_size=args.batch_size, seed=args.seed)
    board = robustness(names, args.data, s, limit=args.limit, val_limit=args.val_limit, out=args.out,
                       device=args.device, progress=not args.no_progress)
    from ..report.experiment_pages import robustness_page

    robustness_page(board, args.out, {k: v for k, v in vars(args).items() if k != "func"},
                    log_file=getattr(args, "log_file", None), device=args.device)
    print(board.markdown())
    print(f"wrote {Path(args.out) / 'robustness.md'}, robustness.json, robustness.png, report.html")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("robustness", help="adaptive robustness leaderboard: worst case over APGD, Square, EOT, BPDA")
    s.add_argument("--detectors", required=True, help="comma-separated checkpoint folders (plain or defended)")
    s.add_argument("--data", required=True, help="dataset with val (thresholds) and test (attacks) splits")
    s.add_argument("--eps", default="2/255,4/255,8/255", help="comma-separated budgets (default 2/255,4/255,8/255)")
    s.add_argument("--norm", default="linf", choices=["linf", "l2"])
    s.add_argument("--fpr", type=float, default=0.10, help="clean false-positive rate that sets each threshold")
    s.add_argument("--steps", type=int, default=100, help="APGD iterations")
    s.add_argument("--restarts", type=int, default=1)
    s.add_argument("--queries", type=int, default=1000, help="Square attack queries per image")
    s.add_argument("--eot-iter", type=int, default=8, help="gradient samples per step on randomised detectors")
    s.add_argument("--limit", type=int, default=None, help="seeded random subset of the test split")
    s.add_argument("--val-limit", type=int, default=None, help="seeded random subset of the val split")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="cpu")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="folder for robustness.md / .json / .png")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=run)
