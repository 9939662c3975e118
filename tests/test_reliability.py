"""Reliability findings of the hostile-user probe (issue 9): nothing lost, nothing escapes,
nothing crashes. Tests are named ``test_item<N>_...`` after the issue's numbered items."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, make_tiny_dataset, write_png_bomb

from fakebench import detectors, io
from fakebench.cli import main
from fakebench.errors import (
    CheckpointError,
    ConfigError,
    FakebenchError,
    ImageLoadError,
)
from fakebench.io import save_png
from fakebench.runner import evaluate, load_experiment, prepare
from fakebench.runner.run import STORE_FILE

pytestmark = pytest.mark.usefixtures("one_thread")


# -- helpers -------------------------------------------------------------------------------

def _checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.threshold = 0.1
    return det.save(path)


def _folder_dataset(root: Path, n: int = 3, size: int = 32) -> Path:
    """real/ + fake/g/ with ``n`` random images each."""
    rng = np.random.default_rng(0)
    for i in range(n):
        save_png(root / "real" / f"r{i}.png", rng.random((size, size, 3)))
        save_png(root / "fake" / "g" / f"f{i}.png", rng.random((size, size, 3)))
    return root


def _config(tmp: Path, data: Path, ck: Path, **top) -> Path:
    cfg = {"run": "t", "output": "out", "seed": 0, "batch_size": 8, "dataset": {"path": str(data)},
           "detectors": [{"name": "tiny", "checkpoint": str(ck)}],
           "attacks": [{"attack": "jpeg", "options": {"quality": 60}}]}
    cfg.update(top)
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(argv: list[str], capsys) -> tuple[int, list[str], str]:
    """(exit code, the 'fakebench: error' lines, all of stderr)."""
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, [ln for ln in err.splitlines() if ln.startswith("fakebench: error")], err


def _one_line_error(rc: int, errs: list[str], stderr: str, *needles: str) -> None:
    assert rc == 2, stderr
    assert len(errs) == 1, stderr
    assert "Traceback" not in stderr
    for n in needles:
        assert n in errs[0], (n, errs[0])


def _store_rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT detector, attack, params, sample, score_clean, score_adv FROM results "
                           "ORDER BY detector, attack, params, sample").fetchall()
    finally:
        con.close()


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (symlinks by their target)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            out[rel] = ("link:" + os.readlink(p)) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# -- 1. builtin rebuild deletes only what fakebench wrote -----------------------------------

def _tiny_builtin(out: Path, seed: int) -> Path:
    from fakebench.builtin import build_builtin

    return build_builtin(out, patch=16, n_train=8, n_val=4, n_test=8, train_steps=1, seed=seed, progress=False)


def test_item1_builtin_rebuild_keeps_user_files(tmp_path, caplog):
    out = tmp_path / "bench"
    _tiny_builtin(out, seed=0)
    first = set(_tree(out / "images"))
    (out / "images" / "my_photo.png").write_bytes(b"mine")
    (out / "images" / "mine").mkdir()
    (out / "images" / "mine" / "keep.jpg").write_bytes(b"keep")
    with caplog.at_level(logging.WARNING):
        _tiny_builtin(out, seed=1)  # other settings: rebuilt in place
    assert (out / "images" / "my_photo.png").read_bytes() == b"mine"
    assert (out / "images" / "mine" / "keep.jpg").read_bytes() == b"keep"
    kept = [r.getMessage() for r in caplog.records if "did not write" in r.getMessage()]
    assert len(kept) == 1 and "kept 2 file(s)" in kept[0]
    # the old build's patches are gone: every patch now on disk is listed by the new manifest
    listed = {line.split(",")[0] for line in (out / "manifest.csv").read_text().splitlines()[1:]}
    now = {"images/" + p for p in _tree(out / "images")} - {"images/my_photo.png", "images/mine/keep.jpg"}
    assert now == listed
    assert first - {p[len("images/"):] for p in listed}, "the seeds should give different patches"


def test_item1_interrupted_build_removes_only_patch_names(tmp_path):
    from fakebench.builtin.cache import own_files

    out = tmp_path / "bench"
    ours = out / "images" / "train" / "real" / "00001_astronaut@y0_x0_s32_q00.png"
    theirs = [out / "images" / "train" / "real" / "holiday.png", out / "images" / "notes.txt"]
    for p in [ours, *theirs]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    mine, others = own_files(out, {"complete": False})
    assert mine == [ours] and sorted(others) == sorted(theirs)


# -- 2. a resume with other chunk settings is refused, never silently short ----------------------

def _kill_last_chunk(db: Path, sids: list[str], chunk: int) -> None:
    con = sqlite3.connect(db)
    con.execute(f"DELETE FROM results WHERE sample IN ({','.join('?' * len(sids))})", sids)
    con.execute("DELETE FROM chunks WHERE chunk = ?", (chunk,))
    con.commit()
    con.close()


def test_item2_resume_with_other_batch_size_is_refused(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=12)  # 24 images: 4 chunks of 6
    ck = _checkpoint(tmp_path / "ck")
    cfg = _config(tmp_path, manifest, ck, batch_size=6)
    exp = load_experiment(cfg)
    db = evaluate(exp, progress=False)
    full = _store_rows(db)
    assert len(full) == 48
    prep = prepare(exp)
    _kill_last_chunk(db, [prep.sid(s) for s in prep.samples[18:]], 3)  # as if killed before chunk 3
    with pytest.raises(ConfigError, match=r"batch_size 6 -> 8"):
        evaluate(load_experiment(_config(tmp_path, manifest, ck, batch_size=8)), progress=False)
    assert len(_store_rows(db)) == 36  # nothing written by the refused run
    evaluate(load_experiment(_config(tmp_path, manifest, ck, batch_size=6)), progress=False)
    assert _store_rows(db) == full  # the same settings resume exactly


def test_item2_resume_from_a_moved_dataset_folder_continues(tmp_path):
    import shutil

    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=4)
    ck = _checkpoint(tmp_path / "ck")
    db = evaluate(load_experiment(_config(tmp_path, manifest, ck)), progress=False)
    rows = _store_rows(db)
    shutil.move(tmp_path / "data", tmp_path / "moved")  # the store keys are relative: still the same run
    evaluate(load_experiment(_config(tmp_path, tmp_path / "moved" / "manifest.csv", ck)), progress=False)
    assert _store_rows(db) == rows


def test_item2_resume_with_other_samples_or_detector_is_refused(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=6)
    ck = _checkpoint(tmp_path / "ck")
    evaluate(load_experiment(_config(tmp_path, manifest, ck)), progress=False)
    with pytest.raises(ConfigError, match=r"samples 12 -> 8"):
        evaluate(load_experiment(_config(tmp_path, manifest, ck, dataset={"path": str(manifest), "limit": 8})),
                 progress=False)
    _checkpoint(tmp_path / "ck", seed=1)  # other weights under the same name
    with pytest.raises(ConfigError, match=r"detector 'tiny'.*differs"):
        evaluate(load_experiment(_config(tmp_path, manifest, ck)), progress=False)


def test_item2_run_never_ends_silently_short(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=4)
    exp = load_experiment(_config(tmp_path, manifest, _checkpoint(tmp_path / "ck")))
    db = evaluate(exp, progress=False)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM results WHERE attack = 'jpeg' AND sample = (SELECT MIN(sample) FROM results)")
    con.commit()
    con.close()  # rows gone, chunk markers kept: a resume would skip the chunk
    with pytest.raises(FakebenchError, match=r"holds 7 rows \+ 0 unreadable images for tiny / jpeg, not 8"):
        evaluate(exp, progress=False)


def test_item2_manifest_listing_an_image_twice_is_refused(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=2)
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines + [lines[1]]) + "\n")  # used to die with IntegrityError at commit
    exp = load_experiment(_config(tmp_path, manifest, _checkpoint(tmp_path / "ck")))
    with pytest.raises(ConfigError, match=r"listed more than once \(e.g. 'real_000.png'\)"):
        evaluate(exp, progress=False)


# -- 3. two processes on one store -----------------------------------------------------------

def test_item3_chunk_committed_by_another_process_is_skipped(tmp_path, monkeypatch):
    from fakebench.runner import store as store_mod

    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=6)
    exp = load_experiment(_config(tmp_path, manifest, _checkpoint(tmp_path / "ck")))
    db = evaluate(exp, progress=False)
    rows = _store_rows(db)
    # a second process that read the store before the first committed: it computes every chunk again
    monkeypatch.setattr(store_mod.Store, "done_chunks", lambda self, run: set())
    evaluate(exp, progress=False)  # used to raise sqlite3.IntegrityError
    assert _store_rows(db) == rows


@pytest.mark.slow
def test_item3_two_evaluate_processes_on_one_output(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=6)
    cfg = _config(tmp_path, manifest, _checkpoint(tmp_path / "ck"), batch_size=2)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "fakebench", "evaluate", "--no-progress", "--config", str(cfg)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err
    assert len(_store_rows(tmp_path / "out" / STORE_FILE)) == 24


# -- 4. symlinks out of the dataset root ---------------------------------------------------------

def _escaping_links(data: Path, tmp: Path) -> None:
    save_png(tmp / "outside" / "secret.png", np.zeros((32, 32, 3)))
    (data / "real" / "out.png").symlink_to(tmp / "outside" / "secret.png")
    (data / "real" / "pw.png").symlink_to("/etc/passwd")


def test_item4_folder_dataset_refuses_links_out_of_the_root(tmp_path, caplog):
    from fakebench.data import load_dataset

    data = _folder_dataset(tmp_path / "data")
    _escaping_links(data, tmp_path)
    (data / "real" / "inside.png").symlink_to(data / "fake" / "g" / "f0.png")  # inside: allowed
    with caplog.at_level(logging.WARNING):
        names = sorted(Path(s.path).name for s in load_dataset(data))
    assert names == ["f0.png", "f1.png", "f2.png", "inside.png", "r0.png", "r1.png", "r2.png"]
    lines = [r.getMessage() for r in caplog.records if "outside" in r.getMessage()]
    assert len(lines) == 2 and any("pw.png" in ln for ln in lines)


def test_item4_attack_in_refuses_links_out_of_the_root(tmp_path, capsys):
    data = _folder_dataset(tmp_path / "data", n=1)
    _escaping_links(data, tmp_path)
    ck = _checkpoint(tmp_path / "ck")
    rc, _, stderr = _cli(["attack", str(ck), "--attack", "jpeg", "--opt", "quality=50", "--in", str(data),
                          "--out", str(tmp_path / "adv")], capsys)
    assert rc == 0, stderr
    rows = {r["file"]: r for r in _csv(tmp_path / "adv" / "attack.csv")}
    assert set(rows) == {"real/r0.png", "fake/g/f0.png", "real/out.png", "real/pw.png"}
    for name in ("real/out.png", "real/pw.png"):
        assert rows[name]["status"].startswith("skipped: symlink resolves to") and rows[name]["output"] == ""
    assert not (tmp_path / "adv" / "real" / "out.png").exists()
    assert not (tmp_path / "adv" / "real" / "pw.png").exists()


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- 5. report never creates a store ------------------------------------------------------------

def test_item5_report_refuses_a_missing_store_and_creates_nothing(tmp_path, capsys):
    rc, errs, stderr = _cli(["report", "--store", str(tmp_path / "typo" / "path.sqlite"),
                             "--out", str(tmp_path / "rep")], capsys)
    _one_line_error(rc, errs, stderr, "path.sqlite", "not found")
    assert not (tmp_path / "typo").exists() and not (tmp_path / "rep").exists()


def test_item5_report_opens_the_store_read_only(tmp_path, capsys):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=4)
    db = evaluate(load_experiment(_config(tmp_path, manifest, _checkpoint(tmp_path / "ck"), attacks=[])),
                  progress=False)
    before = _tree(db.parent)
    rc, _, stderr = _cli(["report", "--store", str(db), "--out", str(tmp_path / "rep")], capsys)
    assert rc == 0, stderr
    assert _tree(db.parent) == before  # not a byte written, no -wal / -shm left beside it
    rc, errs, stderr = _cli(["report", "--store", str(db), "--run", "nope", "--out", str(tmp_path / "rep")], capsys)
    _one_line_error(rc, errs, stderr, "nope")


# -- 6. bad images: one line each, the run goes on --------------------------------------------

def _bad_image_folder(root: Path) -> tuple[Path, list[str]]:
    """A folder dataset with 3 + 3 good images and the probe's bad kinds; returns (root, good names)."""
    data = _folder_dataset(root)
    (data / "real" / "loop.png").symlink_to(data / "real" / "loop.png")
    (data / "real" / "dangling.png").symlink_to(data / "real" / "nothing.png")
    save_png(Path(os.fsdecode(bytes(data / "fake" / "g") + b"/bad\xff.png")), np.full((32, 32, 3), 0.5))
    return data, ["r0.png", "r1.png", "r2.png", "f0.png", "f1.png", "f2.png", "bad\\xff.png"]


