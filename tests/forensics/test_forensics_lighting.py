"""Lighting analysis (Farid 2022 / Kee et al. 2014) on rendered scenes with known light.

Rendering (fakebench.forensics.synthetic): a pinhole camera (f = 520 px, principal point at
the centre of a 640x480 image, square pixels, no skew) at (-10, -12, 6) looks at (0, 0, 1);
world Z is up, the ground is Z = 0. Axis-aligned boxes stand on the ground; a ball (sphere)
rests on it. A point light at L casts each box's shadow geometrically: a top corner X
shadows the ground at S = L + (X - L) * L_z / (L_z - X_z). Cast-shadow annotations pair the
projections of X and S (two top corners per box, 3 deg tolerance); attached-shadow
annotations are points of the ball's occluding contour 10 deg inside the lit side of the
terminator, with the contour's image normal (5 deg tolerance).
"""

from __future__ import annotations

import numpy as np

from fakebench.forensics import analyze_lighting, parse_lighting
from fakebench.forensics.synthetic import Box, Camera, Scene, Sphere, lighting_annotations


def _scene(light=(6.0, -3.0, 12.0)) -> Scene:
    cam = Camera.look_at([-10, -12, 6], [0, 0, 1], 520, 640, 480)
    boxes = [Box(-3, -2, 2, 2, 3, "box A"), Box(1.5, -1, 2, 3, 2, "box B"), Box(-4, 2.5, 1.5, 1.5, 2.5, "box C")]
    return Scene(cam, boxes, np.array(light, dtype=float), [Sphere((-1.5, -6.0), 0.9, "ball")])


def _inside(poly: np.ndarray, p: np.ndarray) -> bool:
    """Point in convex polygon (either orientation)."""
    e = np.roll(poly, -1, axis=0) - poly
    r = p - poly
    cr = e[:, 0] * r[:, 1] - e[:, 1] * r[:, 0]
    return bool(np.all(cr >= -1e-6) or np.all(cr <= 1e-6))


def test_consistent_scene_contains_true_light() -> None:
    sc = _scene()
    ann = parse_lighting(lighting_annotations(sc), "scene.json")
    assert len(ann.cast) == 6 and len(ann.attached) == 2
    res = analyze_lighting(ann)
    assert res.consistent, res.verdict()
    assert res.cases == ["front"]
    assert res.margin_px > 0
    true_light = sc.camera.project(sc.light[None])[0]
    assert any(r.case == "front" and _inside(r.polygon, true_light) for r in res.regions)
    assert res.removal_sets == [] and res.suspicious_objects == []


def test_altered_cast_shadow_names_the_box() -> None:
    """Box B's shadow is cast by a different light (8, 8, 10): only its two constraints change."""
    sc = _scene()
    sc.shadow_lights = [None, np.array([8.0, 8.0, 10.0]), None]
    res = analyze_lighting(parse_lighting(lighting_annotations(sc), "scene.json"))
    assert not res.consistent
    assert res.margin_px < 0
    assert res.removal_method == "exact"
    assert res.removal_sets == [(2, 3)]  # the two box-B cast-shadow constraints, and nothing else
    assert res.suspicious_objects == ["box B"]
    true_light = sc.camera.project(sc.light[None])[0]
    assert any(_inside(r.polygon, true_light) for r in res.regions_after_removal)
    assert "box B" in res.verdict() and "INCONSISTENT" in res.verdict()


def test_altered_attached_shadow_names_the_ball() -> None:
    """One attached-shadow normal replaced by the direction pointing away from the projected
    light (the ball's shading claims the light comes from the opposite side)."""
    sc = _scene()
    d = lighting_annotations(sc)
    p = np.array(d["attached_shadows"][0]["point"])
    away = p - sc.camera.project(sc.light[None])[0]
    d["attached_shadows"][0]["normal"] = (away / np.linalg.norm(away)).tolist()
    res = analyze_lighting(parse_lighting(d, "scene.json"))
    assert not res.consistent
    assert res.suspicious_objects == ["ball"]
    assert res.removal_sets == [(6,)]  # constraints are numbered cast first, then attached


