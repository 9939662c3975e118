"""``fakebench evaluate --config exp.yaml``: detectors x attacks x dataset into the store, then the report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..report import build_report, format_table
    from ..runner import STORE_FILE, dist_info, evaluate, load_experiment, prepare

    exp = load_experiment(args.config)
    if args.output:
        exp.output = Path(args.output).resolve()
    prep = prepare(exp)  # every config error surfaces here, before any work
    rank, world, _ = dist_info()
    if not args.no_audit and rank == 0:
        from .audit import summary_line

        print(summary_line(prep.samples), flush=True)
    store = evaluate(exp, progress=not (args.no_progress or args.quiet), prepared=prep)
    if store.name != STORE_FILE:  # a torchrun rank whose shards are not (all) merged here
        print(f"rank {rank}/{world}: shard {store}" + ("" if rank else "; merge with `fakebench merge`"))
        return 0
    res = build_report(store, exp.run, exp.output, title=f"fakebench: {exp.run}", log_file=args.log_file)
    print(format_table(res["summary"]))
    print(f"\nresults: {store}\nreport:  {exp.output / 'report.html'} (and report.md, results.json)")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("evaluate", help="run detectors x attacks x dataset from a YAML config (resumable)")
    s.add_argument("--config", required=True)
    s.add_argument("--output", default=None,
                   help="output folder instead of the config's (e.g. each node's own disk under torchrun)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-audit", action="store_true", help="skip the shortcut audit line (fakebench audit)")
    s.set_defaults(func=run)
