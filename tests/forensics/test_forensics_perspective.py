"""Perspective analysis (Farid 2022) on exactly projected scenes with a known camera.

Rendering (fakebench.forensics.synthetic.random_scene): a pinhole camera with square pixels,
zero skew, focal length f = size * U(0.9, 1.2) px and the principal point at the image centre,
placed 17-21 units from the origin at a random yaw and 6-10 units high, looking at (0, 0, 1);
five axis-aligned boxes on the ground plane Z = 0. The 12 edges of each box are projected
exactly (x = K(RX + t)), clipped to the image, and grouped by world direction: "x" and "y"
(horizontal) and "z" (vertical), declared mutually orthogonal. An "altered" box is projected
through a camera rotated by 8 deg about the line of sight to the box centre (a pasted object)
or, where stated, about a random axis through the box centre.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakebench.forensics import (
    analyze_groups,
    analyze_perspective,
    calibrate,
    horizon_from_vertical,
    parse_perspective,
    vanishing_point,
)
from fakebench.forensics._geometry import line_angle_residuals
from fakebench.forensics.synthetic import Camera, perspective_annotations, random_scene


def _concurrent_segments(rng: np.random.Generator, v: np.ndarray, n: int, size=(640, 480)) -> np.ndarray:
    """Segments inside the image whose lines pass exactly through the finite point ``v``:
    each starts at a random image point p and ends at p + t (v - p)."""
    W, H = size
    segs = []
    while len(segs) < n:
        p = rng.uniform([20, 20], [W - 20, H - 20])
        d = v - p
        q = p + d / np.linalg.norm(d) * rng.uniform(40, 120)
        if 0 <= q[0] <= W - 1 and 0 <= q[1] <= H - 1:
            segs.append([*p, *q])
    return np.array(segs)


@pytest.mark.parametrize("v", [(1234.5, -321.25), (250.0, 200.0), (-8.0e4, 3.0e4)])
def test_vanishing_point_of_concurrent_segments(v) -> None:
    """Exactly concurrent segments (a VP inside, outside and far outside the image)."""
    rng = np.random.default_rng(0)
    v = np.array(v)
    seg = _concurrent_segments(rng, v, 7)
    h = vanishing_point(seg, (640, 480))
    est = h[:2] / h[2]
    rel = np.linalg.norm(est - v) / np.linalg.norm(v)
    assert rel < 1e-6, (est, v, rel)


def test_vanishing_point_at_infinity() -> None:
    """Parallel segments: the VP is a direction (third coordinate 0) along them."""
    rng = np.random.default_rng(1)
    d = np.array([np.cos(0.3), np.sin(0.3)])
    p = rng.uniform(50, 400, size=(6, 2))
    seg = np.hstack([p, p + 80 * d])
    h = vanishing_point(seg, (640, 480))
    assert abs(h[2]) < 1e-9
    assert abs(abs(h[:2] @ d) - 1) < 1e-9
    res = analyze_groups([("par", None, seg, [None] * 6)], (640, 480))
    assert res.groups[0].vp_xy is None and res.groups[0].max_deg < 1e-6


def test_focal_length_within_two_percent() -> None:
    """Six scenes (640x640), segment end points perturbed by N(0, 0.2 px): the focal length
    from the three orthogonal VPs is within 2% and the principal point within 2% of the half
    diagonal of the truth."""
    rng = np.random.default_rng(11)
    errs, pp_errs = [], []
    for _ in range(6):
        sc, _ = random_scene(rng, size=640)
        d = perspective_annotations(sc, tolerance_deg=3.0)
        for g in d["groups"]:
            for s in g["segments"]:
                s["p1"] = [c + rng.normal(0, 0.2) for c in s["p1"]]
                s["p2"] = [c + rng.normal(0, 0.2) for c in s["p2"]]
        res = analyze_perspective(parse_perspective(d, "scene.json", image_size=(640, 640)))
        cal = res.calibration
        assert cal is not None and cal.focal_px is not None and cal.plausible
        errs.append(abs(cal.focal_px / sc.camera.f - 1))
        pp_errs.append(np.linalg.norm(cal.principal_point - [sc.camera.cx, sc.camera.cy]) / (0.5 * np.hypot(640, 640)))
    print(f"focal-length relative error: max {max(errs):.4f}, mean {np.mean(errs):.4f}; "
          f"principal point error (half-diagonals): max {max(pp_errs):.4f}")
    assert max(errs) < 0.02
    assert max(pp_errs) < 0.02


def test_consistent_scene_is_consistent_with_exact_camera() -> None:
    rng = np.random.default_rng(3)
    sc, _ = random_scene(rng, size=480)
    res = analyze_perspective(parse_perspective(perspective_annotations(sc), "scene.json"))
    assert res.consistent, res.issues
    assert res.groups[0].max_deg < 1e-6
    assert abs(res.calibration.focal_px / sc.camera.f - 1) < 1e-6
    # the horizon through the two horizontal VPs is the polar of the vertical VP given K
    alt = horizon_from_vertical(sc.camera.vanishing_point([0, 0, 1]), sc.camera.K)
    assert abs(abs(res.horizon[:2] @ alt[:2]) - 1) < 1e-9
    c = np.array([sc.camera.cx, sc.camera.cy, 1.0])
    assert abs(res.horizon @ c - np.sign(res.horizon[:2] @ alt[:2]) * (alt @ c)) < 1e-6
    assert res.horizon_source.startswith("vanishing points of x, y")


@pytest.mark.parametrize("alter_axis, seed, n_scenes", [
    ("view", 5, 3),
    # random rotation axis: in scene 4 of seed 9 the altered box's z edges sit within 1 deg of the
    # best pair intersection; refitting on that whole inlier set pulled the vertical VP so that an
    # innocent box (box3) crossed the tolerance. The locally optimised refit leaves them out.
    ("random", 9, 5),
])
def test_altered_box_is_the_one_flagged(alter_axis, seed, n_scenes) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n_scenes):
        sc, idx = random_scene(rng, size=480, altered=True, alter_axis=alter_axis, alter_deg=8.0)
        name = sc.boxes[idx].name
        res = analyze_perspective(parse_perspective(perspective_annotations(sc, tolerance_deg=1.0), "scene.json"))
        assert not res.consistent
        flagged = {g.objects[i] for g in res.groups for i in g.outliers}
        assert flagged == {name}, (flagged, name)
        n_alt = sum(o == name for g in res.groups for o in g.objects)
        n_flag = sum(len(g.outliers) for g in res.groups)
        if alter_axis == "view":  # the box's image turns by ~8 deg: nearly every edge is off
            assert n_flag >= 0.75 * n_alt  # most of its edges, and nothing else
        # every edge of the altered box that is clearly off the true VP (> 1.5 x the 1-deg
        # tolerance) is flagged; about a random axis some edges stay (nearly) on their VP
        for g in res.groups:
            true_vp = sc.camera.vanishing_point({"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}[g.name])
            off = line_angle_residuals(g.segments, true_vp) > 1.5
            assert set(np.flatnonzero(off)) <= set(g.outliers), (g.name, np.flatnonzero(off), g.outliers)
        assert any(name in s for s in res.issues)


def test_off_centre_principal_point_is_implausible() -> None:
    """The same scene seen by a camera whose principal point is 40% of the width off centre
    (what a crop or a generator without a real camera produces) is flagged."""
    rng = np.random.default_rng(8)
    sc, _ = random_scene(rng, size=480)
    c = sc.camera
    sc.camera = Camera(c.f, c.cx + 0.4 * 480, c.cy, c.R, c.t, 480, 480)
    d = perspective_annotations(sc)
    res = analyze_perspective(parse_perspective(d, "scene.json"))
    cal = res.calibration
    assert cal.principal_point is not None and abs(cal.principal_point[0] - sc.camera.cx) < 1e-3
    assert not cal.plausible and "principal point" in cal.problem
    assert not res.consistent


def test_two_orthogonal_groups_use_the_image_centre() -> None:
    """Vertical + one horizontal direction: f from the pair with the principal point assumed at
    the centre; the horizon is the polar of the vertical VP and passes through the other
    (unannotated) horizontal VP."""
    rng = np.random.default_rng(4)
    sc, _ = random_scene(rng, size=480)
    d = perspective_annotations(sc)
    d["groups"] = [g for g in d["groups"] if g["name"] in ("x", "z")]
    d["orthogonal"] = ["x", "z"]
    res = analyze_perspective(parse_perspective(d, "scene.json"))
    assert res.calibration.assumed_principal_point
    assert abs(res.calibration.focal_px / sc.camera.f - 1) < 1e-6
    vy = sc.camera.vanishing_point([0, 1, 0])
    assert abs(res.horizon @ (vy / vy[2])) < 1e-6
    assert "polar" in res.horizon_source


def test_impossible_triangle_no_focal_length() -> None:
    """Three 'orthogonal' VPs forming an obtuse triangle admit no real focal length."""
    cal = calibrate([np.array([100.0, 240, 1]), np.array([540.0, 240, 1]), np.array([320.0, 200, 1])], (640, 480))
    assert cal.focal_px is None and not cal.plausible and "no real focal length" in cal.problem


def test_result_json_roundtrip() -> None:
    rng = np.random.default_rng(2)
    sc, _ = random_scene(rng, size=320)
    res = analyze_perspective(parse_perspective(perspective_annotations(sc), "scene.json"))
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["consistent"] is True and len(d["groups"]) == 3
    assert d["calibration"]["plausible"] is True and d["horizon"] is not None


def test_consensus_refit_ignores_near_tolerance_outliers() -> None:
    """Scene 4 of seed 9 (random rotation axis): the vertical group's VP comes from the robust
    consensus, and no innocent box's vertical edge is flagged."""
    rng = np.random.default_rng(9)
    for _ in range(5):
        sc, idx = random_scene(rng, size=480, altered=True, alter_axis="random", alter_deg=8.0)
    name = sc.boxes[idx].name
    res = analyze_perspective(parse_perspective(perspective_annotations(sc, tolerance_deg=1.0), "scene.json"))
    z = next(g for g in res.groups if g.name == "z")
    assert z.robust
    innocent = np.array([o != name for o in z.objects])
    assert z.residuals_deg[innocent].max() < 0.1  # the true VP: innocent edges are exact
    assert {z.objects[i] for i in z.outliers} == {name}


def test_annotated_example_scores_are_ordered() -> None:
    """Shipped examples (examples/forensics, annotated mode): the tampered scene scores higher
    (more inconsistent) than the consistent one, and its score exceeds 1 (RMS residual above
    the tolerance) while the consistent one's is ~0."""
    from pathlib import Path

    from fakebench.forensics import load_perspective

    ex = Path(__file__).resolve().parents[2] / "examples" / "forensics"
    good = analyze_perspective(load_perspective(ex / "perspective.json"))
    bad = analyze_perspective(load_perspective(ex / "perspective_tampered.json"))
    print(f"annotated-mode scores: consistent {good.score:.4f}, tampered {bad.score:.4f}")
    assert good.consistent and not bad.consistent
    assert good.score < 0.1 < 1.0 < bad.score
    assert good.score < bad.score
