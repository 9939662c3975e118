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
from .summary import jsonable, summarize_run

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
    out.mkdir(parents=True, exist_ok=True)
    store_path = Path(store_path)
    with Store(store_path) as store:
        summary = summarize_run(store, run)
        bad = store.bad_samples(run)
        thresholds = store.thresholds(run)
        config, env = store.config(run), store.environment(run)
        groups: figures.Groups = {}
        for r in store.rows(run):
            groups.setdefault((r["detector"], r["attack"], r["params"]), []).append(r)
    results = {"fakebench_version": __version__, "run": run, "summary": summary, "bad_samples": bad,
               **(extra or {})}
    if "json" in formats:
        (out / "results.json").write_text(json.dumps(jsonable(results), indent=2, sort_keys=True, default=str))
    if not {"md", "html"} & set(formats):
        return results
    figs = _make_figures(summary, groups, thresholds, out, config)
    plots = [p for group in figs.values() for p, _ in group if p is not None]
    if "md" in formats:
        _write_markdown(out, title, run, summary, bad, notes, plots)
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


def _write_markdown(out: Path, title: str, run: str, summary: list[dict[str, Any]], bad: dict[str, str],
                    notes: list[str] | None, plots: list[Path]) -> None:
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
