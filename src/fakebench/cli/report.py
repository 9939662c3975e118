"""``fakebench report --store results.sqlite --out DIR``: rebuild the report from a store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import FakebenchError


def run(args: argparse.Namespace) -> int:
    from ..report import build_report, format_table
    from ..runner import Store

    if not Path(args.store).is_file():
        raise FakebenchError(f"--store {args.store}: no such results store")
    with Store(args.store) as st:
        runs = st.runs()
    name = args.run or (runs[-1] if runs else None)
    if name is None:
        raise FakebenchError(f"{args.store}: no runs in this store")
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    res = build_report(args.store, name, args.out, formats=formats, log_file=args.log_file, gallery=args.gallery)
    print(format_table(res["summary"]))
    names = {"html": "report.html", "md": "report.md", "json": "results.json"}
    print(f"wrote {', '.join(str(Path(args.out) / names[f]) for f in formats)}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("report", help="rebuild the report (report.html, report.md, results.json) from a results store")
    s.add_argument("--store", required=True)
    s.add_argument("--run", default=None)
    s.add_argument("--out", required=True)
    s.add_argument("--format", default="html", help="html (default), md, json, or a comma-separated list")
    s.add_argument("--gallery", type=int, default=3,
                   help="gallery: most / least affected images per attack setting (default 3; at most the run's "
                        "'gallery' setting)")
    s.set_defaults(func=run)
