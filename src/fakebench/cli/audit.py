"""``fakebench audit DATA``: can cheap features (size, format, JPEG quality, EXIF, borders,
colour) tell the classes apart? Prints the report; ``--out DIR`` also writes ``audit.md`` and
``audit.json``. Nothing here imports torch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def audit_samples(data: str, split: str | None = None) -> list[Any]:
    """The samples of ``data`` (any layout), optionally one split (one line if it is empty)."""
    from ..data import load_dataset, select_split

    samples = select_split(load_dataset(data), split, f"{data}")
    if not samples:
        raise ConfigError(f"{data}: no samples in split {split!r}")
    return samples


def summary_line(samples: list[Any], max_per_class: int = 200, seed: int = 0) -> str:
    """The one line ``train`` and ``evaluate`` print before they start (never fatal)."""
    from ..data.audit import audit
    from ..errors import FakebenchError

    try:
        return audit(samples, max_per_class=max_per_class, seed=seed).summary_line()
    except FakebenchError as exc:
        return f"audit: skipped ({exc})"


def run(args: argparse.Namespace) -> int:
    from ..data.audit import audit

    rep = audit(audit_samples(args.data, args.split), max_per_class=args.max_per_class or None, seed=args.seed)
    print(rep.to_markdown(top=args.top), end="")
    print(rep.summary_line())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "audit.md").write_text(rep.to_markdown(top=args.top))
        (out / "audit.json").write_text(json.dumps(rep.to_dict(), indent=2))
        print(f"wrote {out / 'audit.md'} and {out / 'audit.json'}")
    return 1 if (rep.flagged and args.strict) else 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("audit", help="look for shortcuts (size, format, JPEG quality, EXIF, frames, colour) "
                                     "that separate real from synthetic images")
    s.add_argument("data", help="dataset folder or manifest CSV")
    s.add_argument("--split", default=None, help="audit one split only (train / val / test)")
    s.add_argument("--max-per-class", type=int, default=500, help="seeded subset per class (0: all; default 500)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--top", type=int, default=12, help="single features listed (default 12)")
    s.add_argument("--out", default=None, help="folder for audit.md / audit.json")
    s.add_argument("--strict", action="store_true", help="exit status 1 when a baseline exceeds AUC 0.8")
    s.set_defaults(func=run)
