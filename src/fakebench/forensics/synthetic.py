"""Synthetic scenes with known geometry, for tests, examples and sanity checks.

A pinhole camera (focal length ``f`` pixels, principal point ``(cx, cy)``, square pixels,
zero skew) looks at axis-aligned boxes and spheres standing on the ground plane ``Z = 0``
(world Z up), lit by a point light. Everything is computed exactly with numpy:

* projection ``x = K (R X + t)``, camera frame x right, y down, z forward;
* cast shadows: a box corner ``X`` casts its shadow where the ray from the light ``L`` through
  ``X`` meets the ground, ``S = L + (X - L) L_z / (L_z - X_z)``;
* attached shadows: points of a sphere's occluding contour (where the viewing ray is tangent),
  with the contour's image normal, lit when ``n . (L - X) > 0``;
* rasterisation: sky / textured ground per pixel by ray casting, box faces as Lambertian
  polygons (painter's order, 3x supersampled for anti-aliasing), spheres per pixel, shadows
  darkening the ground, plus Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from skimage.draw import line_aa
from skimage.draw import polygon as draw_polygon
from skimage.transform import downscale_local_mean

# box edges by corner index; corners ordered (x0|x1, y0|y1, z0|z1) as bits (i&1, i&2, i&4)
BOX_EDGES = {
    "x": [(0, 1), (2, 3), (4, 5), (6, 7)],
    "y": [(0, 2), (1, 3), (4, 6), (5, 7)],
    "z": [(0, 4), (1, 5), (2, 6), (3, 7)],
}
BOX_FACES = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]


@dataclass
class Camera:
    """Pinhole camera: ``X_cam = R X_world + t``; pixel = ``(f x/z + cx, f y/z + cy)``."""

    f: float
    cx: float
    cy: float
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.f, 0, self.cx], [0, self.f, self.cy], [0, 0, 1.0]])

    @property
    def center(self) -> np.ndarray:
        return -self.R.T @ self.t

    @classmethod
    def look_at(cls, eye: Sequence[float], target: Sequence[float], f: float, width: int, height: int,
                roll_deg: float = 0.0, principal_point: Sequence[float] | None = None) -> "Camera":
        eye = np.asarray(eye, dtype=float)
        fwd = np.asarray(target, dtype=float) - eye
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        R = np.stack([right, down, fwd])
        if roll_deg:
            a = np.radians(roll_deg)
            Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
            R = Rz @ R
        cx, cy = principal_point if principal_point is not None else ((width - 1) / 2, (height - 1) / 2)
        return cls(float(f), float(cx), float(cy), R, -R @ eye, int(width), int(height))

    def to_cam(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.R.T + self.t

    def project(self, X: np.ndarray) -> np.ndarray:
        """(n, 3) world points -> (n, 2) pixels (points behind the camera project mirrored)."""
        Xc = self.to_cam(np.atleast_2d(X))
        return np.stack([self.f * Xc[:, 0] / Xc[:, 2] + self.cx, self.f * Xc[:, 1] / Xc[:, 2] + self.cy], axis=1)

    def vanishing_point(self, direction: Sequence[float]) -> np.ndarray:
        """Homogeneous image of a world direction (unit norm)."""
        v = self.K @ (self.R @ np.asarray(direction, dtype=float))
        return v / np.linalg.norm(v)

    def rays(self) -> np.ndarray:
        """(H, W, 3) world-frame ray directions through pixel centres."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(float)
        d = np.stack([(xs - self.cx) / self.f, (ys - self.cy) / self.f, np.ones_like(xs)], axis=-1)
        return d @ self.R  # R^T d per pixel


@dataclass
class Box:
    """Axis-aligned box ``[x, x + sx] x [y, y + sy] x [0, sz]`` standing on the ground."""

    x: float
    y: float
    sx: float
    sy: float
    sz: float
    name: str = "box"
    albedo: float = 0.75

    def corners(self) -> np.ndarray:
        return np.array([[self.x + self.sx * (i & 1), self.y + self.sy * ((i >> 1) & 1), self.sz * ((i >> 2) & 1)]
                         for i in range(8)], dtype=float)

    def top_corners(self) -> np.ndarray:
        return self.corners()[4:]


