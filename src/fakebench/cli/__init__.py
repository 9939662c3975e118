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
VERBS = ("listing", "data", "audit", "train", "evaluate", "merge", "report", "compare", "demo", "attack",
         "transfer", "spectrum", "robustness", "forensics")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakebench", description="Adversarial robustness of AI-generated-image detectors.")
    p.add_argument("--version", action="version", version=f"fakebench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    p.add_argument("--log-file", default=None, help="also write the log (INFO and up) to this file")
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        importlib.import_module(f"{__name__}.{verb}").add_parser(sub)
    for sp in sub.choices.values():  # the same two options after the verb (fakebench evaluate --quiet ...)
        sp.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars, warnings and errors only")
        sp.add_argument("--log-file", default=argparse.SUPPRESS, help="also write the log to this file")
    return p


#: the root handlers the last main() installed
_INSTALLED: list[logging.Handler] = []


def _setup_logging(args: argparse.Namespace, argv: Sequence[str] | None) -> logging.Handler | None:
    """Console logging (WARNING and up with --quiet), the --log-file handler (returned), quiet bars."""
    from .. import progress

    level = logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    fh = None
    if args.log_file:
        from pathlib import Path

        Path(args.log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(args.log_file)
        fh.setLevel(logging.DEBUG if args.verbose else logging.INFO)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        cmd = " ".join(sys.argv[1:] if argv is None else list(argv))
        _to_file(fh, logging.INFO, f"fakebench {__version__}: {cmd}")
        handlers.append(fh)
        handlers[0].setLevel(level)
    handlers[0].setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    for h in _INSTALLED:  # replace only what an earlier main() installed (pytest's caplog stays)
        root.removeHandler(h)
    _INSTALLED[:] = handlers
    for h in handlers:
        root.addHandler(h)
    root.setLevel(min(level, logging.INFO) if args.log_file else level)
    progress.set_quiet(args.quiet)
    return fh


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
    fh = _setup_logging(args, argv)
    out = getattr(args, "out", None) if args.command not in _SAY_THEMSELVES else None
    before = _snapshot(out)
    try:
        return int(args.func(args) or 0)
    except FakebenchError as exc:
        print(f"fakebench: error: {exc}", file=sys.stderr)
        _to_file(fh, logging.ERROR, f"fakebench: error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("fakebench: interrupted (finished results are in the store; rerun the same command to resume)",
              file=sys.stderr)
        _to_file(fh, logging.ERROR, "fakebench: interrupted")
        return 130
    finally:
        from .. import progress

        progress.set_quiet(False)
        _say_overwritten(out, before)
        if fh is not None:
            logging.getLogger().removeHandler(fh)
            fh.close()


def _to_file(fh: logging.Handler | None, level: int, msg: str) -> None:
    if fh is not None:
        fh.emit(logging.LogRecord("fakebench", level, __file__, 0, msg, None, None))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
