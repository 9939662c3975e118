"""Lighting (in)consistency from cast and attached shadows, decided by linear programming.

Kee, O'Brien and Farid, "Exposing photo manipulation from shading and shadows", ACM TOG
2014, applied to text-to-image generators by Farid, "Lighting (in)consistency of paint by
text", arXiv 2207.13744 (2022).

Geometry. Let ``l = (x, y, z)`` be the homogeneous image projection of a point light, ``z``
its depth (``z > 0`` in front of the camera, ``z < 0`` behind it).

* Cast shadow: the light, a point on an object and the point of its shadow are collinear in
  3-D, with the object point between the two. In the image the projected light therefore lies
  on the ray that starts at the shadow point ``s`` and passes through the object point ``o``.
  An angular tolerance ``theta`` widens the ray to a wedge, the intersection of the half-planes
  ``n_k . (L - s) >= 0`` with ``n_1 = R(theta - 90) d``, ``n_2 = R(90 - theta) d`` and
  ``n_3 = d = (o - s) / |o - s|``.
* Attached shadow: at a point ``p`` of an occluding contour the tangent plane contains the
  viewing ray and projects to the contour's tangent line; a lit point has the light on the
  side of its outward normal ``n``: ``n . (L - p) >= 0``. The tolerance rotates the normal by
  up to +-theta; the union of those half-planes (not convex) is the disjunction of the two
  extreme ones, and the analysis tries both.

All constraints are linear in the homogeneous ``l``: ``n . (l_xy - z p) >= 0``. Dividing by
``z`` gives ``n . (L - p) >= 0`` for a light in front of the camera and ``n . (L - p) <= 0``
(every wedge flipped) for a light behind it. Each case is one linear program over
``L = (x, y)`` that maximises the smallest signed distance ``t`` of ``L`` to the constraint
lines (``scipy.optimize.linprog``); the constraints are consistent when ``t >= 0`` in either
case. When they are not, a smallest set of constraints whose removal restores consistency is
found by iterative deepening that branches on the members of an irreducible infeasible subset
(exact; every minimum set is listed); for large problems a greedy fallback removes whole
objects, each time the one whose removal leaves the largest margin.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.optimize import linprog

from ..errors import ConfigError
from ._geometry import apply_h, box_polygon, clip_polygon, normalizer, rotate
from .annotations import LightingAnnotations

CASES = {"front": 1.0, "behind": -1.0}
_CASE_WORDS = {"front": "in front of", "behind": "behind"}
#: half-size of the search box around the image centre, in units of half the larger side
SEARCH_BOX = 1000.0
FEASIBLE_EPS = 1e-9
MAX_TOLERANT_ATTACHED = 10


@dataclass(frozen=True)
class HalfPlane:
    """``normal . (L - point) >= 0`` (pixels) for a light in front of the camera."""

    normal: np.ndarray
    point: np.ndarray


@dataclass(frozen=True)
class Constraint:
    """One annotated shadow, as a disjunction of conjunctions of half-planes."""

    kind: str  # "cast" | "attached"
    index: int  # position in its annotation list
    object: str
    alternatives: tuple[tuple[HalfPlane, ...], ...]
    anchor: np.ndarray  # shadow point / contour point (pixels)
    direction: np.ndarray  # unit: towards the object point / outward normal
    tolerance_deg: float
    other: np.ndarray | None = None  # the object point for cast shadows

    @property
    def label(self) -> str:
        return f"{self.kind}_shadows[{self.index}] ({self.object})"


@dataclass
class Region:
    """A convex piece of the feasible set of the projected light (pixel polygon)."""

    case: str
    polygon: np.ndarray  # (m, 2)
    unbounded: bool  # reaches the edge of the search box

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "polygon": np.round(self.polygon, 3).tolist(), "unbounded": self.unbounded}


@dataclass
class LightingResult:
    """Outcome of :func:`analyze_lighting`.

    Attributes:
        consistent: one light position satisfies every constraint.
        cases: the projective cases that are feasible ("front", "behind").
        margin_px: the largest smallest-distance of a candidate light to the constraint lines,
            in pixels (>= 0: feasible; negative: how far the best compromise violates them).
        regions: feasible region(s) of the projected light when consistent.
        removal_sets: when inconsistent, every smallest set of constraint indices whose
            removal restores consistency (exact search) or one greedy set.
        removal_method: "exact" or "greedy" (None when consistent).
        regions_after_removal: feasible regions once ``removal_sets[0]`` is removed.
    """

    consistent: bool
    cases: list[str]
    margin_px: float
    regions: list[Region]
    constraints: list[Constraint]
    image_size: tuple[int, int]
    removal_sets: list[tuple[int, ...]] = field(default_factory=list)
    removal_method: str | None = None
    regions_after_removal: list[Region] = field(default_factory=list)
    note: str = ""

    @property
    def suspicious_objects(self) -> list[str]:
        """Objects named by the smallest removal set(s), sorted (empty when consistent)."""
        names = {self.constraints[i].object for s in self.removal_sets for i in s}
        return sorted(names)

    @property
    def suspicious_constraints(self) -> list[int]:
        return sorted({i for s in self.removal_sets for i in s})

    def verdict(self) -> str:
        """One line for a terminal."""
        n = len(self.constraints)
        if self.consistent:
            return (f"lighting: CONSISTENT - one light satisfies all {n} constraints "
                    f"(light {' or '.join(_CASE_WORDS[c] for c in self.cases)} the camera; margin {self.margin_px:.1f} px)")
        sets = "; ".join(
            "{" + ", ".join(self.constraints[i].label for i in s) + "}" for s in self.removal_sets
        )
        amb = " (ambiguous: several minimal sets)" if len(self.removal_sets) > 1 else ""
        return (f"lighting: INCONSISTENT - no light satisfies all {n} constraints (violation {-self.margin_px:.1f} px); "
                f"smallest removal ({self.removal_method}){amb}: {sets}; suspicious: {', '.join(self.suspicious_objects)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "lighting",
            "paper": "Farid 2022, arXiv 2207.13744; Kee, O'Brien, Farid 2014",
            "consistent": self.consistent,
            "verdict": self.verdict(),
            "cases": self.cases,
            "margin_px": round(float(self.margin_px), 4),
            "image_size": list(self.image_size),
            "regions": [r.to_dict() for r in self.regions],
            "removal_method": self.removal_method,
            "removal_sets": [
                [{"constraint": self.constraints[i].label, "kind": self.constraints[i].kind,
                  "index": self.constraints[i].index, "object": self.constraints[i].object} for i in s]
                for s in self.removal_sets
            ],
            "suspicious_objects": self.suspicious_objects,
            "regions_after_removal": [r.to_dict() for r in self.regions_after_removal],
            "constraints": [
                {"label": c.label, "kind": c.kind, "object": c.object, "anchor": c.anchor.tolist(),
                 "direction": np.round(c.direction, 6).tolist(), "tolerance_deg": c.tolerance_deg}
                for c in self.constraints
            ],
            "note": self.note,
        }


def build_constraints(ann: LightingAnnotations) -> list[Constraint]:
    """Turn annotations into half-plane constraints (see the module docstring)."""
    out: list[Constraint] = []
    for i, c in enumerate(ann.cast):
        s = np.array(c.shadow, dtype=float)
        o = np.array(c.object_point, dtype=float)
        d = (o - s) / np.linalg.norm(o - s)
        th = c.tolerance_deg
        hp = (HalfPlane(rotate(d, th - 90.0), s), HalfPlane(rotate(d, 90.0 - th), s), HalfPlane(d, s))
        out.append(Constraint("cast", i, c.object, (hp,), s, d, th, o))
    n_tol = sum(a.tolerance_deg > 0 for a in ann.attached)
    if n_tol > MAX_TOLERANT_ATTACHED:
        raise ConfigError(f"{ann.source}: attached_shadows: at most {MAX_TOLERANT_ATTACHED} constraints with a "
                          f"non-zero tolerance are supported, got {n_tol}")
    for i, a in enumerate(ann.attached):
        p = np.array(a.point, dtype=float)
        n = np.array(a.normal, dtype=float)
        if a.tolerance_deg > 0:
            alts = ((HalfPlane(rotate(n, a.tolerance_deg), p),), (HalfPlane(rotate(n, -a.tolerance_deg), p),))
        else:
            alts = ((HalfPlane(n, p),),)
        out.append(Constraint("attached", i, a.object, alts, p, n, a.tolerance_deg))
    return out


class _Solver:
    """Feasibility of constraint subsets; linear programs in the normalised image frame."""

    def __init__(self, constraints: Sequence[Constraint], image_size: tuple[int, int]) -> None:
        self.constraints = list(constraints)
        self.T = normalizer(*image_size)
        self.scale = 1.0 / self.T[0, 0]
        self.cache: dict[frozenset[int], tuple[float, str, tuple[int, ...]]] = {}
        self.n_lp = 0

    def _lp(self, planes: list[HalfPlane], sign: float) -> float:
        """max t s.t. sign * n.(L - p) >= t, |x|, |y| <= SEARCH_BOX, t <= 1 (normalised units)."""
        if not planes:
            return 1.0
        N = np.array([hp.normal for hp in planes])
        P = apply_h(self.T, np.array([hp.point for hp in planes]))
        A = np.hstack([-sign * N, np.ones((len(planes), 1))])
        b = -sign * np.sum(N * P, axis=1)
        self.n_lp += 1
        res = linprog(np.array([0.0, 0.0, -1.0]), A_ub=A, b_ub=b,
                      bounds=[(-SEARCH_BOX, SEARCH_BOX), (-SEARCH_BOX, SEARCH_BOX), (None, 1.0)], method="highs")
        if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
            raise RuntimeError(f"linprog failed: {res.message}")
        return float(-res.fun)

    def best(self, subset: frozenset[int]) -> tuple[float, str, tuple[int, ...]]:
        """(margin in normalised units, case, choice of alternative per constraint)."""
        if subset in self.cache:
            return self.cache[subset]
        idx = sorted(subset)
        best: tuple[float, str, tuple[int, ...]] = (-np.inf, "front", ())
        for choice in itertools.product(*[range(len(self.constraints[i].alternatives)) for i in idx]):
            planes = [hp for i, ch in zip(idx, choice) for hp in self.constraints[i].alternatives[ch]]
            for case, sign in CASES.items():
                t = self._lp(planes, sign)
                if t > best[0]:
                    best = (t, case, tuple(choice))
            if best[0] >= FEASIBLE_EPS * 1e3:  # clearly feasible: no need to try other choices
                break
        self.cache[subset] = best
        return best

    def feasible(self, subset: frozenset[int]) -> bool:
        return self.best(subset)[0] >= -FEASIBLE_EPS

    def feasible_cases(self, subset: frozenset[int]) -> list[str]:
        idx = sorted(subset)
        cases = []
        for case, sign in CASES.items():
            for choice in itertools.product(*[range(len(self.constraints[i].alternatives)) for i in idx]):
                planes = [hp for i, ch in zip(idx, choice) for hp in self.constraints[i].alternatives[ch]]
                if self._lp(planes, sign) >= -FEASIBLE_EPS:
                    cases.append(case)
                    break
        return cases

    def regions(self, subset: frozenset[int]) -> list[Region]:
        """Feasible polygons (pixels) of every case and alternative choice, clipped to the search box."""
        idx = sorted(subset)
        c = np.linalg.solve(self.T, np.array([0.0, 0.0, 1.0]))[:2]
        r = SEARCH_BOX * self.scale
        out: list[Region] = []
        for case, sign in CASES.items():
            for choice in itertools.product(*[range(len(self.constraints[i].alternatives)) for i in idx]):
                poly = box_polygon(c[0] - r, c[1] - r, c[0] + r, c[1] + r)
                for i, ch in zip(idx, choice):
                    for hp in self.constraints[i].alternatives[ch]:
                        poly = clip_polygon(poly, sign * hp.normal, hp.point)
                if len(poly):
                    unb = bool(np.any(np.abs(poly - c) >= r * (1 - 1e-9)))
                    out.append(Region(case, poly, unb))
        return out

    # -- smallest removal set ------------------------------------------------------------
    def iis(self, subset: frozenset[int]) -> list[int]:
        """An irreducible infeasible subset (deletion filter)."""
        core = set(subset)
        for i in sorted(subset):
            trial = frozenset(core - {i})
            if not self.feasible(trial):
                core = set(trial)
        return sorted(core)

    def min_removal(self, max_removals: int) -> list[tuple[int, ...]]:
        """Every smallest set (size <= max_removals) whose removal makes the rest feasible."""
        full = frozenset(range(len(self.constraints)))
        for k in range(1, max_removals + 1):
            found: set[frozenset[int]] = set()
            seen: set[frozenset[int]] = set()

            def dfs(removed: frozenset[int], left: int) -> None:
                if removed in seen:
                    return
                seen.add(removed)
                rest = full - removed
                if self.feasible(rest):
                    if len(removed) == k:
                        found.add(removed)
                    return
                if left == 0:
                    return
                for i in self.iis(rest):
                    dfs(removed | {i}, left - 1)

            dfs(frozenset(), k)
            if found:
                return sorted(tuple(sorted(s)) for s in found)
        return []

    def greedy_removal(self) -> tuple[int, ...]:
        """Object-level greedy: repeatedly drop every constraint of the object whose removal
        leaves the largest margin, until the rest is feasible (not necessarily smallest)."""
        rest = set(range(len(self.constraints)))
        removed: list[int] = []
        while rest and not self.feasible(frozenset(rest)):
            objects = sorted({self.constraints[i].object for i in rest})
            scores = {}
            for ob in objects:
                keep = frozenset(i for i in rest if self.constraints[i].object != ob)
                scores[ob] = self.best(keep)[0]
            ob = max(objects, key=lambda o: scores[o])
            drop = {i for i in rest if self.constraints[i].object == ob}
            rest -= drop
            removed.extend(drop)
        return tuple(sorted(removed))


def analyze_lighting(ann: LightingAnnotations, max_removals: int = 3, exact_limit: int = 20) -> LightingResult:
    """Decide whether one point light explains every annotated shadow.

    Args:
        ann: validated annotations (see :mod:`fakebench.forensics.annotations`).
        max_removals: largest removal set the exact search tries.
        exact_limit: above this many constraints the removal search is greedy.

    Returns:
        :class:`LightingResult`; polygons and margins are in pixels.
    """
    cons = build_constraints(ann)
    solver = _Solver(cons, ann.image_size)
    full = frozenset(range(len(cons)))
    t, _, _ = solver.best(full)
    scale = solver.scale
    if t >= -FEASIBLE_EPS:
        return LightingResult(True, solver.feasible_cases(full), t * scale, solver.regions(full), cons, ann.image_size)
    note = ""
    sets: list[tuple[int, ...]] = []
    method = "exact"
    if len(cons) <= exact_limit:
        sets = solver.min_removal(max_removals)
        if not sets:
            note = (f"no removal of <= {max_removals} constraints restores consistency; greedy removal of whole "
                    "objects shown")
    else:
        note = (f"{len(cons)} constraints > exact_limit={exact_limit}: greedy removal of whole objects "
                "(may not be the smallest set)")
    if not sets:
        method = "greedy"
        sets = [solver.greedy_removal()]
    after = solver.regions(full - frozenset(sets[0]))
    return LightingResult(False, [], t * scale, [], cons, ann.image_size, sets, method, after, note)
