"""Experiment configuration (YAML): parsed and fully validated before any work starts.

Example::

    run: demo                      # run id in the store (default: the file's stem)
    output: results/               # everything is written under here (default: <stem>-results)
    seed: 0
    batch_size: 32                 # images per chunk: the unit of resumable work
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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


def parse_value(v: Any) -> Any:
    """Turn ``"4/255"`` into 4/255 (float), recursively through lists and dicts."""
    if isinstance(v, str):
        m = _FRACTION.match(v)
        if m:
            return float(m.group(1)) / float(m.group(2))
        return v
    if isinstance(v, list):
        return [parse_value(x) for x in v]
    if isinstance(v, dict):
        return {k: parse_value(x) for k, x in v.items()}
    return v


@dataclass
class DatasetSpec:
    path: Path
    split: str | None = None
    root: Path | None = None  # a manifest's paths are relative to this (default: its folder)
    generators: list[str] | None = None
    limit: int | None = None
    max_pixels: int | None = None


@dataclass
class DetectorSpec:
    name: str
    checkpoint: Path | None = None
    detector: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    optional: bool = False  # weights missing: skip with one line instead of failing


@dataclass
class AttackSpec:
    name: str
    attack: str
    options: dict[str, Any] = field(default_factory=dict)


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
    p = Path(v).expanduser()
    return p if p.is_absolute() else (base / p)


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
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise ConfigError(f"{where}: expected an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}, got {v}")
    return int(v)


KNOWN_TOP = {"run", "output", "seed", "batch_size", "device", "dataset", "detectors", "attacks"}


def parse_experiment(raw: Any, base: Path, default_run: str = "run", source: str = "config") -> Experiment:
    """Validate a config mapping. ``base`` resolves relative paths."""
    raw = parse_value(_mapping(raw, source))
    unknown = set(raw) - KNOWN_TOP
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} (known: {sorted(KNOWN_TOP)})")
    ds = _mapping(_req(raw, "dataset", source), f"{source}.dataset")
    unknown = set(ds) - {"path", "split", "generators", "limit", "max_pixels", "root"}
    if unknown:
        raise ConfigError(f"{source}.dataset: unknown key(s) {sorted(unknown)}")
    dspec = DatasetSpec(
        path=_path(base, _req(ds, "path", f"{source}.dataset"), f"{source}.dataset.path"),
        split=ds.get("split"),
        generators=list(ds["generators"]) if ds.get("generators") else None,
        limit=_int(ds["limit"], f"{source}.dataset.limit", 1) if ds.get("limit") is not None else None,
        max_pixels=_int(ds["max_pixels"], f"{source}.dataset.max_pixels", 1) if ds.get("max_pixels") else None,
        root=_path(base, ds["root"], f"{source}.dataset.root") if ds.get("root") else None,
    )
    if dspec.root is not None and not dspec.root.is_dir():
        raise ConfigError(f"{source}.dataset.root: {dspec.root} is not a folder")
    if not dspec.path.exists():
        raise ConfigError(f"{source}.dataset.path: {dspec.path} does not exist")

    dets_raw = _req(raw, "detectors", source)
    if not isinstance(dets_raw, list) or not dets_raw:
        raise ConfigError(f"{source}.detectors: expected a non-empty list")
    dets: list[DetectorSpec] = []
    for i, d in enumerate(dets_raw):
        where = f"{source}.detectors[{i}]"
        d = _mapping(d, where)
        unknown = set(d) - {"name", "checkpoint", "detector", "options", "optional"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        if ("checkpoint" in d) == ("detector" in d):
            raise ConfigError(f"{where}: give exactly one of 'checkpoint' (a fakebench checkpoint folder) or 'detector' (a registry name)")
        ck = _path(base, d["checkpoint"], f"{where}.checkpoint") if "checkpoint" in d else None
        if ck is not None and not (ck / "config.json").exists():
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
        dets.append(DetectorSpec(name=name, checkpoint=ck, detector=d.get("detector"), options=opts, optional=optional))
    names = [d.name for d in dets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}.detectors: names must be unique, got {names}")

    atks: list[AttackSpec] = []
    for i, a in enumerate(raw.get("attacks") or []):
        where = f"{source}.attacks[{i}]"
        a = _mapping(a, where)
        unknown = set(a) - {"name", "attack", "options", "grid"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
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
            atks.append(AttackSpec(name=str(a.get("name") or kind), attack=kind, options={**opts, **dict(zip(keys, combo))}))
    return Experiment(
        run=str(raw.get("run") or default_run),
        output=_path(base, raw.get("output") or f"{default_run}-results", f"{source}.output"),
        dataset=dspec,
        detectors=dets,
        attacks=atks,
        seed=_int(raw.get("seed", 0), f"{source}.seed"),
        batch_size=_int(raw.get("batch_size", 32), f"{source}.batch_size", 1),
        device=str(raw.get("device", "cpu")),
        raw=raw,
    )


def load_experiment(path: str | Path) -> Experiment:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{p}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raise ConfigError(f"{p}: empty config")
    return parse_experiment(raw, p.resolve().parent, default_run=p.stem, source=p.name)
