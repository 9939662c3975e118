"""``fakebench attack``: attack every image of a folder and save the adversarial PNGs.

    fakebench attack DETECTOR --attack NAME --in DIR --out DIR [--opt key=value ...]

``DETECTOR`` is a fakebench checkpoint folder (``config.json`` + ``model.safetensors``) or a
registered detector name with ``--pretrained PATH`` (the official checkpoint;
``--det-opt key=value`` passes constructor options). Every image under ``--in`` (recursive,
sorted; files under ``--out`` excluded) is attacked and written as an 8-bit PNG to the same
relative path under ``--out`` with the suffix ``.png`` (``a.jpg`` -> ``a.png``; when that
name is taken by another input, ``a.jpg.png``). Nothing is written outside ``--out``.
``attack.csv`` there lists per image: label, whether the attack targeted it, the score before
and after (the after score is of the saved 8-bit image), the perturbation norms of the saved
image (L0 fraction of changed pixels, L2, Linf, PSNR in dB), queries and seconds, and
``status`` (``ok`` or the reason the image was skipped). An unreadable image, or one the
attack fails on, is skipped with a one-line warning; the others still run.

Labels (``--label``): ``real`` or ``fake`` for all images, or ``auto`` (default): when
``--in`` is a dataset (a ``manifest.csv``, ``real/`` + ``fake/``, CNNDetection folders) its
labels; otherwise a file under a folder named ``real``/``0_real`` is real, under
``fake``/``1_fake`` synthetic, and any other file follows the attack's direction (real for
``spoof``, synthetic otherwise).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, FakebenchError

log = logging.getLogger(__name__)

CSV_NAME = "attack.csv"
REAL_DIRS = {"real", "0_real"}
FAKE_DIRS = {"fake", "1_fake"}


# -- options -----------------------------------------------------------------------------------

def parse_value(text: str) -> Any:
    """``"8/255"`` -> 0.03137..., ``"0.1,0.2"`` -> [0.1, 0.2], YAML scalars otherwise
    (``10`` -> 10, ``true`` -> True, ``null`` -> None, ``[1, 2]`` -> [1, 2], other -> str)."""
    import yaml

    s = text.strip()
    if "," in s and not s.startswith(("[", "{")):
        return [parse_value(p) for p in s.split(",") if p.strip()]
    if "/" in s and s.count("/") == 1:
        try:
            return float(Fraction(s.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            pass
    try:
        return yaml.safe_load(s)
    except yaml.YAMLError:
        return s


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["eps=8/255", "steps=10"]`` -> ``{"eps": 0.0313..., "steps": 10}``."""
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--opt {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        k = k.strip().replace("-", "_")
        if not k:
            raise ConfigError(f"--opt {it!r}: empty key")
        out[k] = parse_value(v)
    return out


# -- inputs ------------------------------------------------------------------------------------

def resolve_detector(spec: str, pretrained: str | None = None, options: dict[str, Any] | None = None) -> torch.nn.Module:
    """A checkpoint folder, or a registry name built with ``pretrained`` (and ``options``)."""
    from .. import detectors

    p = Path(spec)
    if p.is_dir():
        return detectors.load(p)
    if spec in detectors.REGISTRY:
        if not pretrained:
            raise ConfigError(f"{spec}: a registry name needs --pretrained PATH (the official checkpoint); "
                              "or give a fakebench checkpoint folder")
        det = detectors.create(spec, pretrained=pretrained, **(options or {}))
        return det.eval()
    raise ConfigError(f"{spec}: neither a checkpoint folder nor a registered detector "
                      f"(known: {', '.join(detectors.REGISTRY.names())})")


def list_images(root: Path, exclude: Path | None = None) -> list[Path]:
    from ..io import is_image_file

    ex = exclude.resolve() if exclude is not None else None
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or not is_image_file(p):
            continue
        if ex is not None and (p.resolve() == ex or ex in p.resolve().parents):
            continue
        out.append(p)
    return out


def auto_label(rel: Path, direction: str) -> int:
    parts = {q.lower() for q in rel.parts[:-1]}
    if parts & REAL_DIRS:
        return 0
    if parts & FAKE_DIRS:
        return 1
    return 0 if direction == "spoof" else 1


def dataset_labels(root: Path) -> dict[str, int]:
    """``{resolved path: label}`` when ``root`` is a dataset layout that
    :func:`fakebench.data.load_dataset` reads (manifest, real/ + fake/, CNNDetection); else {}."""
    from ..data import load_dataset

    try:
        samples = load_dataset(root)
    except FakebenchError:
        return {}
    return {str(Path(s.path).resolve()): int(s.label) for s in samples}


def output_path(out: Path, rel: Path, taken: set[Path]) -> Path:
    """``out/rel`` with suffix .png (``name.ext.png`` if that is taken); refuses to leave ``out``."""
    cand = out / rel.with_suffix(".png")
    if cand in taken:
        cand = out / rel.parent / (rel.name + ".png")
    root = out.resolve()
    res = cand.resolve()
    if res != root and root not in res.parents:
        raise ConfigError(f"{rel}: output {res} would lie outside {root}")
    taken.add(cand)
    return cand


def load_dataset_tensors(data: str | Path, split: str | None = "test", limit: int | None = None, size: int | None = None,
                         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    """Images of a dataset (any layout :func:`fakebench.data.load_dataset` reads) as one
    tensor (N, 3, S, S), centre-cropped to ``size`` (default: the smallest side among them);
    images smaller than ``size`` or unreadable are skipped with a warning.
    Returns (x, y, samples kept)."""
    from ..data import load_dataset, select
    from ..io import load_image
    from ..errors import ImageLoadError

    samples = load_dataset(data)
    if split and split != "all":
        samples = select(samples, split=split)
    if limit is not None:
        samples = select(samples, limit=limit, seed=seed)
    if not samples:
        raise ConfigError(f"{data}: no samples{' in split ' + repr(split) if split else ''}")
    imgs, kept = [], []
    for s in samples:
        try:
            imgs.append(load_image(s.path))
            kept.append(s)
        except ImageLoadError as exc:
            log.warning("skipping %s", exc)
    if not imgs:
        raise ConfigError(f"{data}: no readable images")
    side = size or min(min(im.shape[:2]) for im in imgs)
    xs, ys, out_samples = [], [], []
    for im, s in zip(imgs, kept):
        h, w = im.shape[:2]
        if h < side or w < side:
            log.warning("skipping %s: %dx%d is smaller than the crop %d", s.path, w, h, side)
            continue
        t, l = (h - side) // 2, (w - side) // 2
        xs.append(im[t : t + side, l : l + side])
        ys.append(int(s.label))
        out_samples.append(s)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().contiguous()
    return x, torch.tensor(ys, dtype=torch.long), out_samples


# -- the command -------------------------------------------------------------------------------

def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.6g}"
    return v


def attack_folder(detector: torch.nn.Module, attack: Any, in_dir: str | Path, out_dir: str | Path, label: str = "auto",
                  batch_size: int = 8) -> list[dict[str, Any]]:
    """Attack every image under ``in_dir``, write PNGs and ``attack.csv`` under ``out_dir``
    (see the module docstring). Returns the CSV rows."""
    from .. import metrics
    from ..errors import ImageLoadError
    from ..io import load_image, save_png

    src, out = Path(in_dir), Path(out_dir)
    if not src.is_dir():
        raise ConfigError(f"{src}: input folder not found")
    if label not in ("auto", "real", "fake"):
        raise ConfigError(f"--label: expected auto, real or fake, got {label!r}")
    out.mkdir(parents=True, exist_ok=True)
    direction = attack.threat.direction
    files = list_images(src, exclude=out)
    if not files:
        raise ConfigError(f"{src}: no images found")
    known = dataset_labels(src) if label == "auto" else {}
    rows: list[dict[str, Any]] = []
    taken: set[Path] = set()
    loaded: dict[tuple[int, int], list[tuple[dict[str, Any], np.ndarray]]] = {}
    for f in files:
        rel = f.relative_to(src)
        lab = {"real": 0, "fake": 1}.get(label, None)
        if lab is None:
            lab = known.get(str(f.resolve()), auto_label(rel, direction))
        row: dict[str, Any] = {"file": rel.as_posix(), "output": "", "label": lab, "attacked": "",
                               "score_before": "", "score_after": "", "l0": "", "l2": "", "linf": "", "psnr": "",
                               "queries": "", "seconds": "", "status": ""}
        rows.append(row)
        try:
            img = load_image(f)
        except ImageLoadError as exc:
            row["status"] = f"skipped: {exc}"
            log.warning("skipping %s", exc)
            continue
        row["output"] = output_path(out, rel, taken).relative_to(out).as_posix()
        loaded.setdefault(img.shape[:2], []).append((row, img))

    def process(items: list[tuple[dict[str, Any], np.ndarray]]) -> None:
        x = torch.from_numpy(np.stack([im for _, im in items])).permute(0, 3, 1, 2).float().contiguous()
        y = torch.tensor([r["label"] for r, _ in items], dtype=torch.long)
        t0 = time.perf_counter()
        adv = attack(detector, x, y)
        secs = (time.perf_counter() - t0) / len(items)
        saved = torch.round(adv.detach().float().clamp(0, 1) * 255) / 255
        with torch.no_grad():
            before, after = detector(x).float(), detector(saved).float()
        norms = metrics.perturbation_norms(x, saved)
        q = attack.queries if attack.queries is not None else torch.zeros(len(items), dtype=torch.long)
        from .base import target_mask

        tm = target_mask(y, direction)
        for k, (row, _) in enumerate(items):
            save_png(out / row["output"], saved[k].permute(1, 2, 0).numpy())
            row.update({"attacked": bool(tm[k]), "score_before": float(before[k]), "score_after": float(after[k]),
                        "l0": float(norms["l0"][k]), "l2": float(norms["l2"][k]), "linf": float(norms["linf"][k]),
                        "psnr": float(norms["psnr"][k]), "queries": int(q[k]), "seconds": secs, "status": "ok"})

    for _, items in loaded.items():
        for i in range(0, len(items), max(int(batch_size), 1)):
            chunk = items[i : i + max(int(batch_size), 1)]
            try:
                process(chunk)
            except (KeyboardInterrupt, FakebenchError):
                raise
            except Exception:
                for one in chunk:  # find the culprit: one image at a time
                    try:
                        process([one])
                    except (KeyboardInterrupt, FakebenchError):
                        raise
                    except Exception as exc:
                        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                        one[0]["status"] = f"skipped: {type(exc).__name__}: {msg}"
                        one[0]["output"] = ""
                        log.warning("skipping %s: attack failed (%s: %s)", one[0]["file"], type(exc).__name__, msg)
    with open(out / CSV_NAME, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        for r in rows:
            wr.writerow({k: _fmt(v) for k, v in r.items()})
    return rows


def _cmd_attack(args: argparse.Namespace) -> int:
    from .. import attacks

    det = resolve_detector(args.detector, args.pretrained, parse_options(args.det_opt or []))
    opts = parse_options(args.opt or [])
    atk = attacks.create_seeded(args.attack, args.seed, **opts)
    if getattr(atk, "needs_gradients", True) and not getattr(det, "differentiable", True):
        raise ConfigError(f"{args.attack}: needs gradients, but {args.detector} is not differentiable; "
                          "use a black-box attack (square, hopskipjump)")
    rows = attack_folder(det, atk, args.in_dir, args.out, label=args.label, batch_size=args.batch_size)
    ok = [r for r in rows if r["status"] == "ok"]
    (Path(args.out) / "attack.json").write_text(json.dumps(
        {"detector": args.detector, "attack": args.attack, "options": opts, "seed": args.seed,
         "images": len(rows), "attacked": len(ok), "skipped": len(rows) - len(ok)}, indent=2, default=str))
    moved = [r["score_after"] - r["score_before"] for r in ok if r["attacked"]]
    mean = f"{np.mean(moved):+.3f}" if moved else "n/a"
    print(f"attacked {len(ok)} of {len(rows)} images ({len(rows) - len(ok)} skipped); mean score change on "
          f"targeted images {mean}; wrote {Path(args.out) / CSV_NAME}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``fakebench attack DETECTOR --attack NAME --in DIR --out DIR [--opt key=value ...]``."""
    s = subparsers.add_parser("attack", help="attack a folder of images and save adversarial PNGs + a CSV of scores")
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
    s.set_defaults(func=_cmd_attack)
    return s
