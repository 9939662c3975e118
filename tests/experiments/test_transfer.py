"""Transfer matrix: shape, white-box diagonal, CSV/Markdown/PNG files, and the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from fakebench import attacks, detectors
from fakebench.experiments import transfer


pytestmark = pytest.mark.usefixtures("one_thread")


def _det(seed: int):
    torch.manual_seed(seed)
    return detectors.create("cnnspot", arch="resnet10", width=8).eval()


def _data(n=8, size=32):
    g = torch.Generator().manual_seed(0)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    return x, torch.tensor([1, 0] * (n // 2))


def test_transfer_matrix_shape_and_files(tmp_path):
    a, b, c = _det(0), _det(1), _det(2)
    x, y = _data()
    table = transfer.transfer_matrix({"a": a, "b": b}, {"a": a, "b": b, "c": c}, x, y,
                                     lambda: attacks.create("pgd", eps=16 / 255, steps=5, direction="both"),
                                     out=tmp_path / "t")
    assert table.asr.shape == (2, 3) and table.auc.shape == (2, 3)
    assert np.isfinite(table.asr).all() and np.isfinite(table.auc).all()
    # white-box (diagonal) succeeds at least as often as the transfer to another detector
    assert table.asr[0, 0] >= table.asr[0, 2] and table.asr[1, 1] >= table.asr[1, 2]
    assert table.asr[0, 0] >= 0.75
    assert table.auc[0, 0] < table.auc_clean["a"]
    rows = list(csv.DictReader(open(tmp_path / "t" / "transfer.csv")))
    assert len(rows) == 6 and {r["source"] for r in rows} == {"a", "b"}
    md = (tmp_path / "t" / "transfer.md").read_text()
    assert "| source \\ target | a | b | c |" in md and "| clean |" in md
    assert (tmp_path / "t" / "transfer.png").stat().st_size > 2000
    assert table.queries["a"] >= 5  # at least one gradient per step, per image


def test_transfer_command(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_tiny_dataset

    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=6)
    for name, seed in (("A", 0), ("B", 1)):
        _det(seed).save(tmp_path / name)
    from fakebench.cli import build_parser  # the real `fakebench` command line

    args = build_parser().parse_args(["transfer", "--sources", f"{tmp_path / 'A'}", "--targets", f"{tmp_path / 'A'},{tmp_path / 'B'}",
                         "--data", str(manifest), "--split", "all", "--attack", "pgd", "--eps", "8/255", "--steps", "2",
                         "--direction", "evade", "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "transfer.csv")))
    assert [(r["source"], r["target"]) for r in rows] == [("A", "A"), ("A", "B")]
    assert all(r["direction"] == "evade" and r["attack"] == "pgd" for r in rows)
    assert "data:image/png;base64," in (tmp_path / "out" / "report.html").read_text()
