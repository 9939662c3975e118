"""``fakebench evaluate --config exp.yaml``: detectors x attacks x dataset into the store, then the report."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..report import build_report, format_table
    from ..runner import evaluate, load_experiment, prepare

    exp = load_experiment(args.config)
    prep = prepare(exp)  # every config error surfaces here, before any work
    if not args.no_audit:
        from .audit import summary_line

        print(summary_line(prep.samples), flush=True)
    store = evaluate(exp, progress=not args.no_progress, prepared=prep)
    res = build_report(store, exp.run, exp.output, title=f"fakebench: {exp.run}")
    print(format_table(res["summary"]))
    print(f"\nresults: {store}\nreport:  {exp.output / 'report.md'}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("evaluate", help="run detectors x attacks x dataset from a YAML config (resumable)")
    s.add_argument("--config", required=True)
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-audit", action="store_true", help="skip the shortcut audit line (fakebench audit)")
    s.set_defaults(func=run)
