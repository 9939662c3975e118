"""Protocol details: a manifest root outside the manifest's folder, a split asked of a dataset
without a split column, and the too-few-steps warning of training."""

from __future__ import annotations

import csv
import logging

import pytest
import yaml
from conftest import make_tiny_dataset

from fakebench.data import load_dataset, select_split
from fakebench.errors import ConfigError, DataError
from fakebench.runner import load_experiment, prepare


def _split_file(tmp_path, data_manifest, with_split=True, rows=None):
    """A manifest in another folder listing the dataset's files relative to the dataset root."""
    with open(data_manifest, newline="") as f:
        src = list(csv.DictReader(f))
    out = tmp_path / "splits" / "mine.csv"
    out.parent.mkdir(parents=True)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"] if with_split else ["path", "label"])
        for r in rows or src:
            w.writerow([r["path"], r["label"], r["split"]] if with_split else [r["path"], r["label"]])
    return out


def test_manifest_root_outside_its_folder(tmp_path):
    data = make_tiny_dataset(tmp_path / "ro", n_per_class=4)
    man = _split_file(tmp_path, data)
    samples = load_dataset(man, root=data.parent)
    assert len(samples) == 8 and all(s.path.startswith(str(data.parent)) for s in samples)
    from pathlib import Path

    assert not any(Path(s.path).exists() for s in load_dataset(man))  # without root: beside the CSV, absent
    (tmp_path / "outside.png").write_bytes(b"x")
    (data.parent / "link.png").symlink_to(tmp_path / "outside.png")
    linked = _split_file(tmp_path / "l", data, rows=[{"path": "link.png", "label": "0", "split": "test"}])
    with pytest.raises(DataError, match="outside"):  # the containment check is against root
        load_dataset(linked, root=data.parent)
    evil = _split_file(tmp_path / "e", data, rows=[{"path": "../ro/real_000.png", "label": "0", "split": "test"}])
    with pytest.raises(DataError, match=r"contains '\.\.'"):
        load_dataset(evil, root=data.parent)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"run": "r", "dataset": {"path": str(man), "root": str(data.parent), "split": "test"},
                                   "detectors": [{"detector": "cnnspot", "options": {"arch": "resnet10", "width": 8}}]}))
    prep = prepare(load_experiment(cfg))
    with open(data, newline="") as f:
        want = {r["path"] for r in csv.DictReader(f) if r["split"] == "test"}
    assert {prep.sid(s) for s in prep.samples} == want


def test_split_without_split_column_says_so(tmp_path):
    data = make_tiny_dataset(tmp_path / "d", n_per_class=4)
    man = _split_file(tmp_path, data, with_split=False)
    samples = load_dataset(man, root=data.parent)
    with pytest.raises(DataError, match="no split column"):
        select_split(samples, "test")
    assert len(select_split(samples, None)) == 8
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"run": "r", "dataset": {"path": str(man), "root": str(data.parent), "split": "test"},
                                   "detectors": [{"detector": "cnnspot", "options": {"arch": "resnet10", "width": 8}}]}))
    with pytest.raises(ConfigError, match=r"dataset\.split .*'test' asked for, but the dataset has no split column"):
        prepare(load_experiment(cfg))


def test_too_few_steps_warns(tmp_path, caplog):
    from fakebench.train.loop import MIN_STEPS, few_steps_warning

    assert few_steps_warning(MIN_STEPS, 20, 640, 32) == ""
    msg = few_steps_warning(20, 2, 160, 64)
    assert "only 20 optimiser steps" in msg and "2 per epoch" in msg and "160 training images" in msg
    from fakebench.train import TrainConfig, train_detector

    data = make_tiny_dataset(tmp_path / "d", n_per_class=8)
    with caplog.at_level(logging.WARNING):
        _, hist = train_detector("cnnspot", data, tmp_path / "ck", TrainConfig(epochs=1, batch_size=8, progress=False),
                                 arch="resnet10", width=8)
    assert hist["warnings"] and "optimiser steps" in caplog.text
    _, hist = train_detector("cnnspot", data, tmp_path / "ft", TrainConfig(epochs=1, batch_size=8, progress=False,
                                                                           init=str(tmp_path / "ck")),
                             arch="resnet10", width=8)
    assert hist["warnings"] == []  # fine-tuning a trained checkpoint: few steps are expected
