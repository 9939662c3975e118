"""The `fakebench` command: list, train (incl. the one-class message), report."""

from __future__ import annotations

import csv

import pytest

from fakebench.cli import main

from conftest import make_tiny_dataset


def test_list_detectors_and_attacks(capsys):
    assert main(["list", "detectors"]) == 0
    out = capsys.readouterr().out
    assert "cnnspot" in out and "res50nodown" in out and "paper:" in out
    # every detector that learns from data says which weights it takes and where they come from
    from fakebench import detectors

    blocks = {}
    for line in out.splitlines():
        if line and not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = ""
        else:
            blocks[name] += line
    assert set(blocks) == set(detectors.REGISTRY.names())
    missing = [n for n, b in blocks.items() if "weights:" not in b and n != "perspective"]
    assert not missing, missing
    assert "CNNDetection" in blocks["cnnspot"] and "fc_weights.pth" in blocks["univfd"]
    assert main(["list", "attacks"]) == 0
    out = capsys.readouterr().out
    for name in ("pgd", "jpeg", "resize", "blur"):
        assert name in out


def test_train_saves_checkpoint_with_calibrated_threshold(tmp_path, capsys):
    manifest = make_tiny_dataset(tmp_path / "d", n_per_class=16)
    rc = main(["train", "cnnspot", "--data", str(manifest), "--out", str(tmp_path / "ck"), "--arch", "resnet10",
               "--width", "8", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--no-progress"])
    assert rc == 0
    assert (tmp_path / "ck" / "model.safetensors").exists() and (tmp_path / "ck" / "train_log.json").exists()
    assert "best val AUC" in capsys.readouterr().out
    from fakebench import detectors

    det = detectors.load(tmp_path / "ck")
    assert det.options == {"arch": "resnet10", "width": 8}


def test_train_one_class_is_one_clear_line(tmp_path, capsys):
    manifest = make_tiny_dataset(tmp_path / "d", n_per_class=4)
    rows = list(csv.reader(open(manifest)))
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([rows[0]] + [r for r in rows[1:] if r[1] == "0"])
    rc = main(["train", "cnnspot", "--data", str(manifest), "--out", str(tmp_path / "ck"), "--arch", "resnet10",
               "--width", "8", "--epochs", "1", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only real images" in err[0] and "manifest.csv" in err[0]
    assert not (tmp_path / "ck").exists()


def test_unknown_detector_is_clear(capsys):
    with pytest.raises(SystemExit):
        main(["train"])
    assert main(["train", "nosuch", "--data", ".", "--out", "x", "--no-progress"]) == 2
    assert "unknown detector 'nosuch'" in capsys.readouterr().err