@dataclass
class Sphere:
    center: tuple[float, float]  # (X, Y) on the ground; the sphere rests on it
    radius: float
    name: str = "ball"
    albedo: float = 0.8

    @property
    def c3(self) -> np.ndarray:
        return np.array([self.center[0], self.center[1], self.radius], dtype=float)


def cast_shadow_point(light: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Where the ray from the point light through ``X`` meets the ground plane Z = 0."""
    L = np.asarray(light, dtype=float)
    X = np.asarray(X, dtype=float)
    return L + (X - L) * (L[2] / (L[2] - X[..., 2:3]))


def sphere_contour(cam: Camera, sph: Sphere, n: int = 72) -> tuple[np.ndarray, np.ndarray]:
    """World points (n, 3) of the occluding contour and their outward unit normals (n, 3)."""
    C = cam.to_cam(sph.c3[None])[0]
    D = np.linalg.norm(C)
    r = sph.radius
    c0 = C * (1 - r * r / (D * D))
    rho = r * np.sqrt(1 - r * r / (D * D))
    e1 = np.cross(C, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(C / D, e1)
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    Xc = c0 + rho * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
    Xw = (Xc - cam.t) @ cam.R  # back to world
    nw = (Xw - sph.c3) / r
    return Xw, nw


def attached_shadow_constraints(cam: Camera, sph: Sphere, light: np.ndarray, k: int = 2,
                                lit_margin_deg: float = 10.0) -> list[dict[str, Any]]:
    """``k`` annotations on the sphere's occluding contour, each ``lit_margin_deg`` inside the
    lit side of the attached-shadow boundary (where the light grazes the surface)."""
    Xw, nw = sphere_contour(cam, sph, 720)
    to_l = np.asarray(light, dtype=float) - Xw
    cosang = np.sum(nw * to_l, axis=1) / np.linalg.norm(to_l, axis=1)
    # contour points where the light elevation over the tangent plane is ~lit_margin_deg
    target = np.sin(np.radians(lit_margin_deg))
    cand = np.flatnonzero((cosang > 0) & (np.abs(cosang - target) < 0.02))
    if len(cand) == 0:
        cand = np.flatnonzero(cosang > 0)
    # spread the choices along the contour
    pick = cand[np.linspace(0, len(cand) - 1, k).round().astype(int)] if len(cand) >= k else cand
    out = []
    for i in pick:
        p = cam.project(Xw[i][None])[0]
        q = cam.project((Xw[i] + 1e-3 * sph.radius * nw[i])[None])[0]
        nimg = (q - p) / np.linalg.norm(q - p)
        out.append({"object": sph.name, "point": [float(p[0]), float(p[1])], "normal": [float(nimg[0]), float(nimg[1])]})
    return out


def box_segments(cam: Camera, box: Box) -> dict[str, np.ndarray]:
    """Image segments (4, 4) of the box edges per world direction "x", "y", "z"."""
    P = cam.project(box.corners())
    return {k: np.array([[*P[a], *P[b]] for a, b in e]) for k, e in BOX_EDGES.items()}


@dataclass
class Scene:
    camera: Camera
    boxes: list[Box]
    light: np.ndarray
    spheres: list[Sphere] = field(default_factory=list)
    box_cameras: list[Camera | None] | None = None  # per-box camera override ("pasted" objects)
    shadow_lights: list[np.ndarray | None] | None = None  # per-box light for its cast shadow (tampering)

    def cam_for(self, i: int) -> Camera:
        if self.box_cameras is not None and self.box_cameras[i] is not None:
            return self.box_cameras[i]
        return self.camera


def _smooth_field(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray, n: int = 6) -> np.ndarray:
    out = np.zeros_like(X)
    for _ in range(n):
        k = rng.normal(0, 1.2, 2)
        out += np.sin(k[0] * X + k[1] * Y + rng.uniform(0, 2 * np.pi)) / n
    return out


def render(scene: Scene, rng: np.random.Generator, noise: float = 0.01, supersample: int = 3,
           shadows: bool = True, outline: float = 0.0, texture: float = 0.08) -> np.ndarray:
    """Rasterise ``scene`` to float32 (H, W, 3) in [0, 1] (see the module docstring).

    ``outline`` > 0 draws the visible box edges as dark anti-aliased lines (``line_aa`` on the
    supersampled grid) of that width in output pixels; ``texture`` is the ground texture
    amplitude; ``noise`` the standard deviation of the added Gaussian noise."""
    cam = scene.camera
    ss = supersample
    big = _supersampled(cam, ss, cam.width, cam.height)
    d = big.rays()
    L = np.asarray(scene.light, dtype=float)
    img = np.zeros((cam.height * ss, cam.width * ss, 3))
    gnd = _paint_sky_and_ground(img, d, cam.center, L, rng, texture)
    if shadows:
        _paint_cast_shadows(img, scene, big, gnd, L)
    _paint_objects(img, scene, d, L, ss, outline)
    out = downscale_local_mean(img, (ss, ss, 1))
    out = out + rng.normal(0, noise, out.shape)
    return np.clip(out, 0, 1).astype(np.float32)


def _supersampled(c: Camera, ss: int, W: int, H: int) -> Camera:
    """``c`` on a grid ``ss`` times finer (pixel centres kept), for a ``W`` x ``H`` image."""
    return Camera(c.f * ss, (c.cx + 0.5) * ss - 0.5, (c.cy + 0.5) * ss - 0.5, c.R, c.t, W * ss, H * ss)


def _paint_sky_and_ground(img: np.ndarray, d: np.ndarray, eye: np.ndarray, L: np.ndarray, rng: np.random.Generator,
                          texture: float) -> np.ndarray:
    """Sky above the horizon; below it the ground plane, smoothly textured and Lambertian from
    the point light ``L``. Returns the ground mask."""
    sky = (d[..., 2] >= 0)
    g = np.clip(d[..., 2] / np.linalg.norm(d, axis=-1), 0, 1)
    img[sky] = (np.array([0.55, 0.7, 0.9]) * (1 - 0.4 * g[..., None]))[sky]
    with np.errstate(divide="ignore", invalid="ignore"):
        tt = np.where(d[..., 2] < 0, -eye[2] / d[..., 2], np.nan)
    GX = eye[0] + tt * d[..., 0]
    GY = eye[1] + tt * d[..., 1]
    gnd = ~sky
    tex = 0.5 + texture * _smooth_field(rng, np.nan_to_num(GX), np.nan_to_num(GY))
    to_l = np.stack([L[0] - GX, L[1] - GY, np.full_like(GX, L[2])], axis=-1)
    lam = np.clip(to_l[..., 2] / np.linalg.norm(to_l, axis=-1), 0, 1)
    shade = (0.35 + 0.65 * lam) * tex
    base = np.array([0.62, 0.56, 0.45])
    img[gnd] = (shade[..., None] * base * 1.6)[gnd]
    return gnd


def _darken_ground(img: np.ndarray, big: Camera, gnd: np.ndarray, shadow: np.ndarray) -> None:
    """Darken the ground inside the convex hull of the ground points ``shadow`` (n, >=2)."""
    hull = _convex_hull(shadow[:, :2])
    P = big.project(np.column_stack([hull, np.zeros(len(hull))]))
    rr, cc = draw_polygon(P[:, 1], P[:, 0], img.shape[:2])
    m = gnd[rr, cc]
    img[rr[m], cc[m]] *= 0.45


def _paint_cast_shadows(img: np.ndarray, scene: Scene, big: Camera, gnd: np.ndarray, L: np.ndarray) -> None:
    """Cast shadows on the ground: each box's (convex hull of its base and its projected top,
    from its own shadow light when set) and each sphere's (hull of a dense set of its points)."""
    for i, b in enumerate(scene.boxes):
        Li = L if scene.shadow_lights is None or scene.shadow_lights[i] is None else scene.shadow_lights[i]
        _darken_ground(img, big, gnd, np.vstack([b.corners()[:4], cast_shadow_point(Li, b.top_corners())]))
    for s in scene.spheres:
        ang = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        u = np.stack([np.cos(ang), np.sin(ang)], 1)
        pts = []
        for el in np.linspace(-np.pi / 2, np.pi / 2, 9):
            ring = s.c3 + s.radius * np.column_stack([np.cos(el) * u, np.full(len(u), np.sin(el))])
            pts.append(cast_shadow_point(L, ring))
        _darken_ground(img, big, gnd, np.vstack(pts))


