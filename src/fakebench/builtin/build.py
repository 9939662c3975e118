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

**Modules.** :mod:`~fakebench.builtin.sources` (photos, crops, assignment),
:mod:`~fakebench.builtin.cache` (settings, hash, ``settings.json``, clearing),
:mod:`~fakebench.builtin.generate` (autoencoders, patches, manifest) and
:mod:`~fakebench.builtin.layout` (names); this module runs them in order.

On 2 CPU cores the default build (about 1500 patches of 64x64, four autoencoders trained for
200 steps) takes roughly 20-30 seconds.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, DataError
from .cache import (
    builtin_settings,
    foreign,
    read_settings,
    reusable,
    settings_hash,
    start_build,
    tae_weight_files,
    write_settings,
)
from .generate import (
    PostProcess,
    Row,
    count_rows,
    load_tae,
    psnr_summary,
    split_generators,
    train_autoencoders,
    write_manifest,
    write_patches,
)
from .layout import (
    BUILTIN_VERSION,
    CONTEXT,
    HELDOUT_GENERATORS,
    IMAGES_DIR,
    MANIFEST,
    MANIFEST_COLUMNS,
    SEEN_GENERATORS,
    SETTINGS,
    SPLITS,
    VIEWS,
    PathLike,
)
from .sources import (
    SKIMAGE_PHOTOS,
    Crop,
    Photo,
    assign_crops,
    bundled_photos,
    cut_crops,
    folder_photos,
    list_real_files,
    pick_real_files,
    source_crops,
)

#: the post-processing every patch of the default build goes through (real and synthetic alike)
DEFAULT_POSTPROCESS = PostProcess()

__all__ = [
    "BUILTIN_VERSION", "CONTEXT", "HELDOUT_GENERATORS", "IMAGES_DIR", "MANIFEST", "MANIFEST_COLUMNS", "SEEN_GENERATORS",
    "SETTINGS", "SKIMAGE_PHOTOS", "SPLITS", "VIEWS", "Crop", "PathLike", "Photo", "assign_crops", "build_builtin",
    "bundled_photos", "cut_crops", "folder_photos", "list_real_files", "settings_hash",
]

log = logging.getLogger(__name__)


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


def _check_options(patch: int, counts: dict[str, int], max_crops_per_photo: int, max_real_files: int) -> None:
    if patch < 16 or patch % 8:
        raise ConfigError(f"patch must be a multiple of 8 and at least 16, got {patch}")
    for name, v in counts.items():
        if v < 0:
            raise ConfigError(f"{name} must be >= 0, got {v}")
    if max_crops_per_photo < 1 or max_real_files < 0:
        raise ConfigError("max_crops_per_photo must be >= 1 and max_real_files >= 0")


def _reuse_or_start(out: Path, digest: str, settings: dict[str, Any], progress: bool) -> bool:
    """True when ``out`` already holds this build (reused); otherwise clear ``out`` for a new
    build and return False. Refuses a folder the builder did not write."""
    prev = read_settings(out)
    if reusable(out, prev, digest):
        _say(f"reusing built-in benchmark in {out} (settings {digest})", progress)
        return True
    if foreign(out, prev):
        raise DataError(f"{out}: holds a manifest or images not written by the built-in builder; "
                        "choose another --out")
    if prev is not None:
        log.info("settings changed (%s -> %s): rebuilding %s", prev.get("hash"), digest, out)
    start_build(out, digest, settings)
    return False


def _finish(out: Path, digest: str, settings: dict[str, Any], rows: list[Row], heldout: list[str],
            psnr: dict[str, list[float]], t0: float, progress: bool) -> None:
    """Record the build as complete (counts, held-out generators, PSNR, time) and say so."""
    counts = count_rows(rows)
    seconds = time.time() - t0
    write_settings(out, {
        "fakebench_builtin": BUILTIN_VERSION, "hash": digest, "settings": settings, "complete": True,
        "rows": len(rows), "counts": counts, "heldout_generators": heldout,
        "psnr_db": psnr_summary(psnr),
        "seconds": round(seconds, 1),
    })
    _say(f"built-in benchmark ready in {out} ({len(rows)} patches: " +
         ", ".join(f"{s} {sum(counts[s].values())}" for s in SPLITS) + f"; {seconds:.1f} s)", progress)


def build_builtin(
    out: PathLike,
    *,
    real_dirs: Sequence[PathLike] = (),
    tae_weights: PathLike | None | bool = None,
    postprocess: PostProcess | None = DEFAULT_POSTPROCESS,
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
            ``None`` (default): the TAEF2 weights packaged with fakebench; ``False``: no TAE.
        postprocess: the random resize / JPEG round trip applied to EVERY patch, real and
            synthetic alike (:class:`~fakebench.builtin.generate.PostProcess`), so that format
            and resampling are no shortcut; ``None`` writes the patches untouched.
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
    _check_options(patch, {"n_train": n_train, "n_val": n_val, "n_test": n_test, "train_steps": train_steps},
                   max_crops_per_photo, max_real_files)
    files = pick_real_files(list_real_files(real_dirs), max_real_files, seed)
    tae_dir, tae_listing = tae_weight_files(tae_weights)
    settings = builtin_settings(patch=patch, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test,
                                train_steps=train_steps, min_std=min_std, max_real_files=max_real_files,
                                max_crops_per_photo=max_crops_per_photo, include_bundled=include_bundled,
                                real_dirs=real_dirs, files=files, tae_listing=tae_listing,
                                postprocess=asdict(postprocess) if postprocess is not None else None)
    digest = settings_hash(settings)
    if _reuse_or_start(out, digest, settings, progress):
        return out

    crops, n_photos = source_crops(include_bundled, files, patch, min_std, max_crops_per_photo, seed)
    tae = load_tae(tae_dir) if tae_dir is not None else None
    gens, heldout = split_generators(tae)
    assigned = assign_crops(crops, {"train": n_train, "val": n_val, "test": n_test}, gens, seed)
    _say(f"built-in benchmark: {n_photos} photos, {len(crops)} source crops of {2 * patch} px, "
         f"{len(assigned)} used; generators {', '.join(gens['test'])} (held out: {', '.join(heldout)})", progress)
    models = train_autoencoders(assigned, crops, patch=patch, seed=seed, steps=train_steps, progress=progress)
    if tae is not None:
        models[tae.name] = tae
    rows, psnr = write_patches(out, assigned, models, patch, progress, postprocess, seed)
    write_manifest(out, rows)
    _finish(out, digest, settings, rows, heldout, psnr, t0, progress)
    return out
