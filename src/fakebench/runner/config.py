"""Experiment configuration (YAML): parsed and fully validated before any work starts.

Example::

    run: demo                      # run id in the store (default: the file's stem)
    output: results/               # everything is written under here (default: <stem>-results)
    seed: 0
    batch_size: 32                 # images per chunk: the unit of resumable work
    gallery: 3                     # thumbnails kept per (detector, attack, chunk): most + least affected (0: none)
    dataset: {path: data/manifest.csv, split: test, limit: 400}
    detectors:
      - {name: cnnspot, checkpoint: runs/cnnspot}            # a fakebench checkpoint folder
      - {name: official, detector: cnnspot, options: {pretrained: blur_jpg_prob0.5.pth}}
    attacks:
      - {attack: jpeg, options: {quality: 75}}
      - {name: pgd-evade, attack: pgd, options: {direction: evade, steps: 10},
         grid: {eps: [1/255, 2/255, 4/255]}}

Relative paths are resolved against the YAML file's folder. Numbers may be written as
fractions (``4/255``). Every error is one line naming the field.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


#: most values a config may hold, and how deep it may nest (YAML aliases can make a small
#: file expand without bound, or refer to itself)
MAX_CONFIG_NODES = 100_000
MAX_CONFIG_DEPTH = 32


def parse_value(v: Any, where: str = "config", _budget: list[int] | None = None, _depth: int = 0) -> Any:
    """Turn ``"4/255"`` into 4/255 (float), recursively through lists and dicts. A zero
    denominator (``"8/0"``) is one ConfigError line naming the field (``where``); so is a config
    that expands (through YAML aliases) beyond :data:`MAX_CONFIG_NODES` values or
    :data:`MAX_CONFIG_DEPTH` levels."""
    budget = [MAX_CONFIG_NODES] if _budget is None else _budget
    budget[0] -= 1
    if budget[0] < 0 or _depth > MAX_CONFIG_DEPTH:
        raise ConfigError(f"{where[:120]}: the config expands beyond {MAX_CONFIG_NODES} values or "
                          f"{MAX_CONFIG_DEPTH} levels (recursive or nested YAML aliases?)")
    if isinstance(v, str):
        m = _FRACTION.match(v)
        if m:
            den = float(m.group(2))
            if den == 0:
                raise ConfigError(f"{where}: {v!r} divides by zero")
            return float(m.group(1)) / den
        return v
    if isinstance(v, list):
        return [parse_value(x, f"{where}[{i}]", budget, _depth + 1) for i, x in enumerate(v)]
    if isinstance(v, dict):
        return {k: parse_value(x, f"{where}.{k}", budget, _depth + 1) for k, x in v.items()}
    return v


@dataclass
class DatasetSpec:
    path: Path
    split: str | None = None
    root: Path | None = None  # a manifest's paths are relative to this (default: its folder)
    generators: list[str] | None = None
    limit: int | None = None
    max_pixels: int | None = None
    #: a public benchmark's release layout (``truefake``, ``genimage``, ``synthbuster``,
    #: ``cnndetection``) and its loader's options (TrueFake: ``ids``, ``split_file``)
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> list[Any]:
        """The dataset's samples (:func:`fakebench.data.load_dataset`), before selection."""
        from ..data import load_dataset

        return load_dataset(self.path, format=self.format, root=self.root, **self.options)


@dataclass
class DetectorSpec:
    name: str
    checkpoint: Path | None = None
    detector: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    optional: bool = False  # weights missing: skip with one line instead of failing
    index: int = 0  # position in the config's ``detectors`` list (error messages name it)


@dataclass
class AttackSpec:
    name: str
    attack: str
    options: dict[str, Any] = field(default_factory=dict)
    index: int = 0  # position in the config's ``attacks`` list (a grid expands one entry into several specs)


@dataclass
class Experiment:
    run: str
    output: Path
    dataset: DatasetSpec
    detectors: list[DetectorSpec]
    attacks: list[AttackSpec]
    seed: int = 0
    batch_size: int = 32
    device: str = "cpu"
    gallery: int = 3
    raw: dict[str, Any] = field(default_factory=dict)


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d or d[key] is None:
        raise ConfigError(f"{where}.{key}: missing")
    return d[key]


def _mapping(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(v).__name__}")
    return v


def _path(base: Path, v: Any, where: str) -> Path:
    if not isinstance(v, (str, Path)) or not str(v):
        raise ConfigError(f"{where}: expected a path, got {v!r}")
    if "\x00" in str(v):
        raise ConfigError(f"{where}: path {str(v)!r} contains a NUL byte")
    p = Path(v).expanduser()
    return p if p.is_absolute() else (base / p)


def _exists(p: Path, where: str) -> bool:
    try:
        return p.exists()
    except (OSError, ValueError) as exc:  # name too long, permission, ...
        raise ConfigError(f"{where}: cannot check {str(p)[:200]!r} ({type(exc).__name__})") from None


