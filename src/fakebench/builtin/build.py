"""The built-in benchmark: real photo patches vs the same kind of photos passed through generators.

Needs nothing but an installed fakebench (plus, optionally, a folder of photographs and the
TAEF2 weights):

* **real**: the colour photographs bundled inside scikit-image that load offline (astronaut,
  chelsea, coffee, rocket, hubble_deep_field, immunohistochemistry, retina, both views of
  stereo_motorcycle) plus every image found under ``real_dirs``;
* **fake**: the same kind of photographs passed through generators with genuine generator
  fingerprints: four AutoGAN-style tiny autoencoders (one per up-sampling layer: ``tconv``,
  ``nearest``, ``bilinear``, ``pixelshuffle``; trained here, seeded, in seconds) and, when
  ``tae_weights`` is given, a TAESD-family latent autoencoder round trip (``taef2``).

**Disjoint sources.** Every photo is cut into non-overlapping *source crops* of
``2 * patch`` pixels (near-constant crops are skipped). A seeded assignment gives each crop
one split and one role: real, or fed to one generator. Crops at the same position of the two
stereo views share one assignment (they show the same scene). Each crop then yields six
``patch``-pixel patches, all with the crop's label, generator, split and ``source``: its four
quadrants, its centre, and the whole crop downscaled 2x (box filter; for fakes the
downscaled crop is what the generator sees). A generator processes the whole crop, reflect-
padded by 8 pixels so that no patch touches its zero padding. So no pixel of a real patch
ever reaches a generator that made a fake one, and splits never share a crop.

**Held-out generators.** ``tconv``, ``nearest`` and ``pixelshuffle`` appear in every split;
``bilinear`` and the TAE appear only in ``test``, to measure generalisation. Each split is
balanced real/fake (to within one source crop), and test fakes are spread evenly over all
generators.

**Output.** ``<out>/images/<split>/<generator or "real">/<n>_<source>_<view>.png`` (8-bit PNG
via :func:`fakebench.io.save_png`), ``<out>/manifest.csv`` with the header
``path,label,generator,split,source`` (paths relative to the CSV, label 0 = real, 1 = fake,
generator ``real`` for reals, source ``<photo>@y<top>_x<left>_s<size>``), and
``<out>/settings.json`` (settings, their hash, counts, per-generator PSNR, timing).

**Caching.** The settings (sizes, seed, steps, bundled photos, scikit-image version, the
listing of ``real_dirs`` with sizes and mtimes, the TAE weight files, :data:`BUILTIN_VERSION`)
are hashed. A build finding the same hash in ``<out>/settings.json`` with a complete manifest
returns at once ("reusing"). With different settings the old build is **replaced in place**
(only the files fakebench wrote: ``images/``, ``manifest.csv``, ``settings.json``), so
``<out>`` always holds the dataset last asked for; a folder holding a manifest or images that
fakebench did not write is refused with a :class:`~fakebench.errors.DataError`.

On 2 CPU cores the default build (about 1500 patches of 64x64, four autoencoders trained for
200 steps) takes roughly 20-30 seconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError, ImageLoadError
from ..io import is_image_file, load_image, save_png
from ..generators.autoencoders import UPSAMPLERS, apply_generator, train_autoencoder

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Bump when the build procedure changes: invalidates every cached build.
BUILTIN_VERSION = 1
MANIFEST = "manifest.csv"
SETTINGS = "settings.json"
IMAGES_DIR = "images"
MANIFEST_COLUMNS = ("path", "label", "generator", "split", "source")
SPLITS = ("train", "val", "test")
#: scikit-image photographs that ship with the package (no download needed).
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "stereo_motorcycle")
#: Generator families present in every split.
SEEN_GENERATORS = ("tconv", "nearest", "pixelshuffle")
#: Generator families held out of train and val (the TAE, when given, is held out too).
HELDOUT_GENERATORS = ("bilinear",)
#: Patches cut from each source crop: four quadrants, the centre, the crop downscaled 2x.
VIEWS = ("q00", "q01", "q10", "q11", "ctr", "half")
#: Reflect padding given to generators around each crop (pixels).
CONTEXT = 8


@dataclass(frozen=True)
class Photo:
    """A source photograph. ``group`` ties photos that show the same scene (stereo views)."""

    name: str
    group: str
    image: np.ndarray  # (H, W, 3) uint8


@dataclass
class Crop:
    """A source crop and its assignment."""

    photo: str
    group: str
    y: int
    x: int
    size: int
    pixels: np.ndarray  # (size, size, 3) uint8
    split: str = ""
    generator: str = ""  # "real" or a generator name

    @property
    def source(self) -> str:
        return f"{self.photo}@y{self.y}_x{self.x}_s{self.size}"

    @property
    def key(self) -> str:
        return f"{self.group}@{self.y}_{self.x}"


# ----------------------------------------------------------------------------------------------
# sources


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a[..., :3])
    return np.clip(np.rint(a[..., :3].astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def bundled_photos(names: Sequence[str] = SKIMAGE_PHOTOS) -> list[Photo]:
    """The scikit-image colour photographs (both views of ``stereo_motorcycle``); a photo that
    cannot be loaded is skipped with a warning."""
    import skimage.data

    photos: list[Photo] = []
    for name in names:
        try:
            data = getattr(skimage.data, name)()
        except Exception as exc:  # missing optional download, changed API, ...
            log.warning("skimage.data.%s: skipped (%s)", name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        if name == "stereo_motorcycle":
            left, right = data[0], data[1]
            photos += [Photo(f"{name}_left", name, _to_uint8(left)), Photo(f"{name}_right", name, _to_uint8(right))]
        else:
            arr = np.asarray(data)
            if arr.ndim != 3 or arr.shape[2] < 3:
                log.warning("skimage.data.%s: skipped (not a colour image, shape %s)", name, arr.shape)
                continue
            photos.append(Photo(name, name, _to_uint8(arr)))
    return photos


def list_real_files(real_dirs: Sequence[PathLike]) -> list[tuple[Path, Path]]:
    """(root, file) for every image file under the given folders, sorted; a missing folder
    raises :class:`ConfigError`."""
    out: list[tuple[Path, Path]] = []
    for d in real_dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise ConfigError(f"{root}: real image folder not found")
        files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))
        if not files:
            log.warning("%s: no image files found", root)
        out += [(root, p) for p in files]
    return out


def folder_photos(files: Sequence[tuple[Path, Path]]) -> Iterator[Photo]:
    """Load the listed images one at a time with :func:`fakebench.io.load_image`; bad files
    are skipped with a warning naming the file."""
    seen: set[str] = set()
    for root, p in files:
        try:
            img = load_image(p)
        except ImageLoadError as exc:
            log.warning("skipping real image %s", exc)
            continue
        base = f"{root.resolve().name or 'real'}/{p.relative_to(root).as_posix()}"
        name, i = base, 1
        while name in seen:
            i += 1
            name = f"{base}#{i}"
        seen.add(name)
        yield Photo(name, name, _to_uint8(img))


def cut_crops(photos: Iterable[Photo], size: int, min_std: float, max_per_photo: int | None = None,
              seed: int = 0) -> list[Crop]:
    """Non-overlapping ``size`` x ``size`` crops on a grid centred in each photo, skipping
    near-constant ones (standard deviation below ``min_std`` in [0, 1] units); with
    ``max_per_photo``, a seeded random subset of at most that many per photo. Photos are
    consumed one at a time (only the crops are kept)."""
    crops: list[Crop] = []
    skipped = 0
    for ph in photos:
        h, w = ph.image.shape[:2]
        ny, nx = h // size, w // size
        oy, ox = (h - ny * size) // 2, (w - nx * size) // 2
        mine: list[Crop] = []
        for i in range(ny):
            for j in range(nx):
                y, x = oy + i * size, ox + j * size
                px = ph.image[y:y + size, x:x + size]
                if float(px.std()) / 255.0 < min_std:
                    skipped += 1
                    continue
                mine.append(Crop(ph.name, ph.group, y, x, size, np.ascontiguousarray(px)))
        if max_per_photo is not None and len(mine) > max_per_photo:
            rng = np.random.default_rng([seed, zlib.crc32(ph.name.encode())])
            mine = [mine[k] for k in np.sort(rng.choice(len(mine), max_per_photo, replace=False))]
        crops += mine
    if skipped:
        log.info("skipped %d near-constant source crops", skipped)
    return crops


# ----------------------------------------------------------------------------------------------
# assignment


def assign_crops(crops: Sequence[Crop], targets: dict[str, int], generators: dict[str, Sequence[str]],
                 seed: int) -> list[Crop]:
    """Seeded assignment of crop groups (crops sharing :attr:`Crop.key`) to splits and roles.

    Groups are shuffled, then dealt to splits until each holds about ``targets[split]``
    patches (targets are scaled down proportionally when there are too few crops); inside a
    split each group goes to the class with fewer patches so far, and a fake group to the
    split's generator with the fewest patches so far. Returns the assigned crops (unused
    crops are dropped), in a deterministic order.
    """
    groups: dict[str, list[Crop]] = {}
    for c in crops:
        groups.setdefault(c.key, []).append(c)
    keys = sorted(groups)
    rng = np.random.default_rng(seed)
    order = [keys[i] for i in rng.permutation(len(keys))]
    per = len(VIEWS)
    available = sum(len(g) for g in groups.values()) * per
    want = {s: int(targets.get(s, 0)) for s in SPLITS}
    total = sum(want.values())
    if total <= 0:
        raise ConfigError("n_train + n_val + n_test must be positive")
    if available < total:
        scale = available / total
        want = {s: int(v * scale) for s, v in want.items()}
        log.info("%d patches available from %d source crops (targets %d): split sizes scaled to %s",
                 available, len(crops), total, want)
    have = {s: 0 for s in SPLITS}
    counts = {s: {"real": 0, **{g: 0 for g in generators[s]}} for s in SPLITS}
    fake_total = {s: 0 for s in SPLITS}
    out: list[Crop] = []
    # deal groups round-robin over the splits that still need patches, proportionally
    for key in order:
        open_splits = [s for s in SPLITS if have[s] < want[s]]
        if not open_splits:
            break
        split = min(open_splits, key=lambda s: (have[s] / max(want[s], 1), SPLITS.index(s)))
        members = groups[key]
        n = len(members) * per
        if counts[split]["real"] <= fake_total[split]:
            role = "real"
        else:
            role = min(generators[split], key=lambda g: (counts[split][g], list(generators[split]).index(g)))
            fake_total[split] += n
        counts[split][role] += n
        have[split] += n
        for c in members:
            c.split, c.generator = split, role
            out.append(c)
    return out


# ----------------------------------------------------------------------------------------------
# generation


def _to_tensor(batch: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255.0)


def _downscale2(x: torch.Tensor) -> torch.Tensor:
    """2x box downscaling, quantised to the 8-bit grid (as a stored image would be)."""
    return (F.avg_pool2d(x, 2) * 255.0).round_().div_(255.0)


def _views(full: torch.Tensor, half: torch.Tensor, patch: int) -> dict[str, torch.Tensor]:
    """The six patches of one crop: (3, 2p, 2p) full and (3, p, p) half-scale versions."""
    p, q = patch, patch // 2
    return {
        "q00": full[:, :p, :p], "q01": full[:, :p, p:], "q10": full[:, p:, :p], "q11": full[:, p:, p:],
        "ctr": full[:, q:q + p, q:q + p], "half": half,
    }


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", s).strip("_")[:80]


# ----------------------------------------------------------------------------------------------
# settings / cache


def _file_listing(files: Iterable[Path]) -> list[list[Any]]:
    out = []
    for p in files:
        st = p.stat()
        out.append([str(p.resolve()), int(st.st_size), int(st.st_mtime_ns)])
    return out


def settings_hash(settings: dict[str, Any]) -> str:
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _read_settings(out: Path) -> dict[str, Any] | None:
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


def _clear_previous(out: Path) -> None:
    """Remove what an earlier build wrote (only our own files)."""
    if (out / IMAGES_DIR).is_dir():
        shutil.rmtree(out / IMAGES_DIR)
    for name in (MANIFEST, MANIFEST + ".tmp", SETTINGS + ".tmp"):
        if (out / name).exists():
            (out / name).unlink()


# ----------------------------------------------------------------------------------------------
# the builder


def _logging_shows_info() -> bool:
    """Whether an INFO record of this module's logger reaches a configured handler."""
    lg: logging.Logger | None = log
    if not log.isEnabledFor(logging.INFO):
        return False
    while lg is not None:
        if any(h.level <= logging.INFO for h in lg.handlers):
            return True
        if not lg.propagate:
            break
        lg = lg.parent
    return False


