"""Dataset layouts, manifest safety, load_dataset detection, split_samples and select."""

from __future__ import annotations

import csv
import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fakebench.data import (
    Sample,
    from_cnndetection,
    from_folders,
    from_manifest,
    load_dataset,
    select,
    split_samples,
)
from fakebench.errors import ConfigError, DataError
from fakebench.io import save_png


def touch_png(path: Path, value: float = 0.5) -> Path:
    return save_png(path, np.full((4, 4, 3), value, np.float32))


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def rel(samples: list[Sample], root: Path) -> list[tuple[str, int, str]]:
    return [(Path(s.path).relative_to(root.resolve()).as_posix(), s.label, s.generator) for s in samples]


# -- folder layouts ------------------------------------------------------------------------

def test_from_folders_lists_images_with_generators(tmp_path):
    root = tmp_path / "ds"
    for p in ["real/b.png", "real/sub/a.jpg", "fake/gan/x.png", "fake/gan/deep/y.png", "fake/sd/z.webp", "fake/top.png"]:
        touch_png(root / p)
    (root / "real" / "notes.txt").write_text("not an image")
    touch_png(root / "real" / ".hidden.png")
    got = from_folders(root)
    assert rel(got, root) == [
        ("fake/gan/deep/y.png", 1, "gan"), ("fake/gan/x.png", 1, "gan"), ("fake/sd/z.webp", 1, "sd"),
        ("fake/top.png", 1, "unknown"), ("real/b.png", 0, "real"), ("real/sub/a.jpg", 0, "real"),
    ]
    assert all(os.path.isabs(s.path) and s.source == "ds" and s.split == "" for s in got)
    assert load_dataset(root) == got


def test_from_folders_requires_both_folders(tmp_path):
    touch_png(tmp_path / "real" / "a.png")
    with pytest.raises(DataError, match="real/ and fake/"):
        from_folders(tmp_path)


def test_cnndetection_layouts(tmp_path):
    root = tmp_path / "cnn"
    for p in ["car/0_real/r1.png", "car/1_fake/f1.png", "cat/0_real/r2.png", "cat/1_fake/f2.png",
              "stylegan/bedroom/1_fake/f3.png", "stylegan/bedroom/0_real/r3.png"]:
        touch_png(root / p)
    got = from_cnndetection(root)
    assert rel(got, root) == [
        ("car/0_real/r1.png", 0, "real"), ("car/1_fake/f1.png", 1, "car"), ("cat/0_real/r2.png", 0, "real"),
        ("cat/1_fake/f2.png", 1, "cat"), ("stylegan/bedroom/0_real/r3.png", 0, "real"),
        ("stylegan/bedroom/1_fake/f3.png", 1, "stylegan"),
    ]
    assert [s.source for s in got] == ["car", "car", "cat", "cat", "stylegan/bedroom", "stylegan/bedroom"]
    assert load_dataset(root) == got


def test_cnndetection_flat_root_uses_root_name(tmp_path):
    root = tmp_path / "biggan"
    touch_png(root / "0_real" / "a.png")
    touch_png(root / "1_fake" / "b.png")
    (root / "1_fake" / "readme.md").write_text("x")
    got = load_dataset(root)
    assert rel(got, root) == [("0_real/a.png", 0, "real"), ("1_fake/b.png", 1, "biggan")]


def test_load_dataset_refuses_unknown_layouts(tmp_path):
    touch_png(tmp_path / "images" / "a.png")
    with pytest.raises(DataError) as ei:
        load_dataset(tmp_path)
    msg = str(ei.value)
    assert "\n" not in msg and "real/" in msg and "0_real" in msg and "csv" in msg
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="csv"):
        load_dataset(tmp_path / "x.txt")


# -- manifests -----------------------------------------------------------------------------

def test_manifest_columns_labels_and_defaults(tmp_path):
    root = tmp_path / "m"
    for p in ["a.png", "sub/b.png", "c.png", "d.png"]:
        touch_png(root / p)
    csv_path = write_csv(root / "list.csv", ["Label", "PATH", "generator", "split", "source"], [
        ["fake", "sub/b.png", "sd15", "Validation", "photo1"],
        ["0", "a.png", "ignored", "train", ""],
        ["1", "c.png", "", "", ""],
        [" REAL ", "d.png", "", "testing", "photo2"],
    ])
    got = from_manifest(csv_path)
    assert rel(got, root) == [("a.png", 0, "real"), ("c.png", 1, "unknown"), ("d.png", 0, "real"), ("sub/b.png", 1, "sd15")]
    assert [s.split for s in got] == ["train", "", "test", "val"]
    assert [s.source for s in got] == ["m", "m", "photo2", "photo1"]
    assert load_dataset(csv_path) == got


def test_folder_with_manifest_csv_takes_precedence(tmp_path, tiny_dataset):
    got = load_dataset(tiny_dataset.parent)
    assert len(got) == 48 and Counter(s.label for s in got) == {0: 24, 1: 24}
    assert {s.split for s in got} == {"train", "val", "test"} and {s.generator for s in got} == {"real", "rep2x"}
    assert got == load_dataset(tiny_dataset)


@pytest.mark.parametrize("bad_path, reason", [
    ("../outside.png", ".."), ("sub/../../outside.png", ".."), ("ABSOLUTE", "absolute"),
])
def test_manifest_refuses_paths_escaping_its_folder(tmp_path, bad_path, reason):
    outside = touch_png(tmp_path / "outside.png")
    root = tmp_path / "m"
    touch_png(root / "ok.png")
    if bad_path == "ABSOLUTE":
        bad_path = str(outside)
    csv_path = write_csv(root / "manifest.csv", ["path", "label"], [["ok.png", 0], [bad_path, 1]])
    with pytest.raises(DataError) as ei:
        from_manifest(csv_path)
    msg = str(ei.value)
    assert "\n" not in msg and str(csv_path) in msg and "row 2" in msg and bad_path in msg and reason in msg