def test_item6_bad_names_and_links_evaluate_completes_and_reruns(tmp_path, capsys):
    data, good = _bad_image_folder(tmp_path / "data")
    cfg = _config(tmp_path, data, _checkpoint(tmp_path / "ck"))
    for _ in range(2):  # a rerun must work too (a non-UTF-8 name used to fail at every commit)
        rc, errs, stderr = _cli(["evaluate", "--no-progress", "--config", str(cfg)], capsys)
        assert rc == 0 and not errs and "Traceback" not in stderr, stderr
    rows = _store_rows(tmp_path / "out" / STORE_FILE)
    scored = {Path(r[3]).name for r in rows}
    assert scored == set(good) and len(rows) == 2 * len(good)  # clean + jpeg for every good image
    con = sqlite3.connect(tmp_path / "out" / STORE_FILE)
    bad = dict(con.execute("SELECT sample, reason FROM bad_samples").fetchall())
    con.close()
    assert list(bad) == ["real/dangling.png"] and "file not found" in bad["real/dangling.png"]


def test_item6_bad_names_and_links_attack_writes_every_row(tmp_path, capsys):
    data, good = _bad_image_folder(tmp_path / "data")
    ck = _checkpoint(tmp_path / "ck")
    rc, errs, stderr = _cli(["attack", str(ck), "--attack", "jpeg", "--opt", "quality=50", "--in", str(data),
                             "--out", str(tmp_path / "adv")], capsys)
    assert rc == 0 and not errs and "Traceback" not in stderr, stderr
    rows = {r["file"]: r for r in _csv(tmp_path / "adv" / "attack.csv")}
    assert {Path(f).name for f, r in rows.items() if r["status"] == "ok"} == set(good)
    assert "file not found" in rows["real/dangling.png"]["status"]
    assert "cannot be resolved" in rows["real/loop.png"]["status"]
    summary = json.loads((tmp_path / "adv" / "attack.json").read_text())
    assert summary["images"] == len(good) + 2 and summary["attacked"] == len(good)


