"""Annotation files for the geometric analyzers (JSON), their validation and their types.

Coordinates are image pixels: x to the right, y down, the centre of pixel (row i, column j)
at (x=j, y=i); any point in [-0.5, W-0.5] x [-0.5, H-0.5] is inside the image.

Lighting (``"type": "lighting"``)::

    {"type": "lighting", "image_size": [W, H], "tolerance_deg": 5,
     "cast_shadows": [{"object": "box A", "shadow": [x, y], "object_point": [x, y],
                       "tolerance_deg": 4}],
     "attached_shadows": [{"object": "ball", "point": [x, y], "normal": [nx, ny],
                           "tolerance_deg": 10}]}

Perspective (``"type": "perspective"``)::

    {"type": "perspective", "image_size": [W, H], "tolerance_deg": 2,
     "groups": [{"name": "vertical", "role": "vertical",
                 "segments": [[x1, y1, x2, y2], {"p1": [x, y], "p2": [x, y], "object": "door"}]}],
     "orthogonal": ["vertical", "left", "right"]}

``image_size`` may be left out when the image is given; when both exist they must agree.
Unknown keys are errors (naming the field and the allowed keys); the top level may also carry
``"image"`` (the image file name) and ``"comment"``, which the analysis ignores.
Every problem raises :class:`~fakebench.errors.ConfigError` with one line
``"<file>: <field>: <what is wrong>"``.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError

DEFAULT_LIGHTING_TOLERANCE_DEG = 5.0
DEFAULT_PERSPECTIVE_TOLERANCE_DEG = 2.0
DEFAULT_PP_TOLERANCE = 0.3
ROLES = ("vertical", "horizontal")

# keys each JSON object may have; anything else is an error (a typo such as "tolerance" for
# "tolerance_deg" must not silently fall back to a default). "image" (the image file the
# annotations belong to) and "comment" are free-form metadata, ignored by the analysis.
_META_KEYS = ("image", "comment")
LIGHTING_KEYS = ("type", "image_size", "tolerance_deg", "cast_shadows", "attached_shadows", *_META_KEYS)
CAST_KEYS = ("object", "shadow", "object_point", "tolerance_deg")
ATTACHED_KEYS = ("object", "point", "normal", "tolerance_deg")
PERSPECTIVE_KEYS = ("type", "image_size", "tolerance_deg", "principal_point_tolerance", "groups", "orthogonal",
                    *_META_KEYS)
GROUP_KEYS = ("name", "role", "segments")
SEGMENT_KEYS = ("p1", "p2", "object")


@dataclass(frozen=True)
class CastShadow:
    """A point on a cast shadow and the point of the object that casts it (pixels). In 3-D the
    light, the object point and the shadow point are collinear, so the projected light lies on
    the image ray from ``shadow`` through ``object_point`` (within ``tolerance_deg``)."""

    object: str
    shadow: tuple[float, float]
    object_point: tuple[float, float]
    tolerance_deg: float


@dataclass(frozen=True)
class AttachedShadow:
    """A point on an object's occluding contour at (or on the lit side of) a shading boundary,
    with the contour's outward normal in the image. The tangent plane there contains the
    viewing ray, so it projects to the contour tangent line; the light lies on the normal's
    side of it (within ``tolerance_deg`` of rotation of that line)."""

    object: str
    point: tuple[float, float]
    normal: tuple[float, float]  # unit vector
    tolerance_deg: float


@dataclass(frozen=True)
class LightingAnnotations:
    cast: tuple[CastShadow, ...]
    attached: tuple[AttachedShadow, ...]
    image_size: tuple[int, int]  # (width, height)
    source: str = "annotations"


@dataclass(frozen=True)
class Segment:
    p1: tuple[float, float]
    p2: tuple[float, float]
    object: str | None = None

    def as_array(self) -> np.ndarray:
        return np.array([*self.p1, *self.p2], dtype=float)


@dataclass(frozen=True)
class LineGroup:
    """Image segments whose 3-D lines are parallel (one 3-D direction, one vanishing point).
    ``role``: "vertical" (the gravity direction), "horizontal" (parallel to the ground plane,
    its vanishing point lies on the horizon) or None."""

    name: str
    segments: tuple[Segment, ...]
    role: str | None = None

    def array(self) -> np.ndarray:
        return np.array([s.as_array() for s in self.segments], dtype=float).reshape(-1, 4)


@dataclass(frozen=True)
class PerspectiveAnnotations:
    groups: tuple[LineGroup, ...]
    image_size: tuple[int, int]  # (width, height)
    orthogonal: tuple[str, ...] = ()
    tolerance_deg: float = DEFAULT_PERSPECTIVE_TOLERANCE_DEG
    pp_tolerance: float = DEFAULT_PP_TOLERANCE
    source: str = "annotations"
    extra: dict[str, Any] = field(default_factory=dict)


# -- validation helpers ----------------------------------------------------------------------
class _V:
    """Carries the file name so every error is ``"<file>: <field>: <problem>"``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {what}")

    def obj(self, x: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(x, Mapping):
            raise self.fail(where, f"expected a JSON object, got {_tname(x)}")
        return x

    def keys(self, d: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        """Reject keys of ``d`` not in ``allowed``: ``"<where>.<key>: unknown key ..."``."""
        for k in d:
            if k not in allowed:
                path = f"{where}.{k}" if where else str(k)
                close = difflib.get_close_matches(str(k), allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(path, f"unknown key {k!r} ({hint}allowed: {', '.join(allowed)})")

    def lst(self, x: Any, where: str) -> list[Any]:
        if not isinstance(x, list):
            raise self.fail(where, f"expected a list, got {_tname(x)}")
        return x

    def num(self, x: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise self.fail(where, f"expected a number, got {_tname(x)}")
        v = float(x)
        if not math.isfinite(v):
            raise self.fail(where, f"must be finite, got {v}")
        if lo is not None and v < lo:
            raise self.fail(where, f"must be >= {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise self.fail(where, f"must be <= {hi:g}, got {v:g}")
        return v

    def string(self, x: Any, where: str) -> str:
        if not isinstance(x, str) or not x.strip():
            raise self.fail(where, f"expected a non-empty string, got {_tname(x) if not isinstance(x, str) else 'an empty string'}")
        return x

    def point(self, x: Any, where: str, size: tuple[int, int] | None, first_index: int = 0) -> tuple[float, float]:
        """``[x, y]`` at ``where``; ``first_index``: index of x in the list ``where`` names (2 for
        the second point of a ``[x1, y1, x2, y2]`` segment), so errors name the real element."""
        xs = self.lst(x, where)
        if len(xs) != 2:
            raise self.fail(where, f"expected [x, y], got {len(xs)} values")
        px = self.num(xs[0], f"{where}[{first_index}]")
        py = self.num(xs[1], f"{where}[{first_index + 1}]")
        if size is not None:
            w, h = size
            if not (-0.5 <= px <= w - 0.5 and -0.5 <= py <= h - 0.5):
                raise self.fail(where, f"point ({px:g}, {py:g}) is outside the {w}x{h} image")
        return (px, py)

    def get(self, d: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in d:
            raise self.fail(f"{where}.{key}" if where else key, "missing")
        return d[key]


def _tname(x: Any) -> str:
    if x is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(x), type(x).__name__)


def read_json(path: str | Path) -> Any:
    """Read a JSON file; errors become one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, not an annotation file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: invalid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None


def _image_size(v: _V, d: Mapping[str, Any], image_size: tuple[int, int] | None) -> tuple[int, int]:
    given = None
    if "image_size" in d:
        xs = v.lst(d["image_size"], "image_size")
        if len(xs) != 2:
            raise v.fail("image_size", f"expected [width, height], got {len(xs)} values")
        w = v.num(xs[0], "image_size[0]", lo=1)
        h = v.num(xs[1], "image_size[1]", lo=1)
        if w != int(w) or h != int(h):
            raise v.fail("image_size", f"width and height must be whole numbers, got [{w:g}, {h:g}]")
        given = (int(w), int(h))
    if image_size is not None:
        actual = (int(image_size[0]), int(image_size[1]))
        if given is not None and given != actual:
            raise v.fail("image_size", f"[{given[0]}, {given[1]}] does not match the image ({actual[0]}x{actual[1]})")
        return actual
    if given is None:
        raise v.fail("image_size", "missing (give [width, height] in the file or pass the image)")
    return given


def _check_type(v: _V, d: Mapping[str, Any], expected: str) -> None:
    if "type" in d and d["type"] != expected:
        raise v.fail("type", f"expected {expected!r}, got {d['type']!r}")


# -- lighting --------------------------------------------------------------------------------
def parse_lighting(data: Any, source: str = "annotations", image_size: tuple[int, int] | None = None) -> LightingAnnotations:
    """Validate a parsed lighting annotation object. ``image_size`` = (width, height)."""
    v = _V(source)
    d = v.obj(data, "top level")
    _check_type(v, d, "lighting")
    v.keys(d, "", LIGHTING_KEYS)
    size = _image_size(v, d, image_size)
    tol0 = v.num(d.get("tolerance_deg", DEFAULT_LIGHTING_TOLERANCE_DEG), "tolerance_deg", lo=0, hi=89)
    cast: list[CastShadow] = []
    for i, c in enumerate(v.lst(d.get("cast_shadows", []), "cast_shadows")):
        w = f"cast_shadows[{i}]"
        c = v.obj(c, w)
        v.keys(c, w, CAST_KEYS)
        name = v.string(v.get(c, "object", w), f"{w}.object")
        s = v.point(v.get(c, "shadow", w), f"{w}.shadow", size)
        o = v.point(v.get(c, "object_point", w), f"{w}.object_point", size)
        if math.hypot(o[0] - s[0], o[1] - s[1]) < 1e-6:
            raise v.fail(w, "shadow and object_point coincide (the shadow direction is undefined)")
        tol = v.num(c.get("tolerance_deg", tol0), f"{w}.tolerance_deg", lo=0, hi=89)
        cast.append(CastShadow(name, s, o, tol))
    att: list[AttachedShadow] = []
    for i, a in enumerate(v.lst(d.get("attached_shadows", []), "attached_shadows")):
        w = f"attached_shadows[{i}]"
        a = v.obj(a, w)
        v.keys(a, w, ATTACHED_KEYS)
        name = v.string(v.get(a, "object", w), f"{w}.object")
        p = v.point(v.get(a, "point", w), f"{w}.point", size)
        n = v.point(v.get(a, "normal", w), f"{w}.normal", None)
        nn = math.hypot(*n)
        if nn < 1e-12:
            raise v.fail(f"{w}.normal", "must be a non-zero direction")
        tol = v.num(a.get("tolerance_deg", tol0), f"{w}.tolerance_deg", lo=0, hi=89)
        att.append(AttachedShadow(name, p, (n[0] / nn, n[1] / nn), tol))
    if not cast and not att:
        raise v.fail("cast_shadows", "need at least one cast or attached shadow constraint, got none")
    return LightingAnnotations(tuple(cast), tuple(att), size, source)


def load_lighting(path: str | Path, image_size: tuple[int, int] | None = None) -> LightingAnnotations:
    """Read and validate a lighting annotation file (see the module docstring)."""
    return parse_lighting(read_json(path), str(path), image_size)


# -- perspective -----------------------------------------------------------------------------
def _segment(v: _V, x: Any, where: str, size: tuple[int, int]) -> Segment:
    obj_name = None
    if isinstance(x, Mapping):
        v.keys(x, where, SEGMENT_KEYS)
        p1 = v.point(v.get(x, "p1", where), f"{where}.p1", size)
        p2 = v.point(v.get(x, "p2", where), f"{where}.p2", size)
        if "object" in x and x["object"] is not None:
            obj_name = v.string(x["object"], f"{where}.object")
    elif isinstance(x, list):
        if len(x) != 4:
            raise v.fail(where, f"expected [x1, y1, x2, y2] or {{\"p1\", \"p2\"}}, got {len(x)} values")
        p1 = v.point(x[:2], where, size)
        p2 = v.point(x[2:], where, size, first_index=2)
    else:
        raise v.fail(where, f"expected [x1, y1, x2, y2] or an object with p1 and p2, got {_tname(x)}")
    if math.hypot(p2[0] - p1[0], p2[1] - p1[1]) < 1.0:
        raise v.fail(where, "segment shorter than 1 pixel")
    return Segment(p1, p2, obj_name)


def _check_not_degenerate(v: _V, segs: tuple[Segment, ...], where: str) -> None:
    """A group's segments must be distinct and must not all lie on one image line: repeated or
    collinear segments meet everywhere along that line, so they give no vanishing point."""
    seen: dict[tuple[tuple[float, float], ...], int] = {}
    for j, sg in enumerate(segs):
        key = tuple(sorted((tuple(map(float, sg.p1)), tuple(map(float, sg.p2)))))
        if key in seen:
            raise v.fail(f"{where}.segments[{j}]", f"same segment as segments[{seen[key]}] (a repeated segment is "
                                                   "degenerate: it adds no evidence of a vanishing point)")
        seen[key] = j
    a = np.array(segs[0].p1, dtype=float)
    d = np.array(segs[0].p2, dtype=float) - a
    d /= np.hypot(*d)
    pts = np.array([p for sg in segs for p in (sg.p1, sg.p2)], dtype=float) - a
    if np.abs(pts[:, 0] * d[1] - pts[:, 1] * d[0]).max() < 0.5:
        raise v.fail(f"{where}.segments", f"all {len(segs)} segments lie on one image line (degenerate: no "
                                          "vanishing point); annotate edges on at least two different lines")


def parse_perspective(data: Any, source: str = "annotations", image_size: tuple[int, int] | None = None) -> PerspectiveAnnotations:
    """Validate a parsed perspective annotation object. ``image_size`` = (width, height)."""
    v = _V(source)
    d = v.obj(data, "top level")
    _check_type(v, d, "perspective")
    v.keys(d, "", PERSPECTIVE_KEYS)
    size = _image_size(v, d, image_size)
    tol = v.num(d.get("tolerance_deg", DEFAULT_PERSPECTIVE_TOLERANCE_DEG), "tolerance_deg", lo=0, hi=45)
    ppt = v.num(d.get("principal_point_tolerance", DEFAULT_PP_TOLERANCE), "principal_point_tolerance", lo=0)
    groups_raw = v.lst(v.get(d, "groups", ""), "groups")
    if not groups_raw:
        raise v.fail("groups", "need at least 1 group, got 0")
    groups: list[LineGroup] = []
    names: set[str] = set()
    for i, g in enumerate(groups_raw):
        w = f"groups[{i}]"
        g = v.obj(g, w)
        v.keys(g, w, GROUP_KEYS)
        name = v.string(v.get(g, "name", w), f"{w}.name")
        if name in names:
            raise v.fail(f"{w}.name", f"duplicate group name {name!r}")
        names.add(name)
        role = g.get("role")
        if role is not None and role not in ROLES:
            raise v.fail(f"{w}.role", f"must be one of {list(ROLES)} or null, got {role!r}")
        segs_raw = v.lst(v.get(g, "segments", w), f"{w}.segments")
        if len(segs_raw) < 2:
            raise v.fail(f"{w}.segments", f"need at least 2 segments, got {len(segs_raw)}")
        segs = tuple(_segment(v, s, f"{w}.segments[{j}]", size) for j, s in enumerate(segs_raw))
        _check_not_degenerate(v, segs, w)
        groups.append(LineGroup(name, segs, role))
    if sum(g.role == "vertical" for g in groups) > 1:
        raise v.fail("groups", "at most one group can have role 'vertical'")
    orth: tuple[str, ...] = ()
    if "orthogonal" in d and d["orthogonal"] is not None:
        o = v.lst(d["orthogonal"], "orthogonal")
        for j, n in enumerate(o):
            v.string(n, f"orthogonal[{j}]")
            if n not in names:
                raise v.fail(f"orthogonal[{j}]", f"no group named {n!r}")
        if len(set(o)) != len(o):
            raise v.fail("orthogonal", "group names repeat")
        if not 2 <= len(o) <= 3:
            raise v.fail("orthogonal", f"name 2 or 3 mutually orthogonal groups, got {len(o)}")
        orth = tuple(o)
    return PerspectiveAnnotations(tuple(groups), size, orth, tol, ppt, source)


def load_perspective(path: str | Path, image_size: tuple[int, int] | None = None) -> PerspectiveAnnotations:
    """Read and validate a perspective annotation file (see the module docstring)."""
    return parse_perspective(read_json(path), str(path), image_size)
