"""fakebench compare: identical runs differ by exactly 0; a degraded detector's known AUC loss
is reported with a bootstrap interval that excludes 0."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from small_run import small_run  # noqa: F401 - the session fixture

from fakebench import metrics
from fakebench.cli import main
from fakebench.report.compare import compare_runs
from fakebench.runner.store import Row, Store


def test_same_seed_runs_compare_to_zero(small_run, tmp_path, one_thread):  # noqa: F811
    from fakebench.runner import evaluate, load_experiment

    cfg = yaml.safe_load((small_run["root"] / "exp.yaml").read_text())
    cfg["output"] = str(tmp_path / "again")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    evaluate(load_experiment(tmp_path / "exp.yaml"), progress=False)
    assert main(["compare", str(small_run["out"]), f"{tmp_path / 'again'}:small", "--out", str(tmp_path / "cmp"),
                 "--bootstrap", "200", "--quiet"]) == 0
    comp = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert len(comp["rows"]) >= 4 * 3  # 4 settings x (AUC, TPR, TNR; ASR on the attacks)
    for row in comp["rows"]:
        (d,) = row["diffs"]
        assert d["paired"] and d["diff"] == 0.0 and d["ci"] == [0.0, 0.0] and not d["significant"]
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "https://" not in html and 'id="compare"' in html


def _store(path, scores, y, det="det", thr=0.0):
    with Store(path) as st:
        st.ensure_run("r", {})
        st.set_detector("r", det, thr, {})
        rows = [Row(det, "clean", "{}", f"s{i:04d}", int(y[i]), "gan" if y[i] else "real", float(scores[i]),
                    float(scores[i]), 0, 0, 0, float("inf"), 0, 0.0) for i in range(len(y))]
        st.commit_chunk("r", det, "clean", "{}", 0, rows)
    return path


def test_degraded_detector_difference_and_ci(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(600) % 2
    good = 2.0 * y + rng.normal(0, 1, 600)
    degraded = good + rng.normal(0, 2.0, 600)  # the same detector with noisier scores
    a = _store(tmp_path / "a.sqlite", good, y, det="undefended")
    b = _store(tmp_path / "b.sqlite", degraded, y, det="degraded")
    comp = compare_runs([str(a), str(b)], n_boot=500, progress=False)  # one detector each: matched by setting
    row = next(r for r in comp["rows"] if r["metric"] == "auc")
    (d,) = row["diffs"]
    known = roc_auc_score(y, degraded) - roc_auc_score(y, good)
    assert known < -0.1
    assert d["paired"] and d["diff"] == pytest.approx(known, abs=1e-12)
    assert d["ci"][0] < known < d["ci"][1] and d["ci"][1] < 0 and d["significant"]
    assert row["detectors"] == ["undefended", "degraded"]
    # the paired interval is narrower than the unpaired one on the same data
    stat = lambda s: (lambda idx: metrics.auc(y[idx], s[idx]))
    _, lo_u, hi_u = metrics.bootstrap_diff_ci(stat(good), y, stat(degraded), y, n=500)
    assert hi_u - lo_u > d["ci"][1] - d["ci"][0]


def test_compare_errors_are_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing"), str(tmp_path / "missing2"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no results store" in err[0]
