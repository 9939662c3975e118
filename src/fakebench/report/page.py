"""The sections of ``report.html`` for one run, each present only when the run has its data."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from .._version import __version__
from .html import Figure, Link, Pre, Section, Table, Text, table_from_rows

ASR_TIP = ("ASR (conditional): among the attacked-class images the detector decided correctly before the attack, "
           "the fraction it decides wrongly after it (results.json: asr_on_correct)")
WRONG_TIP = ("Wrong after (unconditional): among all attacked-class images, the fraction decided wrongly after the "
             "attack, including those already wrong before it (results.json: asr)")
METRIC_LEGEND = (
    "Scores are logits (> 0: synthetic). AUC and TPR/TNR at each detector's calibrated threshold (cal) are computed on "
    "the attacked images, next to the same numbers on the clean images; the AUC interval is a 95% percentile "
    "bootstrap (resampled within each class). ASR is conditional: among the attacked-class images decided correctly "
    "before the attack, the fraction decided wrongly after. 'Wrong after' is unconditional: all attacked-class images "
    "decided wrongly after the attack, so it also counts images that were already missed; an attack that changes "
    "nothing has ASR 0 but 'wrong after' = the clean error rate. Norms are means over the attacked images in [0, 1] "
    "units (Linf in grey levels). Click a column header to sort.")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else None


def metrics_table(summary: list[dict[str, Any]]) -> Table:
    clean = {s["detector"]: s for s in summary if s["attack"] == "clean"}
    headers = ["detector", "attack", "setting", "n real", "n fake", "AUC clean", "AUC", "AUC 95% CI", "dAUC",
               "TPR@cal clean", "TPR@cal", "TNR@cal", "AP", "TPR@1%FPR", "ASR", "wrong after", "Linf*255", "L2",
               "PSNR", "queries"]
    tips = ["", "", "", "", "", "AUC of the clean images", "AUC after the attack", "95% bootstrap interval of AUC",
            "AUC minus clean AUC", "synthetic detected, clean images", "synthetic detected, attacked",
            "real passed, attacked", "average precision", "TPR at 1% FPR", ASR_TIP, WRONG_TIP,
            "mean largest change, grey levels", "mean L2 norm", "mean PSNR (dB)", "mean queries per image"]
    rows = []
    for s in summary:
        c = clean.get(s["detector"], {})
        ci = s.get("auc_ci") or (None, None)
        d_auc = (s["auc"] - c["auc"]) if _num(s.get("auc")) is not None and _num(c.get("auc")) is not None else None
        ci_txt = (f"[{ci[0]:.3f}, {ci[1]:.3f}]", ci[0]) if _num(ci[0]) is not None and _num(ci[1]) is not None else None
        linf = _num(s.get("linf"))
        rows.append([s["detector"], s["attack"], s.get("label", ""), s.get("n_real"), s.get("n_fake"), c.get("auc"),
                     s.get("auc"), ci_txt, d_auc, c.get("tpr_cal"), s.get("tpr_cal"), s.get("tnr_cal"), s.get("ap"),
                     s.get("tpr@1%fpr"), s.get("asr_on_correct"), s.get("asr"),
                     None if linf is None else (f"{linf * 255:.2f}", linf * 255), s.get("l2"),
                     None if _num(s.get("psnr")) is None else (f"{s['psnr']:.1f}", s["psnr"]),
                     s.get("queries") if (s.get("queries") or 0) > 0 else None])
    return Table(headers, rows, caption=METRIC_LEGEND, tips=tips, css_id="metrics")


def summary_section(run: str, summary: list[dict[str, Any]], bad: dict[str, str], notes: list[str]) -> Section:
    blocks: list[Any] = []
    dets = sorted({s["detector"] for s in summary})
    settings = sorted({(s["attack"], s.get("label", "")) for s in summary if s["attack"] != "clean"})
    n = next((s["n_real"] + s["n_fake"] for s in summary if s["attack"] == "clean"), 0)
    blocks.append(Text(f"Run '{run}': {n} images, {len(dets)} detector(s), {len(settings)} attack setting(s), "
                       f"{len(bad)} unreadable file(s) skipped."))
    lines = []
    for d in dets:
        rows = [s for s in summary if s["detector"] == d]
        c = next((s for s in rows if s["attack"] == "clean"), None)
        att = [s for s in rows if s["attack"] != "clean" and _num(s.get("auc")) is not None]
        txt = f"{d}: clean AUC {c['auc']:.3f}" if c and _num(c.get("auc")) is not None else f"{d}:"
        if att:
            w = min(att, key=lambda s: s["auc"])
            txt += f"; lowest AUC under attack {w['auc']:.3f} ({w['attack']} {w.get('label', '')})".rstrip()
        asr = [s for s in rows if _num(s.get("asr_on_correct")) is not None]
        if asr:
            h = max(asr, key=lambda s: s["asr_on_correct"])
            txt += f"; highest ASR {h['asr_on_correct']:.3f} ({h['attack']} {h.get('label', '')})".rstrip()
        lines.append(txt)
    blocks += [Text(t) for t in lines]
    blocks += [Text(f"Note: {t}") for t in notes]
    return Section("Summary", blocks, "summary")


def figure_section(title: str, sid: str, figs: list[tuple[Path | None, list[str]]], caption: str) -> Section:
    blocks: list[Any] = []
    for path, notes in figs:
        if path is None:
            continue
        blocks.append(Figure(path, caption=caption, alt=path.stem))
        blocks += [Text(n) for n in notes]
    return Section(title, blocks, sid)


def extra_tables(results: dict[str, Any]) -> Section:
    """``results["tables"]``: any list of ``{"title", "rows": [dict, ...], "columns"?, "caption"?}``."""
    blocks: list[Any] = []
    for t in results.get("tables") or []:
        if not t.get("rows"):
            continue
        blocks.append(Text(f"<h3>{_esc(t.get('title', 'table'))}</h3>", raw_html=True))
        blocks.append(table_from_rows(t["rows"], t.get("columns"), caption=t.get("caption", "")))
    return Section("More tables", blocks, "tables")


def _esc(s: str) -> str:
    import html

    return html.escape(str(s))


def reproduction_section(config: dict[str, Any], env: dict[str, Any], thresholds: dict[str, float],
                         log_file: str | Path | None, out: Path) -> Section:
    blocks: list[Any] = []
    now = {"fakebench": __version__, "python": platform.python_version()}
    try:
        from importlib.metadata import version

        now["torch"] = version("torch")
    except Exception:  # noqa: BLE001 - metadata missing: the version stays unknown
        now["torch"] = "unknown"
    if env:
        blocks.append(Text("Environment of the run (as stored by the runner):"))
        blocks.append(table_from_rows([env]))
    blocks.append(Text("Environment of this report:"))
    blocks.append(table_from_rows([now]))
    if thresholds:
        blocks.append(table_from_rows([{"detector": d, "calibrated threshold": t} for d, t in sorted(thresholds.items())]))
    if config:
        blocks.append(Text("The exact experiment config (fakebench evaluate --config repeats it):"))
        blocks.append(Pre(json.dumps(config, indent=2, sort_keys=True, default=str)))
    if log_file:
        lp = Path(log_file)
        try:
            href = os.path.relpath(lp.resolve(), out.resolve())
        except ValueError:
            href = str(lp)
        blocks.append(Link(Path(href).as_posix(), f"log file: {lp.name}"))
    return Section("Reproduction", blocks, "reproduction")
