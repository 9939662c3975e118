"""Shortcut audit of the built-in benchmark (fakebench.data.audit on every patch).

Builds the benchmark (cached in --out) with the shared post-processing of both classes (or
without it: --no-postprocess) and prints the trivial-baseline AUCs (metadata, border, colour,
all; cross-validated logistic regression), the per-generator ones and the most separating
features. ``--small`` uses the tests' small configuration (patch 32, ~260 patches).

    python bench/audit_builtin.py [--out DIR] [--no-postprocess] [--small]
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/fakebench-audit-builtin")
    ap.add_argument("--no-postprocess", action="store_true")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--train-steps", type=int, default=None)
    args = ap.parse_args()
    from fakebench.builtin import build_builtin
    from fakebench.data import load_dataset
    from fakebench.data.audit import audit

    kw = dict(patch=32, n_train=120, n_val=48, n_test=96, train_steps=30) if args.small else {}
    if args.train_steps:
        kw["train_steps"] = args.train_steps
    if args.no_postprocess:
        kw["postprocess"] = None
    t0 = time.time()
    d = build_builtin(args.out, seed=0, progress=False, **kw)
    t1 = time.time()
    rep = audit(load_dataset(d), max_per_class=None)
    print(rep.summary_line())
    print(json.dumps({"baselines": rep.baselines, "per_generator": rep.per_generator,
                      "top_features": rep.features[:5], "build_s": round(t1 - t0, 1),
                      "audit_s": round(time.time() - t1, 1), "settings": kw and {k: str(v) for k, v in kw.items()}},
                     indent=1))


if __name__ == "__main__":
    main()
