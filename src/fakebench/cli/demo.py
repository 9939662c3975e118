"""``fakebench demo``: the whole pipeline on the built-in benchmark (CPU: a few minutes)."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.out, real_dirs=args.real_dir or (), tae_weights=args.tae_weights, seed=args.seed,
             progress=not args.no_progress, clip_weights=args.clip_weights, clip_model=args.clip_model,
             log_file=getattr(args, "log_file", None))
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("demo", help="build the built-in benchmark, train, attack, report (CPU: a few minutes)")
    s.add_argument("--out", default="fakebench-demo")
    s.add_argument("--real-dir", action="append", default=None, help="extra folder of real photos")
    s.add_argument("--tae-weights", default=None, help="TAESD-family weights folder (adds a latent-AE generator)")
    s.add_argument("--clip-weights", default=None,
                   help="local open_clip image-tower weights file: adds univfd, clipdet and clipdet+corvi")
    s.add_argument("--clip-model", default=None, help="open_clip model name of --clip-weights (default ViT-L/14)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=run)
