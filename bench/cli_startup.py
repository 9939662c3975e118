"""Start-up time of the ``fakebench`` command, relative to a bare Python start.

    python bench/cli_startup.py [--repeats 7]

Each command runs ``--repeats`` times as a fresh process, interleaved with ``python -c pass``
(the floor every Python command pays); the table gives median wall seconds, the excess over
the floor (what fakebench itself costs) and whether torch was imported. Targets (issue 8):
``--help`` at most 0.5 s over the floor, ``list`` at most 1.5 s, ``forensics`` never imports
torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

# each command runs in-process through fakebench.cli.main, then reports whether torch was loaded
_RUNNER = ("import sys, io, contextlib\n"
           "from fakebench.cli import main\n"
           "buf = io.StringIO()\n"
           "with contextlib.redirect_stdout(buf):\n"
           "    try:\n"
           "        main(sys.argv[1:])\n"
           "    except SystemExit:\n"
           "        pass\n"
           "print('torch' in sys.modules, file=sys.stderr)\n")

COMMANDS = {
    "fakebench --help": ["--help"],
    "fakebench list detectors": ["list", "detectors"],
    "fakebench list attacks": ["list", "attacks"],
    "fakebench forensics --help": ["forensics", "--help"],
}


def _time(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    return time.perf_counter() - t0, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    floor: list[float] = []
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    torch_loaded: dict[str, str] = {}
    for _ in range(args.repeats):
        floor.append(_time([sys.executable, "-c", "pass"])[0])
        for name, cmd in COMMANDS.items():
            dt, flag = _time([sys.executable, "-c", _RUNNER, *cmd])
            times[name].append(dt)
            torch_loaded[name] = flag
    f = statistics.median(floor)
    print(f"python -c pass: {f:.3f} s (median of {args.repeats})")
    print(f"{'command':30s} {'median s':>9s} {'over floor':>10s} {'x floor':>8s}  torch imported")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:30s} {m:9.3f} {m - f:10.3f} {m / f:8.1f}  {torch_loaded[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