def test_item6_pixel_bomb_refused_by_a_memory_based_default(tmp_path):
    assert io.DEFAULT_MAX_PIXELS < 12000 * 12000, "the default limit must come from memory, not PIL's constant"
    assert io.DEFAULT_MAX_PIXELS * io.PEAK_BYTES_PER_PIXEL <= io.DECODE_MEMORY_BUDGET
    bomb = write_png_bomb(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImageLoadError, match="image too large: 12000x12000"):
        io.load_image(bomb)


def test_item6_pixel_bomb_costs_only_itself_in_a_chunk(tmp_path):
    data = _folder_dataset(tmp_path / "data", n=2)
    write_png_bomb(data / "fake" / "g" / "bomb.png", 12000, 12000)
    exp = load_experiment(_config(tmp_path, data, _checkpoint(tmp_path / "ck"), attacks=[]))
    assert io.DEFAULT_MAX_PIXELS < 12000 * 12000  # else this would decode 144 M pixels
    db = evaluate(exp, progress=False)
    assert sorted(Path(r[3]).name for r in _store_rows(db)) == ["f0.png", "f1.png", "r0.png", "r1.png"]
    con = sqlite3.connect(db)
    (reason,) = con.execute("SELECT reason FROM bad_samples").fetchone()
    con.close()
    assert "too large" in reason