def _box_face_items(scene: Scene, L: np.ndarray, ss: int) -> list[tuple[float, str, Any]]:
    """(depth, "poly", (projected corners, colour)) of every front-facing box face, each box
    seen by its own camera when overridden."""
    cam = scene.camera
    faces: list[tuple[float, str, Any]] = []
    for i, b in enumerate(scene.boxes):
        bc = scene.cam_for(i)
        bbig = _supersampled(bc, ss, cam.width, cam.height)
        C = b.corners()
        ctr = C.mean(0)
        for f_idx in BOX_FACES:
            Q = C[list(f_idx)]
            fc = Q.mean(0)
            n = np.cross(Q[1] - Q[0], Q[3] - Q[0])
            n /= np.linalg.norm(n)
            if n @ (fc - ctr) < 0:
                n = -n
            if n @ (bc.center - fc) <= 0:  # back face
                continue
            to = L - fc
            lamf = max(0.0, float(n @ to / np.linalg.norm(to)))
            # Lambertian plus an orientation-dependent ambient term, so adjacent faces differ
            amb = 0.6 if abs(n[2]) > 0.5 else (0.4 if abs(n[0]) > 0.5 else 0.2)
            col = b.albedo * (amb + 0.4 * lamf) * np.array([0.9, 0.85, 1.0])
            depth = float(np.linalg.norm(bc.to_cam(fc[None])[0]))
            faces.append((depth, "poly", (bbig.project(Q), col)))
    return faces


