"""The one-call API: the README's first lines of Python, run as written (on a small dataset)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_pattern_dataset  # noqa: E402


def test_first_lines_of_python(tmp_path):
    import fakebench
    from fakebench.train import TrainConfig, train_detector

    man = make_pattern_dataset(tmp_path / "data", n_per_class=40, size=32)
    train_detector("res50nodown", man, tmp_path / "runs" / "mine", TrainConfig(epochs=2, batch_size=8, crop=0,
                                                                                progress=False), arch="resnet10", width=8)
    det = fakebench.create_detector("cnnspot", arch="resnet10", width=16)
    atk = fakebench.create_attack("apgd", eps=4 / 255, steps=3, direction="evade")
    x = torch.rand(2, 3, 32, 32)
    assert det(x).shape == (2,) and atk(det.eval(), x, torch.ones(2, dtype=torch.long)).shape == x.shape
    board = fakebench.robustness({"mine": str(tmp_path / "runs" / "mine")}, man, eps=[4 / 255], steps=3, queries=10,
                                 progress=False)
    assert [r.detector for r in board.rows] == ["mine"] and 0 <= board.rows[0].robust_tpr <= 1
    samples = fakebench.load_dataset(man)
    assert len(samples) == 80 and {s.label for s in samples} == {0, 1}
    store = fakebench.evaluate({"output": str(tmp_path / "eval"), "dataset": {"path": str(man), "split": "test"},
                                "detectors": [{"name": "mine", "checkpoint": str(tmp_path / "runs" / "mine")}],
                                "attacks": [{"attack": "jpeg", "options": {"quality": 80}}]})
    assert Path(store).is_file() and (tmp_path / "eval" / "report.md").is_file()
    loaded = fakebench.load_detector(tmp_path / "runs" / "mine")
    assert loaded.registry_name == "res50nodown" and loaded.card.name == "res50nodown"
