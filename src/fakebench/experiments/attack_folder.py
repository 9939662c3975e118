"""Attack every image of a folder and save the adversarial PNGs (``fakebench attack``).

Every image under ``--in`` (recursive,
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

import csv
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from .. import metrics
from ..attacks.base import Attack, target_mask
from ..data import Sample, list_image_files
from ..data.pipeline import iter_batches
from ..errors import ConfigError, FakebenchError
from ..io import note_overwrites, safe_text, save_png

log = logging.getLogger(__name__)

CSV_NAME = "attack.csv"
JSON_NAME = "attack.json"
REAL_DIRS = {"real", "0_real"}
FAKE_DIRS = {"fake", "1_fake"}
COLUMNS = ("file", "output", "label", "attacked", "score_before", "score_after", "l0", "l2", "linf", "psnr",
           "queries", "seconds", "status")


def list_images(root: Path, exclude: Path | None = None,
                refused: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Image files under ``root`` (:func:`fakebench.data.list_image_files`: symlinks leading
    out of ``root`` or looping are refused with one line), without those under ``exclude``."""
    ex = exclude.resolve() if exclude is not None else None
    out = []
    for p in list_image_files(root, refused=refused):
        q = Path(os.path.abspath(p))
        if ex is not None and (q == ex or ex in q.parents):
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


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.6g}"
    return v


def _plan(files: list[Path], src: Path, out: Path, label: str, direction: str) -> list[dict[str, Any]]:
    """One CSV row per input file: its label and output name, results still empty."""
    known = dataset_labels(src) if label == "auto" else {}
    taken: set[Path] = set()
    rows = []
    for f in files:
        rel = f.relative_to(src)
        lab = {"real": 0, "fake": 1}.get(label)
        if lab is None:
            lab = known.get(str(f.resolve()), auto_label(rel, direction))
        row = {k: "" for k in COLUMNS}
        row.update({"file": rel.as_posix(), "label": lab, "path": str(f),
                    "output": output_path(out, rel, taken).relative_to(out).as_posix()})
        rows.append(row)
    return rows


def _process(detector: torch.nn.Module, attack: Attack, out: Path, x: torch.Tensor, rows: list[dict[str, Any]]) -> None:
    """Attack one batch, save its PNGs, fill its rows."""
    y = torch.tensor([r["label"] for r in rows], dtype=torch.long)
    t0 = time.perf_counter()
    res = attack.perturb(detector, x, y)
    secs = (time.perf_counter() - t0) / len(rows)
    saved = torch.round(res.x_adv.detach().float().clamp(0, 1) * 255) / 255
    with torch.no_grad():
        before, after = detector(x).float(), detector(saved).float()
    norms = metrics.perturbation_norms(x, saved)
    tm = target_mask(y, attack.threat.direction)
    for k, row in enumerate(rows):
        save_png(out / row["output"], saved[k].permute(1, 2, 0).numpy())
        row.update({"attacked": bool(tm[k]), "score_before": float(before[k]), "score_after": float(after[k]),
                    "l0": float(norms["l0"][k]), "l2": float(norms["l2"][k]), "linf": float(norms["linf"][k]),
                    "psnr": float(norms["psnr"][k]), "queries": int(res.queries[k]), "seconds": secs, "status": "ok"})


def _process_or_isolate(detector: torch.nn.Module, attack: Attack, out: Path, x: torch.Tensor,
                        rows: list[dict[str, Any]]) -> None:
    """:func:`_process`; when a batch fails, retry one image at a time so only the culprit is skipped."""
    try:
        _process(detector, attack, out, x, rows)
        return
    except (KeyboardInterrupt, FakebenchError):
        raise
    except Exception:
        if len(rows) == 1:
            raise
    for k, row in enumerate(rows):
        try:
            _process(detector, attack, out, x[k : k + 1], [row])
        except (KeyboardInterrupt, FakebenchError):
            raise
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            row.update({"status": f"skipped: {type(exc).__name__}: {msg}", "output": ""})
            log.warning("skipping %s: attack failed (%s: %s)", row["file"], type(exc).__name__, msg)


def attack_folder(detector: torch.nn.Module, attack: Attack, in_dir: str | Path, out_dir: str | Path,
                  label: str = "auto", batch_size: int = 8) -> list[dict[str, Any]]:
    """Attack every image under ``in_dir``, write PNGs and ``attack.csv`` under ``out_dir``
    (see the module docstring). Images are decoded by the shared pipeline, bucketed by size.
    Returns the CSV rows."""
    src, out = Path(in_dir), Path(out_dir)
    if not src.is_dir():
        raise ConfigError(f"{src}: input folder not found")
    if label not in ("auto", "real", "fake"):
        raise ConfigError(f"--label: expected auto, real or fake, got {label!r}")
    out.mkdir(parents=True, exist_ok=True)
    refused: list[tuple[Path, str]] = []
    files = list_images(src, exclude=out, refused=refused)
    if not files and not refused:
        raise ConfigError(f"{src}: no images found")
    rows = _plan(files, src, out, label, attack.threat.direction)
    note_overwrites(out, [CSV_NAME, JSON_NAME] + [r["output"] for r in rows])
    for p, reason in refused:  # listed, never opened: the CSV says why
        rows.append({**{k: "" for k in COLUMNS}, "file": p.relative_to(src).as_posix(), "path": str(p),
                     "label": "", "status": f"skipped: {reason}"})
    samples = [Sample(r["path"], int(r["label"]), "", "") for r in rows if r["status"] == ""]
    by_path = {r["path"]: r for r in rows}
    try:
        for x, _, idx, bad in iter_batches(samples, max(int(batch_size), 1), bucket=True):
            for path, reason in bad:
                by_path[path].update({"status": f"skipped: {path}: {reason}", "output": ""})
            if len(x):
                _process_or_isolate(detector, attack, out, x.float(), [by_path[samples[i].path] for i in idx.tolist()])
    finally:  # also when interrupted: the finished rows are written, the others say so
        for r in rows:
            r["status"] = r["status"] or "not run (interrupted)"
        write_csv(out / CSV_NAME, rows)
    return [{k: r[k] for k in COLUMNS} for r in rows]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """``attack.csv``: file names with undecodable bytes appear as ``\\xNN``."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        wr.writeheader()
        for r in rows:
            values = {k: _fmt(r[k]) for k in COLUMNS}
            wr.writerow({k: safe_text(v) if isinstance(v, str) else v for k, v in values.items()})
