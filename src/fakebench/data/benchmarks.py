"""Loaders for the public benchmarks in their official, released layouts.

- **TrueFake** (Dell'Anna, Montibeller, Boato, IJCNN 2025; MMLab-unitn/TrueFake-IJCNN25,
  ``detector/README.md`` and ``detector/dataset.py``):
  ``ROOT/<Share>/<Real|Fake>/<Generator>/<Subset>/...`` with shares ``PreSocial``,
  ``Facebook``, ``Telegram``, ``Twitter``; data IDs ``gen:share`` joined by ``&``; the official
  ``split.json`` (``{"train": [...], "val": [...], "test": [...]}`` of ``<gen>/<sub>/<stem>``).
  :func:`from_truefake`.
- **GenImage** (Zhu et al., NeurIPS 2023 D&B): ``ROOT/<generator>[/<inner>]/{train,val}/{ai,nature}``.
  :func:`from_genimage`.
- **Synthbuster** (Bammey, IEEE OJSP 2023): one folder per generator (``dalle2``, ``dalle3``,
  ``firefly``, ``glide``, ``midjourney-v5``, ``stable-diffusion-*``), the RAISE-1k reals in a
  folder of their own. :func:`from_synthbuster`.
- **CNNDetection** train / val / test (Wang et al., CVPR 2020): ``ROOT/{train,val}/<class>/{0_real,1_fake}``
  (ProGAN, 20 classes) next to ``ROOT/test/<generator>/[<class>/]{0_real,1_fake}``.
  :func:`from_cnndetection_splits`.

Every loader returns :class:`~fakebench.data.loaders.Sample` lists sorted by path, like the
other loaders, and lists files only (decoding happens in the pipeline).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .loaders import (
    FAKE,
    REAL,
    PathLike,
    Sample,
    _abs,
    list_image_files,
    _require_dir,
    _sort,
    from_cnndetection,
)

log = logging.getLogger(__name__)

# -- TrueFake -------------------------------------------------------------------------------

#: data-ID generator keys -> folder names (detector/README.md; dataset.py names the second real
#: set ``realFORLAB`` / ``FORLAB`` where the README says ``realRAISE`` / ``RAISE``: both work)
TRUEFAKE_GENERATORS: dict[str, str] = {
    "gan1": "StyleGAN", "gan2": "StyleGAN2", "gan3": "StyleGAN3",
    "sd15": "StableDiffusion1.5", "sd2": "StableDiffusion2", "sd3": "StableDiffusion3", "sdXL": "StableDiffusionXL",
    "flux": "FLUX.1", "realFFHQ": "FFHQ", "realFORLAB": "FORLAB", "realRAISE": "RAISE",
}
#: data-ID share keys -> folder names
TRUEFAKE_SHARES: dict[str, str] = {"pre": "PreSocial", "fb": "Facebook", "tl": "Telegram", "tw": "Twitter"}
#: the second real set has two names (README: RAISE, dataset.py: FORLAB): one of them suffices
_SAME_SET = {"FORLAB": "RAISE", "RAISE": "FORLAB"}
#: short names used in reports (the platform names of :mod:`fakebench.data.sharing`)
TRUEFAKE_SHARE_PLATFORM = {"PreSocial": "", "Facebook": "facebook", "Telegram": "telegram", "Twitter": "x"}


def _gen_union(key: str) -> list[str]:
    if key == "all":
        return list(dict.fromkeys(TRUEFAKE_GENERATORS.values()))
    if key in ("gan", "sd", "real"):  # every base key containing the word, as the README says
        return list(dict.fromkeys(v for k, v in TRUEFAKE_GENERATORS.items() if key in k))
    if key in TRUEFAKE_GENERATORS:
        return [TRUEFAKE_GENERATORS[key]]
    known = sorted(TRUEFAKE_GENERATORS) + ["all", "gan", "sd", "real"]
    raise ConfigError(f"ids: unknown TrueFake generator key {key!r} (known: {', '.join(known)})")


def _share_union(key: str) -> list[str]:
    if key == "all":
        return list(TRUEFAKE_SHARES.values())
    if key == "shr":
        return [TRUEFAKE_SHARES[k] for k in ("fb", "tl", "tw")]
    if key in TRUEFAKE_SHARES:
        return [TRUEFAKE_SHARES[key]]
    raise ConfigError(f"ids: unknown TrueFake share key {key!r} (known: {', '.join(list(TRUEFAKE_SHARES) + ['all', 'shr'])})")


def parse_truefake_ids(ids: str) -> list[tuple[str, str, str]]:
    """``"gan2:pre&sdXL:fb&real:pre"`` -> ``[(id, share folder, generator folder), ...]`` in order,
    duplicates removed. Raises ConfigError naming a malformed ID or an unknown key."""
    if not isinstance(ids, str) or not ids.strip():
        raise ConfigError(f"ids: expected TrueFake data IDs such as 'gan2:pre&real:pre', got {ids!r}")
    out: dict[tuple[str, str], str] = {}
    for part in ids.split("&"):
        part = part.strip()
        if part.count(":") != 1:
            raise ConfigError(f"ids: {part!r} is not a 'generator:share' pair (e.g. 'gan2:pre')")
        g, s = (p.strip() for p in part.split(":"))
        for share in _share_union(s):
            for gen in _gen_union(g):
                out.setdefault((share, gen), part)
    return [(i, share, gen) for (share, gen), i in out.items()]


def read_truefake_split(split_file: PathLike) -> dict[str, str]:
    """The official ``split.json`` as ``{"<gen>/<sub>/<stem>": split}``."""
    p = Path(split_file)
    if not p.is_file():
        raise DataError(f"{p}: split file not found")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: not a JSON split file ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise DataError(f"{p}: expected {{\"train\": [...], \"val\": [...], \"test\": [...]}} of '<gen>/<sub>/<stem>'")
    out: dict[str, str] = {}
    for split, keys in raw.items():
        for k in keys:
            out.setdefault(str(k), str(split))
    return out


def from_truefake(root: PathLike, ids: str = "all:all", split_file: PathLike | None = None,
                  split: str | None = None) -> list[Sample]:
    """TrueFake as released: ``root/<Share>/<Real|Fake>/<Generator>/<Subset>/...``.

    Like the official loader, every leaf folder (one without sub-folders) below a requested
    share is read; its path gives (label folder, generator, subset); images of a requested
    (share, generator) pair are kept (``.png``, ``.jpg``, ``.jpeg``, like the official list;
    fakebench also takes the other image extensions it decodes). Label 1 for ``Fake``, 0 else.

    Each sample carries ``share`` (the share folder: ``PreSocial``, ``Facebook``, ...),
    ``generator`` (the generator folder for fakes, ``"real"`` for reals, as every loader),
    ``source`` (``<Generator>/<Subset>``: ``FFHQ/...`` tells the real sets apart) and, with
    ``split_file``, ``split``: the split listing ``<gen>/<sub>/<stem>``. With ``split`` only
    the samples listed in that split are returned (the official behaviour); without it
    unlisted samples keep an empty split.

    A requested (share, generator) pair with no folder is logged as a warning that names the
    missing folders (the official loader skips them silently).
    """
    r = _require_dir(root)
    pairs = parse_truefake_ids(ids)
    membership = read_truefake_split(split_file) if split_file is not None else None
    if split is not None and membership is None:
        raise ConfigError("split: selecting a TrueFake split needs split_file (the official split.json)")
    wanted: dict[str, set[str]] = {}
    for _, share, gen in pairs:
        wanted.setdefault(share, set()).add(gen)
    found: set[tuple[str, str]] = set()
    samples: list[Sample] = []
    for share, gens in wanted.items():
        base = r / share
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if dirnames:  # only leaf folders, as the official loader
                continue
            parts = Path(dirpath).relative_to(base).parts
            if len(parts) < 2:
                continue
            label_dir, gen = parts[0], parts[1]
            sub = parts[2] if len(parts) > 2 else ""
            if gen not in gens:
                continue
            found.add((share, gen))
            label = FAKE if label_dir == "Fake" else REAL
            for p in list_image_files(Path(dirpath), base):
                if p.parent != Path(dirpath):
                    continue
                key = f"{gen}/{sub}/{p.stem}"
                sp = membership.get(key, "") if membership is not None else ""
                if split is not None and sp != split:
                    continue
                samples.append(Sample(_abs(p), label, gen if label == FAKE else "real", f"{gen}/{sub}" if sub else gen,
                                      sp, share))
    absent_shares = {share for share in wanted if not (r / share).is_dir()}
    missing = [f"{share}/ ({ids_of})" for share in wanted if share in absent_shares
               for ids_of in ["&".join(dict.fromkeys(i for i, sh, _ in pairs if sh == share))]]
    missing += [f"{share}/{'Real' if gen in _gen_union('real') else 'Fake'}/{gen} ({i})"
                for i, share, gen in pairs
                if share not in absent_shares and (share, gen) not in found
                and (share, _SAME_SET.get(gen, gen)) not in found]
    if missing:
        log.warning("%s: TrueFake sub-folder(s) not found, skipped: %s", r, ", ".join(missing))
    return _sort(samples)


#: fakebench sharing presets (:mod:`fakebench.data.sharing`) -> TrueFake share folders
PLATFORM_SHARE = {"facebook": "Facebook", "telegram": "Telegram", "x": "Twitter", "twitter": "Twitter"}


def shared_copies(samples: list[Sample], share: str) -> dict[str, Sample]:
    """``{path of a PreSocial sample: its copy shared on `share`}`` for every image present in
    both (same label, ``<gen>/<sub>`` and file stem: TrueFake's copies keep the original's name)."""
    def key(s: Sample) -> tuple[int, str, str]:
        return (s.label, s.source, Path(s.path).stem)

    copies = {key(s): s for s in samples if s.share == share}
    return {s.path: copies[key(s)] for s in samples if s.share == "PreSocial" and key(s) in copies}


def compare_to_copy(simulated: Any, original: Any, copy_path: str) -> tuple[float, float, bool]:
    """How close a simulated share (3, H, W) is to the real shared copy on disk: (PSNR of the
    simulation vs the copy, PSNR of the unshared original vs the copy, whether the simulation
    has the copy's size). Sizes that differ are compared after a bilinear resize to the copy's
    size (the platform resized differently from the preset)."""
    import numpy as np
    import torch

    from ..io import load_image
    from .degrade import resize_to

    ref = torch.from_numpy(np.ascontiguousarray(load_image(copy_path).transpose(2, 0, 1))).float()
    size = tuple(ref.shape[-2:])

    def psnr(x: Any) -> float:
        x = x.detach().float().cpu()
        if tuple(x.shape[-2:]) != size:
            x = resize_to(x.unsqueeze(0), size)[0]
        mse = float(torch.mean((x.clamp(0, 1) - ref) ** 2))
        return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))

    return psnr(simulated), psnr(original), tuple(simulated.shape[-2:]) == size


def looks_like_truefake(root: Path) -> bool:
    """A folder holding at least one TrueFake share folder with ``Real/`` or ``Fake/`` inside."""
    return any((root / s / lab).is_dir() for s in TRUEFAKE_SHARES.values() for lab in ("Real", "Fake"))


# -- GenImage -------------------------------------------------------------------------------

def from_genimage(root: PathLike) -> list[Sample]:
    """GenImage: ``root/<generator>/.../{train,val}/{ai,nature}/`` (``ai`` = synthetic).

    ``generator`` is the first folder below ``root`` (``stable_diffusion_v_1_4``, ``BigGAN``, ...)
    for fakes, ``"real"`` for the ImageNet ``nature`` images; ``split`` is ``train`` or ``val``
    (GenImage evaluates on ``val``); ``source`` is ``<generator>``. A tree without any
    ``{train,val}/{ai,nature}`` folder raises DataError naming the root."""
    r = _require_dir(root)
    samples: list[Sample] = []
    for dirpath, dirnames, _ in os.walk(r):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        if here.name not in ("train", "val") or here == r:
            continue
        rel = here.relative_to(r).parts
        gen = rel[0] if len(rel) > 1 else Path(_abs(r)).name
        for cls, label in (("ai", FAKE), ("nature", REAL)):
            if cls in dirnames:
                samples += [Sample(_abs(p), label, gen if label == FAKE else "real", gen, here.name)
                            for p in list_image_files(here / cls, r)]
        dirnames[:] = []  # the class folders were listed above
    if not samples and not any(p.is_dir() for p in r.glob("**/train/ai")) and not any(r.glob("**/val/ai")):
        raise DataError(f"{r}: no <generator>/{{train,val}}/{{ai,nature}} folders found (GenImage layout)")
    return _sort(samples)


# -- Synthbuster ----------------------------------------------------------------------------

#: the generator folders of the Synthbuster release
SYNTHBUSTER_GENERATORS = ("dalle2", "dalle3", "firefly", "glide", "midjourney-v5", "stable-diffusion-1-3",
                          "stable-diffusion-1-4", "stable-diffusion-2", "stable-diffusion-xl")
_RAISE_NAMES = ("RAISE", "raise", "RAISE-1k", "raise-1k", "real")


def from_synthbuster(root: PathLike, real_dir: PathLike | None = None) -> list[Sample]:
    """Synthbuster: ``root/<generator>/*`` (label 1, one folder per generator) and the RAISE-1k
    reals (label 0) from ``real_dir``, or from a folder ``RAISE``/``raise``/``RAISE-1k``/``real``
    inside ``root`` (Synthbuster distributes the RAISE images separately). Every other
    sub-folder of ``root`` is a generator. No reals found: DataError naming where it looked."""
    r = _require_dir(root)
    real = Path(real_dir) if real_dir is not None else next((r / n for n in _RAISE_NAMES if (r / n).is_dir()), None)
    if real is None or not real.is_dir():
        where = real if real is not None else " or ".join(str(r / n) for n in _RAISE_NAMES[:2])
        raise DataError(f"{r}: Synthbuster reals not found ({where}); pass real_dir= the RAISE-1k folder")
    samples = [Sample(_abs(p), REAL, "real", "RAISE") for p in list_image_files(real)]
    real_abs = _abs(real)
    for d in sorted(p for p in r.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _abs(d) == real_abs:
            continue
        samples += [Sample(_abs(p), FAKE, d.name, d.name) for p in list_image_files(d, r)]
    return _sort(samples)


# -- CNNDetection train / val / test ----------------------------------------------------------

def from_cnndetection_splits(root: PathLike) -> list[Sample]:
    """CNNDetection as distributed: ``root/train/<class>/{0_real,1_fake}``,
    ``root/val/<class>/...`` (ProGAN, generator ``progan``) and
    ``root/test/<generator>/[<class>/]{0_real,1_fake}`` (generator = the folder below ``test``).
    ``split`` is the top folder; ``source`` the class (train/val) or ``<generator>/<class>``
    (test). Missing top folders are fine; none of them: DataError."""
    r = _require_dir(root)
    samples: list[Sample] = []
    present = [s for s in ("train", "val", "test") if (r / s).is_dir()]
    if not present:
        raise DataError(f"{r}: expected train/, val/ or test/ folders (CNNDetection release layout)")
    for split in present:
        for s in from_cnndetection(r / split):
            gen = s.generator if split == "test" or s.label == REAL else "progan"
            samples.append(Sample(s.path, s.label, gen, s.source, split))
    return _sort(samples)


# -- dispatch -------------------------------------------------------------------------------

#: ``format:`` names and their loaders (options after the root)
FORMATS: dict[str, Any] = {
    "truefake": from_truefake,
    "genimage": from_genimage,
    "synthbuster": from_synthbuster,
    "cnndetection": from_cnndetection_splits,
}


def check_format_options(fmt: str | None, options: dict[str, Any], where: str = "dataset") -> None:
    """One ConfigError line for an unknown format or an option its loader does not take."""
    import inspect

    if fmt is None:
        raise ConfigError(f"{where}: option(s) {sorted(options)} need format: (one of {', '.join(sorted(FORMATS))})")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}.format: unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))}; none for "
                          "manifests and plain folders)")
    allowed = set(inspect.signature(FORMATS[fmt]).parameters) - {"root"}
    bad = sorted(set(options) - allowed)
    if bad:
        raise ConfigError(f"{where}: option(s) {bad} do not apply to format {fmt!r} (it takes {sorted(allowed) or 'none'})")


def load_format(fmt: str, root: PathLike, **options: Any) -> list[Sample]:
    """Load ``root`` with the loader of ``fmt`` (see :data:`FORMATS`)."""
    check_format_options(fmt, options)
    return FORMATS[fmt](root, **options)
