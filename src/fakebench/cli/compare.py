"""``fakebench compare RUN_A RUN_B ... --out DIR``: the same metrics of several runs side by
side, differences to the first run with bootstrap confidence intervals."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..report.compare import compare_runs, write_comparison

    comp = compare_runs(args.runs, n_boot=args.bootstrap, alpha=args.alpha, seed=args.seed,
                        progress=not getattr(args, "quiet", False))
    page = write_comparison(comp, args.out, formats=[f.strip() for f in args.format.split(",")])
    sig = [r for r in comp["rows"] if any(d and d["significant"] for d in r["diffs"])]
    print(f"{len(comp['rows'])} metric rows compared, {len(sig)} with a difference whose CI excludes 0")
    for r in sig:
        for name, d in zip(comp["runs"][1:], r["diffs"]):
            if d and d["significant"]:
                print(f"  {r['detector']} {r['attack']} {r['setting']} {r['metric']}: {name} {d['diff']:+.3f} "
                      f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]")
    print(f"wrote {page.parent / 'compare.json'}, compare.md, {page.name}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("compare", help="several runs side by side: differences to the first with bootstrap CIs")
    s.add_argument("runs", nargs="+", metavar="RUN", help="store file or run folder, optionally PATH:RUN_ID")
    s.add_argument("--out", required=True, help="folder for compare.json / .md / .html")
    s.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    s.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05: 95%% intervals)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--format", default="json,md,html", help="comma-separated: json, md, html (default all)")
    s.set_defaults(func=run)
