"""Small projective-geometry helpers shared by the lighting and perspective analyzers.

Conventions: image points are (x, y) in pixels, x to the right, y down, the centre of pixel
(row i, column j) at (x=j, y=i). Homogeneous points and lines are 3-vectors; a line ``l``
contains the point ``p`` when ``l @ p == 0``.
"""

from __future__ import annotations

import numpy as np


def normalizer(width: float, height: float) -> np.ndarray:
    """3x3 similarity taking pixel coordinates to a conditioned frame: origin at the image
    centre ((W-1)/2, (H-1)/2), unit = half the larger image side (Hartley normalisation)."""
    s = max(float(width), float(height)) / 2.0
    cx, cy = (float(width) - 1.0) / 2.0, (float(height) - 1.0) / 2.0
    return np.array([[1.0 / s, 0.0, -cx / s], [0.0, 1.0 / s, -cy / s], [0.0, 0.0, 1.0]])


def homog(pts: np.ndarray) -> np.ndarray:
    """(n, 2) -> (n, 3) with a trailing 1."""
    pts = np.asarray(pts, dtype=float)
    return np.concatenate([pts, np.ones(pts.shape[:-1] + (1,))], axis=-1)


def apply_h(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 affine transform (last row 0 0 1) to (n, 2) points."""
    pts = np.asarray(pts, dtype=float)
    return pts @ T[:2, :2].T + T[:2, 2]


def segment_lines(seg: np.ndarray) -> np.ndarray:
    """(n, 4) segments [x1, y1, x2, y2] -> (n, 3) homogeneous lines scaled so that
    ``hypot(a, b) == 1`` (then ``l @ [x, y, 1]`` is a signed distance)."""
    seg = np.asarray(seg, dtype=float)
    lines = np.cross(homog(seg[:, :2]), homog(seg[:, 2:]))
    return lines / np.linalg.norm(lines[:, :2], axis=1, keepdims=True)


def line_angle_residuals(seg: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between each segment and the line from its midpoint to the
    homogeneous point ``v`` (which may be at infinity, ``v[2] == 0``). Shape (n,)."""
    seg = np.asarray(seg, dtype=float)
    d = seg[:, 2:] - seg[:, :2]
    m = 0.5 * (seg[:, :2] + seg[:, 2:])
    e = v[None, :2] - v[2] * m
    cross = np.abs(d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0])
    dot = np.abs(np.sum(d * e, axis=1))
    ang = np.degrees(np.arctan2(cross, dot))  # accurate near 0 (unlike arccos)
    return np.where(np.linalg.norm(e, axis=1) > 0, ang, 0.0)


def line_through(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Homogeneous line through two homogeneous points."""
    return np.cross(p, q)


def dehomog(v: np.ndarray, eps: float = 1e-12) -> np.ndarray | None:
    """Finite (x, y) of a homogeneous point, or None when it is (numerically) at infinity."""
    if abs(v[2]) <= eps * max(np.linalg.norm(v), 1e-300):
        return None
    return np.asarray(v[:2] / v[2], dtype=float)


def rotate(v: np.ndarray, deg: float) -> np.ndarray:
    """Rotate a 2-vector counter-clockwise (in x-right, y-up terms) by ``deg`` degrees.
    In image coordinates (y down) the rotation is visually clockwise; only its sign matters."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def clip_polygon(poly: np.ndarray, n: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """Clip a convex polygon (k, 2) to the half-plane ``n . (p - p0) >= 0`` (Sutherland-Hodgman
    against one edge). Returns the clipped (m, 2) polygon, possibly empty (0, 2)."""
    if len(poly) == 0:
        return poly
    f = (poly - p0) @ n
    out: list[np.ndarray] = []
    k = len(poly)
    for i in range(k):
        a, b = poly[i], poly[(i + 1) % k]
        fa, fb = f[i], f[(i + 1) % k]
        if fa >= 0:
            out.append(a)
        if (fa >= 0) != (fb >= 0):
            t = fa / (fa - fb)
            out.append(a + t * (b - a))
    return np.array(out, dtype=float).reshape(-1, 2)


def box_polygon(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def polygon_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clip_line_to_box(l: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """End points (2, 2) of the part of the homogeneous line ``l`` inside ``box`` =
    (x0, y0, x1, y1), or None when the line misses the box."""
    x0, y0, x1, y1 = box
    a, b, c = l
    pts = []
    if abs(b) > 1e-15:
        for x in (x0, x1):
            y = -(a * x + c) / b
            if y0 - 1e-9 <= y <= y1 + 1e-9:
                pts.append((x, y))
    if abs(a) > 1e-15:
        for y in (y0, y1):
            x = -(b * y + c) / a
            if x0 - 1e-9 <= x <= x1 + 1e-9:
                pts.append((x, y))
    if len(pts) < 2:
        return None
    pts_arr = np.array(pts)
    # the two most distant intersections
    d = np.linalg.norm(pts_arr[:, None] - pts_arr[None], axis=2)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    return pts_arr[[i, j]]
