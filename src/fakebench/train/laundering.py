"""Training data and training for the two-stage laundering detector (Mandelli, Bestagini,
Tubaro, WIFS 2024): :func:`build_laundering_dataset` makes the three classes from the built-in
benchmark (real patches; the same patches through a TAESD-family round trip; fully synthetic
patches decoded by the same decoder from latents with no photograph behind them, drawn from a
Gaussian latent prior) and :func:`train_laundering` trains both stages with the shared trainer.
The detector itself is :mod:`fakebench.detectors.laundering`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..detectors.laundering import LAUNDERED, REAL, SYNTHETIC, LaunderingTwoStage
from ..generators.latent_prior import LatentGaussianPrior, phase_randomize

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------
# the laundering dataset


DATASET_VERSION = 1
STAGE_FILES = {"manifest": "manifest.csv", "stage1": "stage1.csv", "stage2": "stage2.csv"}
SYNTHETIC_MODES = ("gaussian", "phase")
#: patches encoded / decoded at once
CHUNK = 32
#: a dataset row: (path relative to the dataset, label, generator, split, source, kind)
Row = tuple[str, int, str, str, str, str]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _padded(x: torch.Tensor, context: int) -> tuple[torch.Tensor, int]:
    """Reflect-pad by ``context`` and up to a multiple of 8 (the TAE grid); returns (xp, c)."""
    c = min(context, x.shape[-2] - 1, x.shape[-1] - 1)
    xp = F.pad(x, (c, c, c, c), mode="reflect") if c > 0 else x
    ph, pw = (-xp.shape[-2]) % 8, (-xp.shape[-1]) % 8
    if ph or pw:
        xp = F.pad(xp, (0, pw, 0, ph), mode="reflect")
    return xp, c


def _write_csv(path: Path, items: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(items)
    tmp.replace(path)


def build_laundering_dataset(out: str | Path, tae_weights: str | Path, builtin: str | Path | None = None, *,
                             seed: int = 0, synthetic: str = "gaussian", max_reals_per_split: int | None = None,
                             include_builtin_fakes: bool = False, context: int = 8,
                             builtin_options: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Path]:
    """Build the three-class laundering dataset from the built-in benchmark.

    Classes (``kind`` column), all derived from the benchmark's REAL patches, so that the
    benchmark's disjoint-source splits carry over (a patch and its laundered / synthetic
    versions share ``source`` and ``split``):

    * ``real``: the benchmark's real patches;
    * ``laundered``: each real patch through the TAESD-family round trip in ``tae_weights``
      (reflect-padded by ``context`` pixels, cropped back, saved as 8-bit PNG). The benchmark's
      own fakes made by the same autoencoder, if any, are laundered reals too and join them;
    * ``synthetic`` (fully synthetic): the SAME decoder applied to latents with no photograph
      behind them, one per real patch, same padding and crop. ``synthetic="gaussian"``
      (default) draws them from a :class:`LatentGaussianPrior` fitted on the train split's
      real latents; ``"phase"`` phase-randomises each real patch's own latent
      (:func:`phase_randomize`; a harder stage 2);
    * ``generated`` (only with ``include_builtin_fakes``): the benchmark's other fakes (tiny
      convolutional autoencoders): synthetic for stage 1, left out of stage 2.

    Args:
        out: output folder: ``images/<split>/<kind>/*.png``, three CSVs and ``settings.json``
            (a build with the same settings is reused).
        tae_weights: folder with a TAESD-family encoder/decoder pair (e.g. ``taef2``).
        builtin: an existing built-in benchmark (folder or manifest.csv); ``None`` builds one
            in ``<out>/builtin`` with ``builtin_options`` (keyword arguments of
            :func:`fakebench.data.builtin.build_builtin`).
        max_reals_per_split: keep at most this many real patches per split (seeded subset).
    Returns:
        ``{"manifest", "stage1", "stage2"}`` -> CSV path. ``manifest.csv``:
        ``path,label,generator,split,source,kind`` (label 0 real, 1 otherwise); ``stage1.csv``:
        real 0 / every other kind 1; ``stage2.csv``: laundered 0 / fully synthetic 1 only.
        All are manifests that :func:`fakebench.data.load_dataset` reads.
    """
    from ..data import load_dataset
    from ..generators.tae import TinyAutoencoder, find_weight_files

    if synthetic not in SYNTHETIC_MODES:
        raise ConfigError(f"synthetic: must be one of {SYNTHETIC_MODES}, got {synthetic!r}")
    out = Path(out).expanduser()
    bman = _builtin_manifest(out, builtin, seed, progress, builtin_options)
    enc, dec, _ = find_weight_files(tae_weights)
    settings = {"version": DATASET_VERSION, "builtin": hashlib.sha256(bman.read_bytes()).hexdigest(),
                "tae": [[p.name, p.stat().st_size] for p in (enc, dec)], "seed": seed, "synthetic": synthetic,
                "max_reals_per_split": max_reals_per_split, "include_builtin_fakes": include_builtin_fakes,
                "context": context}
    digest = _digest(settings)
    paths = {k: out / v for k, v in STAGE_FILES.items()}
    if _reusable(out, paths, digest):
        log.info("reusing laundering dataset in %s", out)
        return paths

    tae = TinyAutoencoder.from_files(enc, dec).eval()
    samples = load_dataset(bman)
    reals = _pick_reals(samples, max_reals_per_split, seed)
    if not reals:
        raise DataError(f"{bman}: no real images")
    out.mkdir(parents=True, exist_ok=True)
    rows = _list_benchmark_files(out, reals, samples, tae.name, include_builtin_fakes)
    rows += _launder(out, tae, reals, synthetic=synthetic, seed=seed, context=context, progress=progress)
    _write_stage_files(paths, rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r[3]}/{r[5]}"] = counts.get(f"{r[3]}/{r[5]}", 0) + 1
    (out / "settings.json").write_text(json.dumps({"hash": digest, "settings": settings, "counts": counts,
                                                   "builtin_manifest": str(bman), "tae": tae.name},
                                                  indent=2, sort_keys=True))
    return paths


def _builtin_manifest(out: Path, builtin: str | Path | None, seed: int, progress: bool,
                      builtin_options: dict[str, Any] | None) -> Path:
    """The built-in benchmark's manifest: ``builtin`` (folder or CSV), or one built in
    ``<out>/builtin`` with ``builtin_options``."""
    if builtin is None:
        from ..builtin import build_builtin

        # only the real patches are used: no TAE family of its own (its fakes would join the
        # laundered class) and no shared post-processing (the reals stay as photographed)
        opts: dict[str, Any] = {"seed": seed, "progress": progress, "tae_weights": False, "postprocess": None}
        opts.update(builtin_options or {})
        builtin = build_builtin(out / "builtin", **opts)
    bpath = Path(builtin)
    bman = bpath / "manifest.csv" if bpath.is_dir() else bpath
    if not bman.is_file():
        raise DataError(f"{bman}: built-in benchmark manifest not found")
    return bman


def _reusable(out: Path, paths: dict[str, Path], digest: str) -> bool:
    """Whether ``out`` holds every stage file and a ``settings.json`` with this ``digest``."""
    sfile = out / "settings.json"
    if sfile.is_file() and all(p.is_file() for p in paths.values()):
        try:
            if json.loads(sfile.read_text()).get("hash") == digest:
                return True
        except ValueError:
            pass
    return False


def _pick_reals(samples: Sequence[Any], max_reals_per_split: int | None, seed: int) -> list[Any]:
    """The real samples, split by split (sorted), each split a seeded subset of at most
    ``max_reals_per_split``."""
    rng = np.random.default_rng(seed)
    reals: list[Any] = []
    for split in sorted({s.split for s in samples if s.label == 0}):
        group = [s for s in samples if s.label == 0 and s.split == split]
        if max_reals_per_split is not None and len(group) > max_reals_per_split:
            keep = np.sort(rng.choice(len(group), max_reals_per_split, replace=False))
            group = [group[i] for i in keep]
        reals.extend(group)
    return reals


def _list_benchmark_files(out: Path, reals: Sequence[Any], samples: Sequence[Any], tae_name: str,
                          include_builtin_fakes: bool) -> list[Row]:
    """Rows of the benchmark files the dataset reuses: the reals, the benchmark's own fakes made
    by the TAE (laundered) and, with ``include_builtin_fakes``, its other fakes ("generated").
    Files outside ``out`` are copied in so paths stay relative."""
    rows: list[Row] = []
    out_real = out.resolve()

    def link(s: Any, kind: str) -> None:
        src = Path(s.path).resolve()
        if src.is_relative_to(out_real):
            r = src.relative_to(out_real).as_posix()
        else:
            dst = out / "images" / (s.split or "all") / kind / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            r = dst.relative_to(out).as_posix()
        rows.append((r, 0 if kind == REAL else 1, s.generator, s.split, s.source, kind))

    for s in reals:
        link(s, REAL)
    for s in samples:
        if s.label == 1 and s.generator == tae_name:
            link(s, LAUNDERED)
        elif s.label == 1 and include_builtin_fakes:
            link(s, "generated")
    return rows


def _encode_group(tae: Any, x: torch.Tensor, group: Sequence[Any], *, synthetic: str, context: int,
                  gen: torch.Generator, bar: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Latents of one same-size group of real patches (padded) and the latents of its fully
    synthetic counterparts; returns (z, z_synthetic, padding)."""
    with torch.no_grad():
        parts = []
        for i in range(0, len(x), CHUNK):
            xp, c = _padded(x[i:i + CHUNK], context)
            parts.append(tae.encode(xp))
            bar.update(len(parts[-1]))
        z = torch.cat(parts)
        if synthetic == "gaussian":
            fit = [i for i, s in enumerate(group) if s.split == "train"]
            prior = LatentGaussianPrior(z[fit] if len(fit) >= 2 else z)
            zs = prior.sample(len(z), gen)
        else:
            zs = phase_randomize(z, gen)
    return z, zs, c


def _decode_group(out: Path, tae: Any, group: Sequence[Any], z: torch.Tensor, zs: torch.Tensor, c: int,
                  hw: tuple[int, int], bar: Any) -> list[Row]:
    """Decode ``z`` (laundered) and ``zs`` (fully synthetic), crop the padding, save the PNGs;
    returns their rows."""
    from ..io import save_png

    h, w = hw
    lname, sname = f"laundered-{tae.name}", f"synthetic-{tae.name}"
    rows: list[Row] = []
    for i in range(0, len(z), CHUNK):
        with torch.no_grad():
            lx = tae.decode(z[i:i + CHUNK])[..., c:c + h, c:c + w]
            sx = tae.decode(zs[i:i + CHUNK])[..., c:c + h, c:c + w]
        for s, limg, simg in zip(group[i:i + CHUNK], lx, sx):
            stem = Path(s.path).stem
            for kind, gname, img in ((LAUNDERED, lname, limg), (SYNTHETIC, sname, simg)):
                rel = Path("images") / (s.split or "all") / kind / f"{stem}.png"
                save_png(out / rel, img.numpy())
                rows.append((rel.as_posix(), 1, gname, s.split, s.source, kind))
        bar.update(len(lx))
    return rows


def _launder(out: Path, tae: Any, reals: Sequence[Any], *, synthetic: str, seed: int, context: int,
             progress: bool) -> list[Row]:
    """Each real patch through the TAE round trip and one fully synthetic decode per patch,
    grouped by size (sorted), encoded once; one seeded generator draws every synthetic latent.
    Images are decoded by the shared pipeline (unreadable ones are skipped with a warning)."""
    from ..data.pipeline import iter_batches
    from ..progress import progress_bar

    reals = list(reals)
    batches = [b for b in iter_batches(reals, max(len(reals), 1), bucket=True) if len(b[0])]
    gen = torch.Generator().manual_seed(int(seed))
    bar = progress_bar(2 * len(reals), "laundering", enabled=progress, unit="patch")
    rows: list[Row] = []
    for x, _, idx, _ in sorted(batches, key=lambda b: tuple(b[0].shape[1:])):
        group = [reals[i] for i in idx.tolist()]
        x = x.float().contiguous()
        z, zs, c = _encode_group(tae, x, group, synthetic=synthetic, context=context, gen=gen, bar=bar)
        rows += _decode_group(out, tae, group, z, zs, c, (x.shape[-2], x.shape[-1]), bar)
    bar.close()
    return rows


def _write_stage_files(paths: dict[str, Path], rows: list[Row]) -> None:
    """Sort ``rows`` (split, kind, path) in place; write the manifest and the two stage CSVs."""
    rows.sort(key=lambda r: (r[3], r[5], r[0]))
    cols = ("path", "label", "generator", "split", "source")
    _write_csv(paths["manifest"], rows, cols + ("kind",))
    _write_csv(paths["stage1"], [r[:5] for r in rows], cols)
    _write_csv(paths["stage2"], [(r[0], int(r[5] == SYNTHETIC), r[2], r[3], r[4]) for r in rows
                                 if r[5] in (LAUNDERED, SYNTHETIC)], cols)


# ------------------------------------------------------------------------------------------------
# training


def train_laundering(data: dict[str, Path] | str | Path, out: str | Path, cfg1: Any = None, cfg2: Any = None,
                     stage1_options: dict[str, Any] | None = None, stage2_options: dict[str, Any] | None = None,
                     recalibrate: bool = True, **detector_options: Any) -> tuple[LaunderingTwoStage, dict[str, Any]]:
    """Train stage 1 on ``stage1.csv`` and stage 2 on ``stage2.csv`` with the shared trainer
    (:func:`fakebench.train.train_detector`), saving ``<out>/stage1`` and ``<out>/stage2``.

    Args:
        data: the dict returned by :func:`build_laundering_dataset`, or its folder.
        cfg1, cfg2: :class:`fakebench.train.TrainConfig` per stage; a ``crop`` left at None
            becomes the stage's ``patch`` (training sees one random patch per image, as the
            authors trained on patches).
        stage1_options, stage2_options: detector options of one stage, over
            ``detector_options`` (shared by both: arch, width, patch, M, ...).
        recalibrate: the trainer calibrates each threshold on validation crops of ``patch``
            pixels (one patch each); with ``recalibrate`` the threshold is set again
            (balanced accuracy) on the WHOLE validation images, scored the way ``forward``
            scores any image (M of the drawn patches), and the checkpoint re-saved.
    Returns:
        (the two-stage model in eval mode, {"stage1": history, "stage2": history}).
    """
    from ..data import load_dataset, select
    from .loop import train_detector

    files = data if isinstance(data, dict) else {k: Path(data) / v for k, v in STAGE_FILES.items()}
    hists: dict[str, Any] = {}
    stages = []
    for key, cfg, extra in (("stage1", cfg1, stage1_options), ("stage2", cfg2, stage2_options)):
        opts = {**detector_options, **(extra or {})}
        c = _stage_config(cfg, opts)
        det, hist = train_detector(f"laundering-{key}", Path(files[key]), Path(out) / key, c, **opts)
        val = select(load_dataset(Path(files[key])), split="val")
        if recalibrate and val:
            _recalibrate_on_images(det, val, c.eval_batch_size, hist, Path(out) / key)
        stages.append(det)
        hists[key] = hist
    return LaunderingTwoStage(*stages).eval(), hists


def _stage_config(cfg: Any, opts: dict[str, Any]) -> Any:
    """The stage's :class:`~fakebench.train.TrainConfig` (default if None), its ``crop`` the
    stage's ``patch`` when left at None."""
    from dataclasses import replace

    from .loop import TrainConfig

    c = cfg or TrainConfig()
    if c.crop is None:
        c = replace(c, crop=int(opts.get("patch", 96)))
    return c


def _recalibrate_on_images(det: Any, val: Sequence[Any], batch_size: int, hist: dict[str, Any], folder: Path) -> None:
    """Set ``det``'s threshold (balanced accuracy) on the whole validation images, record the
    image-level AUC in ``hist`` and ``det.meta``, re-save to ``folder``; nothing when the
    validation set holds one class only."""
    from .. import metrics
    from ..data.transforms import EvalTransform
    from .loop import predict_samples

    try:
        yv, sv = predict_samples(det, val, batch_size, EvalTransform())
    except RuntimeError:  # images of different sizes cannot share a batch
        yv, sv = predict_samples(det, val, 1, EvalTransform())
    if len(set(yv.tolist())) == 2:
        det.threshold = float(metrics.calibrate_threshold(yv, sv, method="balanced"))
        hist["image_val_auc"] = metrics.auc(yv, sv)
        hist["image_threshold"] = det.threshold
        det.meta["image_val_auc"] = hist["image_val_auc"]
        det.save(folder)
