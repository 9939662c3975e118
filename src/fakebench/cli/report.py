"""``fakebench report --store results.sqlite --out DIR``: rebuild the report from a store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import FakebenchError


def run(args: argparse.Namespace) -> int:
    from ..io import note_overwrites
    from ..report import build_report, format_table
    from ..runner import Store

    with Store(args.store, readonly=True) as st:  # a missing store: one line, nothing created
        runs = st.runs()
    name = args.run or (runs[-1] if runs else None)
    if name is None:
        raise FakebenchError(f"{args.store}: no runs in this store")
    if name not in runs:
        raise FakebenchError(f"--run {name!r}: not in {args.store} (runs: {', '.join(runs)})")
    out = Path(args.out)
    if out.is_dir():  # one line when a previous report's files are about to be replaced
        note_overwrites(out, sorted(p.name for p in out.iterdir()
                                    if p.name in ("results.json", "report.md", "report.html")
                                    or (p.suffix == ".png" and p.name.startswith(("roc_", "accuracy_vs_eps")))))
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    res = build_report(args.store, name, out, formats=formats, log_file=args.log_file, gallery=args.gallery)
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