def _say(msg: str, progress: bool) -> None:
    """Log at INFO; with ``progress`` also print to stderr unless logging already shows it."""
    log.info(msg)
    if progress and not _logging_shows_info():
        print(msg, file=sys.stderr, flush=True)


def build_builtin(
    out: PathLike,
    *,
    real_dirs: Sequence[PathLike] = (),
    tae_weights: PathLike | None = None,
    patch: int = 64,
    seed: int = 0,
    n_train: int = 1200,
    n_val: int = 300,
    n_test: int = 400,
    train_steps: int = 200,
    include_bundled: bool = True,
    max_real_files: int = 100,
    max_crops_per_photo: int = 64,
    min_std: float = 0.02,
    progress: bool = True,
) -> Path:
    """Build (or reuse) the built-in benchmark in ``out``; returns the folder holding
    ``manifest.csv`` (``out`` itself).

    Args:
        out: dataset folder (created).
        real_dirs: extra folders of real photographs (searched recursively; files that fail to
            decode are skipped with a warning naming them).
        tae_weights: folder with a TAESD-family encoder/decoder pair (e.g. ``taef2``): adds the
            latent-autoencoder round trip as a held-out generator named after the weights.
        patch: patch side in pixels (multiple of 8, >= 16); source crops are twice as large.
        seed: seeds the crop assignment and the autoencoders' training.
        n_train, n_val, n_test: target patch counts per split (each balanced real/fake);
            scaled down proportionally when the photos yield fewer patches (the bundled
            photos alone give about 1480 patches of 64 px).
        train_steps: Adam steps for each tiny autoencoder (batch 8, 32 px crops).
        include_bundled: use the scikit-image photographs (set False to use only real_dirs).
        max_real_files: at most this many files from ``real_dirs`` (a seeded subset beyond).
        max_crops_per_photo: at most this many source crops from each ``real_dirs`` photo (a
            seeded subset; bounds memory for large photographs; bundled photos are used whole).
        min_std: source crops whose pixel standard deviation is below this are skipped.
        progress: progress bars and log lines.

    Raises:
        ConfigError: invalid sizes, missing real folder, or no usable photograph.
        CheckpointError: ``tae_weights`` given but not loadable.
        DataError: ``out`` holds a manifest or images not written by this builder.
    """
    t0 = time.time()
    out = Path(out).expanduser()
    if patch < 16 or patch % 8:
        raise ConfigError(f"patch must be a multiple of 8 and at least 16, got {patch}")
    for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("train_steps", train_steps)):
        if v < 0:
            raise ConfigError(f"{name} must be >= 0, got {v}")
    if max_crops_per_photo < 1 or max_real_files < 0:
        raise ConfigError("max_crops_per_photo must be >= 1 and max_real_files >= 0")
    files = list_real_files(real_dirs)
    if len(files) > max_real_files:
        pick = np.sort(np.random.default_rng(seed).choice(len(files), max_real_files, replace=False))
        log.info("using %d of %d real image files (max_real_files)", max_real_files, len(files))
        files = [files[i] for i in pick]
    tae_dir: Path | None = None
    tae_listing: list[list[Any]] | None = None
    if tae_weights is not None:
        from ..generators.tae import find_weight_files

        tae_dir = Path(tae_weights).expanduser()
        enc, dec, _ = find_weight_files(tae_dir)
        tae_listing = _file_listing([enc, dec])
    import skimage

    settings: dict[str, Any] = {
        "version": BUILTIN_VERSION,
        "patch": patch, "seed": seed, "n_train": n_train, "n_val": n_val, "n_test": n_test,
        "train_steps": train_steps, "min_std": min_std, "max_real_files": max_real_files,
        "max_crops_per_photo": max_crops_per_photo,
        "bundled": list(SKIMAGE_PHOTOS) if include_bundled else [],
        "skimage_version": skimage.__version__ if include_bundled else None,
        "real_dirs": [str(Path(d).expanduser().resolve()) for d in real_dirs],
        "real_files": _file_listing(p for _, p in files),
        "tae_weights": tae_listing,
    }
    digest = settings_hash(settings)

    prev = _read_settings(out)
    if prev is not None and prev.get("hash") == digest and prev.get("complete") and \
            _manifest_complete(out, prev.get("rows")):
        _say(f"reusing built-in benchmark in {out} (settings {digest})", progress)
        return out
    if prev is None and ((out / MANIFEST).exists() or (out / IMAGES_DIR).exists()):
        raise DataError(f"{out}: holds a manifest or images not written by the built-in builder; "
                        "choose another --out")
    if prev is not None:
        log.info("settings changed (%s -> %s): rebuilding %s", prev.get("hash"), digest, out)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    _write_json(out / SETTINGS, {"fakebench_builtin": BUILTIN_VERSION, "hash": digest,
                                 "settings": settings, "complete": False})

    # 1. sources
    bundled = bundled_photos() if include_bundled else []
    crops = cut_crops(bundled, 2 * patch, min_std)
    n_photos = len(bundled)
    del bundled
    before = len(crops)
    crops += cut_crops(folder_photos(files), 2 * patch, min_std, max_per_photo=max_crops_per_photo, seed=seed)
    n_photos += len({c.photo for c in crops[before:]})
    if not crops:
        raise ConfigError(f"no usable source crop of {2 * patch} px: no readable photograph (bundled photos "
                          "disabled or failed, real_dirs empty or unreadable), or all too small or flat")

    # 2. generators per split
    tae = None
    if tae_dir is not None:
        from ..generators.tae import TinyAutoencoder

        tae = TinyAutoencoder.from_dir(tae_dir)
        tname = _safe(tae.name) or "tae"
        if tname in UPSAMPLERS or tname == "real":
            tname = f"tae-{tname}"
        tae.name = tname
    heldout = list(HELDOUT_GENERATORS) + ([tae.name] if tae is not None else [])
    gens = {"train": list(SEEN_GENERATORS), "val": list(SEEN_GENERATORS), "test": list(SEEN_GENERATORS) + heldout}
    assigned = assign_crops(crops, {"train": n_train, "val": n_val, "test": n_test}, gens, seed)
    _say(f"built-in benchmark: {n_photos} photos, {len(crops)} source crops of {2 * patch} px, "
        f"{len(assigned)} used; generators {', '.join(gens['test'])} (held out: {', '.join(heldout)})", progress)

    # 3. train the tiny autoencoders on the train split's generator crops
    train_imgs = [c.pixels.astype(np.float32) / 255.0 for c in assigned if c.split == "train" and c.generator != "real"]
    if not train_imgs:
        train_imgs = [c.pixels.astype(np.float32) / 255.0 for c in assigned if c.generator != "real"] or \
                     [c.pixels.astype(np.float32) / 255.0 for c in crops]
    models: dict[str, Callable[..., Any]] = {}
    needed = {c.generator for c in assigned} - {"real"}
    for k, up in enumerate(UPSAMPLERS):
        if up not in needed:
            continue
        t1 = time.time()
        models[up] = train_autoencoder(train_imgs, up, seed=seed * 1009 + k, steps=train_steps,
                                       patch=min(32, 2 * patch), progress=progress)
        log.info("trained %s autoencoder in %.1f s (final L1 %.4f)", up, time.time() - t1,
                 float(np.mean(models[up].history[-10:])) if models[up].history else float("nan"))  # type: ignore[attr-defined]
    if tae is not None:
        models[tae.name] = tae

    # 4. generate and write
    rows: list[tuple[str, int, str, str, str]] = []
    psnr: dict[str, list[float]] = {}
    from ..progress import progress_bar

    bar = progress_bar(len(assigned) * len(VIEWS), "writing patches", enabled=progress, unit="patch")
    by_gen: dict[str, list[tuple[int, Crop]]] = {}
    for i, c in enumerate(assigned):
        by_gen.setdefault(c.generator, []).append((i, c))
    chunk = 32
    for gen_name in sorted(by_gen):
        items = by_gen[gen_name]
        for s in range(0, len(items), chunk):
            part = items[s:s + chunk]
            full = _to_tensor([c.pixels for _, c in part])
            half = _downscale2(full)
            if gen_name != "real":
                with torch.no_grad():
                    gfull = apply_generator(models[gen_name], full, context=CONTEXT)
                    ghalf = apply_generator(models[gen_name], half, context=CONTEXT)
                psnr.setdefault(gen_name, []).append(_psnr((gfull * 255).round() / 255, full))
                full, half = gfull, ghalf
            for j, (idx, c) in enumerate(part):
                label = 0 if gen_name == "real" else 1
                for view, img in _views(full[j], half[j], patch).items():
                    rel = Path(IMAGES_DIR) / c.split / gen_name / f"{idx:05d}_{_safe(c.source)}_{view}.png"
                    save_png(out / rel, img.numpy())
                    rows.append((rel.as_posix(), label, gen_name, c.split, c.source))
                bar.update(len(VIEWS))
    bar.close()

    rows.sort(key=lambda r: (SPLITS.index(r[3]), r[1], r[2], r[0]))
    tmp = out / (MANIFEST + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(MANIFEST_COLUMNS)
        w.writerows(rows)
    os.replace(tmp, out / MANIFEST)

    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for r in rows:
        counts[r[3]][r[2]] = counts[r[3]].get(r[2], 0) + 1
    seconds = time.time() - t0
    _write_json(out / SETTINGS, {
        "fakebench_builtin": BUILTIN_VERSION, "hash": digest, "settings": settings, "complete": True,
        "rows": len(rows), "counts": counts, "heldout_generators": heldout,
        "psnr_db": {g: round(float(np.mean(v)), 2) for g, v in sorted(psnr.items())},
        "seconds": round(seconds, 1),
    })
    _say(f"built-in benchmark ready in {out} ({len(rows)} patches: " +
         ", ".join(f"{s} {sum(counts[s].values())}" for s in SPLITS) + f"; {seconds:.1f} s)", progress)
    return out
