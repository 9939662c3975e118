"""Datasets as sorted lists of :class:`Sample`: folder layouts, CNNDetection, CSV manifests.

Loaders only list files (by image extension); they never decode. A file that later fails to
decode is skipped and reported by the dataset / batch iterator, so one bad image never stops a
run. Every loader returns its samples sorted by path, so the same folder always gives the same
list.

Accepted layouts (:func:`load_dataset` detects them in this order):

1. a ``.csv`` manifest, or a folder holding ``manifest.csv`` (:func:`from_manifest`);
2. ``real/`` + ``fake/<generator>/`` (:func:`from_folders`);
3. CNNDetection: ``0_real/`` + ``1_fake/`` at the root or in sub-folders such as
   ``<class>/0_real`` or ``<generator>/<class>/0_real`` (:func:`from_cnndetection`).
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from ..errors import ConfigError, DataError
from ..io import is_image_file, safe_text

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

REAL, FAKE = 0, 1
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "dev": "val", "testing": "test"}
_LABELS = {"0": REAL, "1": FAKE, "real": REAL, "fake": FAKE}
MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    Attributes:
        path: file path (absolute for the built-in loaders).
        label: 0 real, 1 synthetic.
        generator: the generator that made a synthetic image; always ``"real"`` for reals.
        source: where the sample comes from (dataset folder, class folder, or the manifest's
            ``source`` column, e.g. the photograph a patch was cut from).
        split: ``"train"``, ``"val"``, ``"test"`` or ``""`` (not assigned).
        share: how the image was shared (TrueFake's ``PreSocial``, ``Facebook``, ``Telegram``,
            ``Twitter``); ``""`` when the dataset does not say.
    """

    path: str
    label: int
    generator: str
    source: str
    split: str = ""
    share: str = ""


def _sort(samples: Iterable[Sample]) -> list[Sample]:
    return sorted(samples, key=lambda s: (s.path, s.label, s.generator, s.source, s.split, s.share))


