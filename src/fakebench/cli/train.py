"""``fakebench train DETECTOR --data DIR --out DIR``: the shared training loop, optionally
adversarial (``--adv pgd|trades|fgsm-rs``)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import parse_options, parse_value


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train_detector
    from .audit import audit_samples, summary_line

    if not args.no_audit:
        from ..detectors import card

        card(args.detector)  # an unknown name is the first error, before the data is read
        print(summary_line(audit_samples(args.data)), flush=True)

    opts = {k: v for k, v in {"arch": args.arch, "width": args.width}.items() if v is not None}
    opts.update(parse_options(args.det_opt or [], "--det-opt"))
    cfg = TrainConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
                      crop=args.crop, blur_prob=args.blur_prob, jpeg_prob=args.jpeg_prob, patience=args.patience,
                      seed=args.seed, progress=not args.no_progress, share_prob=args.share_prob,
                      schedule=args.schedule, init=args.init, eval_crop=args.eval_crop or None)
    if args.adv:
        from ..defenses.adversarial import AdvConfig, train_adversarial

        adv = AdvConfig(kind=args.adv, eps=parse_value(args.adv_eps), steps=args.adv_steps,
                        step_size=parse_value(args.adv_step_size) if args.adv_step_size else None,
                        direction=args.adv_direction, beta=args.adv_beta, clean_weight=args.adv_clean_weight,
                        warmup=args.adv_warmup)
        det, hist = train_adversarial(args.detector, args.data, args.out, cfg, adv, **opts)
    else:
        det, hist = train_detector(args.detector, args.data, args.out, cfg, **opts)
    crop = getattr(det, "crop", None)
    print(f"saved {args.detector} to {args.out}: best val AUC {hist['best_val_auc']:.4f}, "
          f"threshold {det.threshold:.3f}, {hist['seconds']:.0f} s, {len(hist['bad_files'])} bad files skipped; "
          f"evaluation preprocessing: {f'centre crop {crop}' if crop else 'whole image'}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("train", help="train a detector on a dataset (optionally adversarially: --adv)")
    s.add_argument("detector")
    s.add_argument("--data", required=True, help="dataset folder or manifest CSV")
    s.add_argument("--out", required=True, help="checkpoint folder to write")
    s.add_argument("--arch", default=None, help="backbone (resnet50 default; resnet18/resnet10 for CPU)")
    s.add_argument("--width", type=int, default=None, help="backbone base width (64 default)")
    s.add_argument("--det-opt", action="append", default=None, metavar="KEY=VALUE",
                   help="detector option, repeatable (e.g. --det-opt base=runs/cnnspot --det-opt method=jpeg)")
    s.add_argument("--init", default=None, help="checkpoint folder of the same architecture to start from")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--max-steps", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--crop", type=int, default=None, help="random training crop (default: the family's recipe)")
    s.add_argument("--eval-crop", type=int, default=None,
                   help="evaluation preprocessing saved in the checkpoint: centre crop of N px inside the detector, "
                        "applied by validation, evaluate and attack alike (default: whole images)")
    s.add_argument("--blur-prob", type=float, default=None)
    s.add_argument("--jpeg-prob", type=float, default=None)
    s.add_argument("--share-prob", type=float, default=0.0,
                   help="probability of a social-network sharing augmentation (facebook / x / telegram)")
    s.add_argument("--schedule", choices=["constant", "cosine"], default="constant", help="learning-rate schedule")
    s.add_argument("--patience", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-audit", action="store_true", help="skip the shortcut audit line (fakebench audit)")
    g = s.add_argument_group("adversarial training (fakebench.defenses.adversarial)")
    g.add_argument("--adv", choices=["pgd", "trades", "fgsm-rs"], default=None)
    g.add_argument("--adv-eps", default="4/255", help="Linf budget (default 4/255)")
    g.add_argument("--adv-steps", type=int, default=3, help="inner PGD / TRADES steps (default 3)")
    g.add_argument("--adv-step-size", default=None, help="inner step (default 2.5 eps / steps)")
    g.add_argument("--adv-direction", choices=["evade", "spoof", "both"], default="both")
    g.add_argument("--adv-beta", type=float, default=6.0, help="TRADES beta (default 6)")
    g.add_argument("--adv-clean-weight", type=float, default=0.0, help="weight of the clean loss mixed in (0..1)")
    g.add_argument("--adv-warmup", type=int, default=0, help="steps over which eps ramps up from 0")
    s.set_defaults(func=run)
