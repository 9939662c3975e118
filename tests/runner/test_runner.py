"""Runner and store: config errors before work, resume after SIGKILL, bad files skipped."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from fakebench import detectors
from fakebench.errors import ConfigError
from fakebench.runner import Store, evaluate, load_experiment
from fakebench.runner.run import STORE_FILE

from conftest import make_tiny_dataset


def _setup(tmp_path: Path, n_per_class: int = 24, bad: bool = False, batch_size: int = 8, extra_eps=()):
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=n_per_class, bad=bad)
    torch.manual_seed(0)
    det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.threshold = 0.1
    det.save(tmp_path / "ck")
    cfg = {
        "run": "t", "output": "out", "seed": 3, "batch_size": batch_size,
        "dataset": {"path": str(manifest)},
        "detectors": [{"name": "tiny", "checkpoint": str(tmp_path / "ck")}],
        "attacks": [
            {"attack": "jpeg", "options": {"quality": 60}},
            {"name": "pgd", "attack": "pgd", "options": {"direction": "evade", "steps": 4, "random_start": True},
             "grid": {"eps": ["2/255", "4/255", *extra_eps]}},
        ],
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rows(db: Path):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT detector, attack, params, sample, label, score_clean, score_adv, l2, linf "
                       "FROM results ORDER BY detector, attack, params, sample").fetchall()
    con.close()
    return rows


def test_rows_per_detector_attack_params_sample(tmp_path):
    cfg = _setup(tmp_path, n_per_class=6)
    exp = load_experiment(cfg)
    db = evaluate(exp, progress=False)
    rows = _rows(db)
    n = 12
    assert len(rows) == n * 4  # clean + jpeg + pgd x 2 eps
    pgd = [r for r in rows if r[1] == "pgd"]
    assert len({r[2] for r in pgd}) == 2
    for r in pgd:
        if r[4] == 0:
            assert r[5] == r[6] and r[8] == 0  # evade leaves reals untouched
        else:
            assert r[8] <= 4 / 255 + 1e-6
    # a second run does nothing and adds nothing
    evaluate(exp, progress=False)
    assert _rows(db) == rows


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    ref_dir, kill_dir = tmp_path / "ref", tmp_path / "kill"
    cfg_ref = _setup(ref_dir, n_per_class=16, extra_eps=("8/255",))
    cfg_kill = _setup(kill_dir, n_per_class=16, extra_eps=("8/255",))
    cmd = [sys.executable, "-m", "fakebench", "evaluate", "--no-progress", "--config"]
    subprocess.run(cmd + [str(cfg_ref)], check=True, capture_output=True)
    ref = _rows(ref_dir / "out" / STORE_FILE)

    db = kill_dir / "out" / STORE_FILE
    proc = subprocess.Popen(cmd + [str(cfg_kill)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total_chunks = 4 * 5  # 32 samples / 8 per chunk, x (clean + jpeg + 3 pgd)
    killed_at = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=1)
                n = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                n = 0
            if n >= 6:
                proc.send_signal(signal.SIGKILL)
                killed_at = n
                break
        time.sleep(0.02)
    proc.wait()
    assert killed_at is not None and killed_at < total_chunks, "run finished before it could be killed"
    partial = _rows(db)
    assert 0 < len(partial) < len(ref)
    subprocess.run(cmd + [str(cfg_kill)], check=True, capture_output=True)
    resumed = _rows(db)
    assert len(resumed) == len(ref) == 32 * 5
    assert [r[:5] for r in resumed] == [r[:5] for r in ref]
    assert resumed == ref  # identical numbers, not just identical keys
    # the gallery thumbnails too (written before each chunk's commit, rewritten when it is redone)
    thumbs = [{q.relative_to(d / "out"): q.read_bytes() for q in (d / "out" / "gallery").rglob("*.png")}
              for d in (ref_dir, kill_dir)]
    assert thumbs[0] and thumbs[0] == thumbs[1]
    assert (ref_dir / "out" / "report.html").is_file() and (kill_dir / "out" / "report.html").is_file()


def test_bad_file_is_skipped_and_recorded(tmp_path):
    cfg = _setup(tmp_path, n_per_class=4, bad=True)
    exp = load_experiment(cfg)
    db = evaluate(exp, progress=False)
    with Store(db) as st:
        bad = st.bad_samples("t")
        assert len(bad) == 1
        (reason,) = bad.values()
        assert "broken.png" in reason and "\n" not in reason
        assert st.count("t") == 8 * 4


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.update(unknown_key=1), "unknown key"),
    (lambda c: c["dataset"].update(path="/nonexistent/x"), "dataset.path"),
    (lambda c: c["detectors"][0].update(checkpoint="/nonexistent/ck"), "detectors[0].checkpoint"),
    (lambda c: c["attacks"][1]["options"].update(steps="many"), "pgd"),
    (lambda c: c["attacks"][0].update(attack="teleport"), "teleport"),
    (lambda c: c.update(batch_size=0), "batch_size"),
])
def test_config_errors_are_one_line_before_any_work(tmp_path, capsys, mutate, field):
    from fakebench.cli import main

    cfg_path = _setup(tmp_path, n_per_class=2)
    cfg = yaml.safe_load(cfg_path.read_text())
    mutate(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert main(["evaluate", "--no-progress", "--config", str(cfg_path)]) == 2
    stderr = capsys.readouterr().err
    err = [ln for ln in stderr.strip().splitlines() if ln.startswith("fakebench: error")]
    assert len(err) == 1 and field in err[0], stderr
    assert not (tmp_path / "out" / STORE_FILE).exists()


def test_invalid_yaml_names_the_file(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_experiment(p)
