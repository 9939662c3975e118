"""The ``fakebench`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import FakebenchError


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "detectors":
        from .detectors import entries
    else:
        from .attacks import entries
    for e in entries():
        print(f"{e.name:16s} {e.description}")
        if e.paper:
            print(f"{'':16s}   paper: {e.paper}")
        hint = getattr(e.factory, "weights_hint", "")
        if hint:
            print(f"{'':16s}   weights: {hint}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train_detector

    opts = {k: v for k, v in {"arch": args.arch, "width": args.width}.items() if v is not None}
    cfg = TrainConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
                      crop=args.crop, blur_prob=args.blur_prob, jpeg_prob=args.jpeg_prob, patience=args.patience,
                      seed=args.seed, progress=not args.no_progress, share_prob=args.share_prob,
                      schedule=args.schedule)
    det, hist = train_detector(args.detector, args.data, args.out, cfg, **opts)
    print(f"saved {args.detector} to {args.out}: best val AUC {hist['best_val_auc']:.4f}, "
          f"threshold {det.threshold:.3f}, {hist['seconds']:.0f} s, {len(hist['bad_files'])} bad files skipped")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .report import build_report, format_table
    from .runner import evaluate, load_experiment, prepare

    exp = load_experiment(args.config)
    prep = prepare(exp)  # every config error surfaces here, before any work
    store = evaluate(exp, progress=not args.no_progress, prepared=prep)
    res = build_report(store, exp.run, exp.output, title=f"fakebench: {exp.run}")
    print(format_table(res["summary"]))
    print(f"\nresults: {store}\nreport:  {exp.output / 'report.md'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, format_table
    from .runner import Store

    with Store(args.store) as st:
        runs = st.runs()
    run = args.run or (runs[-1] if runs else None)
    if run is None:
        raise FakebenchError(f"{args.store}: no runs in this store")
    res = build_report(args.store, run, args.out)
    print(format_table(res["summary"]))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, real_dirs=args.real_dir or (), tae_weights=args.tae_weights, seed=args.seed,
             progress=not args.no_progress, clip_weights=args.clip_weights, clip_model=args.clip_model)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakebench", description="Adversarial robustness of AI-generated-image detectors.")
    p.add_argument("--version", action="version", version=f"fakebench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered detectors or attacks with their papers")
    s.add_argument("what", choices=["detectors", "attacks"])
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("data", help="datasets")
    data_sub = s.add_subparsers(dest="data_command", required=True)
    from .data import builtin

    builtin.add_parser(data_sub)

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
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="run detectors x attacks x dataset from a YAML config (resumable)")
    s.add_argument("--config", required=True)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("report", help="rebuild results.json / report.md from a results store")
    s.add_argument("--store", required=True)
    s.add_argument("--run", default=None)
    s.add_argument("--out", required=True)
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser("demo", help="build the built-in benchmark, train, attack, report (CPU: a few minutes)")
    s.add_argument("--out", default="fakebench-demo")
    s.add_argument("--real-dir", action="append", default=None, help="extra folder of real photos")
    s.add_argument("--tae-weights", default=None, help="TAESD-family weights folder (adds a latent-AE generator)")
    s.add_argument("--clip-weights", default=None,
                   help="local open_clip image-tower weights file: adds univfd, clipdet and clipdet+corvi")
    s.add_argument("--clip-model", default=None, help="open_clip model name of --clip-weights (default ViT-L/14)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_demo)

    from .attacks import cli as attack_cli, spectrum, transfer
    from .forensics import cli as forensics_cli

    attack_cli.add_parser(sub)
    transfer.add_parser(sub)
    spectrum.add_parser(sub)
    forensics_cli.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except FakebenchError as exc:
        print(f"fakebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fakebench: interrupted (finished results are in the store; rerun the same command to resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
