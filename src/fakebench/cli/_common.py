"""Argument helpers shared by the verbs: ``KEY=VALUE`` options and detector specs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError


def parse_value(text: str) -> Any:
    """``"8/255"`` -> 0.03137..., ``"0.1,0.2"`` -> [0.1, 0.2], YAML scalars otherwise
    (``10`` -> 10, ``true`` -> True, ``null`` -> None, ``[1, 2]`` -> [1, 2], other -> str)."""
    import yaml

    s = text.strip()
    if "," in s and not s.startswith(("[", "{")):
        return [parse_value(p) for p in s.split(",") if p.strip()]
    if "/" in s and s.count("/") == 1:
        try:
            return float(Fraction(s.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            pass
    try:
        return yaml.safe_load(s)
    except yaml.YAMLError:
        return s


def parse_options(items: Sequence[str], flag: str = "--opt") -> dict[str, Any]:
    """``["eps=8/255", "steps=10"]`` -> ``{"eps": 0.0313..., "steps": 10}``."""
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"{flag} {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        k = k.strip().replace("-", "_")
        if not k:
            raise ConfigError(f"{flag} {it!r}: empty key")
        out[k] = parse_value(v)
    return out


def resolve_detector(spec: str, pretrained: str | None = None, options: dict[str, Any] | None = None) -> Any:
    """A checkpoint folder, or a registry name built with ``pretrained`` (and ``options``)."""
    from .. import detectors

    p = Path(spec)
    if p.is_dir():
        return detectors.load(p)
    if spec in detectors.REGISTRY:
        if not pretrained:
            raise ConfigError(f"{spec}: a registry name needs --pretrained PATH (the official checkpoint); "
                              "or give a fakebench checkpoint folder")
        return detectors.create(spec, pretrained=pretrained, **(options or {})).eval()
    raise ConfigError(f"{spec}: neither a checkpoint folder nor a registered detector "
                      f"(known: {', '.join(detectors.REGISTRY.names())})")


def detector_folders(spec: str, what: str) -> dict[str, str]:
    """``"dir_a,dir_b"`` -> ``{name: folder}`` (name = the folder's name, made unique)."""
    out: dict[str, str] = {}
    for p in [s.strip() for s in spec.split(",") if s.strip()]:
        name = Path(p).resolve().name or p
        out[name if name not in out else f"{name}#{len(out)}"] = p
    if not out:
        raise ConfigError(f"--{what}: expected a comma-separated list of checkpoint folders")
    return out


def load_detectors(spec: str, what: str) -> dict[str, Any]:
    """``"dir_a,dir_b"`` -> ``{name: detector}`` (see :func:`detector_folders`)."""
    from ..detectors import load

    return {name: load(path) for name, path in detector_folders(spec, what).items()}
