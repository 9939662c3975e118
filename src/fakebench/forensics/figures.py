"""Examiner-style overlays (matplotlib, Agg backend): lighting wedges and feasible region;
segments extended to their vanishing points with residuals coloured, and the horizon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from ._geometry import box_polygon, clip_line_to_box, clip_polygon  # noqa: E402
from .lighting import _CASE_WORDS, LightingResult, Region  # noqa: E402
from .perspective import PerspectiveResult  # noqa: E402

GROUP_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]


def _view_box(size: tuple[int, int], points: list[np.ndarray], max_factor: float) -> tuple[float, float, float, float]:
    """Image box grown to include ``points`` that lie within ``max_factor`` image sizes."""
    W, H = size
    x0, y0, x1, y1 = -0.5, -0.5, W - 0.5, H - 0.5
    for p in points:
        if p is None or not np.all(np.isfinite(p)):
            continue
        if -max_factor * W <= p[0] <= (1 + max_factor) * W and -max_factor * H <= p[1] <= (1 + max_factor) * H:
            x0, x1 = min(x0, p[0]), max(x1, p[0])
            y0, y1 = min(y0, p[1]), max(y1, p[1])
    mx, my = 0.04 * (x1 - x0), 0.04 * (y1 - y0)
    return x0 - mx, y0 - my, x1 + mx, y1 + my


def _figure(image: np.ndarray | None, size: tuple[int, int], box: tuple[float, float, float, float]) -> tuple[Any, Any]:
    W, H = size
    bw, bh = box[2] - box[0], box[3] - box[1]
    scale = 9.0 / max(bw, bh)
    fig, ax = plt.subplots(figsize=(max(4.0, bw * scale), max(3.0, bh * scale) + 0.6), dpi=110)
    if image is not None:
        ax.imshow(np.clip(image, 0, 1), extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
    ax.add_patch(Polygon(box_polygon(-0.5, -0.5, W - 0.5, H - 0.5), closed=True, fill=False, ec="0.3", lw=0.8))
    ax.set_xlim(box[0], box[2])
    ax.set_ylim(box[3], box[1])
    ax.set_aspect("equal")
    return fig, ax


def _draw_regions(ax: Any, regions: list[Region], box: tuple[float, float, float, float], colour: str, label: str,
                  ls: str = "-") -> None:
    first = True
    for r in regions:
        poly = r.polygon
        for n, p0 in (((1, 0), (box[0], 0)), ((-1, 0), (box[2], 0)), ((0, 1), (0, box[1])), ((0, -1), (0, box[3]))):
            poly = clip_polygon(poly, np.array(n, float), np.array(p0, float))
        if len(poly) < 3:
            if len(poly):
                ax.plot(poly[:, 0], poly[:, 1], "o", color=colour, ms=6)
            continue
        ax.add_patch(Polygon(poly, closed=True, fc=colour, ec=colour, alpha=0.35, lw=2, ls=ls,
                             label=(f"{label} (light {_CASE_WORDS[r.case]} the camera)" if first else None)))
        first = False


def lighting_figure(result: LightingResult, image: np.ndarray | None = None, path: str | Path | None = None,
                    title: str | None = None) -> Any:
    """Wedges of every constraint, the feasible light region (green) or, when inconsistent, the
    constraints of the smallest removal set in red and the region without them (dashed).
    Returns the figure (saved as PNG when ``path`` is given, then closed)."""
    size = result.image_size
    W, H = size
    pts: list[np.ndarray] = []
    for reg in result.regions or result.regions_after_removal:
        if len(reg.polygon):
            pts.append(reg.polygon.mean(0))
    box = _view_box(size, pts, 1.0)
    fig, ax = _figure(image, size, box)
    reach = 3 * max(box[2] - box[0], box[3] - box[1])
    bad = set(result.suspicious_constraints)
    sign = -1.0 if (result.cases == ["behind"]) else 1.0
    for k, c in enumerate(result.constraints):
        col = "red" if k in bad else "deepskyblue"
        if c.kind == "cast":
            th = np.radians(c.tolerance_deg)
            d = sign * c.direction
            a = np.arctan2(d[1], d[0])
            tri = np.array([c.anchor, c.anchor + reach * np.array([np.cos(a - th), np.sin(a - th)]),
                            c.anchor + reach * np.array([np.cos(a + th), np.sin(a + th)])])
            ax.add_patch(Polygon(tri, closed=True, fc=col, ec=col, alpha=0.15, lw=0.8))
            ax.plot([c.anchor[0], c.other[0]], [c.anchor[1], c.other[1]], "-", color=col, lw=2)
            ax.plot(*c.anchor, "s", color=col, ms=5, mec="k", mew=0.5)
            ax.plot(*c.other, "o", color=col, ms=5, mec="k", mew=0.5)
        else:
            n = c.direction  # the annotated outward normal (the feasible side flips for a light behind)
            t = np.array([-n[1], n[0]])
            ax.plot([c.anchor[0] - reach * t[0], c.anchor[0] + reach * t[0]],
                    [c.anchor[1] - reach * t[1], c.anchor[1] + reach * t[1]], ":", color=col, lw=1.2)
            ax.annotate("", xy=c.anchor + 0.06 * max(W, H) * n, xytext=c.anchor,
                        arrowprops=dict(arrowstyle="->", color=col, lw=2))
            ax.plot(*c.anchor, "D", color=col, ms=5, mec="k", mew=0.5)
        ax.annotate(c.object, c.anchor, textcoords="offset points", xytext=(4, 4), fontsize=7, color=col)
    if result.consistent:
        _draw_regions(ax, result.regions, box, "limegreen", "feasible light")
    else:
        _draw_regions(ax, result.regions_after_removal, box, "orange", "feasible without red", ls="--")
    ax.plot([], [], "s", color="deepskyblue", label="shadow point (square) / object point (dot)"
            + ("; wedges flipped: light behind the camera" if sign < 0 else ""))
    if bad:
        ax.plot([], [], "-", color="red", label="smallest removal set")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
    ax.set_title(title or ("lighting: CONSISTENT" if result.consistent else
                           f"lighting: INCONSISTENT - suspicious: {', '.join(result.suspicious_objects)}"), fontsize=10)
    return _finish(fig, path)


def perspective_figure(result: PerspectiveResult, image: np.ndarray | None = None, path: str | Path | None = None,
                       title: str | None = None, extend_factor: float = 0.5) -> Any:
    """Segments coloured by residual (degrees), each extended to its group's vanishing point
    (dashed, group colour), VPs within ``extend_factor`` image sizes drawn, the horizon, the
    implied principal point and the image centre; unexplained auto-mode segments in grey."""
    size = result.image_size
    W, H = size
    vps = [g.vp_xy for g in result.groups]
    box = _view_box(size, [v for v in vps if v is not None], extend_factor)
    fig, ax = _figure(image, size, box)
    tol = result.tolerance_deg
    cmap = plt.get_cmap("RdYlGn_r")
    vmax = max(3 * tol, max((g.max_deg for g in result.groups), default=0.0))
    norm = matplotlib.colors.Normalize(0, vmax)
    far = 4 * max(box[2] - box[0], box[3] - box[1])
    for k, g in enumerate(result.groups):
        col = GROUP_COLOURS[k % len(GROUP_COLOURS)]
        v = g.vp
        for s in g.segments:
            m = 0.5 * (s[:2] + s[2:])
            if abs(v[2]) > 1e-12:
                tgt = v[:2] / v[2]
                e = tgt - m
                if np.linalg.norm(e) > far:
                    tgt = m + far * e / np.linalg.norm(e)
            else:
                d = v[:2] / np.linalg.norm(v[:2])
                # toward the side the segment's far end lies on (either direction is the VP)
                tgt = m + far * d
            ax.plot([m[0], tgt[0]], [m[1], tgt[1]], "--", color=col, lw=0.6, alpha=0.6)
        xy = g.vp_xy
        if xy is not None:
            ax.plot(*xy, "X", color=col, ms=10, mec="k", label=f"VP {g.name}" + (f" ({g.role})" if g.role else ""))
        else:
            ax.plot([], [], "X", color=col, label=f"VP {g.name} at infinity")
        for i, s in enumerate(g.segments):
            ax.plot([s[0], s[2]], [s[1], s[3]], "-", color=cmap(norm(g.residuals_deg[i])), lw=2.5,
                    solid_capstyle="round")
            if g.residuals_deg[i] > tol and result.mode != "auto":
                ax.annotate(f"{g.residuals_deg[i]:.1f}°", 0.5 * (s[:2] + s[2:]), fontsize=7, color="red",
                            textcoords="offset points", xytext=(3, -8))
    for s in result.unexplained:
        ax.plot([s[0], s[2]], [s[1], s[3]], "-", color="0.6", lw=1.5)
    if len(result.unexplained):
        ax.plot([], [], "-", color="0.6", label="unexplained segment")
    if result.horizon is not None:
        seg = clip_line_to_box(result.horizon, box)
        if seg is not None:
            ax.plot(seg[:, 0], seg[:, 1], "-", color="magenta", lw=1.5, label="horizon")
    cal = result.calibration
    if cal is not None and cal.principal_point is not None:
        ax.plot(*cal.principal_point, "+", color="red", ms=14, mew=2,
                label="principal point" + (" (assumed)" if cal.assumed_principal_point else ""))
    ax.plot((W - 1) / 2, (H - 1) / 2, "+", color="white", ms=10, mew=1.5, label="image centre")
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, fraction=0.035, pad=0.02)
    cb.set_label("segment residual (deg)")
    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
    word = "UNDECIDED" if not result.decidable else ("CONSISTENT" if result.consistent else "INCONSISTENT")
    ax.set_title(title or f"perspective ({result.mode}): {word}, score {result.score:.3f}", fontsize=10)
    return _finish(fig, path)


def _finish(fig: Any, path: str | Path | None) -> Any:
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), format="png")
        plt.close(fig)
    return fig