def test_light_behind_camera_is_found_in_the_flipped_case() -> None:
    """Light at (-20, -25, 15): depth < 0 in the camera frame, so every wedge flips."""
    sc = _scene(light=(-20.0, -25.0, 15.0))
    assert sc.camera.to_cam(sc.light[None])[0, 2] < 0
    res = analyze_lighting(parse_lighting(lighting_annotations(sc), "scene.json"))
    assert res.consistent, res.verdict()
    assert res.cases == ["behind"]
    # the projected light (mirrored through the camera centre) lies in a "behind" region
    true_light = sc.camera.project(sc.light[None])[0]
    assert any(r.case == "behind" and _inside(r.polygon, true_light) for r in res.regions)


def test_tolerance_decides_two_nearly_parallel_shadows() -> None:
    """Two hand-made cast shadows whose rays lean 2 deg left and 2 deg right of vertical, so
    they diverge upward (in front of the camera they never meet at 1 deg tolerance, but do at
    3 deg, where the wedges overlap far above) and converge downward (the flipped case of a
    light behind the camera explains them at either tolerance)."""
    base = {"type": "lighting", "image_size": [400, 300]}
    d = np.radians(2.0)
    s1, s2 = np.array([100.0, 250.0]), np.array([300.0, 250.0])
    o1 = s1 + 60 * np.array([-np.sin(d), -np.cos(d)])  # leaning left by 2 deg
    o2 = s2 + 60 * np.array([np.sin(d), -np.cos(d)])  # leaning right by 2 deg

    def ann(tol: float) -> dict:
        return {**base, "cast_shadows": [
            {"object": "a", "shadow": s1.tolist(), "object_point": o1.tolist(), "tolerance_deg": tol},
            {"object": "b", "shadow": s2.tolist(), "object_point": o2.tolist(), "tolerance_deg": tol}]}

    # diverging upward, converging downward: a light behind the camera explains them
    r1 = analyze_lighting(parse_lighting(ann(1.0), "x.json"))
    assert r1.consistent and r1.cases == ["behind"]
    r3 = analyze_lighting(parse_lighting(ann(3.0), "x.json"))
    assert r3.consistent and set(r3.cases) == {"front", "behind"}


def test_greedy_fallback_beyond_exact_limit() -> None:
    sc = _scene()
    sc.shadow_lights = [None, np.array([8.0, 8.0, 10.0]), None]
    res = analyze_lighting(parse_lighting(lighting_annotations(sc), "scene.json"), exact_limit=4)
    assert res.removal_method == "greedy"
    assert "greedy" in res.note
    assert res.suspicious_objects == ["box B"]


def test_result_serialises_to_json() -> None:
    import json

    res = analyze_lighting(parse_lighting(lighting_annotations(_scene()), "scene.json"))
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["consistent"] is True and d["regions"] and d["constraints"][0]["object"] == "box A"


def test_minimal_sets_list_every_alternative() -> None:
    """Two shadows that contradict each other and nothing else: their lines cross at
    P = (200, 150), which is ahead on the first ray (from (100, 150) to the right) but behind
    the second (from (200, 100) upward); with a 2 deg tolerance no light, in front of or behind
    the camera, satisfies both. Removing either works, so both single sets are reported."""
    cast = [{"object": "first", "shadow": [100, 150], "object_point": [150, 150], "tolerance_deg": 2},
            {"object": "second", "shadow": [200, 100], "object_point": [200, 50], "tolerance_deg": 2}]
    res = analyze_lighting(parse_lighting({"type": "lighting", "image_size": [400, 300], "cast_shadows": cast},
                                          "x.json"))
    assert not res.consistent
    assert res.removal_sets == [(0,), (1,)]
    assert res.suspicious_objects == ["first", "second"]
    assert "ambiguous" in res.verdict()
