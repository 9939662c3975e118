"""The built-in benchmark: manifest, disjoint sources, held-out generators, caching, CLI."""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakebench.builtin.build import (
    HELDOUT_GENERATORS, MANIFEST_COLUMNS, SEEN_GENERATORS, VIEWS, build_builtin,
)
from fakebench.errors import ConfigError, DataError
from fakebench.io import save_png

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


#: a small configuration (patch 32, ~260 patches, 30 training steps) that builds in seconds
SMALL = dict(patch=32, n_train=120, n_val=48, n_test=96, train_steps=30, progress=False)


def _shared_dir() -> Path | None:
    for cand in ((REPO / ".." / "shared").resolve(), os.environ.get("FAKEBENCH_SHARED")):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


SHARED = _shared_dir()
TAEF2 = SHARED / "weights" / "taef2" if SHARED else None


def read_manifest(d: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(d / "manifest.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("builtin") / "ds"
    t0 = time.time()
    d = build_builtin(out, seed=0, **SMALL)
    return d, time.time() - t0


def test_manifest_format_and_files(built):
    d, _ = built
    header, rows = read_manifest(d)
    assert tuple(header) == MANIFEST_COLUMNS == ("path", "label", "generator", "split", "source")
    assert len(rows) > 200
    for r in rows:
        assert r["label"] in ("0", "1")
        assert (r["label"] == "0") == (r["generator"] == "real")
        assert r["split"] in ("train", "val", "test")
        assert not Path(r["path"]).is_absolute() and ".." not in Path(r["path"]).parts
        assert "@" in r["source"]
    for r in rows[:: max(1, len(rows) // 25)]:
        with Image.open(d / r["path"]) as im:
            assert im.size == (32, 32) and im.mode == "RGB"
    for split in ("train", "val", "test"):
        labels = Counter(r["label"] for r in rows if r["split"] == split)
        assert labels["0"] > 0 and labels["1"] > 0
        assert abs(labels["0"] - labels["1"]) <= 2 * len(VIEWS)  # balanced to within one crop group
    counts = Counter(r["split"] for r in rows)
    assert counts["train"] > counts["test"] > counts["val"]  # 120 / 96 / 48 targets


def test_real_and_fake_sources_are_disjoint(built):
    d, _ = built
    _, rows = read_manifest(d)
    real = {r["source"] for r in rows if r["label"] == "0"}
    fake = {r["source"] for r in rows if r["label"] == "1"}
    assert real and fake and not (real & fake)
    by_split: dict[str, set[str]] = {}
    for r in rows:
        by_split.setdefault(r["split"], set()).add(r["source"])
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    # each source crop yields the same number of patches, all with one role
    per_source = Counter(r["source"] for r in rows)
    assert set(per_source.values()) == {len(VIEWS)}
    # stereo views: the same position of the two views never gets two different roles
    roles: dict[str, set[str]] = {}
    for r in rows:
        if r["source"].startswith("stereo_motorcycle"):
            pos = r["source"].split("@", 1)[1]
            roles.setdefault(pos, set()).add(r["generator"] + r["split"])
    assert all(len(v) == 1 for v in roles.values())


def test_heldout_generator_only_in_test(built):
    d, _ = built
    _, rows = read_manifest(d)
    gens = {s: {r["generator"] for r in rows if r["split"] == s and r["label"] == "1"} for s in ("train", "val", "test")}
    assert gens["train"] == gens["val"] == set(SEEN_GENERATORS)
    # no arguments: the TAEF2 weights packaged with fakebench add the held-out "taef2" family
    assert gens["test"] == set(SEEN_GENERATORS) | set(HELDOUT_GENERATORS) | {"taef2"}
    assert "bilinear" not in gens["train"] | gens["val"]
    settings = json.loads((d / "settings.json").read_text())
    assert settings["complete"] is True and settings["heldout_generators"] == ["bilinear", "taef2"]
    from fakebench.generators.tae import PACKAGED_TAEF2

    assert all(Path(f[0]).parent == PACKAGED_TAEF2.resolve() for f in settings["settings"]["tae_weights"])
    assert settings["settings"]["postprocess"]["jpeg_prob"] > 0  # both classes post-processed alike
    assert settings["rows"] == len(rows)
    # 30 training steps only: crude but not identity (the default 200 steps give 24-31 dB)
    assert all(12.0 < v < 45.0 for v in settings["psnr_db"].values()), settings["psnr_db"]


def test_audit_finds_no_format_or_size_shortcut(built):
    """Both classes are PNGs of one size, post-processed alike: the metadata baseline of
    fakebench audit is at chance. (The border / colour baselines of this 30-step build reach
    0.8-0.9: its crude autoencoders shift colours; the default 200-step build gives 0.60 / 0.59,
    all features 0.64: bench/audit_builtin.py.)"""
    from fakebench.data import load_dataset
    from fakebench.data.audit import audit

    d, _ = built
    rep = audit(load_dataset(d), max_per_class=None)
    assert rep.baselines["metadata"] < 0.7, rep.baselines
    assert rep.comparisons["format"]["real"] == {"PNG": rep.n_real}
    assert rep.comparisons["format"]["synthetic"] == {"PNG": rep.n_fake}


def test_second_build_reuses(built, caplog):
    d, first_seconds = built
    before = (d / "manifest.csv").read_bytes()
    some_png = d / read_manifest(d)[1][0]["path"]
    mtime = some_png.stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="fakebench.builtin.build")
    t0 = time.time()
    again = build_builtin(d, seed=0, **SMALL)
    took = time.time() - t0
    assert again == d
    assert "reusing" in caplog.text
    assert took < max(1.0, 0.5 * first_seconds)
    assert (d / "manifest.csv").read_bytes() == before
    assert some_png.stat().st_mtime_ns == mtime


def test_different_seed_different_content(built, tmp_path):
    d, _ = built
    other = build_builtin(tmp_path / "seed1", seed=1, **SMALL)
    a = read_manifest(d)[1]
    b = read_manifest(other)[1]
    assert (d / "manifest.csv").read_bytes() != (other / "manifest.csv").read_bytes()
    role_a = {(r["source"], r["generator"], r["split"]) for r in a}
    role_b = {(r["source"], r["generator"], r["split"]) for r in b}
    assert role_a != role_b
    assert json.loads((d / "settings.json").read_text())["hash"] != json.loads((other / "settings.json").read_text())["hash"]


def test_changed_settings_rebuild_in_place(tmp_path, caplog):
    out = tmp_path / "ds"
    build_builtin(out, seed=0, **{**SMALL, "n_train": 60, "n_val": 24, "n_test": 48})
    h1 = json.loads((out / "settings.json").read_text())["hash"]
    caplog.set_level(logging.INFO, logger="fakebench.builtin.build")
    build_builtin(out, seed=2, **{**SMALL, "n_train": 60, "n_val": 24, "n_test": 48})
    s2 = json.loads((out / "settings.json").read_text())
    assert s2["hash"] != h1 and s2["settings"]["seed"] == 2
    assert "rebuilding" in caplog.text
    _, rows = read_manifest(out)
    on_disk = {p.relative_to(out).as_posix() for p in (out / "images").rglob("*.png")}
    assert on_disk == {r["path"] for r in rows}  # no stale files from the first build


def test_real_dirs_and_bad_files(tmp_path, caplog):
    real = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for i in range(3):
        base = rng.random((10, 10, 3))
        img = np.kron(base, np.ones((16, 16, 1)))[:150, :140] * 0.8 + 0.2 * rng.random((150, 140, 3))
        save_png(real / "sub" / f"p{i}.png", img)
    (real / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    caplog.set_level(logging.INFO)
    opts = {**SMALL, "n_train": 36, "n_val": 12, "n_test": 24, "max_crops_per_photo": 3}
    d = build_builtin(tmp_path / "ds", real_dirs=[real], include_bundled=False, seed=0, **opts)
    assert "broken.jpg" in caplog.text
    _, rows = read_manifest(d)
    photos = Counter(r["source"].split("@")[0] for r in rows if r["source"])
    assert set(photos) <= {f"photos/sub/p{i}.png" for i in range(3)} and photos
    # each 150x140 photo has 2x2 crops of 64 px; at most 3 kept per photo, 6 patches each
    assert max(photos.values()) <= 3 * len(VIEWS)
    # the folder listing is part of the cache key: touching a file invalidates the build
    h1 = json.loads((d / "settings.json").read_text())["hash"]
    save_png(real / "sub" / "p3.png", np.full((140, 140, 3), 0.5))
    build_builtin(tmp_path / "ds", real_dirs=[real], include_bundled=False, seed=0, **opts)
    assert json.loads((d / "settings.json").read_text())["hash"] != h1


def test_refuses_foreign_folder_and_bad_options(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.csv").write_text("path,label\n")
    with pytest.raises(DataError, match="not written by the built-in builder"):
        build_builtin(foreign, **SMALL)
    with pytest.raises(ConfigError, match="patch must be"):
        build_builtin(tmp_path / "x", **{**SMALL, "patch": 30})
    with pytest.raises(ConfigError, match="real image folder not found"):
        build_builtin(tmp_path / "y", real_dirs=[tmp_path / "nope"], **SMALL)


def test_cli_parser_registers_builtin(tmp_path, capsys):
    from fakebench.cli import build_parser, main

    parser = build_parser()
    args = parser.parse_args(["data", "builtin", "--out", str(tmp_path / "cli"), "--real-dir", "a", "--real-dir", "b",
                              "--seed", "3", "--patch", "32"])
    assert args.real_dirs == ["a", "b"] and args.seed == 3 and args.patch == 32 and args.tae_weights is None
    assert callable(args.func)
    assert main(["data", "builtin", "--out", str(tmp_path / "cli"), "--patch", "32", "--n-train", "24",
                 "--n-val", "12", "--n-test", "24", "--train-steps", "5", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("manifest.csv")
    assert (tmp_path / "cli" / "manifest.csv").is_file()
    cli_settings = json.loads((tmp_path / "cli" / "settings.json").read_text())
    assert cli_settings["settings"]["tae_weights"]  # packaged weights, no arguments
    args = parser.parse_args(["data", "builtin", "--out", "x", "--no-tae", "--no-postprocess"])
    assert args.no_tae and args.no_postprocess
    assert main(["data", "builtin", "--out", str(tmp_path / "cli2"), "--patch", "12", "--no-progress"]) == 2
    assert "patch must be" in capsys.readouterr().err


def test_packaged_tae_needs_no_shared_folder(monkeypatch):
    from fakebench.builtin.cache import tae_weight_files
    from fakebench.generators.tae import PACKAGED_TAEF2, packaged_taef2

    monkeypatch.setenv("FAKEBENCH_SHARED", "/nonexistent")
    assert packaged_taef2() == PACKAGED_TAEF2 and (PACKAGED_TAEF2 / "LICENSE").is_file()
    assert tae_weight_files(None)[0] == PACKAGED_TAEF2 and tae_weight_files(False) == (None, None)


def test_postprocess_draws_do_not_depend_on_the_class():
    from fakebench.builtin.generate import PostProcess

    rng = np.random.default_rng(0)
    img = np.clip(rng.random((32, 32, 3)) * 0.5 + 0.25, 0, 1).astype(np.float32)
    post = PostProcess(resize_prob=0.3, jpeg_prob=0.5)
    outs = [post(img, np.random.default_rng([0, i, 0])) for i in range(200)]
    changed = np.mean([not np.array_equal(o, img) for o in outs])
    assert 0.55 < changed < 0.75  # 1 - 0.7 * 0.5 = 0.65 of the patches are touched
    again = post(img, np.random.default_rng([0, 7, 0]))
    np.testing.assert_array_equal(again, outs[7])  # a function of (seed, crop, view) only
    assert all(o.shape == img.shape and o.min() >= 0 and o.max() <= 1 for o in outs)


@pytest.mark.skipif(TAEF2 is None or not TAEF2.is_dir(),
                    reason="shared TAEF2 weights (../shared/weights/taef2 or $FAKEBENCH_SHARED) not present")
def test_tae_generator_is_held_out(tmp_path):
    d = build_builtin(tmp_path / "tae", tae_weights=TAEF2, seed=0, **{**SMALL, "n_train": 60, "n_val": 24, "n_test": 60})
    _, rows = read_manifest(d)
    tae = [r for r in rows if r["generator"] == "taef2"]
    assert tae and {r["split"] for r in tae} == {"test"} and {r["label"] for r in tae} == {"1"}
    settings = json.loads((d / "settings.json").read_text())
    assert settings["heldout_generators"] == ["bilinear", "taef2"]
    assert settings["psnr_db"]["taef2"] > 25.0