#: file names ending like weights are paths even without a folder separator
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".pkl", ".npz")


def resolve_path_options(opts: dict[str, Any], base: Path, where: str, path_options: tuple[str, ...] | set[str]
                         ) -> dict[str, Any]:
    """``opts`` with every path-valued option (``path_options``, from the detector's or attack's
    registry card) made absolute against ``base``. A value that is neither an existing relative
    path nor path-like (no separator, no weights extension) stays as it is:
    ``pretrained: openai`` is an open_clip tag, not a file."""
    out = dict(opts)
    for k in set(path_options) & set(out):
        v = out[k]
        if not isinstance(v, str) or not v or v == "random":
            continue
        looks_like_path = "/" in v or "\\" in v or v.lower().endswith(_WEIGHT_SUFFIXES) or v.startswith("~")
        if looks_like_path or (base / v).exists():
            out[k] = str(_path(base, v, f"{where}.{k}"))
    return out


def _card_paths(registry: Any, name: str, where: str) -> tuple[str, ...]:
    """The card's path-valued options (one ConfigError line naming ``where`` if unknown)."""
    try:
        return tuple(registry.card(name).path_options)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _int(v: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or int(v) != v:
        raise ConfigError(f"{where}: expected an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}, got {v}")
    return int(v)


KNOWN_TOP = {"run", "output", "seed", "batch_size", "device", "gallery", "dataset", "detectors", "attacks"}


def _unknown(d: dict[Any, Any], known: set[str] | tuple[str, ...], where: str, show_known: bool = False) -> None:
    """One ConfigError line for keys of ``d`` outside ``known`` (keys of any YAML type)."""
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        extra = f" (known: {sorted(known)})" if show_known else ""
        raise ConfigError(f"{where}: unknown key(s) {unknown}{extra}")


def _names(v: Any, where: str) -> list[str] | None:
    """A string or a list of strings (``split``, ``generators``) as a list; None when absent."""
    if v is None:
        return None
    items = v if isinstance(v, list) else [v]
    if not items or not all(isinstance(x, str) and x for x in items):
        raise ConfigError(f"{where}: expected a name or a list of names, got {v!r}")
    return list(items)


def check_device(v: Any, where: str) -> str:
    """A torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``); one line naming ``where``
    if torch does not know it or this machine lacks it."""
    import torch

    if not isinstance(v, str) or not v:
        raise ConfigError(f"{where}: expected a device name such as cpu or cuda:0, got {v!r}")
    try:
        dev = torch.device(v)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {v!r} is not a torch device ({str(exc).splitlines()[0] if str(exc) else exc})"
                          ) from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()}
    if not available.get(dev.type, False):
        raise ConfigError(f"{where}: {v!r} is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"{where}: {v!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return v


_DATASET_KEYS = {"path", "root", "split", "generators", "limit", "max_pixels", "format", "ids", "split_file", "real_dir"}


def _dataset_spec(ds: dict[str, Any], base: Path, source: str) -> DatasetSpec:
    """``dataset:``: ``path`` (or ``root``), selection (``split``, ``generators``, ``limit``),
    ``max_pixels``, and for public benchmarks ``format`` with its loader's options."""
    where = f"{source}.dataset"
    _unknown(ds, _DATASET_KEYS, where, show_known=True)
    # ``root`` alone: a public benchmark's root (a path alias); with ``path`` (a .csv manifest):
    # the folder the manifest's paths are relative to (a split file outside a read-only dataset)
    key = "path" if "path" in ds else "root"
    manifest_root = None
    if "path" in ds and "root" in ds:
        manifest_root = _path(base, ds["root"], f"{where}.root")
        if not str(ds["path"]).lower().endswith(".csv"):
            raise ConfigError(f"{where}.root: with 'path', root is a .csv manifest's base folder; "
                              f"{ds['path']} is not a .csv manifest")
        if not manifest_root.is_dir():
            raise ConfigError(f"{where}.root: {manifest_root} is not a folder")
    split = _names(ds.get("split"), f"{where}.split")
    options: dict[str, Any] = {}
    if ds.get("ids") is not None:
        options["ids"] = str(ds["ids"])
    for k in ("split_file", "real_dir"):
        if ds.get(k) is not None:
            options[k] = _path(base, ds[k], f"{where}.{k}")
            if not options[k].exists():
                raise ConfigError(f"{where}.{k}: {options[k]} does not exist")
    spec = DatasetSpec(
        path=_path(base, _req(ds, key, where), f"{where}.{key}"),
        split=split[0] if split is not None and len(split) == 1 else split,  # type: ignore[arg-type]
        generators=_names(ds.get("generators"), f"{where}.generators") if ds.get("generators") else None,
        limit=_int(ds["limit"], f"{where}.limit", 1) if ds.get("limit") is not None else None,
        max_pixels=_int(ds["max_pixels"], f"{where}.max_pixels", 1) if ds.get("max_pixels") else None,
        format=str(ds["format"]) if ds.get("format") else None,
        options=options,
        root=manifest_root,
    )
    if not _exists(spec.path, f"{where}.{key}"):
        raise ConfigError(f"{where}.{key}: {spec.path} does not exist")
    if spec.format is not None or options:
        from ..data.benchmarks import check_format_options

        check_format_options(spec.format, options, where)
    return spec


def parse_experiment(raw: Any, base: Path, default_run: str = "run", source: str = "config") -> Experiment:
    """Validate a config mapping. ``base`` resolves relative paths."""
    raw = parse_value(_mapping(raw, source), source)
    _unknown(raw, KNOWN_TOP, source, show_known=True)
    ds = _mapping(_req(raw, "dataset", source), f"{source}.dataset")
    dspec = _dataset_spec(ds, base, source)

    dets_raw = _req(raw, "detectors", source)
    if not isinstance(dets_raw, list) or not dets_raw:
        raise ConfigError(f"{source}.detectors: expected a non-empty list")
    dets: list[DetectorSpec] = []
    for i, d in enumerate(dets_raw):
        where = f"{source}.detectors[{i}]"
        d = _mapping(d, where)
        _unknown(d, ("name", "checkpoint", "detector", "options", "optional"), where)
        if ("checkpoint" in d) == ("detector" in d):
            raise ConfigError(f"{where}: give exactly one of 'checkpoint' (a fakebench checkpoint folder) or 'detector' (a registry name)")
        ck = _path(base, d["checkpoint"], f"{where}.checkpoint") if "checkpoint" in d else None
        if ck is not None and not _exists(ck / "config.json", f"{where}.checkpoint"):
            raise ConfigError(f"{where}.checkpoint: {ck} is not a fakebench checkpoint folder (no config.json)")
        opts = dict(_mapping(d.get("options", {}) or {}, f"{where}.options"))
        if "detector" in d:
            from .. import detectors as detector_registry

            opts = resolve_path_options(opts, base, f"{where}.options",
                                        _card_paths(detector_registry, str(d["detector"]), f"{where}.detector"))
        optional = d.get("optional", False)
        if not isinstance(optional, bool):
            raise ConfigError(f"{where}.optional: expected true or false, got {optional!r}")
        name = str(d.get("name") or (ck.name if ck else d["detector"]))
        dets.append(DetectorSpec(name=name, checkpoint=ck, detector=d.get("detector"), options=opts, optional=optional,
                                index=i))
    names = [d.name for d in dets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}.detectors: names must be unique, got {names}")

    atks: list[AttackSpec] = []
    atks_raw = raw.get("attacks") or []
    if not isinstance(atks_raw, list):
        raise ConfigError(f"{source}.attacks: expected a list, got {type(atks_raw).__name__}")
    for i, a in enumerate(atks_raw):
        where = f"{source}.attacks[{i}]"
        a = _mapping(a, where)
        _unknown(a, ("name", "attack", "options", "grid"), where)
        kind = str(_req(a, "attack", where))
        if kind in ("clean", "none"):
            continue  # the clean pass always runs
        from .. import attacks as attack_registry

        opts = resolve_path_options(dict(_mapping(a.get("options", {}) or {}, f"{where}.options")), base,
                                    f"{where}.options", _card_paths(attack_registry, kind, f"{where}.attack"))
        grid = _mapping(a.get("grid", {}) or {}, f"{where}.grid")
        for k, vals in grid.items():
            if not isinstance(vals, list) or not vals:
                raise ConfigError(f"{where}.grid.{k}: expected a non-empty list")
        keys = list(grid)
        for combo in itertools.product(*[grid[k] for k in keys]) if keys else [()]:
            atks.append(AttackSpec(name=str(a.get("name") or kind), attack=kind, options={**opts, **dict(zip(keys, combo))},
                                  index=i))
    return Experiment(
        run=str(raw.get("run") or default_run),
        output=_path(base, raw.get("output") or f"{default_run}-results", f"{source}.output"),
        dataset=dspec,
        detectors=dets,
        attacks=atks,
        seed=_int(raw.get("seed", 0), f"{source}.seed"),
        batch_size=_int(raw.get("batch_size", 32), f"{source}.batch_size", 1),
        device=check_device(raw.get("device", "cpu"), f"{source}.device"),
        gallery=_int(raw.get("gallery", 3), f"{source}.gallery", 0),
        raw=raw,
    )


def load_experiment(path: str | Path) -> Experiment:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    if not p.is_file():
        raise ConfigError(f"{p}: not a file")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{p}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raise ConfigError(f"{p}: empty config")
    return parse_experiment(raw, p.resolve().parent, default_run=p.stem, source=p.name)
