"""Regenerate the example images and annotation files of this folder (deterministic).

    python examples/forensics/make_examples.py

Scenes are rendered by :mod:`fakebench.forensics.synthetic` (pinhole camera, boxes and a ball
on a ground plane, one point light, geometric cast shadows). The ``*_tampered`` variants
change one object: box B's shadow is cast by a different light (lighting), or box "kiosk" is
seen through a camera rolled by 8 degrees about its line of sight (perspective).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from fakebench.forensics.synthetic import (
    Box,
    Camera,
    Scene,
    Sphere,
    lighting_annotations,
    perspective_annotations,
    render,
)
from fakebench.io import save_png

HERE = Path(__file__).resolve().parent
W, H = 480, 360


def _round(d: object) -> object:
    if isinstance(d, float):
        return round(d, 2)
    if isinstance(d, list):
        return [_round(x) for x in d]
    if isinstance(d, dict):
        return {k: _round(v) for k, v in d.items()}
    return d


def _write(name: str, image: np.ndarray, ann: dict) -> None:
    save_png(HERE / f"{name}.png", image)
    ann = dict(ann)
    ann["image"] = f"{name}.png"
    # one line per constraint / segment: leaf objects and number lists are written compactly
    leaves: list[str] = []

    def stash(x: object) -> object:
        if isinstance(x, dict) and all(not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))
                                       for v in x.values()) and "type" not in x:
            leaves.append(json.dumps(x, separators=(", ", ": ")))
            return f"@@{len(leaves) - 1}@@"
        if isinstance(x, dict):
            return {k: stash(v) for k, v in x.items()}
        if isinstance(x, list) and x and isinstance(x[0], dict):
            return [stash(v) for v in x]
        return x

    text = json.dumps(stash(_round(ann)), indent=1)
    text = re.sub(r"\[\s+([-0-9.e]+(?:,\s+[-0-9.e]+)*)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    text = re.sub(r'"@@(\d+)@@"', lambda m: leaves[int(m.group(1))], text)
    (HERE / f"{name}.json").write_text(text + "\n")
    print("wrote", HERE / f"{name}.png", HERE / f"{name}.json")


def lighting_scene(tampered: bool) -> Scene:
    cam = Camera.look_at([-10, -12, 6], [0, 0, 1], 390, W, H)
    boxes = [Box(-3, -2, 2, 2, 3, "box A"), Box(1.5, -1, 2, 3, 2, "box B"), Box(-4, 2.5, 1.5, 1.5, 2.5, "box C")]
    scene = Scene(cam, boxes, np.array([6.0, -3.0, 12.0]), [Sphere((-1.5, -6.0), 0.9, "ball")])
    if tampered:
        scene.shadow_lights = [None, np.array([8.0, 8.0, 10.0]), None]
    return scene


def perspective_scene(tampered: bool) -> Scene:
    cam = Camera.look_at([-14, -16, 8], [0, 0, 1], 420, W, H)
    boxes = [Box(-5.5, -5.5, 3, 2.5, 4.5, "tower"), Box(-1, -5, 2.5, 3, 2.5, "kiosk"),
             Box(3, -4, 2.5, 2.5, 3.5, "shed"), Box(-5, 0, 3, 3, 2.5, "house")]
    scene = Scene(cam, boxes, np.array([4.0, -14.0, 15.0]))
    if tampered:
        k = 1
        cb = boxes[k].corners().mean(0)
        Xc = cam.to_cam(cb[None])[0]
        axis = Xc / np.linalg.norm(Xc)
        a = np.radians(8.0)
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        Rd = np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K
        R2 = Rd @ cam.R
        scene.box_cameras = [None] * len(boxes)
        scene.box_cameras[k] = Camera(cam.f, cam.cx, cam.cy, R2, Xc - R2 @ cb, W, H)
    return scene


def main() -> None:
    for tampered in (False, True):
        suffix = "_tampered" if tampered else ""
        rng = np.random.default_rng(0)
        sc = lighting_scene(tampered)
        _write(f"lighting{suffix}", render(sc, rng, noise=0.0), lighting_annotations(sc, tolerance_deg=3.0))
        rng = np.random.default_rng(1)
        sc = perspective_scene(tampered)
        _write(f"perspective{suffix}", render(sc, rng, noise=0.0, shadows=False),
               perspective_annotations(sc, tolerance_deg=1.0, min_length=12.0))


if __name__ == "__main__":
    main()
