"""``fakebench train DETECTOR --data DIR --out DIR``: the shared training loop."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train_detector

    opts = {k: v for k, v in {"arch": args.arch, "width": args.width}.items() if v is not None}
    cfg = TrainConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
                      crop=args.crop, blur_prob=args.blur_prob, jpeg_prob=args.jpeg_prob, patience=args.patience,
                      seed=args.seed, progress=not args.no_progress, share_prob=args.share_prob,
                      schedule=args.schedule)
    det, hist = train_detector(args.detector, args.data, args.out, cfg, **opts)
    print(f"saved {args.detector} to {args.out}: best val AUC {hist['best_val_auc']:.4f}, "
          f"threshold {det.threshold:.3f}, {hist['seconds']:.0f} s, {len(hist['bad_files'])} bad files skipped")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("train", help="train a detector on a dataset")
    s.add_argument("detector")
    s.add_argument("--data", required=True, help="dataset folder or manifest CSV")
    s.add_argument("--out", required=True, help="checkpoint folder to write")
    s.add_argument("--arch", default=None, help="backbone (resnet50 default; resnet18/resnet10 for CPU)")
    s.add_argument("--width", type=int, default=None, help="backbone base width (64 default)")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--max-steps", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--crop", type=int, default=None)
    s.add_argument("--blur-prob", type=float, default=None)
    s.add_argument("--jpeg-prob", type=float, default=None)
    s.add_argument("--share-prob", type=float, default=0.0,
                   help="probability of a social-network sharing augmentation (facebook / x / telegram)")
    s.add_argument("--schedule", choices=["constant", "cosine"], default="constant", help="learning-rate schedule")
    s.add_argument("--patience", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=run)
