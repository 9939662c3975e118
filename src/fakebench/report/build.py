"""Write ``results.json``, ``report.md``, ``report.html`` and PNG plots for one run, from the store alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import ConfigError
from ..runner.store import Store
from . import figures
from .summary import jsonable, sharing_vs_real, summarize_run

FORMATS = ("json", "md", "html")
ASR_LEGEND = ("ASR = among the attacked-class images decided correctly before the attack, the fraction decided wrongly "
              "after it (conditional; results.json `asr_on_correct`); `wrong after` = among all attacked-class images, "
              "the fraction decided wrongly after the attack, including those already wrong before "
              "(unconditional; results.json `asr`)")

TABLE_COLUMNS = [("detector", "detector"), ("attack", "attack"), ("label", "setting"), ("auc", "AUC"), ("ap", "AP"),
                 ("acc", "acc@0"), ("acc_cal", "acc@cal"), ("tpr_cal", "TPR@cal"), ("tpr@1%fpr", "TPR@1%FPR"),
                 ("asr_on_correct", "ASR"), ("asr", "wrong after"), ("linf", "Linf*255"), ("l2", "L2"), ("psnr", "PSNR")]


def _fmt(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if key == "linf":
        return f"{v * 255:.2f}"
    if key == "psnr":
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def format_table(summary: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (also printed by the CLI)."""
    head = "| " + " | ".join(t for _, t in TABLE_COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"
    lines = [head, sep]
    for s in summary:
        lines.append("| " + " | ".join(_fmt(k, s.get(k)) for k, _ in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def _make_figures(summary: list[dict[str, Any]], groups: figures.Groups, thresholds: dict[str, float], out: Path,
                  config: dict[str, Any]) -> dict[str, list[tuple[Path | None, list[str]]]]:
    per_det: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for s in summary:
        per_det.setdefault(s["detector"], []).append(
            (s, groups.get((s["detector"], s["attack"], figures._key(s["params"])), [])))
    return {
        "roc": [figures.plot_roc_det(d, e, out) for d, e in per_det.items()],
        "hist": [figures.plot_histograms(d, e, thresholds.get(d, 0.0), out) for d, e in per_det.items()],
        "eps": [figures.plot_eps(summary, out)],
        "gen": [figures.plot_generator_heatmap(summary, out)],
        "queries": [figures.plot_queries(summary, groups, thresholds, out, figures.black_box_names(config))],
    }


def generator_share_tables(summary: list[dict[str, Any]]) -> list[str]:
    """Markdown: per detector and setting, generators x shares, each cell ``AUC / AP / TPR@1%FPR``
    of that generator's fakes against the reals shared the same way (the TrueFake paper's layout)."""
    lines: list[str] = []
    for s in [x for x in summary if x.get("by_generator_share")]:
        cells = {(c["generator"], c["share"]): c for c in s["by_generator_share"]}
        shares = list(dict.fromkeys(c["share"] for c in s["by_generator_share"]))
        gens = sorted({g for g, _ in cells if g != "all" and not g.startswith("real:")}) + ["all"]
        gens += sorted({g for g, _ in cells if g.startswith("real:")})
        if not lines:
            lines += [("## Per generator x share (AUC / AP / TPR@1%FPR; fakes vs the reals of the same share; "
                       "real sets: TNR at the calibrated threshold)"), ""]
        lines += [f"**{s['detector']}**, {s['attack']}{' ' + s['label'] if s['label'] else ''}", "",
                  "| generator | " + " | ".join(shares) + " |", "|---|" + "---|" * len(shares)]
        for g in gens:
            row = []
            for sh in shares:
                c = cells.get((g, sh))
                if c is not None and "tnr_cal" in c:
                    row.append(f"TNR {_fmt('tnr', c['tnr_cal'])}")
                else:
                    row.append("-" if c is None or "auc" not in c else
                               f"{_fmt('auc', c['auc'])} / {_fmt('ap', c['ap'])} / {_fmt('tpr', c['tpr@1%fpr'])}")
            lines.append(f"| {g} | " + " | ".join(row) + " |")
        lines.append("")
    return lines


def sharing_vs_real_lines(copies: list[dict[str, Any]]) -> list[str]:
    """Markdown: the sharing presets against the real shared copies (see ``sharing_vs_real``)."""
    if not copies:
        return []
    lines = ["## Sharing presets vs real shared copies", "",
             ("The `share` attack on PreSocial images against the real copies of the same images shared on the "
              "platform: score difference (simulated - real, logits), decisions that agree at the calibrated "
              "threshold, and PSNR (dB) of the simulation and of the unshared original against the real copy."), "",
             ("| detector | platform | pairs | mean diff | mean abs diff | Pearson r | same decision | PSNR sim | "
              "PSNR orig | same size | identical |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in copies:
        lines.append(f"| {c['detector']} | {c['platform']} | {c['n_pairs']} | {_fmt('d', c['score_diff'])} | "
                     f"{_fmt('d', c['abs_score_diff'])} | {_fmt('r', c['pearson'])} | {_fmt('s', c['same_decision'])} | "
                     f"{_fmt('psnr', c['psnr_sim_vs_copy'])} | {_fmt('psnr', c['psnr_orig_vs_copy'])} | "
                     f"{_fmt('s', c['same_size'])} | {_fmt('s', c['identical'])} |")
    return [*lines, ""]


def build_report(store_path: str | Path, run: str, out: str | Path, title: str = "fakebench report",
                 extra: dict[str, Any] | None = None, notes: list[str] | None = None,
                 formats: tuple[str, ...] | list[str] = FORMATS, log_file: str | Path | None = None,
                 gallery: int = 3, sections: list[Any] | None = None) -> dict[str, Any]:
    """Write the report of ``run`` under ``out``: ``results.json`` (``"json"``), ``report.md``
    (``"md"``), the self-contained ``report.html`` (``"html"``), their PNG figures and the
    gallery's amplified perturbations. ``gallery``: images per side (most / least affected)
    per (detector, attack setting). ``sections``: extra :class:`~fakebench.report.html.Section` s
    appended to the HTML. Returns the results dict."""
    from .gallery import build_gallery, spectra_figure
    from .html import Section, Text, write_page
    from .page import (
        extra_tables,
        figure_section,
        metrics_table,
        reproduction_section,
        summary_section,
    )

    bad_fmt = set(formats) - set(FORMATS)
    if bad_fmt:
        raise ConfigError(f"report format: {sorted(bad_fmt)} not one of {list(FORMATS)}")
    out = Path(out)
    store_path = Path(store_path)
    with Store(store_path, readonly=True) as store:  # a missing store: one line, nothing created
        out.mkdir(parents=True, exist_ok=True)
        summary = summarize_run(store, run)
        copies = sharing_vs_real(store, run)
        bad = store.bad_samples(run)
        thresholds = store.thresholds(run)
        config, env = store.config(run), store.environment(run)
        groups: figures.Groups = {}
        for r in store.rows(run):
            groups.setdefault((r["detector"], r["attack"], r["params"]), []).append(r)
    results = {"fakebench_version": __version__, "run": run, "summary": summary, "bad_samples": bad,
               **({"sharing_vs_real": copies} if copies else {}), **(extra or {})}
    tables = _condition_tables(summary, copies)
    if tables:
        results["tables"] = [*results.get("tables", []), *tables]
    if "json" in formats:
        (out / "results.json").write_text(json.dumps(jsonable(results), indent=2, sort_keys=True, default=str))
    if not {"md", "html"} & set(formats):
        return results
    figs = _make_figures(summary, groups, thresholds, out, config)
    plots = [p for group in figs.values() for p, _ in group if p is not None]
    if "md" in formats:
        _write_markdown(out, title, run, summary, bad, notes, plots, copies)
    if "html" in formats:
        gal_blocks, _ = build_gallery(store_path.parent, summary, groups, thresholds, out, n=gallery)
        secs = [summary_section(run, summary, bad, notes or []),
                Section("Metrics", [metrics_table(summary)], "metrics"),
                figure_section("ROC and DET curves", "roc", figs["roc"], "left: ROC, right: DET (both clean vs attacked)"),
                figure_section("Score histograms", "hist", figs["hist"], "scores per class, clean vs attacked"),
                figure_section("Accuracy vs eps", "eps", figs["eps"], "accuracy on the attacked class vs budget"),
                figure_section("AUC per generator", "generators", figs["gen"], "each generator's fakes vs all reals"),
                figure_section("Queries vs success", "queries", figs["queries"], "black-box attacks"),
                figure_section("Perturbation spectra", "spectra", [spectra_figure(store_path.parent, summary, out)],
                               "mean power spectrum of x_adv - x (log scale) and radial profiles"),
                Section("Adversarial gallery", list(gal_blocks), "gallery"),
                extra_tables(results), *(sections or []),
                Section(f"Skipped files ({len(bad)})", [Text(r) for r in bad.values()], "skipped"),
                reproduction_section(config, env, thresholds, log_file, out)]
        write_page(out / "report.html", title, secs, subtitle=f"run {run} - fakebench {__version__}")
    return results


def _condition_tables(summary: list[dict[str, Any]], copies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per generator x share tables and the sharing-vs-real comparison as generic report
    tables (``results["tables"]``, rendered by the HTML page)."""
    tables: list[dict[str, Any]] = []
    for s in [x for x in summary if x.get("by_generator_share")]:
        rows: dict[str, dict[str, Any]] = {}
        for c in s["by_generator_share"]:
            cell = (f"TNR {_fmt('tnr', c['tnr_cal'])}" if "tnr_cal" in c else
                    "-" if "auc" not in c else
                    f"{_fmt('auc', c['auc'])} / {_fmt('ap', c['ap'])} / {_fmt('tpr', c['tpr@1%fpr'])}")
            rows.setdefault(c["generator"], {"generator": c["generator"]})[c["share"]] = cell
        tables.append({"title": f"{s['detector']}, {s['attack']} {s['label']}: per generator x share",
                       "caption": "AUC / AP / TPR@1%FPR of each generator's fakes vs the reals of the same share",
                       "rows": list(rows.values())})
    if copies:
        tables.append({"title": "Sharing presets vs real shared copies", "rows": copies,
                       "caption": "the share attack on PreSocial images vs the real copies shared on the platform"})
    return tables


def _write_markdown(out: Path, title: str, run: str, summary: list[dict[str, Any]], bad: dict[str, str],
                    notes: list[str] | None, plots: list[Path], copies: list[dict[str, Any]]) -> None:
    lines = [f"# {title}", "", (f"Run `{run}` (fakebench {__version__}). Scores are logits (> 0: synthetic). "
             "`acc@cal`/`TPR@cal` use each detector's threshold calibrated on validation data; "
             f"{ASR_LEGEND}; "
             "norms are means over attacked images in [0, 1] pixel units (Linf shown in grey levels)."), ""]
    lines += [format_table(summary), ""]
    gens = [s for s in summary if s["attack"] == "clean" and s["auc_by_generator"]]
    if gens:
        lines += ["## Clean AUC per generator (each generator's fakes vs all reals)", ""]
        for s in gens:
            lines.append(f"- **{s['detector']}**: " + ", ".join(
                f"{g} {_fmt('auc', v)}" for g, v in s["auc_by_generator"].items()))
        lines.append("")
    paired = [s for s in gens if s.get("auc_by_generator_paired")]
    if paired:
        head = "## Clean AUC per generator, paired (the generator's fakes vs its own reals, `<gen>/0_real` vs `<gen>/1_fake`)"
        lines += [head, "", "| detector | generator | AUC, own reals | AUC, all reals |", "| --- | --- | --- | --- |"]
        for s in paired:
            lines += [f"| {s['detector']} | {g} | {_fmt('auc', v)} | {_fmt('auc', s['auc_by_generator'][g])} |"
                      for g, v in s["auc_by_generator_paired"].items()]
        lines.append("")
    lines += generator_share_tables(summary) + sharing_vs_real_lines(copies)
    rej = [s for s in summary if s.get("rejected") is not None]
    if rej:
        lines += ["## Rejected as adversarial", "",
                  ("Detectors with an adversarial-input detector give three verdicts (real / synthetic / rejected); a "
                  "rejected image is counted as flagged (caught) in every metric above: a rejected attacked fake as "
                  "detected, a rejected real as a false positive."), ""]
        lines += [f"- {s['detector']} / {s['attack']} {s['label']}: {s['rejected']:.3f} of the attacked images rejected"
                  for s in rej] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if bad:
        lines += [f"## Skipped files ({len(bad)})", ""] + [f"- {r}" for r in bad.values()] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    (out / "report.md").write_text("\n".join(lines))
