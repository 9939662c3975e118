"""Paired per-generator AUC (the CNNDetection protocol: ``<gen>/0_real`` vs ``<gen>/1_fake``)
next to the all-reals figure, end to end through evaluate and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score

from fakebench import detectors
from fakebench.io import save_png
from fakebench.report import build_report
from fakebench.runner import Store, evaluate, load_experiment

pytestmark = pytest.mark.usefixtures("one_thread")


def test_paired_auc_equals_sklearn_on_own_reals(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cnndet"
    for gen, level in (("ganA", 0.3), ("ganB", 0.7)):  # the two generators' reals differ
        for cls in ("0_real", "1_fake"):
            for i in range(6):
                img = np.clip(level + rng.normal(0, 0.15 if cls == "0_real" else 0.08, (32, 32, 3)), 0, 1)
                save_png(root / gen / cls / f"{i}.png", img)
    torch.manual_seed(0)
    det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.save(tmp_path / "ck")
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"run": "p", "output": str(tmp_path / "out"), "batch_size": 8,
                                   "dataset": {"path": str(root)}, "detectors": [{"name": "d", "checkpoint": str(tmp_path / "ck")}]}))
    store = evaluate(load_experiment(cfg), progress=False)
    res = build_report(store, "p", tmp_path / "out")
    clean = next(s for s in res["summary"] if s["attack"] == "clean")
    with Store(store) as st:
        rows = [r for r in st.rows("p") if r["attack"] == "clean"]
    assert set(clean["auc_by_generator_paired"]) == {"ganA", "ganB"}
    for g in ("ganA", "ganB"):
        own = [r for r in rows if r["sample"].startswith(f"{g}/")]
        assert len(own) == 12
        want = roc_auc_score([r["label"] for r in own], [r["score_adv"] for r in own])
        assert clean["auc_by_generator_paired"][g] == pytest.approx(want, abs=1e-12)
        allr = [r for r in rows if r["label"] == 0 or r["generator"] == g]
        want_all = roc_auc_score([r["label"] for r in allr], [r["score_adv"] for r in allr])
        assert clean["auc_by_generator"][g] == pytest.approx(want_all, abs=1e-12)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "paired" in md and "| d | ganA |" in md
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk["summary"][0]["auc_by_generator_paired"].keys() == {"ganA", "ganB"}


def test_no_pairing_without_own_reals(tmp_path):
    from fakebench.report.summary import _own_real

    assert _own_real("ganA/airplane/0_real/x.png", "ganA") and not _own_real("real/x.png", "ganA")
