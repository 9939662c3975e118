"""Automatic perspective analysis: detect line segments, group them by vanishing point, score.

Line segments come from the probabilistic Hough transform on Canny edges
(``skimage.transform.probabilistic_hough_line``, seeded), each refitted by total least squares
to the edge pixels along it. Candidate vanishing points are found by sequential RANSAC:
hypotheses are intersections of random segment pairs (drawn with a seeded
``numpy.random.Generator``, weighted by length), support is the total length of the segments
that point at the hypothesis; the best VP is refitted on its inliers, its segments removed,
and the search repeats (``candidates`` times). Then at most ``max_vps`` candidates are kept:
the subset that explains the most segment length among those that a plausible camera could
produce from mutually orthogonal directions (Farid 2022: orthogonal VPs fix the principal
point, which should lie near the image centre, and a real focal length). The groups are then
analysed like annotated ones (:func:`fakebench.forensics.perspective.analyze_groups`).

Score (inconsistency, in [0, 1]): the length-weighted fraction of detected segments that point
at none of the kept vanishing points. Segments that point at two or more kept VPs (they lie on
the line through them: above all the sky / ground boundary, which is the horizon and points at
every horizontal VP) are evidence for no direction and are left out of the fraction; counted,
one such image-wide line could outweigh a pasted object's edges. In a scene built from boxes / buildings that share three
orthogonal directions (a "Manhattan world") nearly every straight edge converges to one of
three VPs; an object pasted with a different perspective contributes edges that converge
nowhere. Images with fewer than ``min_segments`` segments are undecided (``decidable =
False``, score 0.0). Limitations: scenes that are not Manhattan (rotated objects, curved
structures, many unrelated directions) also leave segments unexplained, so the score measures
"not explained by one camera's three vanishing points", not proof of manipulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import canny
from skimage.transform import probabilistic_hough_line, rescale

from ._geometry import apply_h, line_angle_residuals, normalizer, segment_lines
from .perspective import Calibration, PerspectiveResult, analyze_groups, horizon_from_vertical, vanishing_point


@dataclass(frozen=True)
class AutoConfig:
    """Parameters of the automatic mode (pixel quantities refer to the analysed image, which is
    downscaled to ``max_side`` first when larger).

    Attributes:
        seed: seeds the Hough transform and RANSAC.
        max_side: longer side the image is scaled down to before detection.
        sigma: Canny Gaussian sigma (pixels).
        low_threshold / high_threshold: Canny hysteresis thresholds on the gradient magnitude
            of the [0, 1] grey image.
        min_length: shortest segment, as a fraction of the shorter image side.
        line_gap: largest gap bridged inside one segment (pixels).
        hough_threshold: Hough accumulator threshold.
        max_vps: most vanishing points kept (a vertical one and up to ``max_vps - 1`` on the
            horizon).
        candidates: vanishing points found by sequential RANSAC before the selection.
        orthogonality_deg: how far from orthogonal (degrees, in 3-D, for the searched camera)
            a kept VP's direction may be to the reference (vertical) VP's.
        inlier_deg: angular inlier threshold; short segments may also be inliers when their end
            points are within ``inlier_px`` of the line through their midpoint and the VP.
        hypotheses: RANSAC hypotheses per vanishing point.
        min_support: fewest segments a vanishing point needs.
        min_segments: fewer detected segments than this: no decision.
        focal_range: focal lengths searched, times the longer image side.
        max_unexplained: above this score the verdict is "inconsistent".
        long_fraction: a segment at least this fraction of the shorter image side is "long".
        min_long_segments: fewer long segments than this: no decision (abstain).
        vp_min_long: a selected vanishing point is well supported when at least this many long
            segments point at it; fewer than two well-supported, camera-consistent vanishing
            points: no decision (abstain). The score is still computed and reported.
            ``min_long_segments = vp_min_long = 0`` switches the abstention off
            (:data:`NO_ABSTENTION`).
    """

    seed: int = 0
    max_side: int = 768
    sigma: float = 1.5
    low_threshold: float = 0.04
    high_threshold: float = 0.10
    min_length: float = 0.08
    line_gap: int = 2
    hough_threshold: int = 10
    max_vps: int = 4
    candidates: int = 6
    inlier_deg: float = 1.0
    inlier_px: float = 1.0
    hypotheses: int = 1000
    min_support: int = 3
    min_segments: int = 6
    orthogonality_deg: float = 2.0
    focal_range: tuple[float, float] = (0.3, 5.0)
    max_unexplained: float = 0.15
    long_fraction: float = 0.15
    min_long_segments: int = 8
    vp_min_long: int = 4


#: AutoConfig overrides that switch the weak-evidence abstention off (small rendered scenes,
#: whose box edges are short, are then judged; real photographs mostly should not be)
NO_ABSTENTION = {"min_long_segments": 0, "vp_min_long": 0}


def _grey(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] >= 3:
        return rgb2gray(a[..., :3])
    if a.ndim == 3:
        return a[..., 0]
    return a


def detect_segments(image: np.ndarray, cfg: AutoConfig = AutoConfig()) -> np.ndarray:
    """Line segments (n, 4) ``[x1, y1, x2, y2]`` in pixels of ``image`` (H, W[, 3]) in [0, 1]."""
    g = _grey(image)
    H, W = g.shape
    scale = 1.0
    if max(H, W) > cfg.max_side:
        scale = cfg.max_side / max(H, W)
        g = rescale(g, scale, anti_aliasing=True)
    edges = canny(g, sigma=cfg.sigma, low_threshold=cfg.low_threshold, high_threshold=cfg.high_threshold)
    min_len = max(15, int(round(cfg.min_length * min(g.shape))))
    theta = np.linspace(-np.pi / 2, np.pi / 2, 720, endpoint=False)
    raw = probabilistic_hough_line(edges, threshold=cfg.hough_threshold, line_length=min_len,
                                   line_gap=cfg.line_gap, theta=theta, rng=cfg.seed)
    if not raw:
        return np.zeros((0, 4))
    seg = np.array([[p0[0], p0[1], p1[0], p1[1]] for p0, p1 in raw], dtype=float)
    seg = _refit(seg, edges)
    seg = seg[np.linalg.norm(seg[:, 2:] - seg[:, :2], axis=1) >= min_len * 0.9]
    return (seg + 0.5) / scale - 0.5  # pixel centres of the rescaled image back to the original


def _refit(seg: np.ndarray, edges: np.ndarray, band: float = 1.5, iters: int = 3) -> np.ndarray:
    """Total-least-squares refit of each segment to the edge pixels along it: pixels within
    ``band`` px of the Hough segment, then repeatedly within 1 px of the fitted line, dropping
    the pixels of the last 2 px at either end (corners, where another edge joins). Segments
    without enough edge pixels along them are dropped."""
    ys, xs = np.nonzero(edges)
    E = np.column_stack([xs, ys]).astype(float)
    out = seg.copy()
    keep = np.zeros(len(seg), dtype=bool)
    for k, s in enumerate(seg):
        p = s[:2]
        d = s[2:] - p
        L = np.linalg.norm(d)
        if L == 0:
            continue
        u = d / L
        c = p + 0.5 * d
        t_lo, t_hi = -0.5 * L - 1.0, 0.5 * L + 1.0
        bw = band
        ok = True
        for it in range(iters):
            rel = E - c
            along = rel @ u
            m = (np.abs(rel @ np.array([-u[1], u[0]])) <= bw) & (along >= t_lo) & (along <= t_hi)
            if m.sum() < 5:
                ok = False
                break
            P = E[m]
            c = P.mean(0)
            vt = np.linalg.svd(P - c, full_matrices=False)[2]
            u = vt[0] if vt[0] @ u >= 0 else -vt[0]
            t = (P - c) @ u
            t_lo, t_hi = t.min() + (2.0 if it < iters - 1 else 0.0), t.max() - (2.0 if it < iters - 1 else 0.0)
            if t_hi - t_lo < 5:
                ok = False
                break
            bw = 1.0
        if ok:
            # final extent: pixels within 1 px of the fitted line between the original end points
            rel = E - c
            along = rel @ u
            lo, hi = (s[:2] - c) @ u - 1.0, (s[2:] - c) @ u + 1.0
            m = (np.abs(rel @ np.array([-u[1], u[0]])) <= 1.0) & (along >= min(lo, hi)) & (along <= max(lo, hi))
            if m.sum() >= 5:
                out[k] = [*(c + along[m].min() * u), *(c + along[m].max() * u)]
                keep[k] = True
    return out[keep]


def _inlier_mask(seg: np.ndarray, v: np.ndarray, cfg: AutoConfig) -> np.ndarray:
    """Segments pointing at homogeneous ``v`` (angle test, end-point test for short segments),
    excluding those for which ``v`` is not beyond the segment (corners are not VPs).
    ``v`` may be (3,) -> mask (n,), or a batch (k, 3) -> masks (k, n)."""
    V = np.atleast_2d(np.asarray(v, dtype=float))
    d = seg[:, 2:] - seg[:, :2]
    mid = 0.5 * (seg[:, :2] + seg[:, 2:])
    half = 0.5 * np.linalg.norm(d, axis=1)
    e = V[:, None, :2] - V[:, None, 2:3] * mid[None]  # (k, n, 2): direction midpoint -> v
    ne = np.linalg.norm(e, axis=2)
    cross = np.abs(e[..., 0] * d[None, :, 1] - e[..., 1] * d[None, :, 0])
    ang = np.degrees(np.arctan2(cross, np.abs(np.sum(e * d[None], axis=2))))
    thr = np.maximum(cfg.inlier_deg, np.degrees(np.arctan(cfg.inlier_px / np.maximum(half, 1e-9))))
    far = ne >= 1.5 * half[None] * np.abs(V[:, 2:3])
    m = (ang <= thr[None]) & far & (ne > 0)
    return m[0] if np.ndim(v) == 1 else m


def find_vanishing_points(seg: np.ndarray, image_size: tuple[int, int], cfg: AutoConfig = AutoConfig(),
                          max_count: int | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Sequential RANSAC for up to ``max_count`` (default ``cfg.candidates``) vanishing points,
    strongest first. Returns ([(vp, segment indices), ...], indices of the segments left over)."""
    rng = np.random.default_rng(cfg.seed)
    n = len(seg)
    remaining = np.arange(n)
    length = np.linalg.norm(seg[:, 2:] - seg[:, :2], axis=1)
    T = normalizer(*image_size)
    seg_n = np.hstack([apply_h(T, seg[:, :2]), apply_h(T, seg[:, 2:])]) if n else seg
    lines_n = segment_lines(seg_n) if n else np.zeros((0, 3))
    Tinv = np.linalg.inv(T)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(cfg.candidates if max_count is None else max_count):
        if len(remaining) < max(2, cfg.min_support):
            break
        w = length[remaining] / length[remaining].sum()
        i = rng.choice(remaining, size=cfg.hypotheses, p=w)
        j = rng.choice(remaining, size=cfg.hypotheses, p=w)
        ok = i != j
        V = np.cross(lines_n[i[ok]], lines_n[j[ok]]) @ Tinv.T  # hypotheses in pixels
        V = V[np.linalg.norm(V, axis=1) > 0]
        sub = seg[remaining]
        if not len(V):
            break
        masks = _inlier_mask(sub, V / np.linalg.norm(V, axis=1, keepdims=True), cfg)  # (k, n)
        support = masks.astype(float) @ length[remaining]
        best = masks[int(np.argmax(support))]  # first maximum: deterministic
        if best.sum() < cfg.min_support:
            break
        idx = remaining[best]
        v = vanishing_point(seg[idx], image_size)
        # re-collect inliers with the refined VP (among the remaining segments)
        m2 = _inlier_mask(sub, v, cfg)
        if m2.sum() >= cfg.min_support:
            idx = remaining[m2]
            v = vanishing_point(seg[idx], image_size)
        found.append((v, idx))
        remaining = np.setdiff1d(remaining, idx)
    return found, remaining


