"""Rerun the hostile-user probe of issue 9 and print its table.

Families: bad images (through ``evaluate`` and ``attack``), broken configs, broken checkpoint
folders, and write tracing (every file under the probe's root listed before and after each
command: anything created, changed or deleted outside the folder the command was told to write
is a violation). Everything runs in-process through ``fakebench.cli.main`` on a tiny detector,
in a temporary folder; a few tens of seconds on 2 cores.

    PYTHONPATH=src python bench/probe_reliability.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io as pyio
import json
import logging
import math
import os
import pickle
import shutil
import sqlite3
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from fakebench import detectors
from fakebench.cli import main
from fakebench.io import save_png

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_png_bomb


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_cli(argv: list[str]) -> tuple[int, str, list[str]]:
    """(exit code, stderr, warning lines) of one in-process ``fakebench`` call; an uncaught
    exception counts as a traceback (exit code -1)."""
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    err = pyio.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(pyio.StringIO()):
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = int(exc.code or 0)
            except BaseException as exc:  # noqa: BLE001 - what the probe counts as a traceback
                err.write(f"Traceback: {type(exc).__name__}: {exc}\n")
                rc = -1
    finally:
        root.removeHandler(handler)
    return rc, err.getvalue(), handler.lines


def tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        for name in files + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = os.fsencode(p.relative_to(root)).decode("utf-8", "backslashreplace")
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        for d in dirnames:
            out.setdefault(os.fsencode((Path(dirpath) / d).relative_to(root)).decode("utf-8", "backslashreplace")
                           + "/", "dir")
    return out


class Writes:
    """Write tracing by listing: changes under ``root`` outside the allowed folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.checked = 0
        self.violations: list[str] = []

    @contextlib.contextmanager
    def watch(self, what: str, *allowed: Path):
        before = tree(self.root)
        yield
        after = tree(self.root)
        self.checked += 1
        allow = [a.relative_to(self.root).as_posix().rstrip("/") + "/" for a in allowed]
        for k in sorted(set(before) | set(after)):
            if before.get(k) != after.get(k) and not any((k + "/").startswith(a) or k == a for a in allow):
                change = "created" if k not in before else "deleted" if k not in after else "changed"
                self.violations.append(f"{what}: {change} {k}")


# -- inputs ---------------------------------------------------------------------------------

def checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.threshold = 0.1
    return det.save(path)


