"""Annotation validation: every problem is one ConfigError line naming the file and field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fakebench.errors import ConfigError
from fakebench.forensics import load_lighting, load_perspective, parse_lighting, parse_perspective

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "forensics"


def _persp(**over):
    d = {"type": "perspective", "image_size": [100, 80],
         "groups": [{"name": "a", "segments": [[10, 10, 50, 12], [10, 30, 50, 31]]},
                    {"name": "b", "segments": [[10, 10, 12, 60], [40, 10, 41, 60]]}]}
    d.update(over)
    return d


def _light(**over):
    d = {"type": "lighting", "image_size": [100, 80],
         "cast_shadows": [{"object": "box", "shadow": [10, 70], "object_point": [20, 40]}]}
    d.update(over)
    return d


def _msg(fn, data, source="annotations.json", **kw) -> str:
    with pytest.raises(ConfigError) as ei:
        fn(data, source, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(source + ": ")
    return msg


def test_too_few_segments_message_is_exact() -> None:
    d = _persp()
    d["groups"][1]["segments"] = d["groups"][1]["segments"][:1]
    assert _msg(parse_perspective, d) == "annotations.json: groups[1].segments: need at least 2 segments, got 1"


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["groups"][0].pop("name"), "groups[0].name: missing"),
    (lambda d: d["groups"][0].pop("segments"), "groups[0].segments: missing"),
    (lambda d: d.pop("groups"), "groups: missing"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, 10, 500, 12]), "groups[0].segments[0]: point (500, 12) is outside the 100x80 image"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, 10, "x", 12]), "groups[0].segments[0][2]: expected a number, got a string"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, 10, math.nan, 12]), "groups[0].segments[0][2]: must be finite"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, 10, True, 12]), "groups[0].segments[0][2]: expected a number, got a boolean"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, 10, 50, math.inf]), "groups[0].segments[0][3]: must be finite"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [math.nan, 10, 50, 12]), "groups[0].segments[0][0]: must be finite"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, None, 50, 12]), "groups[0].segments[0][1]: expected a number, got null"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, {"p1": [1, 2], "p2": [40, math.nan]}), "groups[0].segments[0].p2[1]: must be finite"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, [10, 10, 10.2, 10]), "groups[0].segments[0]: segment shorter than 1 pixel"),
    (lambda d: d["groups"][0]["segments"].__setitem__(0, {"p1": [1, 2]}), "groups[0].segments[0].p2: missing"),
    (lambda d: d["groups"][1].__setitem__("name", "a"), "groups[1].name: duplicate group name 'a'"),
    (lambda d: d["groups"][1].__setitem__("role", "diagonal"), "groups[1].role: must be one of"),
    (lambda d: d.__setitem__("orthogonal", ["a", "c"]), "orthogonal[1]: no group named 'c'"),
    (lambda d: d.__setitem__("orthogonal", ["a"]), "orthogonal: name 2 or 3 mutually orthogonal groups, got 1"),
    (lambda d: d.__setitem__("tolerance_deg", -1), "tolerance_deg: must be >= 0"),
    (lambda d: d.__setitem__("image_size", [100]), "image_size: expected [width, height], got 1 values"),
    (lambda d: d.__setitem__("type", "lighting"), "type: expected 'perspective', got 'lighting'"),
    (lambda d: d.__setitem__("groups", {"a": 1}), "groups: expected a list, got an object"),
])
def test_perspective_errors_name_the_field(mutate, field) -> None:
    d = _persp()
    mutate(d)
    assert field in _msg(parse_perspective, d)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["cast_shadows"][0].pop("object_point"), "cast_shadows[0].object_point: missing"),
    (lambda d: d["cast_shadows"][0].pop("object"), "cast_shadows[0].object: missing"),
    (lambda d: d["cast_shadows"][0].__setitem__("shadow", "here"), "cast_shadows[0].shadow: expected a list, got a string"),
    (lambda d: d["cast_shadows"][0].__setitem__("shadow", [10, -7]), "cast_shadows[0].shadow: point (10, -7) is outside the 100x80 image"),
    (lambda d: d["cast_shadows"][0].__setitem__("shadow", [20, 40]), "cast_shadows[0]: shadow and object_point coincide"),
    (lambda d: d["cast_shadows"][0].__setitem__("tolerance_deg", 95), "cast_shadows[0].tolerance_deg: must be <= 89"),
    (lambda d: d["cast_shadows"][0].__setitem__("tolerance_deg", math.inf), "cast_shadows[0].tolerance_deg: must be finite"),
    (lambda d: d.__setitem__("cast_shadows", []), "cast_shadows: need at least one cast or attached shadow constraint"),
    (lambda d: d.__setitem__("attached_shadows", [{"object": "ball", "point": [5, 5], "normal": [0, 0]}]), "attached_shadows[0].normal: must be a non-zero direction"),
    (lambda d: d.__setitem__("attached_shadows", [{"object": "ball", "point": [5, 5]}]), "attached_shadows[0].normal: missing"),
    (lambda d: d.pop("image_size"), "image_size: missing"),
])
def test_lighting_errors_name_the_field(mutate, field) -> None:
    d = _light()
    mutate(d)
    assert field in _msg(parse_lighting, d)


def test_image_size_from_the_image_and_mismatch() -> None:
    d = _light()
    d.pop("image_size")
    assert parse_lighting(d, "a.json", image_size=(100, 80)).image_size == (100, 80)
    d["image_size"] = [101, 80]
    assert "image_size: [101, 80] does not match the image (100x80)" in _msg(parse_lighting, d, "a.json",
                                                                             image_size=(100, 80))


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "lighting",,}')
    with pytest.raises(ConfigError, match=r"bad\.json: invalid JSON \(line 1 column"):
        load_lighting(bad)
    with pytest.raises(ConfigError, match=r"nope\.json: file not found"):
        load_perspective(tmp_path / "nope.json")
    nan = tmp_path / "nan.json"
    nan.write_text('{"type": "lighting", "image_size": [100, 80], "cast_shadows": '
                   '[{"object": "b", "shadow": [NaN, 3], "object_point": [4, 5]}]}')
    with pytest.raises(ConfigError, match=r"nan\.json: cast_shadows\[0\]\.shadow\[0\]: must be finite"):
        load_lighting(nan)


def test_example_files_parse_and_match_their_images() -> None:
    from fakebench.io import load_image

    for name in ("lighting", "lighting_tampered"):
        img = load_image(EXAMPLES / f"{name}.png")
        ann = load_lighting(EXAMPLES / f"{name}.json", image_size=(img.shape[1], img.shape[0]))
        assert ann.cast and ann.attached
    for name in ("perspective", "perspective_tampered"):
        ann = load_perspective(EXAMPLES / f"{name}.json")
        assert [g.name for g in ann.groups] == ["x", "y", "z"] and ann.orthogonal == ("x", "y", "z")
        assert json.loads((EXAMPLES / f"{name}.json").read_text())["image"] == f"{name}.png"


@pytest.mark.parametrize("fn, make, mutate, expected", [
    (parse_perspective, _persp, lambda d: d.__setitem__("tolerance", 0.5),
     "annotations.json: tolerance: unknown key 'tolerance' (did you mean 'tolerance_deg'? allowed: type, image_size, "
     "tolerance_deg, principal_point_tolerance, groups, orthogonal, image, comment)"),
    (parse_perspective, _persp, lambda d: d["groups"][1].__setitem__("roles", "vertical"),
     "annotations.json: groups[1].roles: unknown key 'roles' (did you mean 'role'? allowed: name, role, segments)"),
    (parse_perspective, _persp,
     lambda d: d["groups"][0]["segments"].__setitem__(1, {"p1": [10, 30], "p2": [50, 31], "obj": "door"}),
     "annotations.json: groups[0].segments[1].obj: unknown key 'obj' (did you mean 'object'? allowed: p1, p2, object)"),
    (parse_lighting, _light, lambda d: d["cast_shadows"][0].__setitem__("tolerance", 1),
     "annotations.json: cast_shadows[0].tolerance: unknown key 'tolerance' (did you mean 'tolerance_deg'? "
     "allowed: object, shadow, object_point, tolerance_deg)"),
    (parse_lighting, _light, lambda d: d.__setitem__("attached_shadows", [{"object": "b", "point": [5, 5], "normal": [1, 0], "xyz": 1}]),
     "annotations.json: attached_shadows[0].xyz: unknown key 'xyz' (allowed: object, point, normal, tolerance_deg)"),
    (parse_lighting, _light, lambda d: d.__setitem__("cast_shadow", []),
     "annotations.json: cast_shadow: unknown key 'cast_shadow' (did you mean 'cast_shadows'? allowed: type, image_size, "
     "tolerance_deg, cast_shadows, attached_shadows, image, comment)"),
])
def test_unknown_keys_are_rejected(fn, make, mutate, expected) -> None:
    """A typo must not silently fall back to the default (e.g. "tolerance" for "tolerance_deg")."""
    d = make()
    mutate(d)
    assert _msg(fn, d) == expected


def test_metadata_keys_are_allowed() -> None:
    ann = parse_perspective(_persp(image="scene.png", comment="checked by hand"), "a.json")
    assert len(ann.groups) == 2
    assert parse_lighting(_light(image="scene.png", comment="x"), "a.json").cast
