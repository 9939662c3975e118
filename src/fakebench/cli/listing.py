"""``fakebench list detectors|attacks``: every registered card, read without building anything."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    if args.what == "detectors":
        from ..detectors import cards
    else:
        from ..attacks import cards
    for c in cards():
        print(f"{c.name:16s} {c.summary}")
        if c.paper:
            print(f"{'':16s}   paper: {c.paper}")
        hint = c.weights_hint() if hasattr(c, "weights_hint") else ""
        if hint:
            print(f"{'':16s}   weights: {hint}")
        if getattr(c, "differentiable", True) is False:
            print(f"{'':16s}   not differentiable: attack with black-box attacks (square, hopskipjump)")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("list", help="list registered detectors or attacks with their papers")
    s.add_argument("what", choices=["detectors", "attacks"])
    s.set_defaults(func=run)
