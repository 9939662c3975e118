"""Train every defense on the built-in benchmark and rank them with the adaptive evaluation.

    python examples/defenses/leaderboard.py --out runs/leaderboard [--real-dir ../shared/data/kodak]
        [--tae-weights ../shared/weights/taef2] [--purify-tae ../shared/weights/taef2] [--limit 200] [--steps 100] [--queries 1000]

Writes ``<out>/robustness.md`` / ``.json`` / ``.png`` (the leaderboard: every defense at
2/255, 4/255 and 8/255, robust TPR (evade), robust TNR (spoof), clean AUC, the attack
ensemble of each row) and keeps every trained checkpoint under ``<out>/checkpoints``.
CPU-sized (resnet10, width 16, 64-px patches; APGD 50 steps, Square 500 queries, EOT 4 samples on
150 test images by default); on 2 idle cores the whole run takes one to two hours.
The numbers in ``examples/defenses/README.md`` come from this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch

from fakebench import detectors
from fakebench.builtin import build_builtin
from fakebench.data import load_dataset, select
from fakebench.data.pipeline import load_stack
from fakebench.defenses.adversarial import AdvConfig, AdversarialObjective
from fakebench.experiments.robustness import Settings, robustness
from fakebench.train import TrainConfig, train_detector

ARCH = {"arch": "resnet10", "width": 16}
#: the demo's CPU recipe (fakebench.demo.DEMO_TRAIN["cnnspot"])
CLEAN = dict(epochs=12, batch_size=32, lr=1e-3, schedule="cosine", blur_prob=0.1, jpeg_prob=0.1, crop=48, patience=12)
#: adversarial fine-tuning from the clean detector: epochs chosen on attacked validation images
FINETUNE = dict(epochs=20, batch_size=32, lr=5e-4, schedule="cosine", blur_prob=0.1, jpeg_prob=0.1, crop=48,
                patience=20)
EPS = 4 / 255
#: per-step decay of the wide rows' weight average (TrainConfig.ema)
WIDE_EMA = 0.996


def _adv(out: Path, name: str, manifest: Path, init: Path | None, adv: AdvConfig, seed: int,
         detector: str = "cnnspot", epochs: int = 20, lr: float = 5e-4, width: int = ARCH["width"],
         crop: int = FINETUNE["crop"], ema: float = 0.0) -> Path:
    ck = out / "checkpoints" / name
    if not (ck / "config.json").exists():
        cfg = TrainConfig(**{**FINETUNE, "epochs": epochs, "patience": epochs, "lr": lr, "crop": crop, "ema": ema},
                          seed=seed, init=str(init) if init else None, progress=False)
        det, _ = train_detector(detector, manifest, ck, cfg, objective=AdversarialObjective(adv, seed=seed),
                                **{**ARCH, "width": width})
        det.meta["defense"] = {"adv": adv.__dict__}
        det.save(ck)
    return ck


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--real-dir", action="append", default=[])
    ap.add_argument("--tae-weights", default=None, help="TAE weights for the benchmark's TAE fakes")
    ap.add_argument("--purify-tae", default=None, help="TAE weights for the TAE round-trip purifier")
    ap.add_argument("--limit", type=int, default=150, help="test images (seeded subset; 0: all)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--eot-iter", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-demo", default=None,
                    help="a `fakebench demo` output folder: reuse its benchmark, cnnspot, res50nodown, res50nodown-at")
    ap.add_argument("--ft-epochs", type=int, default=20, help="epochs of each adversarial fine-tuning of cnnspot")
    ap.add_argument("--scratch-epochs", type=int, default=30,
                    help="epochs of res50nodown PGD-AT from scratch (0: skip that row)")
    ap.add_argument("--wide-epochs", type=int, default=100,
                    help="epochs of the wide cnnspot's PGD-5 AT from scratch, both directions, on whole "
                         "64-px patches (0: skip that row)")
    ap.add_argument("--wide-width", type=int, default=32, help="width of that cnnspot (the others have 16)")
    ap.add_argument("--only", default=None, help="semicolon-separated subset of the rows to evaluate")
    ap.add_argument("--groups", default="base,cheap,trained,finetuned,scratch",
                    help="rows to build and evaluate: base (undefended), cheap (purifiers, kNN, TRIM: no training), "
                         "trained (the demo's res50nodown-at, its ensemble, smoothing), finetuned (cnnspot PGD-AT / "
                         "TRADES / FGSM-RS), scratch (res50nodown and wide-cnnspot PGD-AT from scratch)")
    ap.add_argument("--board", default=None, help="write the leaderboard under OUT/BOARD (checkpoints stay in OUT)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    t0 = time.time()
    demo = Path(args.from_demo) if args.from_demo else None
    if demo is not None:  # reuse the demo's benchmark and its three detectors (same seed, same recipes)
        data = demo / "data"
        clean, other = demo / "checkpoints" / "cnnspot", demo / "checkpoints" / "res50nodown"
    else:
        data = build_builtin(out / "data", real_dirs=args.real_dir, tae_weights=args.tae_weights, seed=args.seed,
                             progress=False)
        clean, other = out / "checkpoints" / "undefended", out / "checkpoints" / "res50nodown"
    manifest = data / "manifest.csv"

    def trained(name: str, ck: Path) -> str:  # the demo's CPU recipe, trained once
        if not (ck / "config.json").exists():
            train_detector(name, manifest, ck, TrainConfig(**CLEAN, seed=args.seed, progress=False), **ARCH)
        return str(ck)

    def demo_at() -> str:
        ck = demo / "checkpoints" / "res50nodown-at" if demo is not None else None
        if ck is not None and (ck / "config.json").exists():
            return str(ck)
        trained("res50nodown", other)
        return str(_adv(out, "r50nd-pgd-evade-ft", manifest, other,
                        AdvConfig("pgd", EPS, steps=3, direction="evade", warmup=150), args.seed,
                        detector="res50nodown", epochs=6))

    def smoothed() -> str:  # Gaussian-noise training of the wrapper (Cohen et al.)
        ck = out / "checkpoints" / "smoothed-0.12"
        if not (ck / "config.json").exists():
            train_detector("smoothed", manifest, ck, TrainConfig(**CLEAN, seed=args.seed, progress=False),
                           base={"detector": "cnnspot", "options": ARCH}, sigma=0.12, n=1000, mc_samples=16)
        return str(ck)

    def references() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        samples = load_dataset(manifest)
        train = select(samples, split="train")
        xtr, ktr = load_stack(train)
        xva, _ = load_stack(select(samples, split="val"))
        return xtr, torch.tensor([train[i].label for i in ktr]), xva

    def knn() -> Any:
        xtr, ytr, xva = references()
        return detectors.create("knn-detect", base=trained("cnnspot", clean), layers=["stem"], k=20, pca_dim=32,
                                score="distance").fit(xtr, ytr, calibrate_on=xva)

    def trim() -> Any:
        t = detectors.create("trim", base=trained("cnnspot", clean))
        t.calibrate(references()[2])
        return t

    def purify(method: str, **opts: Any) -> Callable[[], Any]:
        return lambda: detectors.create("purify", base=trained("cnnspot", clean), method=method, **opts)

    def adv(name: str, cfg: AdvConfig, **kw: Any) -> Callable[[], str]:
        return lambda: str(_adv(out, name, manifest, Path(trained("cnnspot", clean)) if kw.get("init", True) else None,
                                cfg, args.seed, **{k: v for k, v in kw.items() if k != "init"}))

    eps, ft = EPS, args.ft_epochs
    # every row is built (trained) only when selected: (group, factory)
    rows: dict[str, tuple[str, Callable[[], Any]]] = {
        "cnnspot (undefended)": ("base", lambda: trained("cnnspot", clean)),
        "res50nodown (undefended)": ("base", lambda: trained("res50nodown", other)),
        "purify jpeg q75 (cnnspot)": ("cheap", purify("jpeg", quality=75)),
        "purify blur 1px (cnnspot)": ("cheap", purify("blur", sigma=1.0)),
        "purify resize-pad (cnnspot)": ("cheap", purify("resize-pad")),
        "knn-detect distance on stem (cnnspot)": ("cheap", knn),
        "trim-style (cnnspot)": ("cheap", trim),
        "res50nodown pgd-at evade (fine-tuned 6 epochs as the demo)": ("trained", demo_at),
        "ensemble mean: cnnspot + res50nodown-at": ("trained", lambda: detectors.create(
            "ensemble", members={"cnnspot": trained("cnnspot", clean), "res50nodown-at": demo_at()})),
        "smoothed sigma=0.12": ("trained", smoothed),
        "cnnspot pgd-at both with clean mix 0.5": ("finetuned", adv(
            "cnn-pgd-both", AdvConfig("pgd", eps, steps=5, direction="both", clean_weight=0.5, warmup=300), epochs=ft)),
        "cnnspot trades evade": ("finetuned", adv(
            "cnn-trades-evade", AdvConfig("trades", eps, steps=5, direction="evade", beta=6.0, warmup=300), epochs=ft)),
        "cnnspot fgsm-rs evade": ("finetuned", adv(
            "cnn-fgsm-rs-evade", AdvConfig("fgsm-rs", eps, steps=1, direction="evade", warmup=300), epochs=ft)),
    }
    if args.purify_tae:
        rows["purify tae (cnnspot)"] = ("cheap", purify("tae", tae_weights=args.purify_tae))
    if args.scratch_epochs > 0:
        rows[f"res50nodown pgd-at evade ({args.scratch_epochs} epochs from scratch)"] = ("scratch", adv(
            "r50nd-pgd-evade-scratch", AdvConfig("pgd", eps, steps=3, direction="evade", warmup=300), init=False,
            detector="res50nodown", epochs=args.scratch_epochs, lr=1e-3))
    if args.wide_epochs > 0:  # capacity, PGD-5 both ways, whole patches, weight averaging: the best AT rows measured
        w, n = args.wide_width, args.wide_epochs

        def wide(train_eps: int) -> Callable[[], str]:
            return adv(f"cnn-w{w}-pgd5-both-scratch-{n}-crop64-ema-eps{train_eps}",
                       AdvConfig("pgd", train_eps / 255, steps=5, direction="both", warmup=600),
                       init=False, epochs=n, lr=1e-3, width=w, crop=64, ema=WIDE_EMA)

        about = f"({n} epochs of PGD-5 from scratch, 64-px patches, EMA)"
        rows[f"cnnspot width {w} pgd-at both at 4/255 {about}"] = ("scratch", wide(4))
        rows[f"cnnspot width {w} pgd-at both at 6/255 {about}"] = ("scratch", wide(6))
        rows[f"ensemble mean: the two width-{w} pgd-at rows (trained at 4/255 and 6/255)"] = (
            "scratch", lambda: detectors.create("ensemble", members={"at4": wide(4)(), "at6": wide(6)()}))
    groups = {g.strip() for g in args.groups.split(",")}
    keep = {k.strip() for k in args.only.split(";")} if args.only else None
    if keep is not None and keep - set(rows):
        raise SystemExit(f"--only: no row named {sorted(keep - set(rows))} (rows: {sorted(rows)})")
    unknown = groups - {"base", "cheap", "trained", "finetuned", "scratch"}
    if unknown:
        raise SystemExit(f"--groups: unknown {sorted(unknown)}")
    dets = {name: make() for name, (g, make) in rows.items() if g in groups and (keep is None or name in keep)}
    out = out / args.board if args.board else out
    s = Settings(eps=(2 / 255, 4 / 255, 8 / 255), steps=args.steps, queries=args.queries, eot_iter=args.eot_iter,
                 seed=args.seed)
    board = robustness(dets, manifest, s, limit=args.limit or None, out=out, progress=True)
    print(board.markdown())
    (out / "timing.json").write_text(json.dumps({"seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
