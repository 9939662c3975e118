"""One preprocessing per detector: what training-time validation scores is what evaluate scores;
``options:`` of a ``checkpoint:`` detector apply (preprocessing) or are refused (weights)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_tiny_dataset

from fakebench import metrics
from fakebench.cli import main
from fakebench.errors import ConfigError
from fakebench.runner import evaluate, load_experiment, prepare

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(tmp_path: Path, manifest: Path, ck: Path, options: dict | None = None, split: str = "val") -> Path:
    det = {"name": "mine", "checkpoint": str(ck)}
    if options is not None:
        det["options"] = options
    cfg = {"run": "r", "output": str(tmp_path / "out"), "batch_size": 8,
           "dataset": {"path": str(manifest), "split": split}, "detectors": [det]}
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _clean_scores(db: Path) -> dict[str, float]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT sample, score_clean FROM results WHERE attack = 'clean'").fetchall()
    con.close()
    return dict(rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """cnnspot trained by `fakebench train` on random 24-px crops, evaluated on 28-px centre crops."""
    tmp = tmp_path_factory.mktemp("pre")
    manifest = make_tiny_dataset(tmp / "d", n_per_class=16, size=32)
    ck = tmp / "ck"
    rc = main(["train", "cnnspot", "--data", str(manifest), "--out", str(ck), "--arch", "resnet10", "--width", "8",
               "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--crop", "24", "--eval-crop", "28",
               "--no-progress", "--no-audit"])
    assert rc == 0
    return manifest, ck


def test_evaluate_gives_the_training_validation_scores(trained, tmp_path):
    manifest, ck = trained
    log = json.loads((ck / "train_log.json").read_text())
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["options"]["crop"] == 28 and cfg["preprocessing"]["crop"] == 28
    val = {Path(p).name: (y, z) for p, y, z in log["val_scores"]}
    from fakebench.data import load_dataset, select

    assert len(val) == len(select(load_dataset(manifest), split="val")) == 6
    db = evaluate(load_experiment(_config(tmp_path, manifest, ck)), progress=False)
    got = {Path(k).name: v for k, v in _clean_scores(db).items()}
    assert set(got) == set(val)
    diff = max(abs(got[k] - val[k][1]) for k in val)
    assert diff < 1e-5, diff
    ys = np.array([val[k][0] for k in sorted(val)])
    zs = np.array([got[k] for k in sorted(val)])
    assert abs(metrics.auc(ys, zs) - log["best_val_auc"]) < 1e-9
    from fakebench.cli._common import resolve_detector

    assert resolve_detector(str(ck)).crop == 28  # `fakebench attack CKPT` scores through the same crop


def test_checkpoint_options_apply_or_are_refused(trained, tmp_path):
    manifest, ck = trained
    prep = prepare(load_experiment(_config(tmp_path, manifest, ck, {"crop": 16})))
    assert prep.detectors["mine"].crop == 16
    with pytest.raises(ConfigError, match=r"detectors\[0\] \(mine\).*width do not apply.*only crop can be changed"):
        prepare(load_experiment(_config(tmp_path, manifest, ck, {"width": 16})))
    # the crop really changes the scores (it is applied, not ignored)
    base = _clean_scores(evaluate(load_experiment(_config(tmp_path / "a", manifest, ck)), progress=False))
    other = _clean_scores(evaluate(load_experiment(_config(tmp_path / "b", manifest, ck, {"crop": 16})),
                                   progress=False))
    assert max(abs(base[k] - other[k]) for k in base) > 1e-4
