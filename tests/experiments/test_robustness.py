"""fakebench robustness: thresholds at 10% clean FPR, worst case over an adaptive ensemble,
adaptive >= non-adaptive on a purification defense, files, CLI, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from fakebench import detectors
from fakebench.data import load_dataset, select
from fakebench.errors import ConfigError
from fakebench.experiments.robustness import Settings, calibrate_at_fpr, robustness

SMALL = dict(steps=8, queries=40, eot_iter=2, pgd_steps=5, batch_size=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_pattern_dataset
    from fakebench.train import TrainConfig, train_detector

    root = tmp_path_factory.mktemp("rob")
    man = make_pattern_dataset(root / "data", n_per_class=60, size=32)
    torch.set_num_threads(1)
    det, hist = train_detector("res50nodown", man, root / "ck", TrainConfig(epochs=4, batch_size=8, lr=1e-3, crop=0,
                                                                            progress=False), arch="resnet10", width=8)
    assert hist["best_val_auc"] > 0.95  # a detector that works, so attacks have something to break
    return man, root / "ck"


def test_threshold_is_the_clean_val_fpr(trained):
    man, ck = trained
    det = detectors.load(ck)
    val = select(load_dataset(man), split="val")
    thr = calibrate_at_fpr(det, val, 0.10)
    reals = [s for s in val if s.label == 0]
    from fakebench.data.pipeline import load_stack

    x, _ = load_stack(reals)
    with torch.no_grad():
        fpr = float((det(x) > thr).float().mean())
    assert fpr <= 0.10 + 1e-9 and fpr >= 0.10 - 1.0 / len(reals) - 1e-9


def test_worst_case_is_below_every_attack_and_adaptive_beats_non_adaptive(trained, tmp_path):
    man, ck = trained
    base = detectors.load(ck)
    jpeg = detectors.create("purify", base=str(ck), method="jpeg", quality=60)
    s = Settings(eps=(16 / 255,), **SMALL)  # above the fakes' trace (a checkerboard of 15 grey levels)
    board = robustness({"cnnspot": base, "jpeg": jpeg}, man, s, out=tmp_path / "r", progress=False)
    rows = {r.detector: r for r in board.rows}
    for r in rows.values():
        assert r.robust_tpr <= r.clean_tpr + 1e-9 and r.robust_tnr <= r.clean_tnr + 1e-9
        clean_tp = r.clean_tpr  # the worst case is at least every single attack
        for rate in r.attack_success["evade"].values():
            assert r.robust_tpr <= clean_tp * (1 - rate) + 1e-9
    j = rows["jpeg"]
    assert any("bpda" in a for a in j.attack_success["evade"])
    bpda = max(v for a, v in j.attack_success["evade"].items() if "bpda" in a)
    plain_tpr = j.nonadaptive["evade"]  # fakes still detected after plain PGD through the real codec
    print(f"[robustness] jpeg purifier at 16/255: TPR clean {j.clean_tpr:.3f}, after plain PGD {plain_tpr:.3f}, "
          f"after the adaptive ensemble {j.robust_tpr:.3f} (APGD+BPDA success {bpda:.3f})")
    assert j.clean_tpr >= 0.3  # an informative comparison
    assert plain_tpr >= j.clean_tpr - 0.05  # the codec's zero gradient stops plain PGD: it looks robust
    assert bpda >= 0.5 and j.robust_tpr <= plain_tpr - 0.2  # BPDA breaks it: adaptive >> non-adaptive
    saved = json.loads((tmp_path / "r" / "robustness.json").read_text())
    assert len(saved["rows"]) == 2 and saved["settings"]["fpr"] == 0.1
    md = (tmp_path / "r" / "robustness.md").read_text()
    assert "| jpeg | 16/255 |" in md and (tmp_path / "r" / "robustness.png").stat().st_size > 1000


def test_cli_and_bad_input(trained, tmp_path, capsys):
    from fakebench.cli import main

    man, ck = trained
    rc = main(["robustness", "--detectors", str(ck), "--data", str(man), "--eps", "2/255", "--steps", "4",
               "--queries", "20", "--out", str(tmp_path / "c"), "--no-progress"])
    assert rc == 0 and (tmp_path / "c" / "robustness.md").is_file() and (tmp_path / "c" / "report.html").is_file()
    rc = main(["robustness", "--detectors", str(ck), "--data", str(man), "--eps=-1/255", "--out", str(tmp_path / "d"),
               "--no-progress"])
    assert rc == 2 and "eps: expected positive budgets" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="fpr"):
        Settings(fpr=1.5)
    with pytest.raises(ConfigError, match="steps"):
        Settings(steps=0)