def png_header_only(path: Path, w: int, h: int) -> None:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                     + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def bad_image_folder(root: Path, outside: Path) -> tuple[list[str], dict[str, str]]:
    """real/ + fake/g/ with 4 + 4 good images and one file per bad kind in real/. Returns (good
    file names, {bad kind: file name})."""
    rng = np.random.default_rng(0)
    good = []
    for i in range(4):
        save_png(root / "real" / f"good_r{i}.png", rng.random((32, 32, 3)))
        save_png(root / "fake" / "g" / f"good_f{i}.png", rng.random((32, 32, 3)))
        good += [f"good_r{i}.png", f"good_f{i}.png"]
    d = root / "real"
    good_png = (d / "good_r0.png").read_bytes()
    buf = pyio.BytesIO()
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(buf, format="JPEG")
    good_jpg = buf.getvalue()
    save_png(outside / "secret.png", rng.random((32, 32, 3)))
    kinds = {
        "empty file": ("empty.png", lambda p: p.write_bytes(b"")),
        "truncated PNG": ("trunc.png", lambda p: p.write_bytes(good_png[: len(good_png) // 2])),
        "truncated JPEG": ("trunc.jpg", lambda p: p.write_bytes(good_jpg[: len(good_jpg) // 3])),
        "PNG signature only": ("sig.png", lambda p: p.write_bytes(good_png[:8])),
        "random bytes": ("random.png", lambda p: p.write_bytes(rng.bytes(3000))),
        "text named .jpg": ("text.jpg", lambda p: p.write_text("hello, not an image\n")),
        "HTML named .webp": ("page.webp", lambda p: p.write_text("<html><body>404</body></html>")),
        "directory named .png": ("folder.png", lambda p: p.mkdir()),
        "symlink loop": ("loop.png", lambda p: p.symlink_to(p)),
        "dangling symlink": ("dangling.png", lambda p: p.symlink_to(d / "nothing.png")),
        "symlink to a file outside": ("escape.png", lambda p: p.symlink_to(outside / "secret.png")),
        "symlink to /etc/passwd": ("pw.png", lambda p: p.symlink_to("/etc/passwd")),
        "pixel bomb 12000x12000 PNG": ("bomb.png", lambda p: write_png_bomb(p, 12000, 12000)),
        "header claims 100000x100000": ("claims.png", lambda p: png_header_only(p, 100000, 100000)),
        "1x1 image": ("one.png", lambda p: save_png(p, np.zeros((1, 1, 3)))),
        "2x500 sliver": ("sliver.png", lambda p: save_png(p, np.zeros((2, 500, 3)))),
        "JPEG cut inside the scan": ("scan.jpg", lambda p: p.write_bytes(good_jpg[:-200])),
        "GIF with a broken frame": ("broken.gif", lambda p: p.write_bytes(b"GIF89a" + rng.bytes(200))),
    }
    names = {}
    for kind, (name, make) in kinds.items():
        make(d / name)
        names[kind] = name
    weird = os.fsdecode(bytes(d) + b"/bad\xff\xfe.png")  # a good image under a non-UTF-8 name
    save_png(Path(weird), rng.random((32, 32, 3)))
    good.append("bad\\xff\\xfe.png")
    return good, names


#: bad kinds that are scored (with a warning line) rather than skipped
SCORED_WITH_WARNING = {"1x1 image", "2x500 sliver"}
#: not a file: not listed at all (loaders list files by name; a folder is not read)
NOT_A_FILE = {"directory named .png"}


def probe_images(root: Path, ck: Path, writes: Writes) -> list[tuple[str, int, int, str]]:
    data, outside = root / "images_data", root / "outside"
    good, bad = bad_image_folder(data, outside)
    cfg = root / "images.yaml"
    cfg.write_text(yaml.safe_dump({
        "run": "img", "output": str(root / "images_out"), "batch_size": 6, "dataset": {"path": str(data)},
        "detectors": [{"name": "tiny", "checkpoint": str(ck)}],
        "attacks": [{"attack": "jpeg", "options": {"quality": 70}}]}))
    results = []
    with writes.watch("evaluate (bad images)", root / "images_out"):
        rc, err, lines = run_cli(["evaluate", "--no-progress", "--config", str(cfg)])
    con = sqlite3.connect(root / "images_out" / "results.sqlite")
    rows = con.execute("SELECT sample, attack FROM results").fetchall()
    con.close()
    per_file: dict[str, set] = {}
    for sample, attack in rows:
        per_file.setdefault(Path(sample).name, set()).add(attack)
    good_ok = all(per_file.get(g) == {"clean", "jpeg"} for g in good)
    handled = 0
    for kind, name in bad.items():
        mention = [ln for ln in lines if name in ln]
        if kind in SCORED_WITH_WARNING:
            ok = len(mention) == 1 and per_file.get(name) == {"clean", "jpeg"}
        elif kind in NOT_A_FILE:
            ok = name not in per_file
        else:
            ok = len(mention) == 1 and name not in per_file
        handled += ok
        if not ok:
            print(f"  evaluate: {kind}: {len(mention)} line(s), rows {per_file.get(name)}", file=sys.stderr)
    complete = rc == 0 and "Traceback" not in err and good_ok
    note = f"exit {rc}; every good image ({len(good)}, one with a non-UTF-8 name) has clean + jpeg rows: {good_ok}"
    results.append(("bad images: evaluate", len(bad), handled if complete else 0, note))

    with writes.watch("attack (bad images)", root / "images_adv"):
        rc, err, lines = run_cli(["attack", str(ck), "--attack", "jpeg", "--opt", "quality=70", "--in", str(data),
                                  "--out", str(root / "images_adv")])
    with open(root / "images_adv" / "attack.csv", newline="", encoding="utf-8") as f:
        status = {r["file"].split("/")[-1]: r["status"] for r in csv.DictReader(f)}
    handled = 0
    for kind, name in bad.items():
        if kind in NOT_A_FILE:
            ok = name not in status
        elif kind in SCORED_WITH_WARNING:
            ok = status.get(name) == "ok"
        else:
            ok = name in status and status[name].startswith("skipped")
        handled += ok
        if not ok:
            print(f"  attack: {kind}: status {status.get(name)!r}", file=sys.stderr)
    good_ok = all(status.get(g) == "ok" for g in good)
    complete = rc == 0 and "Traceback" not in err and good_ok and (root / "images_adv" / "attack.json").is_file()
    results.append(("bad images: attack", len(bad), handled if complete else 0,
                    f"exit {rc}; every good image attacked: {good_ok}; attack.json written"))
    return results


def base_config(root: Path, ck: Path, data: Path) -> dict:
    return {"run": "cfg", "output": str(root / "cfg_out"), "seed": 0, "batch_size": 4,
            "dataset": {"path": str(data)}, "detectors": [{"name": "tiny", "checkpoint": str(ck)}],
            "attacks": [{"attack": "jpeg", "options": {"quality": 70}},
                        {"attack": "pgd", "options": {"eps": "2/255", "steps": 1}}]}


def broken_configs(root: Path, ck: Path, data: Path) -> dict[str, object]:
    """name -> a config dict to mutate (callable) or raw YAML text."""
    def m(fn):
        def make():
            c = base_config(root, ck, data)
            fn(c)
            return c
        return make

    return {
        "eps 8/0": m(lambda c: c["attacks"][1]["options"].update(eps="8/0")),
        "device tpu9": m(lambda c: c.update(device="tpu9")),
        "device cuda:7 (absent)": m(lambda c: c.update(device="cuda:7")),
        "pgd steps 0": m(lambda c: c["attacks"][1]["options"].update(steps=0)),
        "pgd steps -3": m(lambda c: c["attacks"][1]["options"].update(steps=-3)),
        "jpeg quality 500": m(lambda c: c["attacks"][0]["options"].update(quality=500)),
        "jpeg quality 0": m(lambda c: c["attacks"][0]["options"].update(quality=0)),
        "jpeg quality 'high'": m(lambda c: c["attacks"][0]["options"].update(quality="high")),
        "blur sigma -1": m(lambda c: c["attacks"].append({"attack": "blur", "options": {"sigma": -1}})),
        "resize scale 0": m(lambda c: c["attacks"].append({"attack": "resize", "options": {"scale": 0}})),
        "share crop 2": m(lambda c: c["attacks"].append({"attack": "share", "options": {"crop": 2}})),
        "unknown attack option": m(lambda c: c["attacks"][0]["options"].update(qualty=70)),
        "unknown attack": m(lambda c: c["attacks"].append({"attack": "pgdd"})),
        "unknown top-level key": m(lambda c: c.update(batchsize=4)),
        "seed NaN": m(lambda c: c.update(seed=float("nan"))),
        "batch_size inf": m(lambda c: c.update(batch_size=float("inf"))),
        "batch_size 0": m(lambda c: c.update(batch_size=0)),
        "batch_size '8'": m(lambda c: c.update(batch_size="8")),
        "limit -1": m(lambda c: c["dataset"].update(limit=-1)),
        "split 5": m(lambda c: c["dataset"].update(split=5)),
        "generators {a: 1}": m(lambda c: c["dataset"].update(generators={"a": 1})),
        "dataset path missing": m(lambda c: c["dataset"].pop("path")),
        "dataset path absent": m(lambda c: c["dataset"].update(path=str(root / "nope"))),
        "dataset path with NUL": m(lambda c: c["dataset"].update(path="a\x00b")),
        "dataset path 5000 chars": m(lambda c: c["dataset"].update(path="x" * 5000)),
        "no detectors": m(lambda c: c.pop("detectors")),
        "detectors empty": m(lambda c: c.update(detectors=[])),
        "detector both checkpoint and registry": m(lambda c: c["detectors"][0].update(detector="cnnspot")),
        "duplicate detector names": m(lambda c: c["detectors"].append(dict(c["detectors"][0]))),
        "detector options bad type": m(lambda c: c.update(detectors=[{"detector": "cnnspot",
                                                                      "options": {"width": "wide"}}])),
        "attacks a mapping": m(lambda c: c.update(attacks={"attack": "jpeg"})),
        "grid not a list": m(lambda c: c["attacks"][1].update(grid={"eps": 0.1})),
        "optional 'yes'": m(lambda c: c["detectors"][0].update(optional="yes")),
        "YAML syntax error": "run: [unclosed\n",
        "YAML top level a list": "- 1\n- 2\n",
        "empty file": "",
        "integer keys": "1: 2\ndataset: {path: x}\n",
        "YAML alias bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef")),
        "YAML alias referring to itself": "a: &a [*a]\n",
        "python object tag": "run: !!python/object/apply:os.system ['true']\n",
    }


def probe_configs(root: Path, ck: Path, data: Path, writes: Writes) -> tuple[str, int, int, str]:
    handled, bad = 0, []
    cases = broken_configs(root, ck, data)
    for name, make in cases.items():
        cfg = root / "cfg.yaml"
        cfg.write_text(make if isinstance(make, str) else yaml.safe_dump(make()))
        with writes.watch(f"evaluate (config: {name})", root / "cfg_out"):
            rc, err, _ = run_cli(["evaluate", "--no-progress", "--config", str(cfg)])
        errs = [ln for ln in err.splitlines() if ln.startswith("fakebench: error")]
        ok = rc == 2 and len(errs) == 1 and "Traceback" not in err
        ok = ok and not (root / "cfg_out" / "results.sqlite").exists()
        handled += ok
        if not ok:
            bad.append(f"{name}: exit {rc}, {err.strip()[:200]!r}")
    for b in bad:
        print("  config:", b, file=sys.stderr)
    return ("configs: one line before any work", len(cases), handled, "exit 2, one `fakebench: error` line, no store")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def broken_checkpoints(ck: Path, marker: Path) -> dict[str, object]:
    def cfg_edit(fn):
        def make(d: Path) -> None:
            c = json.loads((d / "config.json").read_text())
            fn(c)
            (d / "config.json").write_text(json.dumps(c))
        return make

    def other_arch(d: Path) -> None:
        torch.manual_seed(0)
        detectors.create("cnnspot", arch="resnet10", width=16).save(d / "o")
        shutil.copy(d / "o" / "model.safetensors", d / "model.safetensors")
        shutil.rmtree(d / "o")

    return {
        "config.json missing": lambda d: (d / "config.json").unlink(),
        "config.json not JSON": lambda d: (d / "config.json").write_text("{nope"),
        "config.json a list": lambda d: (d / "config.json").write_text("[1, 2]"),
        "config.json not UTF-8": lambda d: (d / "config.json").write_bytes(b"\xff\xfe{}"),
        "detector missing": cfg_edit(lambda c: c.pop("detector")),
        "detector unknown": cfg_edit(lambda c: c.update(detector="nope")),
        "options a list": cfg_edit(lambda c: c.update(options=[1, 2])),
        "options bad keyword": cfg_edit(lambda c: c["options"].update(wings=2)),
        "threshold 'abc'": cfg_edit(lambda c: c.update(threshold="abc")),
        "threshold NaN": cfg_edit(lambda c: c.update(threshold=math.nan)),
        "threshold inf": cfg_edit(lambda c: c.update(threshold=math.inf)),
        "meta [1, 2]": cfg_edit(lambda c: c.update(meta=[1, 2])),
        "weights missing": lambda d: (d / "model.safetensors").unlink(),
        "weights garbage": lambda d: (d / "model.safetensors").write_bytes(os.urandom(512)),
        "weights a pickle payload": lambda d: (d / "model.safetensors").write_bytes(pickle.dumps(Payload(marker))),
        "weights truncated": lambda d: (d / "model.safetensors").write_bytes(
            (ck / "model.safetensors").read_bytes()[:1000]),
        "weights of another architecture": other_arch,
    }


def probe_checkpoints(root: Path, ck: Path, data: Path, writes: Writes) -> tuple[str, int, int, str]:
    marker = root / "PWNED"
    cases = broken_checkpoints(ck, marker)
    handled, bad = 0, []
    for name, make in cases.items():
        d = root / "broken_ck"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(ck, d)
        make(d)
        cfg = root / "ck.yaml"
        c = base_config(root, d, data)
        c["output"] = str(root / "ck_out")
        cfg.write_text(yaml.safe_dump(c))
        ok = True
        for argv, out in ((["evaluate", "--no-progress", "--config", str(cfg)], root / "ck_out"),
                          (["attack", str(d), "--attack", "jpeg", "--in", str(data), "--out", str(root / "ck_adv")],
                           root / "ck_adv")):
            with writes.watch(f"{argv[0]} (checkpoint: {name})", out):
                rc, err, _ = run_cli(argv)
            errs = [ln for ln in err.splitlines() if ln.startswith("fakebench: error")]
            ok &= rc == 2 and len(errs) == 1 and "Traceback" not in err
            if rc != 2:
                bad.append(f"{name} / {argv[0]}: exit {rc}, {err.strip()[:200]!r}")
        handled += ok and not marker.exists()
    for b in bad:
        print("  checkpoint:", b, file=sys.stderr)
    return ("checkpoints: one line (evaluate and attack)", len(cases), handled,
            f"pickle payload ran: {marker.exists()}")


def probe_writes(root: Path, ck: Path, data: Path, writes: Writes) -> list[tuple[str, int, int, str]]:
    """Commands that used to write or delete outside what they own."""
    from fakebench.builtin import build_builtin

    out = []
    with writes.watch("report --store typo/path.sqlite", root / "rep"):
        rc, _, _ = run_cli(["report", "--store", str(root / "typo" / "path.sqlite"), "--out", str(root / "rep")])
    refused = rc == 2 and not (root / "typo").exists()
    out.append(("report on a missing store", 1, int(refused), "refused, nothing created"))
    bench = root / "bench"
    build_builtin(bench, patch=16, n_train=8, n_val=4, n_test=8, train_steps=1, seed=0, progress=False)
    (bench / "images" / "my_photo.png").write_bytes(b"mine")
    (bench / "images" / "mine").mkdir()
    (bench / "images" / "mine" / "keep.jpg").write_bytes(b"keep")
    build_builtin(bench, patch=16, n_train=8, n_val=4, n_test=8, train_steps=1, seed=1, progress=False)
    kept = (bench / "images" / "my_photo.png").exists() and (bench / "images" / "mine" / "keep.jpg").exists()
    out.append(("builtin rebuild keeps user files", 2, 2 * kept, "images/my_photo.png, images/mine/keep.jpg"))
    return out


def main_probe() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="run in this folder and keep it")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.keep or tempfile.mkdtemp(prefix="fakebench-probe-"))
    root.mkdir(parents=True, exist_ok=True)
    writes = Writes(root)
    ck = checkpoint(root / "ck")
    data = root / "small_data"
    rng = np.random.default_rng(1)
    for i in range(3):
        save_png(data / "real" / f"r{i}.png", rng.random((32, 32, 3)))
        save_png(data / "fake" / "g" / f"f{i}.png", rng.random((32, 32, 3)))
    table = probe_images(root, ck, writes)
    table.append(probe_configs(root, ck, data, writes))
    table.append(probe_checkpoints(root, ck, data, writes))
    table += probe_writes(root, ck, data, writes)
    table.append(("no write / delete outside the named folder", writes.checked, writes.checked - len(
        {v.split(":")[0] for v in writes.violations}), "; ".join(writes.violations[:3]) or "none"))
    print("| family | cases | handled | % | notes |")
    print("| --- | --- | --- | --- | --- |")
    for fam, n, ok, note in table:
        print(f"| {fam} | {n} | {ok} | {100 * ok / max(n, 1):.0f}% | {note} |")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(ok == n for _, n, ok, _ in table) else 1


if __name__ == "__main__":
    sys.exit(main_probe())