def test_manifest_refuses_symlinks_resolving_outside(tmp_path):
    outside = touch_png(tmp_path / "secret" / "x.png")
    root = tmp_path / "m"
    touch_png(root / "ok.png")
    os.symlink(outside, root / "link.png")
    os.symlink(outside.parent, root / "linkdir")
    os.symlink(root / "ok.png", root / "inside_link.png")  # stays inside: accepted
    assert len(from_manifest(write_csv(root / "a.csv", ["path", "label"], [["inside_link.png", 1]]))) == 1
    for entry in ("link.png", "linkdir/x.png"):
        csv_path = write_csv(root / "b.csv", ["path", "label"], [["ok.png", 0], ["inside_link.png", 1], [entry, 1]])
        with pytest.raises(DataError) as ei:
            from_manifest(csv_path)
        assert "row 3" in str(ei.value) and entry in str(ei.value) and "outside" in str(ei.value)


@pytest.mark.parametrize("label", ["2", "maybe", "", "-1", "0.5"])
def test_manifest_refuses_bad_labels(tmp_path, label):
    csv_path = write_csv(tmp_path / "manifest.csv", ["path", "label"], [["a.png", 1], ["b.png", label]])
    with pytest.raises(DataError) as ei:
        from_manifest(csv_path)
    assert "row 2" in str(ei.value) and "label" in str(ei.value) and str(csv_path) in str(ei.value)


def test_manifest_header_must_name_path_and_label(tmp_path):
    csv_path = write_csv(tmp_path / "manifest.csv", ["file", "label"], [["a.png", 1]])
    with pytest.raises(DataError, match="path"):
        from_manifest(csv_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        from_manifest(tmp_path / "empty.csv")


# -- splitting and selection ---------------------------------------------------------------

def make_samples(n_real: int = 60, gens: dict[str, int] | None = None) -> list[Sample]:
    gens = gens or {"gan": 30, "sd": 30, "flux": 10}
    out = [Sample(f"/d/real/{i:03d}.png", 0, "real", "d") for i in range(n_real)]
    for g, n in gens.items():
        out += [Sample(f"/d/fake/{g}/{i:03d}.png", 1, g, "d") for i in range(n)]
    return out


def test_split_is_deterministic_and_independent_of_input_order():
    samples = make_samples()
    a = split_samples(samples, seed=3)
    shuffled = samples[:]
    random.Random(0).shuffle(shuffled)
    assert split_samples(shuffled, seed=3) == a
    assert split_samples(samples, seed=4) != a
    paths = [s.path for part in a.values() for s in part]
    assert sorted(paths) == sorted(s.path for s in samples)  # a partition
    assert all(s.split == name for name, part in a.items() for s in part)


def test_split_is_stratified_by_label_and_generator():
    parts = split_samples(make_samples(), fractions=(0.7, 0.15, 0.15), seed=0)
    counts = {k: Counter((s.label, s.generator) for s in v) for k, v in parts.items()}
    assert counts["train"][(0, "real")] == 42 and counts["val"][(0, "real")] == 9 and counts["test"][(0, "real")] == 9
    assert counts["train"][(1, "gan")] == 21 and counts["train"][(1, "flux")] == 7
    assert all(counts[k][(1, g)] >= 1 for k in ("val", "test") for g in ("gan", "sd", "flux"))


def test_split_holdout_generators_go_to_test_only():
    parts = split_samples(make_samples(), seed=0, holdout_generators=("sd",))
    assert not any(s.generator == "sd" for k in ("train", "val") for s in parts[k])
    assert sum(s.generator == "sd" for s in parts["test"]) == 30
    assert any(s.generator == "gan" for s in parts["train"])
    with pytest.raises(ConfigError):
        split_samples(make_samples(), holdout_generators=("real",))


def test_split_respects_existing_assignments():
    samples = make_samples(10, {"gan": 10})
    samples = [Sample(s.path, s.label, s.generator, s.source, "test" if s.path.endswith("000.png") else "")
               for s in samples]
    parts = split_samples(samples, seed=0)
    assert sum(s.path.endswith("000.png") for s in parts["test"]) == 2
    assert not any(s.path.endswith("000.png") for k in ("train", "val") for s in parts[k])
    ignored = split_samples(samples, seed=0, fractions=(1, 0, 0), respect_existing=False)
    assert len(ignored["train"]) == 20 and not ignored["test"]


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (-0.1, 0.6, 0.5), (0, 0, 0)])
def test_split_refuses_bad_fractions(fractions):
    with pytest.raises(ConfigError):
        split_samples(make_samples(), fractions=fractions)


def test_select_filters_and_limits_with_both_classes():
    samples = split_samples(make_samples(), seed=0)
    everything = [s for part in samples.values() for s in part]
    assert all(s.split == "val" for s in select(everything, split="val"))
    assert {s.generator for s in select(everything, generators=["gan", "real"])} == {"gan", "real"}
    assert {s.label for s in select(everything, labels=1)} == {1}
    ordered = sorted(everything, key=lambda s: s.path)
    sub = select(ordered, limit=20, seed=1)
    assert len(sub) == 20 and {s.label for s in sub} == {0, 1}  # not just the first 20 (all fakes)
    assert sub == sorted(sub, key=lambda s: s.path)  # input order kept
    assert select(ordered, limit=20, seed=1) == sub
    with pytest.raises(ConfigError):
        select(ordered, limit=-1)
