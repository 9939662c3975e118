"""The built-in benchmark's cache: the settings that define a build and their hash, the
``settings.json`` record (written incomplete when a build starts, complete when it ends), the
check that a recorded build is still whole on disk, and clearing a previous build (only the
files the builder wrote)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from .layout import BUILTIN_VERSION, IMAGES_DIR, MANIFEST, MANIFEST_COLUMNS, SETTINGS, SPLITS, VIEWS, PathLike
from .sources import SKIMAGE_PHOTOS

log = logging.getLogger(__name__)


def _file_listing(files: Iterable[Path]) -> list[list[Any]]:
    """[resolved path, size, mtime_ns] of each file: a changed file changes the cache key."""
    out = []
    for p in files:
        st = p.stat()
        out.append([str(p.resolve()), int(st.st_size), int(st.st_mtime_ns)])
    return out


def settings_hash(settings: dict[str, Any]) -> str:
    """Short sha256 of the settings (canonical JSON)."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def builtin_settings(*, patch: int, seed: int, n_train: int, n_val: int, n_test: int, train_steps: int,
                     min_std: float, max_real_files: int, max_crops_per_photo: int, include_bundled: bool,
                     real_dirs: Sequence[PathLike], files: Sequence[tuple[Path, Path]],
                     tae_listing: list[list[Any]] | None, postprocess: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """Everything a build depends on (its cache key): sizes, seed, steps, bundled photos and the
    scikit-image version, the listing of the real files (paths, sizes, mtimes), the TAE weight
    files and :data:`BUILTIN_VERSION`."""
    import skimage

    return {
        "version": BUILTIN_VERSION,
        "patch": patch, "seed": seed, "n_train": n_train, "n_val": n_val, "n_test": n_test,
        "train_steps": train_steps, "min_std": min_std, "max_real_files": max_real_files,
        "max_crops_per_photo": max_crops_per_photo,
        "bundled": list(SKIMAGE_PHOTOS) if include_bundled else [],
        "skimage_version": skimage.__version__ if include_bundled else None,
        "real_dirs": [str(Path(d).expanduser().resolve()) for d in real_dirs],
        "real_files": _file_listing(p for _, p in files),
        "tae_weights": tae_listing,
        "postprocess": postprocess,
    }


def tae_weight_files(tae_weights: PathLike | None | bool) -> tuple[Path | None, list[list[Any]] | None]:
    """(folder, listing of its encoder/decoder files) of the TAE weights, or (None, None);
    raises :class:`~fakebench.errors.CheckpointError` when the folder holds no such pair.
    ``None``: the TAEF2 weights packaged with fakebench; ``False``: no TAE; a folder: that one."""
    from ..generators.tae import find_weight_files, packaged_taef2

    if tae_weights is None:
        tae_weights = packaged_taef2()
    if tae_weights is None or tae_weights is False:
        return None, None

    tae_dir = Path(tae_weights).expanduser()
    enc, dec, _ = find_weight_files(tae_dir)
    return tae_dir, _file_listing([enc, dec])


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_settings(out: Path) -> dict[str, Any] | None:
    """The ``settings.json`` record of a previous build in ``out``, or None (absent, unreadable,
    or not written by the builder)."""
    p = out / SETTINGS
    if not p.is_file():
        return None
    try:
        obj = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and "fakebench_builtin" in obj else None


def _manifest_complete(out: Path, expected_rows: int | None) -> bool:
    m = out / MANIFEST
    if not m.is_file():
        return False
    try:
        with open(m, newline="") as f:
            rows = list(csv.reader(f))
    except OSError:
        return False
    if not rows or tuple(rows[0]) != MANIFEST_COLUMNS:
        return False
    body = rows[1:]
    if expected_rows is not None and len(body) != expected_rows:
        return False
    return all(len(r) == len(MANIFEST_COLUMNS) and (out / r[0]).is_file() for r in body)


#: the name of a patch file the builder writes (``<n>_<source>_<view>.png``)
_PATCH_NAME = re.compile(r"^\d{5}_.+_(?:" + "|".join(map(re.escape, VIEWS)) + r")\.png$")


def _manifest_paths(out: Path) -> set[str]:
    """The ``path`` column of ``<out>/manifest.csv`` (empty when absent or unreadable)."""
    try:
        with open(out / MANIFEST, newline="") as f:
            return {r[0] for r in list(csv.reader(f))[1:] if r}
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()


def own_files(out: Path, prev: dict[str, Any] | None) -> tuple[list[Path], list[Path]]:
    """(files under ``<out>/images`` an earlier build wrote, other files there). A finished
    build's files are those its manifest lists; an unfinished one (no manifest yet) wrote
    only ``images/<split>/<generator>/<n>_<source>_<view>.png``. Symlinks are not followed."""
    listed = _manifest_paths(out) if prev is not None and prev.get("complete") else None
    ours: list[Path] = []
    others: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(out / IMAGES_DIR):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = p.relative_to(out)
            if listed is not None:
                mine = rel.as_posix() in listed and not p.is_symlink()
            else:
                mine = len(rel.parts) == 4 and rel.parts[1] in SPLITS and bool(_PATCH_NAME.match(name)) \
                    and not p.is_symlink()
            (ours if mine else others).append(p)
    return ours, others


def _clear_previous(out: Path, prev: dict[str, Any] | None) -> None:
    """Remove what an earlier build wrote: its own files (:func:`own_files`), the folders they
    leave empty, its manifest and temporary files. Anything else under ``images/`` is kept,
    with one warning line."""
    ours, others = own_files(out, prev)
    for p in ours:
        p.unlink()
    for dirpath, _dirnames, _ in os.walk(out / IMAGES_DIR, topdown=False):  # children first
        d = Path(dirpath)
        if not d.is_symlink() and not any(d.iterdir()):
            d.rmdir()
    if others:
        log.warning("%s: kept %d file(s) that the built-in builder did not write (e.g. %s); they are not part of "
                    "the new build", out / IMAGES_DIR, len(others), others[0].relative_to(out).as_posix())
    for name in (MANIFEST, MANIFEST + ".tmp", SETTINGS + ".tmp"):
        if (out / name).exists():
            (out / name).unlink()


def reusable(out: Path, prev: dict[str, Any] | None, digest: str) -> bool:
    """Whether the build recorded in ``prev`` has the settings ``digest``, finished, and its
    manifest and every file it lists are still there."""
    return prev is not None and prev.get("hash") == digest and bool(prev.get("complete")) and \
        _manifest_complete(out, prev.get("rows"))


def foreign(out: Path, prev: dict[str, Any] | None) -> bool:
    """Whether ``out`` holds a manifest or images that the builder did not write."""
    return prev is None and ((out / MANIFEST).exists() or (out / IMAGES_DIR).exists())


def start_build(out: Path, digest: str, settings: dict[str, Any]) -> None:
    """Create ``out``, clear a previous build and record the new one as incomplete."""
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out, read_settings(out))
    write_settings(out, {"fakebench_builtin": BUILTIN_VERSION, "hash": digest, "settings": settings, "complete": False})


def write_settings(out: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as ``<out>/settings.json`` (atomically)."""
    _write_json(out / SETTINGS, record)