def list_image_files(folder: PathLike, root: PathLike | None = None,
                     refused: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden files and folders skipped, folder
    symlinks below ``folder`` not followed), sorted. A file whose real path (symlinks resolved,
    its own or a folder's on the way) lies outside ``root`` (default: ``folder``), or that
    cannot be resolved (a symlink loop), is left out with one warning line (one per folder when
    a whole folder lies outside), and appended as ``(path, reason)`` to ``refused`` when given.
    A dangling symlink inside ``root`` is listed (decoding then reports it as not found)."""
    base = Path(root if root is not None else folder).resolve()
    out = []

    def refuse(p: Path, reason: str, say: bool = True) -> None:
        if say:
            log.warning("skipping %s: %s", safe_text(str(p)), reason)
        if refused is not None:
            refused.append((p, reason))

    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:  # not descended into (os.walk does not follow them): say so if they leave
            link = Path(dirpath) / d
            why = _escape_reason(link, base, "folder") if link.is_symlink() else ""
            if why:
                log.warning("skipping folder %s: %s", safe_text(str(link)), why)
        names = sorted(n for n in filenames if not n.startswith(".") and is_image_file(n))
        outside = _escape_reason(Path(dirpath), base, "folder")
        if outside and names:
            log.warning("skipping %d image(s) in %s: %s", len(names), safe_text(dirpath), outside)
        for name in names:
            p = Path(dirpath) / name
            reason = outside or _escape_reason(p, base, "symlink")
            if reason:
                refuse(p, reason, say=not outside)
                continue
            out.append(p)
    return sorted(out)


def _escape_reason(p: Path, base: Path, what: str) -> str:
    """Why ``p`` (a file, or a folder being listed) may not be read as part of ``base`` ('' when
    it may). A file that is not a symlink is judged by its folder."""
    if what == "symlink" and not p.is_symlink():
        return ""
    try:
        real = p.resolve()
    except (OSError, RuntimeError):  # RuntimeError: symlink loop (Python < 3.13)
        return f"{what} cannot be resolved (loop?)"
    if real != base and base not in real.parents:
        return f"{what} resolves to {safe_text(str(real))}, outside {safe_text(str(base))}"
    if what == "symlink":
        try:
            os.stat(p)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symlink cannot be resolved (loop)"
    return ""


def _abs(p: Path) -> str:
    return os.path.normpath(os.path.abspath(p))


def _require_dir(root: PathLike) -> Path:
    r = Path(root)
    if not r.exists():
        raise DataError(f"{r}: dataset path not found")
    if not r.is_dir():
        raise DataError(f"{r}: not a folder")
    return r


def from_folders(root: PathLike) -> list[Sample]:
    """``root/real/**`` (label 0) and ``root/fake/<generator>/**`` (label 1).

    Images directly inside ``fake/`` get generator ``"unknown"``. ``source`` is the name of
    ``root``. Sub-folders are searched recursively.
    """
    r = _require_dir(root)
    real_dir, fake_dir = r / "real", r / "fake"
    if not real_dir.is_dir() or not fake_dir.is_dir():
        raise DataError(f"{r}: expected the folders real/ and fake/<generator>/")
    name = Path(_abs(r)).name
    samples = [Sample(_abs(p), REAL, "real", name) for p in list_image_files(real_dir, r)]
    for p in list_image_files(fake_dir, r):
        rel = p.relative_to(fake_dir).parts
        gen = rel[0] if len(rel) > 1 else "unknown"
        samples.append(Sample(_abs(p), FAKE, gen, name))
    return _sort(samples)


def from_cnndetection(root: PathLike) -> list[Sample]:
    """CNNDetection layout (Wang et al. 2020): folders named ``0_real`` / ``1_fake`` at any
    depth below ``root`` (``root/0_real``, ``root/<class>/0_real``,
    ``root/<generator>/<class>/0_real``).

    ``generator`` of a synthetic image is the first folder below ``root`` on its path (the
    class name for ``<class>/1_fake``, the generator for ``<generator>/<class>/1_fake``, the
    name of ``root`` for a flat ``root/1_fake``); reals get ``"real"``. ``source`` is the path
    of the folder holding ``0_real``/``1_fake``, relative to ``root`` (root's name when flat).
    """
    r = _require_dir(root)
    rname = Path(_abs(r)).name
    samples = []
    for dirpath, dirnames, _ in os.walk(r):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in [d for d in dirnames if d in ("0_real", "1_fake")]:
            dirnames.remove(d)  # its images are listed here; do not look for layouts inside
            parent = Path(dirpath).relative_to(r)
            src = parent.as_posix() if parent.parts else rname
            label = REAL if d == "0_real" else FAKE
            gen = "real" if label == REAL else (parent.parts[0] if parent.parts else rname)
            samples += [Sample(_abs(p), label, gen, src) for p in list_image_files(Path(dirpath) / d, r)]
    if not samples and not _has_cnndetection_dirs(r):
        raise DataError(f"{r}: no 0_real/ or 1_fake/ folders found (CNNDetection layout)")
    return _sort(samples)


def _has_cnndetection_dirs(r: Path) -> bool:
    for _dirpath, dirnames, _ in os.walk(r):
        if "0_real" in dirnames or "1_fake" in dirnames:
            return True
    return False


def _parse_label(value: str) -> int | None:
    return _LABELS.get(value.strip().lower())


def _normalize_split(value: str) -> str:
    v = value.strip().lower()
    return _SPLIT_ALIASES.get(v, v)


def from_manifest(csv_path: PathLike, root: PathLike | None = None) -> list[Sample]:
    """Samples listed in a CSV file with a header holding ``path,label`` and optionally
    ``generator``, ``split``, ``source`` (column names are case-insensitive).

    ``path`` is relative to ``root`` (default: the CSV's folder), so a split file can live
    outside a read-only dataset; every path must stay inside ``root``. Labels are ``0``/``1``/``real``/``fake``.
    Missing generators become ``"unknown"`` for synthetic images; reals always get
    ``"real"``. A missing ``source`` becomes the name of the CSV's folder. Split aliases
    (``validation``, ``valid``, ``training``, ``testing``) map to ``val``/``train``/``test``.
    Files are not opened here; paths need not have an image extension.

    Raises:
        DataError: one line naming the CSV, the row (1-based data row and file line) and the
            problem: missing columns, a bad label, or a path escaping the CSV's folder
            (absolute, containing ``..``, or a symlink resolving outside).
    """
    cp = Path(csv_path)
    if not cp.is_file():
        raise DataError(f"{cp}: manifest not found")
    if root is not None and not Path(root).is_dir():
        raise DataError(f"{cp}: root {root} is not a folder")
    base = Path(_abs(Path(root) if root is not None else cp.parent))
    base_real = base.resolve()
    default_source = base.name
    samples: list[Sample] = []
    try:
        with open(cp, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{cp}: empty manifest (expected a header with path,label)")
            cols = {h.strip().lower(): i for i, h in enumerate(header)}
            missing = [c for c in ("path", "label") if c not in cols]
            if missing:
                raise DataError(f"{cp}: header lacks column(s) {', '.join(missing)} (found: {', '.join(header)})")
            row_no = 0
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                row_no += 1
                where = f"{cp}: row {row_no} (line {reader.line_num})"

                def get(name: str) -> str:
                    i = cols.get(name)
                    return row[i].strip() if i is not None and i < len(row) else ""

                rel = get("path")
                label = _parse_label(get("label"))
                if label is None:
                    raise DataError(f"{where}: bad label {get('label')!r} (expected 0, 1, real or fake)")
                path = _safe_join(base, base_real, rel, where)
                gen = "real" if label == REAL else (get("generator") or "unknown")
                samples.append(Sample(path, label, gen, get("source") or default_source, _normalize_split(get("split"))))
    except UnicodeDecodeError as exc:
        raise DataError(f"{cp}: not a UTF-8 text CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{cp}: malformed CSV ({exc})") from None
    return _sort(samples)


def _safe_join(base: Path, base_real: Path, rel: str, where: str) -> str:
    """``base / rel`` if it stays inside ``base`` (also after resolving symlinks)."""
    if not rel:
        raise DataError(f"{where}: empty path")
    if "\x00" in rel:
        raise DataError(f"{where}: path {rel!r} contains a NUL byte")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        raise DataError(f"{where}: path {rel!r} is absolute; manifest paths must be relative to {base}")
    if ".." in rel.replace("\\", "/").split("/"):
        raise DataError(f"{where}: path {rel!r} contains '..' and may escape {base}")
    joined = base / rel
    try:
        resolved = joined.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise DataError(f"{where}: path {rel!r} cannot be resolved ({exc})") from None
    if resolved != base_real and base_real not in resolved.parents:
        raise DataError(f"{where}: path {rel!r} resolves to {resolved}, outside {base_real} (symlink?)")
    return _abs(joined)


def load_dataset(path: PathLike, format: str | None = None, *, root: PathLike | None = None,
                 **options: object) -> list[Sample]:
    """Detect the layout of ``path`` and load it (see the module docstring for the order).

    ``format`` names a public benchmark's release layout (``truefake``, ``genimage``,
    ``synthbuster``, ``cnndetection``; :mod:`fakebench.data.benchmarks`) and ``options`` go to
    its loader (TrueFake: ``ids``, ``split_file``, ``split``). Without ``format`` a TrueFake
    tree (``PreSocial/``, ``Facebook/``, ... holding ``Real/`` / ``Fake/``) and the CNNDetection
    release (``train/``, ``val/``, ``test/`` holding ``0_real`` / ``1_fake``) are recognised too.
    ``root``: the folder a manifest's paths are relative to (manifests only)."""
    from . import benchmarks

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: dataset path not found")
    if format is not None or options:
        return benchmarks.load_format(format, p, **options)  # type: ignore[arg-type]
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return from_manifest(p, root)
        raise DataError(f"{p}: a dataset file must be a .csv manifest")
    if (p / MANIFEST_NAME).is_file():
        return from_manifest(p / MANIFEST_NAME, root)
    if root is not None:
        raise DataError(f"{p}: root is only for a .csv manifest (this is a folder layout)")
    if (p / "real").is_dir() and (p / "fake").is_dir():
        return from_folders(p)
    if benchmarks.looks_like_truefake(p):
        return benchmarks.from_truefake(p)
    if _has_cnndetection_dirs(p):
        if any((p / s).is_dir() for s in SPLITS) and not ((p / "0_real").is_dir() or (p / "1_fake").is_dir()):
            return benchmarks.from_cnndetection_splits(p)
        return from_cnndetection(p)
    raise DataError(
        f"{p}: unrecognised dataset layout; expected a .csv manifest (path,label[,generator,split,source]), "
        f"a folder with {MANIFEST_NAME}, real/ + fake/<generator>/, or CNNDetection 0_real/ + 1_fake/ folders"
    )


# -- selection and splitting ---------------------------------------------------------------

def _as_set(v: object) -> set | None:
    if v is None:
        return None
    if isinstance(v, (str, int)):
        return {v}
    return set(v)  # type: ignore[arg-type]


def select(samples: Sequence[Sample], split: str | Sequence[str] | None = None,
           generators: str | Sequence[str] | None = None, labels: int | Sequence[int] | None = None,
           limit: int | None = None, seed: int = 0) -> list[Sample]:
    """Filter ``samples`` (order kept). ``None`` means no filter.

    ``generators`` matches ``Sample.generator``; reals have generator ``"real"``, so
    ``generators=["real", "sd15"]`` keeps reals and one generator. ``limit`` keeps a seeded
    random subset of that size (not the first ``limit``: a sorted list would otherwise give one
    class only), still in the input order.
    """
    splits = {_normalize_split(s) for s in _as_set(split)} if split is not None else None  # type: ignore[union-attr]
    gens, labs = _as_set(generators), _as_set(labels)
    out = [s for s in samples
           if (splits is None or s.split in splits)
           and (gens is None or s.generator in gens)
           and (labs is None or s.label in labs)]
    if limit is not None:
        if int(limit) < 0:
            raise ConfigError(f"limit: must be >= 0, got {limit}")
        if int(limit) < len(out):
            keep = np.sort(np.random.default_rng(seed).permutation(len(out))[: int(limit)])
            out = [out[i] for i in keep]
    return out


def select_split(samples: Sequence[Sample], split: str | Sequence[str] | None, where: str = "dataset"
                 ) -> list[Sample]:
    """``select(samples, split=split)``, but one clear line when no sample carries a split at
    all (a manifest without a ``split`` column, or a folder layout) instead of an empty list."""
    if split is None or split == "all":
        return list(samples)
    if samples and not any(s.split for s in samples):
        raise DataError(f"{where}: split {split!r} asked for, but the dataset has no split column (no sample "
                        "carries a split); drop 'split' to use every sample, or add a split column to the manifest")
    return select(samples, split=split)


def _group_seed(seed: int, label: int, generator: str) -> list[int]:
    return [int(seed) & 0xFFFFFFFF, int(label), zlib.crc32(generator.encode())]


def _cut_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Split n items into len(fractions) counts summing to n (largest remainder)."""
    raw = [f * n for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def split_samples(samples: Sequence[Sample], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  holdout_generators: Sequence[str] = (), respect_existing: bool = True) -> dict[str, list[Sample]]:
    """Deterministic seeded train/val/test split, stratified by (label, generator).

    The input is sorted first, so the result does not depend on its order. Within each
    (label, generator) group the samples are shuffled with a seed derived from ``seed`` and the
    group, then cut by ``fractions`` (train, val, test; normalized to sum 1; counts by largest
    remainder). Samples of ``holdout_generators`` go to ``test`` only (this overrides existing
    splits). With ``respect_existing`` samples that already carry a ``split`` keep it (other
    split names than train/val/test appear as extra keys); the rest are split as above.
    Returned samples carry their split; keys ``train``, ``val``, ``test`` are always present and
    each list is sorted by path.
    """
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(not np.isfinite(f) or f < 0 for f in fr) or sum(fr) <= 0:
        raise ConfigError(f"fractions: expected three non-negative numbers (train, val, test), got {tuple(fractions)}")
    fr = [f / sum(fr) for f in fr]
    holdout = set(holdout_generators)
    if "real" in holdout:
        raise ConfigError("holdout_generators: 'real' is not a generator")
    out: dict[str, list[Sample]] = {k: [] for k in SPLITS}
    groups: dict[tuple[int, str], list[Sample]] = {}
    for s in _sort(samples):
        if s.label == FAKE and s.generator in holdout:
            out["test"].append(_with_split(s, "test"))
        elif respect_existing and s.split:
            out.setdefault(s.split, []).append(s)
        else:
            groups.setdefault((s.label, s.generator), []).append(s)
    for (label, gen), items in sorted(groups.items()):
        perm = np.random.default_rng(_group_seed(seed, label, gen)).permutation(len(items))
        n_train, n_val, _ = _cut_counts(len(items), fr)
        for rank, i in enumerate(perm):
            name = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            out[name].append(_with_split(items[i], name))
    return {k: _sort(v) for k, v in out.items()}


def _with_split(s: Sample, split: str) -> Sample:
    return s if s.split == split else replace(s, split=split)
