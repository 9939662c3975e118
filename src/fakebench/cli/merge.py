"""``fakebench merge SHARDS... --out STORE``: merge per-rank shard stores (torchrun runs whose
ranks wrote to different disks) into one store, then optionally rebuild the report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def shard_files(items: list[str]) -> list[Path]:
    """Shard stores named directly, or found in a folder (``DIR/shards/*.sqlite``, ``DIR/*.sqlite``)."""
    from ..runner import SHARD_DIR

    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted((p / SHARD_DIR).glob("*.sqlite")) or sorted(p.glob("rank*.sqlite"))
            if not found:
                raise ConfigError(f"{p}: no shard stores ({SHARD_DIR}/rank*.sqlite or rank*.sqlite) in this folder")
            out += found
        else:
            raise ConfigError(f"{p}: not a shard store or a folder")
    return out


def run(args: argparse.Namespace) -> int:
    from ..runner import Store

    shards = shard_files(args.shards)
    dest = Path(args.out)
    if dest.resolve() in {s.resolve() for s in shards}:
        raise ConfigError(f"--out {dest}: is one of the shards being merged")
    added = 0
    with Store(dest) as store:
        for s in shards:
            added += store.merge_from(s)
        runs = store.runs()
    print(f"merged {len(shards)} shard(s) into {dest}: {added} result rows added; runs: {', '.join(runs) or 'none'}")
    if args.report:
        from ..report import build_report, format_table

        for run_name in runs:
            res = build_report(dest, run_name, Path(args.report), title=f"fakebench: {run_name}")
            print(format_table(res["summary"]))
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("merge", help="merge per-rank shard stores (torchrun on several machines) into one store")
    s.add_argument("shards", nargs="+", help="shard store files, or output folders holding shards/")
    s.add_argument("--out", required=True, help="the merged store to write (created or added to)")
    s.add_argument("--report", default=None, help="also write results.json / report.md into this folder")
    s.set_defaults(func=run)
