"""Perspective (in)consistency: vanishing points, their residuals, the camera they imply.

Farid, "Perspective (in)consistency of paint by text", arXiv 2206.14617 (2022). Under a
pinhole camera, image lines of parallel 3-D lines meet at one vanishing point (VP); the VPs of
three mutually orthogonal directions fix the principal point (orthocentre of the VP triangle)
and the focal length; the VPs of directions parallel to the ground lie on the horizon, which is
also the polar line of the vertical VP with respect to the image of the absolute conic.
Generated images often violate these: segments that should be parallel do not converge, or the
implied camera is impossible (no real focal length) or implausible (principal point far from
the image centre).

Estimation. Each group's VP is the least-squares intersection of its homogeneous lines (SVD of
the length-weighted line matrix in a normalised frame), refined by minimising the distances of
the segment end points to the lines through the segment midpoints and the VP. VPs are
homogeneous 3-vectors, so VPs at infinity (parallel image lines) need no special case. When a
group has outliers, a consensus VP (the pair of segments whose intersection has the lowest
MSAC cost, i.e. squared residuals truncated at the tolerance, locally refined on ever tighter
inlier sets) is used instead so that the offending segments are the ones flagged. A segment's
residual is the angle between it and the line from its midpoint to the VP.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.optimize import least_squares

from ._geometry import apply_h, dehomog, homog, line_angle_residuals, normalizer, segment_lines
from .annotations import DEFAULT_PERSPECTIVE_TOLERANCE_DEG, DEFAULT_PP_TOLERANCE, PerspectiveAnnotations

_FINITE_EPS = 1e-9


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _vp_normalized(seg_n: np.ndarray, refine: bool = True) -> np.ndarray:
    """VP (unit 3-vector) of segments given in the normalised frame."""
    lines = segment_lines(seg_n)
    length = np.linalg.norm(seg_n[:, 2:] - seg_n[:, :2], axis=1)
    A = lines * (length / length.mean())[:, None]
    v = np.linalg.svd(A)[2][-1]
    if not refine or len(seg_n) < 3:
        return _unit(v)
    mids = homog(0.5 * (seg_n[:, :2] + seg_n[:, 2:]))
    p1 = homog(seg_n[:, :2])
    basis = np.linalg.svd(v[None, :])[2][1:].T  # (3, 2) orthonormal complement of v

    def resid(u: np.ndarray) -> np.ndarray:
        w = v + basis @ u
        lm = np.cross(mids, w)
        return np.sum(lm * p1, axis=1) / np.maximum(np.linalg.norm(lm[:, :2], axis=1), 1e-300)

    r0 = resid(np.zeros(2))
    if float(r0 @ r0) < 1e-28:
        return _unit(v)
    try:
        sol = least_squares(resid, np.zeros(2), method="lm", xtol=1e-14, ftol=1e-14)
    except Exception:  # pragma: no cover - numerical trouble: keep the algebraic estimate
        return _unit(v)
    if sol.cost * 2 <= float(r0 @ r0):
        return _unit(v + basis @ sol.x)
    return _unit(v)


def vanishing_point(segments: np.ndarray, image_size: tuple[int, int], refine: bool = True) -> np.ndarray:
    """Least-squares vanishing point of (n >= 2, 4) pixel segments ``[x1, y1, x2, y2]``.

    Returns a unit homogeneous 3-vector in pixel coordinates; its third component is 0
    (numerically) for a VP at infinity."""
    seg = np.asarray(segments, dtype=float).reshape(-1, 4)
    T = normalizer(*image_size)
    seg_n = np.hstack([apply_h(T, seg[:, :2]), apply_h(T, seg[:, 2:])])
    v_n = _vp_normalized(seg_n, refine)
    if abs(v_n[2]) <= _FINITE_EPS:
        v_n = np.array([v_n[0], v_n[1], 0.0])
    v = np.linalg.solve(T, v_n)
    if v[2] < 0 or (v[2] == 0 and (v[0] < 0 or (v[0] == 0 and v[1] < 0))):
        v = -v
    return _unit(v)


def _consensus_key(r: np.ndarray, tol: float) -> tuple[float, int]:
    """Consensus quality of residuals ``r`` (deg), larger is better: minus the MSAC cost
    ``sum(min(r, tol)^2)`` (Torr & Zisserman 2000), then (ties) the number of inliers."""
    return -float(np.sum(np.minimum(r, tol) ** 2)), int((r <= tol).sum())


def _consensus_vp(seg: np.ndarray, image_size: tuple[int, int], tol: float, seed: int = 0,
                  max_pairs: int = 2000) -> tuple[np.ndarray, np.ndarray] | None:
    """Robust VP: the pair intersection with the lowest MSAC cost (squared residuals truncated
    at ``tol`` degrees), then locally optimised (LO-RANSAC): refits on the segments within
    ``tol``, ``tol/2``, ``tol/4``, ``tol/8`` of the previous fit, keeping the refit of lowest
    cost. Counting inliers instead (plain RANSAC) prefers a VP that a few outliers sitting just
    inside ``tol`` (e.g. an altered box whose edges are 0.7 deg off) share with the true
    inliers, each of those then nearly at ``tol``; refit on that set, the VP moves so that an
    innocent segment crosses ``tol``. The truncated quadratic cost prefers the VP the true
    inliers meet closely. None without a strict-majority consensus (inliers within ``tol``)."""
    n = len(seg)
    if n < 3:
        return None
    lines = segment_lines(seg)
    pairs = list(itertools.combinations(range(n), 2))
    if len(pairs) > max_pairs:
        rng = np.random.default_rng(seed)
        pairs = [pairs[i] for i in rng.choice(len(pairs), max_pairs, replace=False)]
    best: tuple[float, int] = (-np.inf, -1)
    best_r: np.ndarray | None = None
    for i, j in pairs:
        v = np.cross(lines[i], lines[j])
        if not np.any(v):
            continue
        r = line_angle_residuals(seg, v)
        key = _consensus_key(r, tol)
        if key > best:
            best, best_r = key, r
    if best_r is None or best[1] * 2 <= n or best[1] < 2:
        return None
    out: tuple[np.ndarray, np.ndarray] | None = None
    out_key: tuple[float, int] = (-np.inf, -1)
    r = best_r
    for t in (tol, tol / 2, tol / 4, tol / 8):
        fit = r <= t
        if fit.sum() < 2:
            break
        v = vanishing_point(seg[fit], image_size)
        r = line_angle_residuals(seg, v)
        key = _consensus_key(r, tol)
        if key > out_key:
            out, out_key = (v, r), key
    return out


@dataclass
class GroupResult:
    """One line group: its VP (unit homogeneous, pixels) and per-segment residuals (degrees)."""

    name: str
    role: str | None
    segments: np.ndarray  # (n, 4)
    objects: list[str | None]
    vp: np.ndarray
    residuals_deg: np.ndarray
    tolerance_deg: float
    robust: bool = False  # VP from the consensus of a majority (outliers present)

    @property
    def vp_xy(self) -> np.ndarray | None:
        return dehomog(self.vp, _FINITE_EPS)

    @property
    def outliers(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.residuals_deg > self.tolerance_deg)]

    @property
    def rms_deg(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_deg ** 2)))

    @property
    def max_deg(self) -> float:
        return float(self.residuals_deg.max(initial=0.0))

    def to_dict(self) -> dict[str, Any]:
        xy = self.vp_xy
        return {
            "name": self.name, "role": self.role,
            "vanishing_point": None if xy is None else np.round(xy, 4).tolist(),
            "vanishing_direction": None if xy is not None else np.round(_unit(self.vp[:2]), 6).tolist(),
            "vanishing_point_homogeneous": self.vp.tolist(),
            "robust_estimate": self.robust,
            "rms_residual_deg": round(self.rms_deg, 4), "max_residual_deg": round(self.max_deg, 4),
            "segments": [
                {"index": i, "segment": np.round(s, 3).tolist(), "object": o, "residual_deg": round(float(r), 4),
                 "outlier": bool(r > self.tolerance_deg)}
                for i, (s, o, r) in enumerate(zip(self.segments, self.objects, self.residuals_deg))
            ],
        }


@dataclass
class Calibration:
    """Camera implied by orthogonal VPs (square pixels, zero skew)."""

    groups: tuple[str, ...]
    principal_point: np.ndarray | None  # pixels
    focal_px: float | None
    assumed_principal_point: bool  # True: the image centre was assumed (two VPs)
    pp_offset: float | None  # |pp - centre| / half diagonal
    plausible: bool
    problem: str = ""

    def K(self) -> np.ndarray | None:
        if self.focal_px is None or self.principal_point is None:
            return None
        f = self.focal_px
        return np.array([[f, 0, self.principal_point[0]], [0, f, self.principal_point[1]], [0, 0, 1.0]])

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": list(self.groups),
            "principal_point": None if self.principal_point is None else np.round(self.principal_point, 3).tolist(),
            "focal_px": None if self.focal_px is None else round(self.focal_px, 3),
            "assumed_principal_point": self.assumed_principal_point,
            "principal_point_offset": None if self.pp_offset is None else round(self.pp_offset, 4),
            "plausible": self.plausible, "problem": self.problem,
        }


def calibrate(vps: Sequence[np.ndarray], image_size: tuple[int, int], names: Sequence[str] = (),
              pp_tolerance: float = DEFAULT_PP_TOLERANCE) -> Calibration:
    """Principal point and focal length from 3 mutually orthogonal VPs (orthocentre of the VP
    triangle; solved as the image of the absolute conic, so VPs at infinity are allowed), or
    the focal length from 2 orthogonal VPs with the principal point assumed at the image centre.

    ``pp_tolerance``: the principal point is plausible within this fraction of the half diagonal
    from the image centre."""
    T = normalizer(*image_size)
    s = 1.0 / T[0, 0]
    c = np.linalg.solve(T, [0.0, 0.0, 1.0])[:2]
    half_diag = 0.5 * float(np.hypot(*image_size))
    v = [_unit(T @ np.asarray(x, dtype=float)) for x in vps]
    names = tuple(names)
    if len(v) == 3:
        rows = []
        for a, b in ((0, 1), (0, 2), (1, 2)):
            x1, y1, z1 = v[a]
            x2, y2, z2 = v[b]
            rows.append([x1 * x2 + y1 * y2, x1 * z2 + z1 * x2, y1 * z2 + z1 * y2, z1 * z2])
        M = np.array(rows)
        sv = np.linalg.svd(M, compute_uv=False)
        w = np.linalg.svd(M)[2][-1]
        if sv[2] < 1e-9 * sv[0] or abs(w[0]) < 1e-12 * np.linalg.norm(w):
            return Calibration(names, None, None, False, None, False,
                               "degenerate: two or more vanishing points at infinity (camera axis-aligned)")
        px, py = -w[1] / w[0], -w[2] / w[0]
        f2 = w[3] / w[0] - px * px - py * py
        pp = np.array([px, py]) * s + c
        off = float(np.linalg.norm(pp - c) / half_diag)
        if f2 <= 0:
            return Calibration(names, pp, None, False, off, False,
                               "no real focal length: the vanishing points do not form an acute triangle")
        ok = off <= pp_tolerance
        prob = "" if ok else f"principal point {off:.2f} half-diagonals from the image centre (> {pp_tolerance:g})"
        return Calibration(names, pp, float(np.sqrt(f2) * s), False, off, ok, prob)
    if len(v) == 2:
        (x1, y1, z1), (x2, y2, z2) = v
        if abs(z1 * z2) < 1e-9:
            return Calibration(names, c, None, True, 0.0, True,
                               "focal length undetermined: a vanishing point at infinity")
        f2 = -(x1 * x2 + y1 * y2) / (z1 * z2)
        if f2 <= 0:
            return Calibration(names, c, None, True, 0.0, False,
                               "no real focal length with the principal point at the image centre")
        return Calibration(names, c, float(np.sqrt(f2) * s), True, 0.0, True, "")
    raise ValueError("calibrate needs 2 or 3 vanishing points")


def horizon_through(vps: Sequence[np.ndarray], image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Line (pixels, homogeneous, unit normal part) best through >= 2 VPs, and each VP's angular
    distance to it seen from the image centre (degrees; 0 for exactly two VPs)."""
    T = normalizer(*image_size)
    V = np.array([_unit(T @ np.asarray(x, dtype=float)) for x in vps])
    h_n = np.linalg.svd(V)[2][-1]
    h = T.T @ h_n
    h = h / np.linalg.norm(h[:2])
    c = np.linalg.solve(T, [0.0, 0.0, 1.0])[:2]
    res = []
    for x in vps:
        x = np.asarray(x, dtype=float)
        den = np.linalg.norm(x[:2] - x[2] * c)
        res.append(np.degrees(np.arcsin(min(1.0, abs(h @ x) / den))) if den > 0 else 0.0)
    return h, np.array(res)


