"""``fakebench data builtin``: build (or reuse) the built-in benchmark."""

from __future__ import annotations

import argparse
from typing import Any


def run_builtin(args: argparse.Namespace) -> int:
    from ..builtin import MANIFEST, build_builtin
    from ..builtin.build import DEFAULT_POSTPROCESS

    tae = False if args.no_tae else args.tae_weights
    path = build_builtin(
        args.out, real_dirs=args.real_dirs or (), tae_weights=tae, patch=args.patch,
        postprocess=None if args.no_postprocess else DEFAULT_POSTPROCESS,
        seed=args.seed, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
        train_steps=args.train_steps, include_bundled=not args.no_bundled,
        progress=not args.no_progress,
    )
    print(path / MANIFEST)
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("data", help="datasets")
    data_sub = s.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser(
        "builtin", help="build (or reuse) the built-in real-vs-generated benchmark",
        description="Cut the bundled scikit-image photographs (and --real-dir folders) into patches; "
                    "pass disjoint crops through four tiny autoencoders (tconv, nearest, bilinear, "
                    "pixelshuffle) and a TAESD-family round trip (the packaged TAEF2 weights); pass every "
                    "patch, real or fake, through the same random resize / JPEG; write PNGs + manifest.csv. "
                    "bilinear and the TAE are held out of train/val.")
    p.add_argument("--out", required=True, help="dataset folder (reused when the settings match)")
    p.add_argument("--real-dir", dest="real_dirs", action="append", default=[], metavar="DIR",
                   help="extra folder of real photographs (repeatable)")
    p.add_argument("--tae-weights", default=None, metavar="DIR",
                   help="folder with a TAESD-family *_encoder.pth / *_decoder.pth pair (default: the TAEF2 "
                        "weights packaged with fakebench)")
    p.add_argument("--no-tae", action="store_true", help="no latent-autoencoder generator")
    p.add_argument("--no-postprocess", action="store_true",
                   help="write patches without the shared random resize / JPEG (both classes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patch", type=int, default=64, help="patch side in pixels (multiple of 8)")
    p.add_argument("--n-train", type=int, default=1200, help="target train patches")
    p.add_argument("--n-val", type=int, default=300, help="target val patches")
    p.add_argument("--n-test", type=int, default=400, help="target test patches")
    p.add_argument("--train-steps", type=int, default=200, help="training steps per tiny autoencoder")
    p.add_argument("--no-bundled", action="store_true", help="do not use the scikit-image photographs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_builtin)
