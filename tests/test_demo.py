"""`fakebench demo` end to end (seeded), with the numbers the foundation issue promises.

The demo runs once per test session (about 3 minutes on 2 CPU cores) and the tests below read
its outputs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fakebench import metrics
from fakebench.runner import Store

pytestmark = pytest.mark.slow  # the whole demo runs once (about 3 minutes on 2 cores)


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run


def _summary(results, det, attack, eps=None, direction=None):
    rows = [s for s in results["summary"] if s["detector"] == det and s["attack"] == attack
            and (eps is None or abs(s["eps"] - eps) < 1e-9) and (direction is None or s["direction"] == direction)]
    assert len(rows) == 1, (det, attack, eps, direction, len(rows))
    return rows[0]


def _seen_generators(out: Path) -> tuple[set[str], set[str]]:
    with open(out / "data" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    seen = {r["generator"] for r in rows if r["label"] == "1" and r["split"] == "train"}
    test = {r["generator"] for r in rows if r["label"] == "1" and r["split"] == "test"}
    return seen, test - seen


def test_outputs_written(demo):
    out, results = demo
    for name in ("results.json", "report.md", "demo.yaml", "accuracy_vs_eps.png"):
        assert (out / name).exists(), name
    assert list(out.glob("roc_*.png"))
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["run"] == "demo" and len(on_disk["summary"]) == len(results["summary"])


def test_clean_auc_on_seen_generators(demo):
    out, results = demo
    seen, held_out = _seen_generators(out)
    assert seen and held_out, "the benchmark must hold a generator out of training"
    with Store(out / "results.sqlite") as st:
        rows = [r for r in st.rows("demo") if r["attack"] == "clean"]
    for det in ("cnnspot", "res50nodown"):
        r = [x for x in rows if x["detector"] == det and (x["label"] == 0 or x["generator"] in seen)]
        auc = metrics.auc([x["label"] for x in r], [x["score_adv"] for x in r])
        assert auc >= 0.95, (det, auc)
        # the held-out generators' AUC is reported (not asserted high)
        clean = _summary(results, det, "clean")
        for g in held_out:
            assert g in clean["auc_by_generator"]
    report = (out / "report.md").read_text()
    for g in held_out:
        assert g in report


def test_pgd_evade_4_drives_tpr_below_10_percent(demo):
    _, results = demo
    for det in ("cnnspot", "res50nodown"):
        s = _summary(results, det, "pgd", eps=4 / 255, direction="evade")
        assert s["tpr_cal"] < 0.10, (det, s["tpr_cal"])
        assert s["linf"] <= 4 / 255 + 1e-6


def test_attack_success_rises_with_eps(demo):
    _, results = demo
    for det in ("cnnspot", "res50nodown"):
        for direction in ("evade", "spoof"):
            rates = [_summary(results, det, "pgd", eps=e / 255, direction=direction)["asr"] for e in (1, 2, 4, 8)]
            assert all(b >= a - 0.02 for a, b in zip(rates, rates[1:])), (det, direction, rates)
            assert rates[-1] > rates[0] or rates[0] > 0.95, (det, direction, rates)


def test_degradations_on_the_detector_trained_without_augmentation(demo):
    """What JPEG q=75 and blur do to ``res50nodown`` (trained without any augmentation).

    Measured, not what the foundation issue expected: JPEG q=75 does NOT measurably lower AUC
    on the built-in benchmark. It changes a 64x64 patch by about 41.5 dB PSNR, while every
    generator changes its source by 27 dB or less; the detectors key on the generators' large
    loss of fine texture, which q=75 leaves in place (Wang et al. 2020 saw JPEG hurt because
    high-quality GANs leave only fragile high-frequency traces). Gaussian blur (sigma 1),
    which removes that texture from the reals too, does lower AUC. README: Limitations.
    """
    out, results = demo
    settings = json.loads((out / "data" / "settings.json").read_text())
    clean = _summary(results, "res50nodown", "clean")
    jpeg = _summary(results, "res50nodown", "jpeg")
    blur = _summary(results, "res50nodown", "blur")
    assert jpeg["psnr"] > max(settings["psnr_db"].values()) + 10, (jpeg["psnr"], settings["psnr_db"])
    # measured: 0.973 -> 0.953 (an earlier code state: 0.969 -> 0.967): never the 0.05 drop expected
    assert jpeg["auc"] > clean["auc"] - 0.05, (clean["auc"], jpeg["auc"])
    assert blur["auc"] < clean["auc"] - 0.05, (clean["auc"], blur["auc"])


def test_report_numbers_match_results(demo):
    out, results = demo
    table = [ln for ln in (out / "report.md").read_text().splitlines() if ln.startswith("| ")][1:]
    assert len(table) == len(results["summary"])
    for line, s in zip(table, results["summary"]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == s["detector"] and cells[1] == s["attack"]
        assert cells[3] == f"{s['auc']:.3f}"
        if s["tpr_cal"] is not None and np.isfinite(s["tpr_cal"]):
            assert cells[7] == f"{s['tpr_cal']:.3f}"


def test_defended_detector_and_its_adaptive_evaluation(demo):
    """The demo's defended detector (res50nodown fine-tuned with PGD-AT, evade, 4/255) against the
    undefended one under the same adaptive ensemble at 4/255, thresholds at 10% clean FPR.

    Measured (seed 0): undefended clean AUC 0.992, robust TPR 0.000, robust TNR 0.264, robust AUC
    0.008; defended 0.938, 0.000, 0.453, 0.133 (APGD 20 steps, Square 200 queries, 100 images; the
    demo now runs 10 / 100 / 64). Neither keeps a synthetic image detected at 4/255: the gain is
    in the spoof direction and in the worst-case ranking (README: Limitations)."""
    out, results = demo
    rows = {r["detector"]: r for r in results["robustness"]}
    und, dfd = rows["res50nodown"], rows["res50nodown-at"]
    for r in (und, dfd):
        assert abs(r["eps"] - 4 / 255) < 1e-9 and "apgd" in r["ensemble"] and "square" in r["ensemble"]
        assert r["robust_tpr"] <= r["clean_tpr"] + 1e-9
    assert und["robust_tpr"] <= 0.05  # the undefended detector collapses
    assert dfd["clean_auc"] >= 0.85
    assert dfd["robust_tnr"] >= und["robust_tnr"] + 0.05
    md = (out / "robustness" / "robustness.md").read_text()
    assert "| res50nodown-at | 4/255 |" in md and "10% FPR on clean validation reals" in md