def test_item6_large_jpeg_decoded_at_a_reduced_draft_for_resizing_detectors(tmp_path):
    from PIL import Image

    from fakebench.runner.run import draft_side

    p = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((1600, 2000, 3)) * 255).astype(np.uint8)).save(p, quality=90)
    with pytest.raises(ImageLoadError, match="too large"):
        io.load_image(p, max_pixels=1_000_000)
    small = io.load_image(p, max_pixels=1_000_000, draft_side=224)  # DCT scale 1/4: 500x400
    assert small.shape == (400, 500, 3)
    full = io.load_image(p)
    ref = full.reshape(400, 4, 500, 4, 3).mean(axis=(1, 3))  # the draft is close to a 4x4 box average
    assert np.abs(small - ref).mean() < 0.05
    assert io.load_image(p, draft_side=1000).shape == full.shape  # sides < 2 x draft_side: full decode
    tiny = detectors.create("cnnspot", arch="resnet10", width=8)
    assert draft_side({"a": tiny}) is None  # a detector that sees the image at its own size: never


def test_item6_failed_decode_costs_only_that_image(tmp_path, monkeypatch):
    from fakebench.data import Sample
    from fakebench.data.pipeline import iter_batches

    paths = [save_png(tmp_path / f"{i}.png", np.full((8, 8, 3), i / 10)) for i in range(5)]
    real = io._to_rgb_array
    calls = {"n": 0}

    def boom(img):
        calls["n"] += 1
        if calls["n"] == 3:
            raise MemoryError("cannot allocate 4.5 GiB")
        return real(img)

    monkeypatch.setattr(io, "_to_rgb_array", boom)
    batches = list(iter_batches([Sample(str(p), 0, "real", "s") for p in paths], 8, bucket=True))
    assert sum(len(b[0]) for b in batches) == 4
    bad = [b for batch in batches for b in batch[3]]
    assert len(bad) == 1 and bad[0][0] == str(paths[2]) and "MemoryError" in bad[0][1]