def _rays(vps: np.ndarray, T: np.ndarray, f_n: float) -> np.ndarray:
    """Unit 3-D directions of homogeneous pixel VPs (k, 3) for a camera with focal length
    ``f_n`` (normalised units) and its principal point at the image centre."""
    v = vps @ T.T
    r = np.column_stack([v[:, 0] / f_n, v[:, 1] / f_n, v[:, 2]])
    return r / np.linalg.norm(r, axis=1, keepdims=True)


def select_vanishing_points(seg: np.ndarray, candidates: list[tuple[np.ndarray, np.ndarray]],
                            image_size: tuple[int, int], cfg: AutoConfig = AutoConfig()
                            ) -> tuple[list[int], float | None]:
    """Choose the camera-consistent candidates that explain the most segment length.

    Camera model: principal point at the image centre, focal length ``f`` searched over
    ``cfg.focal_range`` (x the longer side). A set is a reference VP plus candidates whose 3-D
    directions are orthogonal to the reference's within ``cfg.orthogonality_deg`` (with the
    vertical VP as reference these are the ground-parallel directions, whose VPs lie on the
    horizon: a Manhattan or "Atlanta" world), at most ``cfg.max_vps`` in all; a single VP is
    always a valid set. A pasted object seen by a differently oriented camera has VPs that
    are not orthogonal to the scene's vertical, so its segments stay unexplained.

    Returns (indices of the chosen candidates, focal length in pixels or None for one VP)."""
    k = len(candidates)
    if k == 0:
        return [], None
    length = np.linalg.norm(seg[:, 2:] - seg[:, :2], axis=1)
    masks = np.array([_inlier_mask(seg, v, cfg) for v, _ in candidates])
    support = masks.astype(float) @ length
    V = np.array([v for v, _ in candidates])
    T = normalizer(*image_size)
    s = 1.0 / T[0, 0]
    best_key: tuple[float, int] = (float(support.max()), -1)
    best: tuple[list[int], float | None] = ([int(np.argmax(support))], None)
    lo, hi = cfg.focal_range
    for f in np.geomspace(lo, hi, 96) * max(image_size):
        R = _rays(V, T, f / s)
        err = np.degrees(np.arcsin(np.clip(np.abs(R @ R.T), 0.0, 1.0)))  # 0 = orthogonal
        for r in range(k):
            others = [j for j in np.argsort(-support) if j != r and err[r, j] <= cfg.orthogonality_deg]
            chosen = [r] + [int(j) for j in others[: cfg.max_vps - 1]]
            if len(chosen) < 2:
                continue
            key = (float(length[np.any(masks[chosen], axis=0)].sum()), -len(chosen))
            if key > best_key:
                best_key, best = key, (chosen, float(f))
    return best


