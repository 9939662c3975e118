"""Whole images of different sizes: bucketed batches give the scores of one-image batches
(no padding, no resizing), so full-resolution evaluation has no batching artefacts."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch
import yaml

from fakebench import detectors
from fakebench.io import save_png
from fakebench.runner import evaluate, load_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = ((24, 32), (32, 24), (40, 40), (24, 32), (40, 40), (32, 24), (24, 32))


def test_mixed_sizes_bucketed_equal_one_image_batches(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["path,label,generator"]
    for i, (h, w) in enumerate(SIZES * 2):
        save_png(tmp_path / "data" / f"{i:02d}.png", rng.random((h, w, 3)))
        lines.append(f"{i:02d}.png,{i % 2},{'real' if i % 2 == 0 else 'g'}")
    (tmp_path / "data" / "manifest.csv").write_text("\n".join(lines) + "\n")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        detectors.create("r50e2p", arch="resnet10", width=8).save(tmp_path / "ck")  # whole image, no crop
    scores = {}
    for bs in (1, 7):
        cfg = {"run": "r", "output": f"out{bs}", "batch_size": bs, "dataset": {"path": "data/manifest.csv"},
               "detectors": [{"name": "d", "checkpoint": "ck"}]}
        (tmp_path / f"e{bs}.yaml").write_text(yaml.safe_dump(cfg))
        db = evaluate(load_experiment(tmp_path / f"e{bs}.yaml"), progress=False)
        con = sqlite3.connect(db)
        scores[bs] = dict(con.execute("SELECT sample, score_clean FROM results ORDER BY sample").fetchall())
        con.close()
    assert len(scores[1]) == len(SIZES) * 2
    assert scores[7].keys() == scores[1].keys()
    np.testing.assert_allclose([scores[7][k] for k in scores[1]], list(scores[1].values()), rtol=0, atol=1e-5)
    assert len({round(v, 6) for v in scores[1].values()}) > 1  # not a constant detector