def test_item6_image_the_detector_cannot_process_costs_only_itself(tmp_path, monkeypatch, caplog):
    from fakebench.detectors.resnet import CNNSpot

    data = _folder_dataset(tmp_path / "data", n=2)
    save_png(data / "fake" / "g" / "huge.png", np.zeros((40, 40, 3)))  # stands in for one too large to score
    real = CNNSpot.forward

    def forward(self, x):
        if x.shape[-1] == 40:
            raise MemoryError("cannot allocate 4.5 GiB")
        return real(self, x)

    monkeypatch.setattr(CNNSpot, "forward", forward)
    exp = load_experiment(_config(tmp_path, data, _checkpoint(tmp_path / "ck")))
    with caplog.at_level(logging.WARNING):
        db = evaluate(exp, progress=False)
    rows = _store_rows(db)
    assert sorted({Path(r[3]).name for r in rows}) == ["f0.png", "f1.png", "r0.png", "r1.png"]
    assert len(rows) == 8  # clean + jpeg for each of the 4 good images of the chunk
    con = sqlite3.connect(db)
    bad = dict(con.execute("SELECT sample, reason FROM bad_samples").fetchall())
    con.close()
    assert list(bad) == ["fake/g/huge.png"] and "tiny / clean failed (MemoryError" in bad["fake/g/huge.png"]
    assert len([r for r in caplog.records if "huge.png" in r.getMessage()]) == 1  # one line, not one per unit


def test_item6_tiny_image_scored_with_a_warning(tmp_path, caplog):
    data = _folder_dataset(tmp_path / "data", n=2)
    save_png(data / "real" / "one.png", np.zeros((1, 1, 3)))
    exp = load_experiment(_config(tmp_path, data, _checkpoint(tmp_path / "ck"), attacks=[]))
    with caplog.at_level(logging.WARNING):
        db = evaluate(exp, progress=False)
    assert "real/one.png" in {r[3] for r in _store_rows(db)}
    lines = [r.getMessage() for r in caplog.records if "minimum input" in r.getMessage()]
    assert len(lines) == 1 and "one.png: 1x1 px is smaller than the 32 px minimum input" in lines[0]


# -- 7. configs: one line naming the field, before any work --------------------------------------

@pytest.mark.parametrize("change, needle", [
    ({"attacks": [{"attack": "pgd", "options": {"eps": "8/0", "steps": 2}}]}, "attacks[0].options.eps"),
    ({"device": "tpu9"}, "exp.yaml.device"),
    ({"attacks": [{"attack": "pgd", "options": {"steps": 0}}]}, "attacks[0].options.steps"),
    ({"attacks": [{"attack": "jpeg"}, {"attack": "jpeg", "options": {"quality": 500}}]}, "attacks[1].options.quality"),
    ({"attacks": [{"attack": "jpeg"}, {"attack": "jpeg", "options": {"quality": 0}}]}, "attacks[1].options.quality"),
    ({"attacks": [{"attack": "jpeg"}, {"attack": "blur", "options": {"sigma": -1}}]}, "attacks[1].options.sigma"),
    ({"attacks": [{"attack": "jpeg"}, {"attack": "resize", "options": {"scale": 0}}]}, "attacks[1].options.scale"),
    ({"seed": float("nan")}, "exp.yaml.seed"),
    ({"batch_size": float("inf")}, "exp.yaml.batch_size"),
])
def test_item7_config_errors_name_the_field_before_any_work(tmp_path, capsys, change, needle):
    data = _folder_dataset(tmp_path / "data", n=1)
    cfg = _config(tmp_path, data, _checkpoint(tmp_path / "ck"), **change)
    rc, errs, stderr = _cli(["evaluate", "--no-progress", "--config", str(cfg)], capsys)
    _one_line_error(rc, errs, stderr, needle)
    assert not (tmp_path / "out" / STORE_FILE).exists()  # refused before any work


