"""An evaluation of a TrueFake-layout tree: shares recorded in the store, the per-generator x
share table in results.json and report.md, numbers checked against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import make_truefake_pattern_tree
from sklearn.metrics import average_precision_score, roc_auc_score

from fakebench import detectors
from fakebench.cli import main
from fakebench.runner import Store

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def truefake_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tfrun")
    make_truefake_pattern_tree(tmp / "tf", n=8, size=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.threshold = 0.05
    det.save(tmp / "ck")
    cfg = {"run": "tf", "output": "out", "batch_size": 8,
           "dataset": {"format": "truefake", "root": "tf", "ids": "gan2:all&sdXL:all&realFFHQ:all",
                       "split_file": "tf/split.json", "split": "test"},
           "detectors": [{"name": "tiny", "checkpoint": "ck"}],
           "attacks": [{"attack": "share", "options": {"platform": "facebook"}}]}
    (tmp / "exp.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["evaluate", "--config", str(tmp / "exp.yaml"), "--no-progress"]) == 0
    return tmp / "out"


def test_per_generator_share_table_in_the_report(truefake_run):
    res = json.loads((truefake_run / "results.json").read_text())
    clean = next(s for s in res["summary"] if s["attack"] == "clean")
    cells = {(c["generator"], c["share"]): c for c in clean["by_generator_share"]}
    # split.json's test part: 2 images per folder, in PreSocial and Facebook
    assert set(cells) == {(g, sh) for g in ("StableDiffusionXL", "StyleGAN2", "all", "real:FFHQ")
                          for sh in ("PreSocial", "Facebook")}
    assert clean["by_generator_share"][0]["share"] == "PreSocial"  # TrueFake's order
    assert (cells[("StyleGAN2", "Facebook")]["n_fake"], cells[("StyleGAN2", "Facebook")]["n_real"]) == (2, 2)
    assert cells[("all", "PreSocial")]["n_fake"] == 4
    with Store(truefake_run / "results.sqlite") as st:
        rows = [r for r in st.rows("tf") if r["attack"] == "clean"]
    assert {r["share"] for r in rows} == {"PreSocial", "Facebook"}
    thr = 0.05
    for (g, sh), c in cells.items():
        if g == "real:FFHQ":
            reals = [r["score_adv"] for r in rows if r["share"] == sh and r["label"] == 0]
            assert (c["n_real"], c["tnr_cal"]) == (2, pytest.approx(np.mean(np.array(reals) <= thr)))
            continue
        sel = [r for r in rows if r["share"] == sh and (r["label"] == 0 or g in ("all", r["generator"]))]
        y = np.array([r["label"] for r in sel])
        s = np.array([r["score_adv"] for r in sel])
        assert c["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-9)
        assert c["ap"] == pytest.approx(average_precision_score(y, s), abs=1e-9)
        assert c["tpr_cal"] == pytest.approx(np.mean(s[y == 1] > thr))
    md = (truefake_run / "report.md").read_text()
    assert "## Per generator x share" in md
    assert "| generator | PreSocial | Facebook |" in md
    sg = cells[("StyleGAN2", "Facebook")]
    assert f"{sg['auc']:.3f} / {sg['ap']:.3f} / {sg['tpr@1%fpr']:.3f}" in md
    assert f"| real:FFHQ | TNR {cells[('real:FFHQ', 'PreSocial')]['tnr_cal']:.3f} |" in md
    # the attacked setting gets its own table
    assert any(s["attack"] == "share" and s["by_generator_share"] for s in res["summary"])


def test_share_attack_compared_with_the_real_shared_copies(truefake_run):
    """The facebook preset on PreSocial test images vs their real Facebook copies (PIL JPEG q=80,
    4:2:0, of the same pixels; see make_truefake_pattern_tree): below Facebook's resize limit the
    preset is that same JPEG, so every simulation equals its copy bit for bit, and the score
    difference is zero; the unshared originals are not."""
    res = json.loads((truefake_run / "results.json").read_text())
    (c,) = res["sharing_vs_real"]
    assert (c["detector"], c["platform"], c["n_pairs"], c["same_size"]) == ("tiny", "facebook", 6, 1.0)
    assert c["identical"] == 1.0 and c["psnr_sim_vs_copy"] is None  # infinite PSNR, no finite mean
    assert 25 < c["psnr_orig_vs_copy"] < 60
    assert c["abs_score_diff"] < 1e-5 and c["same_decision"] == 1.0
    with Store(truefake_run / "results.sqlite") as st:
        rows = list(st.rows("tf"))
        pairs = st.share_pairs("tf")
    assert {p["sample"].split("/")[0] for p in pairs} == {"PreSocial"}
    assert {p["copy"].split("/")[0] for p in pairs} == {"Facebook"}
    adv = {r["sample"]: r["score_adv"] for r in rows if r["attack"] == "share"}
    clean = {r["sample"]: r["score_clean"] for r in rows if r["attack"] == "clean"}
    diffs = [adv[p["sample"]] - clean[p["copy"]] for p in pairs]
    assert c["score_diff"] == pytest.approx(float(np.mean(diffs)), abs=1e-9)
    assert c["abs_score_diff"] == pytest.approx(float(np.mean(np.abs(diffs))), abs=1e-9)
    assert "## Sharing presets vs real shared copies" in (truefake_run / "report.md").read_text()
