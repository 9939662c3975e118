"""report.html from a real small run: self-contained, the sections with data, the ASR named for
what it is, the gallery's amplified perturbation exact."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from small_run import small_run  # noqa: F401 - the session fixture

from fakebench.io import load_image, to_uint8
from fakebench.runner.gallery import GalleryPicker, center_crop, pushed
from fakebench.runner.store import Store


def _summary(res, attack):
    return next(s for s in res["summary"] if s["attack"] == attack)


def test_html_is_self_contained_with_sections(small_run):  # noqa: F811
    html = (small_run["out"] / "report.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and not [r for r in refs if re.match(r"^[a-z]+://", r) or r.startswith("//")]
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(srcs) >= 10 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html and "https://" not in html and "<link" not in html
    for sid in ("summary", "metrics", "roc", "hist", "generators", "spectra", "gallery", "reproduction"):
        assert f'<section id="{sid}">' in html, sid
    # metrics table: one row per (detector, attack, params) of the summary
    table = html.split('id="metrics">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + len(small_run["results"]["summary"]) == 1 + 4
    # reproduction: the stored environment and the link to the log
    repro = html.split('<section id="reproduction">', 1)[1]
    assert "Environment of the run (as stored by the runner)" in repro and 'href="run.log"' in repro
    with Store(small_run["store"]) as st:
        env = st.environment("small")
    assert env["device"] == "cpu" and env["torch"] in repro and env["python"] in repro
    assert "&quot;gallery&quot;: 3" in repro  # the exact config


def test_conditional_asr_of_an_attack_that_changes_nothing_is_zero(small_run):  # noqa: F811
    res = small_run["results"]
    clean, noop = _summary(res, "clean"), _summary(res, "noop")
    assert noop["linf"] == 0.0 and noop["auc"] == clean["auc"]
    assert noop["asr_on_correct"] == 0.0
    # the unconditional rate is the fakes already missed before: 1 - clean TPR at the threshold
    assert noop["asr"] == pytest.approx(1.0 - clean["tpr_cal"])
    html = (small_run["out"] / "report.html").read_text()
    row = next(r for r in html.split('id="metrics">', 1)[1].split("<tr>") if "<td>noop</td>" in r)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[14] == "0.000" and cells[15] == f"{noop['asr']:.3f}"  # ASR (conditional), wrong after
    assert "identical to the clean ROC" in html and "noop" in html.split("identical to the clean ROC")[0][-200:]
    md = (small_run["out"] / "report.md").read_text()
    assert "| ASR | wrong after |" in md and "conditional" in md


def test_gallery_perturbation_scaled_back_equals_stored_difference(small_run):  # noqa: F811
    out = small_run["out"]
    entries = json.loads((out / "gallery.json").read_text())
    pgd = [e for e in entries if e["attack"] == "pgd"]
    assert len([e for e in pgd if e["kind"] == "most affected"]) == 3 and pgd[0]["factor"] > 1
    for e in entries:
        orig, adv = to_uint8(load_image(e["orig"])), to_uint8(load_image(e["adv"]))
        amp = to_uint8(load_image(e["amplified"])).astype(np.int32)
        diff = adv.astype(np.int32) - orig.astype(np.int32)
        if e["exact"]:
            assert ((amp - 128) % e["factor"] == 0).all()
            assert np.array_equal((amp - 128) // e["factor"], diff)
        # the stored original is the dataset image itself (32 px: no crop)
        src = to_uint8(center_crop(load_image(small_run["manifest"].parent / e["sample"])))
        assert np.array_equal(orig, src)
        # and the stored adversarial image has the norm the store recorded for it
        assert np.abs(diff).max() == pytest.approx(e["linf"] * 255, abs=0.51)
    assert any(e["attack"] == "noop" and (to_uint8(load_image(e["amplified"])) == 128).all() for e in entries)
    # the gallery shows the run's most affected PGD images (chunks of 16, picked per chunk)
    with Store(small_run["store"]) as st:
        rows = [r for r in st.rows("small") if r["attack"] == "pgd" and r["label"] == 1]
    top = sorted(rows, key=lambda r: (pushed(1, r["score_clean"], r["score_adv"]), r["sample"]))[::-1][:3]
    assert [e["sample"] for e in pgd if e["kind"] == "most affected"] == [r["sample"] for r in top]


def test_gallery_picker_keeps_the_global_extremes_across_chunks():
    rng = np.random.default_rng(0)
    pushes = rng.normal(size=100)
    img = np.zeros((3, 4, 4), dtype=np.float32)
    kept = set()
    for c in range(0, 100, 16):  # one picker per chunk, as the runner does
        p = GalleryPicker(4)
        for i in range(c, min(c + 16, 100)):
            p.offer(f"s{i:03d}", float(pushes[i]), img, img)
        assert len(p.kept) == min(8, min(c + 16, 100) - c)
        kept |= set(p.kept)
    order = [f"s{i:03d}" for i in np.argsort(pushes)]
    assert set(order[:4]) | set(order[-4:]) <= kept


def test_report_cli_formats_quiet_and_log_file(small_run, tmp_path, capsys):  # noqa: F811
    from fakebench import progress
    from fakebench.cli import main

    log = tmp_path / "logs" / "report.log"
    out = tmp_path / "md_json"
    assert main(["report", "--store", str(small_run["store"]), "--out", str(out), "--format", "md,json",
                 "--quiet", "--log-file", str(log)]) == 0
    assert (out / "report.md").exists() and (out / "results.json").exists() and not (out / "report.html").exists()
    assert "fakebench" in log.read_text() and "--format md,json" in log.read_text()
    assert main(["report", "--store", str(small_run["store"]), "--out", str(tmp_path / "h")]) == 0
    assert sorted(p.name for p in (tmp_path / "h").iterdir() if p.suffix in (".html", ".md", ".json")) == \
        ["gallery.json", "perturbation_spectra.json", "report.html"]
    assert isinstance(progress.progress_bar(3, "x"), type(progress.progress_bar(3, "x", enabled=True))) and \
        not isinstance(progress.progress_bar(3, "x"), progress.NullBar)  # --quiet does not outlive its command
    progress.set_quiet(True)
    assert isinstance(progress.progress_bar(3, "x"), progress.NullBar)
    progress.set_quiet(False)
    capsys.readouterr()
    assert main(["report", "--store", str(tmp_path / "nope.sqlite"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results store not found" in err[0] and not (tmp_path / "nope.sqlite").exists()


def test_queries_vs_success_only_for_black_box_attacks(small_run, tmp_path):  # noqa: F811
    from fakebench.report import build_report
    from fakebench.report.figures import success_by_queries
    from fakebench.runner.store import Row, canonical

    assert '<section id="queries">' not in (small_run["out"] / "report.html").read_text()  # PGD is white-box
    params = {"threat": {"direction": "evade", "norm": "linf", "eps": 8 / 255}, "seed": 0}
    q = [10, 50, 50, 200, 1000, 1000]
    adv = [-1.0, -2.0, 3.0, -0.5, 2.0, 1.0]  # wrong (<= 0) for the first, second and fourth fake
    with Store(tmp_path / "s.sqlite") as st:
        st.ensure_run("r", {"attacks": [{"name": "sq", "attack": "square"}]})
        st.set_detector("r", "d", 0.0, {})
        rows = [Row("d", "clean", "{}", f"f{i}", 1, "g", 5.0, 5.0, 0, 0, 0, 0, 0, 0) for i in range(6)]
        rows += [Row("d", "clean", "{}", f"r{i}", 0, "real", -5.0, -5.0, 0, 0, 0, 0, 0, 0) for i in range(6)]
        st.commit_chunk("r", "d", "clean", "{}", 0, rows)
        rows = [Row("d", "sq", canonical(params), f"f{i}", 1, "g", 5.0, adv[i], 0, 0, 0, 0, q[i], 0) for i in range(6)]
        st.commit_chunk("r", "d", "sq", canonical(params), 0, rows)
        grid, rate = success_by_queries([r for r in st.rows("r") if r["attack"] == "sq"], 0.0, "evade")
    assert grid.tolist() == [0, 10, 50, 200, 1000] and rate.tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 3 / 6])
    build_report(tmp_path / "s.sqlite", "r", tmp_path / "rep", formats=["html"])
    assert '<section id="queries">' in (tmp_path / "rep" / "report.html").read_text()
    assert (tmp_path / "rep" / "queries_vs_success.png").stat().st_size > 1000


def test_gallery_size_cap_names_what_it_leaves_out(small_run, tmp_path):  # noqa: F811
    from fakebench.report.gallery import build_gallery
    from fakebench.report.html import Gallery, Text

    res = small_run["results"]
    with Store(small_run["store"]) as st:
        groups = {}
        for r in st.rows("small"):
            groups.setdefault((r["detector"], r["attack"], r["params"]), []).append(r)
    blocks, entries = build_gallery(small_run["out"], res["summary"], groups, {"tiny": 0.0}, tmp_path, n=3, max_bytes=1)
    assert [type(b) for b in blocks] == [Gallery, Text]  # the first setting, then the names of the others
    assert len({(e["attack"], e["setting"]) for e in entries}) == 1
    assert "noop" in blocks[1].text and "pgd" in blocks[1].text
