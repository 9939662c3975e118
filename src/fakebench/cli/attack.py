"""``fakebench attack DETECTOR --attack NAME --in DIR --out DIR [--opt key=value ...]``.

``DETECTOR`` is a fakebench checkpoint folder (``config.json`` + ``model.safetensors``) or a
registered detector name with ``--pretrained PATH`` (the official checkpoint; ``--det-opt
key=value`` passes constructor options). See :mod:`fakebench.experiments.attack_folder`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import parse_options, resolve_detector


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import attacks
    from ..experiments.attack_folder import CSV_NAME, JSON_NAME, attack_folder

    det = resolve_detector(args.detector, args.pretrained, parse_options(args.det_opt or [], "--det-opt"))
    opts = parse_options(args.opt or [])
    atk = attacks.create_seeded(args.attack, args.seed, **opts)
    if atk.needs_gradients and not getattr(det, "differentiable", True):
        raise ConfigError(f"{args.attack}: needs gradients, but {args.detector} is not differentiable; "
                          "use a black-box attack (square, hopskipjump)")
    rows = attack_folder(det, atk, args.in_dir, args.out, label=args.label, batch_size=args.batch_size)
    ok = [r for r in rows if r["status"] == "ok"]
    (Path(args.out) / JSON_NAME).write_text(json.dumps(
        {"detector": args.detector, "attack": args.attack, "options": opts, "seed": args.seed,
         "images": len(rows), "attacked": len(ok), "skipped": len(rows) - len(ok)}, indent=2, default=str))
    moved = [r["score_after"] - r["score_before"] for r in ok if r["attacked"]]
    mean = f"{np.mean(moved):+.3f}" if moved else "n/a"
    print(f"attacked {len(ok)} of {len(rows)} images ({len(rows) - len(ok)} skipped); mean score change on "
          f"targeted images {mean}; wrote {Path(args.out) / CSV_NAME}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("attack", help="attack a folder of images and save adversarial PNGs + a CSV of scores")
    s.add_argument("detector", help="fakebench checkpoint folder, or a registered detector name with --pretrained")
    s.add_argument("--attack", required=True, help="registered attack name (fakebench list attacks)")
    s.add_argument("--in", dest="in_dir", required=True, help="folder of images (searched recursively)")
    s.add_argument("--out", required=True, help="output folder (PNGs with the same names + attack.csv)")
    s.add_argument("--opt", action="append", default=None, metavar="KEY=VALUE",
                   help="attack option, repeatable: --opt eps=8/255 --opt steps=10")
    s.add_argument("--pretrained", default=None, help="official checkpoint for a registry-name detector")
    s.add_argument("--det-opt", action="append", default=None, metavar="KEY=VALUE", help="detector option (repeat)")
    s.add_argument("--label", default="auto", choices=["auto", "real", "fake"])
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run)
