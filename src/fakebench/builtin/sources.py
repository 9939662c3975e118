"""Where the built-in benchmark's pixels come from: the bundled scikit-image photographs and
folders of real photos (:class:`Photo`), cut into non-overlapping source crops (:class:`Crop`),
and the seeded assignment of each crop to one split and one role (real, or fed to one
generator). See :mod:`fakebench.builtin.build` for the disjoint-source rule."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..data import list_image_files
from ..errors import ConfigError, ImageLoadError
from ..io import load_image
from .layout import SPLITS, VIEWS, PathLike

log = logging.getLogger(__name__)

#: scikit-image photographs that ship with the package (no download needed).
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "stereo_motorcycle")


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
        files = list_image_files(root)
        if not files:
            log.warning("%s: no image files found", root)
        out += [(root, p) for p in files]
    return out


def pick_real_files(files: list[tuple[Path, Path]], max_real_files: int, seed: int) -> list[tuple[Path, Path]]:
    """At most ``max_real_files`` of the listed files: a seeded subset, in listing order."""
    if len(files) <= max_real_files:
        return files
    pick = np.sort(np.random.default_rng(seed).choice(len(files), max_real_files, replace=False))
    log.info("using %d of %d real image files (max_real_files)", max_real_files, len(files))
    return [files[i] for i in pick]


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


def source_crops(include_bundled: bool, files: Sequence[tuple[Path, Path]], patch: int, min_std: float,
                 max_crops_per_photo: int, seed: int) -> tuple[list[Crop], int]:
    """Source crops of ``2 * patch`` pixels from the bundled photos (whole) and the listed real
    files (at most ``max_crops_per_photo`` each), and the number of photos they came from.
    Raises :class:`ConfigError` when there is none."""
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
    return crops, n_photos


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