@pytest.mark.parametrize("text, needle", [
    (b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(  # a billion laughs: 10^6 values from 6 lines
        b"%s: &%s [%s]\n" % (n, n, b", ".join([b"*" + p] * 10)) for p, n in zip([b"a", b"b", b"c", b"d", b"e"],
                                                                           [b"b", b"c", b"d", b"e", b"f"])),
     "expands beyond 100000 values"),
    (b"a: &a [*a]\n", "32 levels"),
    (b"run: caf\xe9\n", "not UTF-8"),
])
def test_item7_hostile_yaml_files_are_one_line(tmp_path, capsys, text, needle):
    cfg = tmp_path / "exp.yaml"
    cfg.write_bytes(text)
    rc, errs, stderr = _cli(["evaluate", "--no-progress", "--config", str(cfg)], capsys)
    _one_line_error(rc, errs, stderr, needle)


# -- 8. checkpoint folders ----------------------------------------------------------------------

class _Payload:
    """Unpickling this creates a marker file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("kind", ["threshold_abc", "meta_list", "threshold_nan", "garbage_weights",
                                  "pickle_weights"])
def test_item8_broken_checkpoint_folders_are_one_line(tmp_path, capsys, kind):
    ck = _checkpoint(tmp_path / "ck")
    cfg_file = ck / "config.json"
    cfg = json.loads(cfg_file.read_text())
    marker = tmp_path / "pwned"
    if kind == "threshold_abc":
        cfg["threshold"] = "abc"
    elif kind == "meta_list":
        cfg["meta"] = [1, 2]
    elif kind == "threshold_nan":
        cfg["threshold"] = math.nan  # json writes NaN, which json.loads reads back
    elif kind == "garbage_weights":
        (ck / "model.safetensors").write_bytes(os.urandom(256))
    else:
        (ck / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as info:
        detectors.load(ck)
    assert "\n" not in str(info.value) and str(ck) in str(info.value)
    data = _folder_dataset(tmp_path / "data", n=1)
    rc, errs, stderr = _cli(["evaluate", "--no-progress", "--config", str(_config(tmp_path, data, ck))], capsys)
    _one_line_error(rc, errs, stderr, "detectors[0]")
    assert not (tmp_path / "out" / STORE_FILE).exists()
    assert not marker.exists()


def test_item8_pretrained_garbage_safetensors_is_one_line(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="x.safetensors: not a valid safetensors file"):
        detectors.create("cnnspot", arch="resnet10", width=8, pretrained=str(bad))


# -- 9. forensics: degenerate perspective groups ---------------------------------------------

def _perspective(segments: list[list[float]]) -> dict:
    return {"type": "perspective", "image_size": [200, 200],
            "groups": [{"name": "a", "segments": segments}, {"name": "b", "segments": [[10, 190, 60, 150],
                                                                                        [20, 195, 80, 160]]}]}


@pytest.mark.parametrize("segments, needle", [
    ([[10, 10, 50, 60]] * 3, "groups[0].segments[1]: same segment as segments[0]"),
    ([[10, 10, 50, 60], [50, 60, 10, 10], [30, 20, 90, 100]], "groups[0].segments[1]: same segment"),
    ([[0, 0, 10, 10], [20, 20, 40, 40], [60, 60, 90, 90]], "groups[0].segments: all 3 segments lie on one"),
])
def test_item9_degenerate_perspective_groups_are_errors(segments, needle):
    from fakebench.forensics.annotations import parse_perspective

    with pytest.raises(ConfigError) as info:
        parse_perspective(_perspective(segments))
    assert needle in str(info.value)
    parse_perspective(_perspective([[10, 10, 50, 60], [30, 20, 90, 100], [100, 10, 120, 80]]))  # distinct: fine


# -- beyond the list: fakebench's own output names in a non-empty --out ----------------------------

def _overwrite_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "overwriting" in r.getMessage()]


def test_out_overwrite_is_said_in_one_line_attack(tmp_path, caplog):
    data = _folder_dataset(tmp_path / "data", n=1)
    argv = ["attack", str(_checkpoint(tmp_path / "ck")), "--attack", "jpeg", "--in", str(data),
            "--out", str(tmp_path / "adv")]
    (tmp_path / "adv").mkdir()
    (tmp_path / "adv" / "unrelated.txt").write_text("mine")
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
        assert _overwrite_lines(caplog) == []  # nothing of ours there yet
        assert main(argv) == 0
    lines = _overwrite_lines(caplog)
    assert len(lines) == 1 and "overwriting 4 existing file(s)" in lines[0] and "attack.csv" in lines[0]
    assert (tmp_path / "adv" / "unrelated.txt").read_text() == "mine"


def test_out_overwrite_is_said_in_one_line_report(tmp_path, caplog):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=4)
    db = evaluate(load_experiment(_config(tmp_path, manifest, _checkpoint(tmp_path / "ck"), attacks=[])),
                  progress=False)
    argv = ["report", "--store", str(db), "--out", str(tmp_path / "rep")]
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
        assert _overwrite_lines(caplog) == []
        assert main(argv) == 0
    lines = _overwrite_lines(caplog)
    assert len(lines) == 1 and "report.html" in lines[0]


@pytest.mark.parametrize("attack, options, field", [
    ("pgd", {"eps": float("inf")}, "eps"), ("apgd", {"eps": float("inf")}, "eps"), ("pgd", {"eps": float("nan")}, "eps"),
    ("pgd", {"kappa": float("nan")}, "kappa"),
    ("pgd", {"eot_samples": 0}, "eot_samples"), ("apgd", {"eps": -1}, "eps"),
])
def test_item7_threat_model_refuses_non_finite_and_empty_budgets(attack, options, field):
    from fakebench import attacks

    with pytest.raises(ConfigError, match=f"{field}: (must be|{attack} needs a finite budget)"):
        attacks.create(attack, **options)


def test_item4_class_folder_linked_outside_is_refused(tmp_path, caplog):
    from fakebench.data import load_dataset

    data = _folder_dataset(tmp_path / "data", n=1)
    save_png(tmp_path / "elsewhere" / "x.png", np.zeros((32, 32, 3)))
    (data / "fake" / "h").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "cnn" / "0_real").mkdir(parents=True)
    save_png(tmp_path / "cnn" / "0_real" / "r.png", np.zeros((32, 32, 3)))
    (tmp_path / "cnn" / "1_fake").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with caplog.at_level(logging.WARNING):
        assert sorted(Path(s.path).name for s in load_dataset(data)) == ["f0.png", "r0.png"]
        assert [Path(s.path).name for s in load_dataset(tmp_path / "cnn")] == ["r.png"]
    lines = [r.getMessage() for r in caplog.records if "folder resolves to" in r.getMessage()]
    assert len(lines) == 2 and "skipping folder" in lines[0] and "fake/h" in lines[0]
    assert "skipping 1 image(s)" in lines[1]


def test_out_overwrite_is_said_in_one_line_other_verbs(tmp_path, capsys):
    """Verbs without their own notice (train, transfer, spectrum, robustness, forensics, demo):
    one line after the run naming the files that were already in --out and were replaced."""
    import shutil

    ex = REPO / "examples" / "forensics"
    for f in ("lighting.png", "lighting.json"):
        shutil.copy(ex / f, tmp_path / f)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    argv = ["forensics", "lighting", str(tmp_path / "lighting.png"), "--annotations",
            str(tmp_path / "lighting.json"), "--out", str(out)]
    assert main(argv) == 0
    assert "overwrote" not in capsys.readouterr().err
    assert main(argv) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "overwrote" in ln]
    files = "lighting_lighting.json, lighting_lighting.png"
    assert notes == [f"fakebench: note: overwrote 2 file(s) that were already in {out}: {files}"]
    assert (out / "mine.txt").read_text() == "mine"
