"""``forensics`` sub-command: verdicts, JSON + PNG written inside --out only, exit codes.

Inputs are the example scenes of examples/forensics (rendered by make_examples.py: pinhole
camera, boxes and a ball on a ground plane, one point light; the tampered variants move one
box's shadow to another light / draw one box through an 8-deg rolled camera).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from fakebench.cli.forensics import add_parser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "forensics"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakebench")
    sub = p.add_subparsers(dest="cmd")
    add_parser(sub)
    return p


def _run(argv: list[str]) -> int:
    from fakebench.cli import main

    return main(argv)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    for f in EXAMPLES.glob("*.*"):
        if f.suffix in (".png", ".json"):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.mark.parametrize("name, consistent, suspicious", [("lighting", True, []), ("lighting_tampered", False, ["box B"])])
def test_lighting_writes_json_and_png(work: Path, capsys, name, consistent, suspicious) -> None:
    before = _files(work)
    out = work / "out"
    rc = _run(["forensics", "lighting", str(work / f"{name}.png"), "--annotations", str(work / f"{name}.json"),
               "--out", str(out)])
    assert rc == 0
    assert _files(work) - before == {out / f"{name}_lighting.json", out / f"{name}_lighting.png"}
    res = json.loads((out / f"{name}_lighting.json").read_text())
    assert res["consistent"] is consistent and res["suspicious_objects"] == suspicious
    assert (out / f"{name}_lighting.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert ("CONSISTENT" if consistent else "INCONSISTENT") in printed


@pytest.mark.parametrize("name, consistent", [("perspective", True), ("perspective_tampered", False)])
def test_perspective_annotations(work: Path, name, consistent) -> None:
    out = work / "res"
    rc = _run(["forensics", "perspective", str(work / f"{name}.png"), "--annotations", str(work / f"{name}.json"),
               "--out", str(out)])
    assert rc == 0
    res = json.loads((out / f"{name}_perspective.json").read_text())
    assert res["consistent"] is consistent and res["mode"] == "annotations"
    assert res["calibration"]["focal_px"] == pytest.approx(420.0, rel=0.02 if consistent else 0.5)
    if not consistent:
        flagged = {s["object"] for g in res["groups"] for s in g["segments"] if s["outlier"]}
        assert flagged == {"kiosk"}
    assert (out / f"{name}_perspective.png").stat().st_size > 1000


def test_perspective_auto(work: Path) -> None:
    out = work / "auto"
    # the 480x360 rendered example has short box edges: by default the automatic mode abstains
    rc = _run(["forensics", "perspective", str(work / "perspective.png"), "--auto", "--seed", "1", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "perspective_perspective.json").read_text())
    assert res["decidable"] is False and "no decision" in res["notes"][-1] and "long segments" in res["notes"][-1]
    rc = _run(["forensics", "perspective", str(work / "perspective.png"), "--auto", "--seed", "1", "--out", str(out),
               "--min-long-segments", "0", "--vp-min-long", "0"])
    assert rc == 0
    res = json.loads((out / "perspective_perspective.json").read_text())
    assert res["mode"] == "auto" and res["decidable"] is True and res["groups"]
    assert 0.0 <= res["score"] <= 1.0
    assert (out / "perspective_perspective.png").exists()


def test_bad_annotations_exit_2_with_one_line(work: Path, capsys) -> None:
    d = json.loads((work / "perspective.json").read_text())
    d["groups"][1]["segments"] = d["groups"][1]["segments"][:1]
    (work / "bad.json").write_text(json.dumps(d))
    out = work / "o"
    rc = _run(["forensics", "perspective", str(work / "perspective.png"), "--annotations", str(work / "bad.json"),
               "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fakebench: error: {work / 'bad.json'}: groups[1].segments: need at least 2 segments, got 1"
    assert not out.exists() or not any(out.iterdir())


def test_missing_image_exit_2(work: Path, capsys) -> None:
    rc = _run(["forensics", "lighting", str(work / "none.png"), "--annotations", str(work / "lighting.json"),
               "--out", str(work / "o")])
    assert rc == 2
    assert "none.png: file not found" in capsys.readouterr().err


def test_annotations_and_auto_are_exclusive(work: Path) -> None:
    with pytest.raises(SystemExit) as ei:
        _parser().parse_args(["forensics", "perspective", "x.png", "--auto", "--annotations", "a.json", "--out", "o"])
    assert ei.value.code == 2
    with pytest.raises(SystemExit):
        _parser().parse_args(["forensics", "perspective", "x.png", "--out", "o"])


def test_output_name_cannot_escape_out(work: Path) -> None:
    """An image whose name is full of odd characters still writes a sanitised name inside --out."""
    odd = work / "we ird;..name.png"
    shutil.copy(work / "lighting.png", odd)
    out = work / "o2"
    rc = _run(["forensics", "lighting", str(odd), "--annotations", str(work / "lighting.json"), "--out", str(out)])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["we_ird_.name_lighting.json", "we_ird_.name_lighting.png"]