def _paint_sphere(img: np.ndarray, s: Sphere, eye: np.ndarray, dn: np.ndarray, L: np.ndarray) -> None:
    """Ray-cast sphere ``s`` per pixel (unit rays ``dn`` from ``eye``), Lambertian from ``L``."""
    oc = eye - s.c3
    bq = np.sum(dn * oc, -1)
    disc = bq ** 2 - (oc @ oc - s.radius ** 2)
    th = -bq - np.sqrt(np.where(disc > 0, disc, 0))
    hit = (disc > 0) & (th > 0)
    X = eye + th[..., None] * dn
    nrm = (X - s.c3) / s.radius
    to = L - X
    lamf = np.clip(np.sum(nrm * to, -1) / np.linalg.norm(to, axis=-1), 0, 1)
    col = s.albedo * (0.08 + 0.92 * lamf)[..., None] * np.array([0.9, 0.5, 0.4])
    img[hit] = col[hit]


def _paint_objects(img: np.ndarray, scene: Scene, d: np.ndarray, L: np.ndarray, ss: int, outline: float) -> None:
    """Box faces (polygons, optionally outlined) and spheres, farthest first (painter's order)."""
    cam = scene.camera
    faces = _box_face_items(scene, L, ss)
    for s in scene.spheres:
        faces.append((float(np.linalg.norm(cam.to_cam(s.c3[None])[0])), "sphere", s))
    dn = d / np.linalg.norm(d, axis=-1, keepdims=True)
    for _, kind, item in sorted(faces, key=lambda x: -x[0]):
        if kind == "poly":
            P, col = item
            rr, cc = draw_polygon(P[:, 1], P[:, 0], img.shape[:2])
            img[rr, cc] = col
            if outline > 0:
                _draw_outline(img, P, outline * ss)
            continue
        _paint_sphere(img, item, cam.center, dn, L)