def _weak_evidence(seg: np.ndarray, length: np.ndarray, vps: list[np.ndarray], focal: float | None,
                   hw: tuple[int, int], cfg: AutoConfig) -> str:
    """Why the line evidence is too weak for a verdict ('' when it is not): too few long
    segments, or fewer than two camera-consistent vanishing points with ``cfg.vp_min_long`` long
    segments each. Real photographs (faces, plants, clutter) leave many segments that point at
    no vanishing point; without strong converging structure that is no evidence of tampering."""
    if cfg.min_long_segments <= 0 and cfg.vp_min_long <= 0:  # abstention switched off
        return ""
    long = length >= cfg.long_fraction * min(hw)
    if int(long.sum()) < cfg.min_long_segments:
        return (f"only {int(long.sum())} long segments (>= {cfg.long_fraction:.0%} of the shorter side; "
                f"need {cfg.min_long_segments})")
    strong = sum(int((_inlier_mask(seg, v, cfg) & long).sum()) >= cfg.vp_min_long for v in vps)
    if focal is None or strong < 2:
        return (f"{strong if focal is not None else min(strong, 1)} well-supported camera-consistent vanishing "
                f"point(s) (>= {cfg.vp_min_long} long segments each; need 2)")
    return ""


def analyze_perspective_auto(image: np.ndarray, cfg: AutoConfig = AutoConfig(),
                             tolerance_deg: float = 2.0) -> PerspectiveResult:
    """Detect segments in ``image`` (H, W[, 3], [0, 1]), group them by vanishing point and analyse.

    ``result.score`` is the unexplained-length fraction (see the module docstring). Groups are
    named ``vp1``.. in order of support; when three are selected, the one nearest the image
    vertical gets role "vertical", the others "horizontal", and the camera they imply (if they
    are orthogonal) and the horizon are reported.
    """
    H, W = np.asarray(image).shape[:2]
    size = (int(W), int(H))
    seg = detect_segments(image, cfg)
    length = np.linalg.norm(seg[:, 2:] - seg[:, :2], axis=1)
    cands, _ = find_vanishing_points(seg, size, cfg) if len(seg) else ([], np.arange(0))
    chosen, focal = select_vanishing_points(seg, cands, size, cfg) if cands else ([], None)
    # assign each segment to the chosen VP it fits best (among those it is an inlier of)
    assign = np.full(len(seg), -1)
    ambiguous = np.zeros(len(seg), dtype=bool)
    if chosen:
        res_deg = np.stack([line_angle_residuals(seg, cands[i][0]) for i in chosen], 1)
        inl = np.stack([_inlier_mask(seg, cands[i][0], cfg) for i in chosen], 1)
        res_deg[~inl] = np.inf
        has = inl.any(1)
        assign[has] = np.argmin(res_deg[has], 1)
        # a segment pointing at two or more kept VPs lies (nearly) on the line through them, e.g.
        # the sky / ground boundary, which is the horizon itself and points at every horizontal
        # VP: it says nothing about which direction it belongs to, so it does not count as
        # evidence either way (it would otherwise dilute the score by its length)
        ambiguous = inl.sum(1) >= 2
    groups: list[Any] = []
    roles: list[str | None] = [None] * len(chosen)
    if focal is not None:
        # the reference (first) VP is vertical when it lies nearer the image vertical than the others
        c = np.array([(W - 1) / 2, (H - 1) / 2])
        v = cands[chosen[0]][0]
        e = v[:2] - v[2] * c
        if abs(e[1]) >= abs(e[0]):
            roles = ["vertical"] + ["horizontal"] * (len(chosen) - 1)
    for k in range(len(chosen)):
        idx = np.flatnonzero(assign == k)
        if len(idx) >= 2:
            groups.append((f"vp{len(groups) + 1}", roles[k], seg[idx], [None] * len(idx)))
    res = analyze_groups(groups, size, (), tolerance_deg, robust=False)
    res.mode = "auto"
    res.issues = []  # group residuals are within the inlier threshold by construction
    if focal is not None:
        c = np.array([(W - 1) / 2, (H - 1) / 2])
        res.calibration = Calibration(tuple(g[0] for g in groups), c, focal, True, 0.0, True,
                                      "focal length searched with the principal point at the image centre")
        vert = [g for g in res.groups if g.role == "vertical"]
        if vert and res.horizon is None:  # else: the line through >= 2 horizontal VPs (analyze_groups)
            res.horizon = horizon_from_vertical(vert[0].vp, res.calibration.K())
            res.horizon_source = f"polar of the vertical vanishing point ({vert[0].name}) given the camera"
    rest = assign < 0
    res.unexplained = seg[rest] if len(seg) else np.zeros((0, 4))
    res.score_definition = (f"length-weighted fraction of detected line segments that point at none of the (at most "
                            f"{cfg.max_vps}) camera-consistent dominant vanishing points (0 = all explained)")
    if len(seg) < cfg.min_segments:
        res.score = 0.0
        res.decidable = False
        res.notes.append(f"only {len(seg)} line segments detected (< {cfg.min_segments}): no decision")
        return res
    counted = length[~ambiguous].sum()
    frac = float(length[rest].sum() / counted) if counted > 0 else 0.0
    res.score = frac
    amb = (f"; {int(ambiguous.sum())} segments pointing at two or more of them (on the horizon or a line "
           f"through two vanishing points) not counted") if ambiguous.any() else ""
    res.notes.append(f"{len(seg)} segments, {len(cands)} candidate and {len(groups)} selected vanishing points, "
                     f"{int(rest.sum())} segments unexplained ({100 * frac:.1f}% of the counted segment length){amb}")
    weak = _weak_evidence(seg, length, [cands[i][0] for i in chosen], focal, (int(H), int(W)), cfg)
    if weak:
        res.decidable = False
        res.notes.append(f"{weak}: no decision (the score is reported, the verdict abstains)")
        return res
    if frac > cfg.max_unexplained:
        res.issues.append(f"{100 * frac:.1f}% of the line-segment length points at none of the scene's "
                          f"vanishing points (> {100 * cfg.max_unexplained:.0f}%)")
    return res