def horizon_from_vertical(v_vert: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Polar of the vertical VP w.r.t. the image of the absolute conic: ``(K K^T)^-1 v``."""
    h = np.linalg.solve(K @ K.T, np.asarray(v_vert, dtype=float))
    return h / np.linalg.norm(h[:2])


def _line_disagreement(a: np.ndarray, b: np.ndarray, image_size: tuple[int, int], f: float) -> float:
    """Angle (deg) between two image lines, or the angle their offset at the image centre
    subtends at focal length ``f``, whichever is larger."""
    if a[:2] @ b[:2] < 0:
        b = -b
    ang = np.degrees(np.arccos(np.clip(a[:2] @ b[:2], 0, 1)))
    c = np.array([(image_size[0] - 1) / 2, (image_size[1] - 1) / 2, 1.0])
    off = abs(a @ c - b @ c)  # both normals are unit: signed distances of the centre
    return float(max(ang, np.degrees(np.arctan(off / f))))


@dataclass
class PerspectiveResult:
    """Outcome of :func:`analyze_perspective` / :func:`fakebench.forensics.auto.analyze_perspective_auto`."""

    groups: list[GroupResult]
    image_size: tuple[int, int]
    tolerance_deg: float
    calibration: Calibration | None = None
    horizon: np.ndarray | None = None  # homogeneous line, pixels
    horizon_source: str = ""
    horizon_check_deg: float | None = None  # disagreement of two horizon estimates
    issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode: str = "annotations"
    score: float = 0.0  # inconsistency; see the ``score_definition``
    score_definition: str = ""
    unexplained: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # auto: segments of no group
    decidable: bool = True  # False: too little evidence (auto mode, few lines)

    @property
    def consistent(self) -> bool:
        return not self.issues

    def verdict(self) -> str:
        n = sum(len(g.segments) for g in self.groups)
        word = "UNDECIDED" if not self.decidable else ("CONSISTENT" if self.consistent else "INCONSISTENT")
        head = (f"perspective ({self.mode}): {word} - "
                f"{len(self.groups)} vanishing points from {n} segments; score {self.score:.3f}")
        if self.issues:
            more = f" (+{len(self.issues) - 3} more)" if len(self.issues) > 3 else ""
            head += "; " + "; ".join(self.issues[:3]) + more
        return head

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": "perspective", "paper": "Farid 2022, arXiv 2206.14617", "mode": self.mode,
            "consistent": self.consistent if self.decidable else None, "decidable": self.decidable,
            "verdict": self.verdict(), "score": round(float(self.score), 6),
            "score_definition": self.score_definition, "tolerance_deg": self.tolerance_deg,
            "image_size": list(self.image_size), "issues": self.issues, "notes": self.notes,
            "groups": [g.to_dict() for g in self.groups],
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "horizon": None if self.horizon is None else np.round(self.horizon, 9).tolist(),
            "horizon_source": self.horizon_source, "horizon_check_deg": self.horizon_check_deg,
            "unexplained_segments": np.round(self.unexplained, 3).tolist(),
        }


def analyze_groups(groups: Sequence[tuple[str, str | None, np.ndarray, Sequence[str | None]]],
                   image_size: tuple[int, int], orthogonal: Sequence[str] = (),
                   tolerance_deg: float = DEFAULT_PERSPECTIVE_TOLERANCE_DEG,
                   pp_tolerance: float = DEFAULT_PP_TOLERANCE, robust: bool = True) -> PerspectiveResult:
    """Core analysis of line groups ``(name, role, segments (n, 4), objects)``."""
    res = PerspectiveResult([], tuple(image_size), float(tolerance_deg))
    for name, role, seg, objs in groups:
        seg = np.asarray(seg, dtype=float).reshape(-1, 4)
        v = vanishing_point(seg, image_size)
        r = line_angle_residuals(seg, v)
        used_robust = False
        if robust and np.any(r > tolerance_deg):
            cons = _consensus_vp(seg, image_size, tolerance_deg)
            if cons is not None:
                v, r = cons
                used_robust = True
        g = GroupResult(name, role, seg, list(objs), v, r, float(tolerance_deg), used_robust)
        res.groups.append(g)
        if len(seg) == 2:
            res.notes.append(f"group {name!r}: 2 segments always meet; add a third to test it")
        for i in g.outliers:
            obj = f" ({objs[i]})" if objs[i] else ""
            res.issues.append(f"group {name!r} segment {i}{obj} is {r[i]:.2f} deg off the vanishing point")
    by_name = {g.name: g for g in res.groups}
    # camera from orthogonal vanishing points
    if orthogonal:
        res.calibration = calibrate([by_name[n].vp for n in orthogonal], image_size, orthogonal, pp_tolerance)
        if not res.calibration.plausible:
            res.issues.append(f"orthogonal groups {list(orthogonal)}: {res.calibration.problem}")
        elif res.calibration.problem:
            res.notes.append(res.calibration.problem)
    # horizon
    horiz = [g for g in res.groups if g.role == "horizontal"]
    vert = [g for g in res.groups if g.role == "vertical"]
    K = res.calibration.K() if res.calibration is not None else None
    if len(horiz) >= 2:
        res.horizon, hres = horizon_through([g.vp for g in horiz], image_size)
        res.horizon_source = "vanishing points of " + ", ".join(g.name for g in horiz)
        for g, a in zip(horiz, hres):
            if a > tolerance_deg:
                res.issues.append(f"group {g.name!r}: its vanishing point is {a:.2f} deg off the horizon of the other "
                                  "ground-parallel directions")
        if vert and K is not None:
            alt = horizon_from_vertical(vert[0].vp, K)
            res.horizon_check_deg = _line_disagreement(res.horizon, alt, image_size, float(K[0, 0]))
            same = set(res.calibration.groups) == {vert[0].name, *(g.name for g in horiz)} if res.calibration else False
            if not same and res.horizon_check_deg > tolerance_deg:
                res.issues.append(f"horizon through the horizontal vanishing points disagrees by "
                                  f"{res.horizon_check_deg:.2f} deg with the one implied by the vertical vanishing point")
    elif vert and K is not None:
        res.horizon = horizon_from_vertical(vert[0].vp, K)
        res.horizon_source = f"polar of the vertical vanishing point ({vert[0].name}) given the camera"
    # score: worst group RMS residual in units of the tolerance, plus calibration failures
    worst = max((g.rms_deg for g in res.groups if len(g.segments) > 2), default=0.0)
    res.score = worst / max(tolerance_deg, 1e-9) + (1.0 if (res.calibration and not res.calibration.plausible) else 0.0)
    res.score_definition = ("largest per-group RMS segment residual divided by tolerance_deg, "
                            "+1 when the orthogonal vanishing points imply an impossible or implausible camera")
    return res


def analyze_perspective(ann: PerspectiveAnnotations) -> PerspectiveResult:
    """Analyse annotated line groups (see :mod:`fakebench.forensics.annotations`)."""
    groups = [(g.name, g.role, g.array(), [s.object for s in g.segments]) for g in ann.groups]
    return analyze_groups(groups, ann.image_size, ann.orthogonal, ann.tolerance_deg, ann.pp_tolerance)
