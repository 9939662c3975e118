"""The ``fakebench`` command line: one module per verb, one error-handling path.

Every verb module defines ``add_parser(subparsers)`` and a ``run(args)`` that imports what it
needs when it runs, so ``fakebench --help``, ``fakebench list`` and ``fakebench forensics``
never import torch. Every :class:`~fakebench.errors.FakebenchError` becomes one line on
stderr (``fakebench: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .._version import __version__
from ..errors import FakebenchError

#: the verbs, in the order ``--help`` lists them (module name under fakebench.cli)
VERBS = ("listing", "data", "audit", "train", "evaluate", "report", "demo", "attack", "transfer", "spectrum", "robustness",
         "forensics")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakebench", description="Adversarial robustness of AI-generated-image detectors.")
    p.add_argument("--version", action="version", version=f"fakebench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        importlib.import_module(f"{__name__}.{verb}").add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except FakebenchError as exc:
        print(f"fakebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fakebench: interrupted (finished results are in the store; rerun the same command to resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
