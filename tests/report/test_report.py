"""Reports are built from the store alone: summary numbers, labels, tables, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fakebench.report import build_report, format_table, summarize_run
from fakebench.report.summary import describe_params, jsonable
from fakebench.runner.store import Row, Store, canonical

PGD = {"threat": {"direction": "evade", "norm": "linf", "eps": 4 / 255, "eot": []}, "seed": 0}


def _store(tmp_path, n=40, seed=0):
    """A run with clean scores, a PGD row set (evade) and a JPEG row set, two generators."""
    rng = np.random.default_rng(seed)
    y = np.array([i % 2 for i in range(n)])
    gens = ["real" if v == 0 else ("ganA" if i % 4 == 1 else "ganB") for i, v in enumerate(y)]
    clean = rng.normal(0, 1, n) + 2.0 * y
    adv = np.where(y == 1, clean - 3.0, clean)  # the attack pushes every fake down by 3
    jpeg = clean - 0.1
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.ensure_run("r", {"k": 1})
        st.set_detector("r", "det", 0.5, {})
        for name, params, after in (("clean", {}, clean), ("pgd", PGD, adv), ("jpeg", {"op": "jpeg", "quality": 75},
                                                                                jpeg)):
            rows = [Row("det", name, canonical(params), f"s{i}", int(y[i]), gens[i], float(clean[i]), float(after[i]),
                        0.1, 0.2, 4 / 255 if name == "pgd" else 0.01, 40.0, 10 if name == "pgd" else 0, 0.01)
                    for i in range(n)]
            st.commit_chunk("r", "det", name, canonical(params), 0, rows)
        st.add_bad_sample("r", "broken.png", "broken.png: not a recognised image format")
    return path, y, clean, adv, gens


def test_summary_numbers_match_sklearn_and_definitions(tmp_path):
    path, y, clean, adv, gens = _store(tmp_path)
    with Store(path) as st:
        summ = {s["attack"]: s for s in summarize_run(st, "r")}
    assert set(summ) == {"clean", "pgd", "jpeg"}
    assert summ["clean"]["auc"] == pytest.approx(roc_auc_score(y, clean))
    assert summ["pgd"]["auc"] == pytest.approx(roc_auc_score(y, adv))
    thr = 0.5
    fake = y == 1
    assert summ["pgd"]["tpr_cal"] == pytest.approx(np.mean(adv[fake] > thr))
    detected = fake & (clean > thr)
    assert summ["pgd"]["asr_on_correct"] == pytest.approx(np.mean(adv[detected] <= thr))
    assert summ["pgd"]["direction"] == "evade" and summ["pgd"]["eps"] == pytest.approx(4 / 255)
    assert summ["pgd"]["linf"] == pytest.approx(4 / 255) and summ["pgd"]["queries"] == 10
    ga = (np.array(gens) == "ganA") | (y == 0)
    assert summ["clean"]["auc_by_generator"]["ganA"] == pytest.approx(roc_auc_score(y[ga], clean[ga]))


def test_describe_params_and_jsonable():
    assert describe_params(PGD) == "linf eps=4/255 evade"
    assert describe_params({"op": "jpeg", "quality": 75}) == "quality=75"
    assert describe_params({}) == ""
    assert jsonable({"a": float("nan"), "b": [np.float32(1.5), math.inf], "c": np.int64(3)}) == \
        {"a": None, "b": [1.5, None], "c": 3}


def test_format_table_units():
    row = {"detector": "d", "attack": "pgd", "label": "x", "auc": 0.5, "linf": 4 / 255, "psnr": 38.04,
           "asr": float("nan")}
    table = format_table([row])
    line = table.splitlines()[2]
    assert "| 0.500 |" in line and "| 4.00 |" in line and "| 38.0 |" in line and "| - |" in line


def test_build_report_writes_json_markdown_and_plots(tmp_path):
    path, *_ = _store(tmp_path)
    out = tmp_path / "rep"
    res = build_report(path, "r", out, title="T", notes=["a note"])
    data = json.loads((out / "results.json").read_text())
    assert data["run"] == "r" and len(data["summary"]) == 3 and data["bad_samples"] == {
        "broken.png": "broken.png: not a recognised image format"}
    md = (out / "report.md").read_text()
    assert md.startswith("# T") and "a note" in md and "## Skipped files (1)" in md
    assert (out / "roc_det.png").stat().st_size > 1000 and (out / "accuracy_vs_eps.png").stat().st_size > 1000
    assert "![roc_det](roc_det.png)" in md
    with Store(path) as st:  # the report is a function of the store alone
        assert jsonable(res["summary"]) == jsonable(summarize_run(st, "r"))
