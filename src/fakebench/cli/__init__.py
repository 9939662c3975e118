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
VERBS = ("listing", "data", "train", "evaluate", "merge", "report", "compare", "demo", "attack", "transfer",
         "spectrum", "robustness", "forensics")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fh = _setup_logging(args, argv)
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
        if fh is not None:
            logging.getLogger().removeHandler(fh)
            fh.close()


def _to_file(fh: logging.Handler | None, level: int, msg: str) -> None:
    if fh is not None:
        fh.emit(logging.LogRecord("fakebench", level, __file__, 0, msg, None, None))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
