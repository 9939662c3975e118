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
import os
import sys
from typing import Any, Sequence

from .._version import __version__
from ..errors import FakebenchError

#: the verbs, in the order ``--help`` lists them (module name under fakebench.cli)
VERBS = ("listing", "data", "train", "evaluate", "report", "demo", "attack", "transfer", "spectrum", "robustness",
         "forensics")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakebench", description="Adversarial robustness of AI-generated-image detectors.")
    p.add_argument("--version", action="version", version=f"fakebench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        importlib.import_module(f"{__name__}.{verb}").add_parser(sub)
    return p


#: verbs that say before writing which of their own output files they overwrite (or that
#: reuse their folder on purpose: a cached dataset)
_SAY_THEMSELVES = {"attack", "report", "data"}
_MAX_LISTED = 20000


def _snapshot(out: Any) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of the files already in ``out`` (up to 20000, links not followed)."""
    found: dict[str, tuple[int, int]] = {}
    if not out or not os.path.isdir(out):
        return found
    for dirpath, _, files in os.walk(out):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            found[os.path.relpath(p, out)] = (st.st_size, st.st_mtime_ns)
            if len(found) >= _MAX_LISTED:
                return found
    return found


def _say_overwritten(out: Any, before: dict[str, tuple[int, int]]) -> None:
    """One line naming the files that were in ``out`` before the command and changed."""
    after = _snapshot(out) if before else {}
    changed = sorted(k for k, v in before.items() if k in after and after[k] != v)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        print(f"fakebench: note: overwrote {len(changed)} file(s) that were already in {out}: {shown}",
              file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    out = getattr(args, "out", None) if args.command not in _SAY_THEMSELVES else None
    before = _snapshot(out)
    try:
        return int(args.func(args) or 0)
    except FakebenchError as exc:
        print(f"fakebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fakebench: interrupted (finished results are in the store; rerun the same command to resume)",
              file=sys.stderr)
        return 130
    finally:
        _say_overwritten(out, before)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