def _draw_outline(img: np.ndarray, P: np.ndarray, width: float, value: float = 0.05) -> None:
    """Dark anti-aliased polygon outline (parallel ``line_aa`` strokes to reach ``width``)."""
    H, W = img.shape[:2]
    k = len(P)
    offs = np.arange(-(width - 1) / 2, (width - 1) / 2 + 1e-9, 1.0) if width > 1 else np.array([0.0])
    for i in range(k):
        a, b = P[i], P[(i + 1) % k]
        d = b - a
        L = np.linalg.norm(d)
        if L < 1e-9:
            continue
        nrm = np.array([-d[1], d[0]]) / L
        for o in offs:
            a2, b2 = a + o * nrm, b + o * nrm
            rr, cc, val = line_aa(int(round(a2[1])), int(round(a2[0])), int(round(b2[1])), int(round(b2[0])))
            m = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
            rr, cc, val = rr[m], cc[m], val[m][:, None]
            img[rr, cc] = img[rr, cc] * (1 - val) + value * val


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull of (n, 2) points, counter-clockwise."""
    P = sorted(map(tuple, np.round(pts, 12)))
    if len(P) <= 2:
        return np.array(P)

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple] = []
    for p in P:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple] = []
    for p in reversed(P):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


# -- annotation builders ----------------------------------------------------------------------
def lighting_annotations(scene: Scene, corners: Sequence[int] = (0, 3), tolerance_deg: float = 3.0,
                         attached_per_sphere: int = 2, attached_tolerance_deg: float = 5.0) -> dict[str, Any]:
    """Lighting annotation dict: cast shadows of the given top corners (0..3) of every box (with
    the box's ``shadow_lights`` override when set), and attached-shadow points on every sphere."""
    cam = scene.camera
    L = np.asarray(scene.light, dtype=float)
    cast = []
    for i, b in enumerate(scene.boxes):
        Li = L if scene.shadow_lights is None or scene.shadow_lights[i] is None else scene.shadow_lights[i]
        top = b.top_corners()
        for k in corners:
            X = top[k]
            S = cast_shadow_point(Li, X)
            o, s = cam.project(np.vstack([X, S]))
            if not all(0 <= q[0] <= cam.width - 1 and 0 <= q[1] <= cam.height - 1 for q in (o, s)):
                continue  # an annotator can only mark what the image shows
            cast.append({"object": b.name, "shadow": [float(s[0]), float(s[1])],
                         "object_point": [float(o[0]), float(o[1])], "tolerance_deg": tolerance_deg})
    att = []
    for s in scene.spheres:
        for a in attached_shadow_constraints(cam, s, L, attached_per_sphere):
            a["tolerance_deg"] = attached_tolerance_deg
            att.append(a)
    return {"type": "lighting", "image_size": [cam.width, cam.height], "cast_shadows": cast, "attached_shadows": att}


def clip_segment(s: np.ndarray, width: int, height: int, margin: float = 0.5) -> np.ndarray | None:
    """The part of segment ``[x1, y1, x2, y2]`` inside the image (Liang-Barsky), or None."""
    p, d = s[:2], s[2:] - s[:2]
    t0, t1 = 0.0, 1.0
    for q, dq, lo, hi in ((p[0], d[0], -margin, width - 1 + margin), (p[1], d[1], -margin, height - 1 + margin)):
        for num, den in ((q - lo, -dq), (hi - q, dq)):
            if den == 0:
                if num < 0:
                    return None
                continue
            t = num / den
            if den < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
    if t0 >= t1:
        return None
    return np.array([*(p + t0 * d), *(p + t1 * d)])


def perspective_annotations(scene: Scene, tolerance_deg: float = 1.0, orthogonal: bool = True,
                            min_length: float = 5.0) -> dict[str, Any]:
    """Perspective annotation dict with every box edge (hidden ones too), clipped to the image
    and kept when at least ``min_length`` px long, grouped by world direction; the vertical
    group has role "vertical", the other two "horizontal"."""
    groups: dict[str, list[dict[str, Any]]] = {"x": [], "y": [], "z": []}
    W, H = scene.camera.width, scene.camera.height
    for i, b in enumerate(scene.boxes):
        segs = box_segments(scene.cam_for(i), b)
        for k in groups:
            for s in segs[k]:
                c = clip_segment(s, W, H, margin=0.0)
                if c is None or np.hypot(*(c[2:] - c[:2])) < min_length:
                    continue
                groups[k].append({"p1": [float(c[0]), float(c[1])], "p2": [float(c[2]), float(c[3])], "object": b.name})
    out = {
        "type": "perspective", "image_size": [scene.camera.width, scene.camera.height], "tolerance_deg": tolerance_deg,
        "groups": [
            {"name": "x", "role": "horizontal", "segments": groups["x"]},
            {"name": "y", "role": "horizontal", "segments": groups["y"]},
            {"name": "z", "role": "vertical", "segments": groups["z"]},
        ],
    }
    if orthogonal:
        out["orthogonal"] = ["x", "y", "z"]
    return out


def random_scene(rng: np.random.Generator, size: int = 256, n_boxes: int = 5, altered: bool = False,
                 alter_deg: float = 8.0, alter_axis: str = "random") -> tuple[Scene, int | None]:
    """A random street-like scene of ``n_boxes`` boxes seen from a pitched-down camera with a
    random yaw. ``altered=True`` renders one box through a camera rotated by ``alter_deg``
    about its centre (a pasted object whose perspective disagrees): about a random axis
    (``alter_axis="random"``) or about the line of sight to the box (``"view"``: the box's
    image turns by about ``alter_deg`` in the image plane). Returns (scene, index of the altered
    box or None)."""
    f = size * rng.uniform(0.9, 1.2)
    yaw = rng.uniform(20, 70)
    dist = rng.uniform(17, 21)
    eye = np.array([-dist * np.sin(np.radians(yaw)), -dist * np.cos(np.radians(yaw)), rng.uniform(6, 10)])
    cam = Camera.look_at(eye, [0.0, 0.0, 1.0], f, size, size)
    boxes = []
    slots = [(gx, gy) for gy in (-5.5, -1.0, 3.5) for gx in (-5.5, -1.0, 3.5)]
    order = rng.permutation(len(slots))[:n_boxes]
    for j, k in enumerate(order):
        x0, y0 = slots[k]
        boxes.append(Box(x0 + rng.uniform(0, 0.6), y0 + rng.uniform(0, 0.6), rng.uniform(2.2, 3.4),
                         rng.uniform(2.2, 3.4), rng.uniform(2.0, 5.0), name=f"box{j}",
                         albedo=rng.uniform(0.75, 1.0)))
    light = np.array([rng.uniform(-15, 15), rng.uniform(-15, 15), rng.uniform(12, 20)])
    scene = Scene(cam, boxes, light)
    idx = None
    if altered:
        # one of the two boxes nearest to the camera (rarely occluded)
        near = np.argsort([np.linalg.norm(b.corners().mean(0) - eye) for b in boxes])[:2]
        idx = int(rng.choice(near))
        cb = boxes[idx].corners().mean(0)
        Xc = cam.to_cam(cb[None])[0]
        axis = rng.normal(size=3) if alter_axis == "random" else Xc.copy()
        axis /= np.linalg.norm(axis)
        a = np.radians(alter_deg) * rng.choice([-1, 1])
        Kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        Rd = np.eye(3) + np.sin(a) * Kx + (1 - np.cos(a)) * Kx @ Kx
        # rotate the camera frame about the box centre so the box stays in place in the image
        R2 = Rd @ cam.R
        t2 = Xc - R2 @ cb
        scene.box_cameras = [None] * len(boxes)
        scene.box_cameras[idx] = Camera(cam.f, cam.cx, cam.cy, R2, t2, size, size)
    return scene, idx
