"""``fakebench train DETECTOR --data DIR --out DIR``: the shared training loop, optionally
adversarial (``--adv pgd|trades|fgsm-rs``)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import parse_options, parse_value


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, train_detector
    from .audit import audit_samples, summary_line

    data = _dataset(args)
    if not args.no_audit:
        from ..detectors import card
        from ..train.distributed import dist_env

        card(args.detector)  # an unknown name is the first error, before the data is read
        if dist_env()[0] == 0:
            print(summary_line(data if isinstance(data, list) else audit_samples(args.data)), flush=True)

    opts = {k: v for k, v in {"arch": args.arch, "width": args.width, "prototype": args.prototype}.items()
            if v is not None}
    if args.freeze:
        opts["freeze"] = True
    opts.update(parse_options(args.det_opt or [], "--det-opt"))
    explicit = {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size, "lr": args.lr,
                "crop": args.crop, "blur_prob": args.blur_prob, "jpeg_prob": args.jpeg_prob, "patience": args.patience,
                "seed": args.seed, "progress": not args.no_progress, "share_prob": args.share_prob,
                "schedule": args.schedule, "init": args.init, "device": args.device,
                "eval_crop": args.eval_crop or None, "ema": args.ema}
    if args.recipe:
        from ..train.recipes import get_recipe, recipe_config

        recipe = get_recipe(args.recipe, args.detector)
        opts = {**recipe.options, **opts}
        cfg = recipe_config(args.recipe, args.detector, **explicit)
        if recipe.needs and not args.init:
            print(f"recipe {args.recipe}: {recipe.needs}")
    else:
        cfg = TrainConfig(**{k: v for k, v in explicit.items() if v is not None})
    if args.adv:
        from ..defenses.adversarial import AdvConfig, train_adversarial

        adv = AdvConfig(kind=args.adv, eps=parse_value(args.adv_eps), steps=args.adv_steps,
                        step_size=parse_value(args.adv_step_size) if args.adv_step_size else None,
                        direction=args.adv_direction, beta=args.adv_beta, clean_weight=args.adv_clean_weight,
                        warmup=args.adv_warmup)
        det, hist = train_adversarial(args.detector, data, args.out, cfg, adv, **opts)
    else:
        det, hist = train_detector(args.detector, data, args.out, cfg, **opts)
    from ..train.distributed import dist_env

    if dist_env()[0] != 0:  # torchrun: rank 0 saved and reports
        return 0
    crop = getattr(det, "crop", None)
    print(f"saved {args.detector} to {args.out}: best val AUC {hist['best_val_auc']:.4f}, "
          f"threshold {det.threshold:.3f}, {hist['seconds']:.0f} s, {len(hist['bad_files'])} bad files skipped; "
          f"evaluation preprocessing: {f'centre crop {crop}' if crop else 'whole image'}")
    return 0


def _dataset(args: argparse.Namespace) -> Any:
    """``--data`` as given, or its samples when a benchmark format / its options are named."""
    bench = {k: v for k, v in {"ids": args.ids, "split_file": args.split_file, "real_dir": args.real_dir}.items()
             if v is not None}
    if args.format is None and not bench:
        return args.data
    from ..data import load_dataset

    return load_dataset(args.data, format=args.format, **bench)


def add_parser(sub: Any) -> None:
    s = sub.add_parser("train", help="train a detector on a dataset (optionally adversarially: --adv)")
    s.add_argument("detector")
    s.add_argument("--data", required=True, help="dataset folder or manifest CSV")
    s.add_argument("--out", required=True, help="checkpoint folder to write")
    s.add_argument("--format", default=None, choices=["truefake", "genimage", "synthbuster", "cnndetection"],
                   help="a public benchmark's release layout (default: detected)")
    s.add_argument("--ids", default=None, help="TrueFake data IDs, e.g. 'gan2:pre&sdXL:pre&real:pre'")
    s.add_argument("--split-file", default=None, help="TrueFake's split.json (train / val from it)")
    s.add_argument("--real-dir", default=None, help="Synthbuster: the RAISE-1k folder")
    s.add_argument("--arch", default=None, help="backbone (resnet50 default; resnet18/resnet10 for CPU)")
    s.add_argument("--width", type=int, default=None, help="backbone base width (64 default)")
    s.add_argument("--det-opt", action="append", default=None, metavar="KEY=VALUE",
                   help="detector option, repeatable (e.g. --det-opt base=runs/cnnspot --det-opt method=jpeg)")
    s.add_argument("--freeze", action="store_true", help="r50e2p: train the embedding and prototype head only")
    s.add_argument("--prototype", action=argparse.BooleanOptionalAction, default=None,
                   help="r50e2p: the prototype scores layer (default on; --no-prototype: a linear head)")
    s.add_argument("--init", default=None, help="checkpoint folder of the same architecture to start from, or a "
                   "torchvision ImageNet state-dict file (cnnspot/res50nodown: backbone loaded, head replaced)")
    s.add_argument("--recipe", default=None, help="a paper's training recipe: wang2020, wang2020-p0.1 (cnnspot), "
                   "grag2021, corvi2023 (res50nodown), ojha2023 (univfd), cpu-demo (the demo's CPU-sized one); "
                   "explicit options override it")
    s.add_argument("--epochs", type=int, default=None, help="(default 10)")
    s.add_argument("--max-steps", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--crop", type=int, default=None, help="random training crop (default: the family's recipe)")
    s.add_argument("--eval-crop", type=int, default=None,
                   help="evaluation preprocessing saved in the checkpoint: centre crop of N px inside the detector, "
                        "applied by validation, evaluate and attack alike (default: whole images)")
    s.add_argument("--blur-prob", type=float, default=None)
    s.add_argument("--jpeg-prob", type=float, default=None)
    s.add_argument("--share-prob", type=float, default=None,
                   help="probability of a social-network sharing augmentation (facebook / x / telegram)")
    s.add_argument("--schedule", choices=["constant", "cosine"], default=None, help="learning-rate schedule (constant)")
    s.add_argument("--patience", type=int, default=None, help="(default 3)")
    s.add_argument("--ema", type=float, default=None,
                   help="keep an exponential moving average of the weights with this per-step decay "
                        "(e.g. 0.996); validation and the saved checkpoint use it (default off)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun: cuda:LOCAL_RANK per process)")
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
