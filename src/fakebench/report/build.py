"""Write ``results.json``, ``report.md`` and PNG plots for one run, from the store alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..runner.store import Store
from .summary import jsonable, summarize_run

TABLE_COLUMNS = [("detector", "detector"), ("attack", "attack"), ("label", "setting"), ("auc", "AUC"), ("ap", "AP"),
                 ("acc", "acc@0"), ("acc_cal", "acc@cal"), ("tpr_cal", "TPR@cal"), ("tpr@1%fpr", "TPR@1%FPR"),
                 ("asr", "ASR"), ("linf", "Linf*255"), ("l2", "L2"), ("psnr", "PSNR")]


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


def _plot_roc(store: Store, run: str, summary: list[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    rows_by = {}
    for r in store.rows(run):
        rows_by.setdefault((r["detector"], r["attack"], r["params"]), []).append(r)
    files = []
    for det in sorted({s["detector"] for s in summary}):
        fig, ax = plt.subplots(figsize=(5, 5))
        for s in [x for x in summary if x["detector"] == det]:
            key = (det, s["attack"], json.dumps(s["params"], sort_keys=True, separators=(",", ":"), default=str))
            rows = rows_by.get(key, [])
            y = np.array([r["label"] for r in rows])
            sc = np.array([r["score_adv"] for r in rows])
            if len(set(y.tolist())) < 2:
                continue
            fpr, tpr, _ = roc_curve(y, sc)
            name = s["attack"] + (f" {s['label']}" if s["label"] else "")
            ax.plot(fpr, tpr, lw=2 if s["attack"] == "clean" else 1, label=f"{name} (AUC {s['auc']:.2f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false positive rate (real judged synthetic)")
        ax.set_ylabel("true positive rate (synthetic detected)")
        ax.set_title(f"ROC: {det}, clean vs attacked")
        ax.legend(fontsize=6, loc="lower right")
        fig.tight_layout()
        p = out / f"roc_{det}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        files.append(p)
    return files


def _plot_eps(summary: list[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
    clean = {s["detector"]: s for s in summary if s["attack"] == "clean"}
    for s in summary:
        if s["direction"] in ("evade", "spoof") and s["eps"] > 0 and s["params"].get("threat", {}).get("norm") == "linf":
            series.setdefault((s["detector"], s["attack"], s["direction"]), []).append(
                (s["eps"] * 255, s["acc_cal"], s["tpr_cal"] if s["direction"] == "evade" else s["tnr_cal"]))
    if not series:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for (det, atk, direction), pts in sorted(series.items()):
        c = clean.get(det)
        pts = sorted(pts)
        if c is not None:
            base = c["tpr_cal"] if direction == "evade" else c["tnr_cal"]
            pts = [(0.0, c["acc_cal"], base)] + pts
        e = [p[0] for p in pts]
        ax.plot(e, [p[2] for p in pts], marker="o",
                label=f"{det} {atk} {direction}: {'TPR (fakes detected)' if direction == 'evade' else 'TNR (reals passed)'}")
    ax.set_xlabel("eps (grey levels, Linf)")
    ax.set_ylabel("accuracy on the attacked class (calibrated threshold)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    ax.set_title("Accuracy vs attack budget")
    fig.tight_layout()
    p = out / "accuracy_vs_eps.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def build_report(store_path: str | Path, run: str, out: str | Path, title: str = "fakebench report",
                 extra: dict[str, Any] | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """Write results.json, report.md and plots under ``out``. Returns the results dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Store(store_path) as store:
        summary = summarize_run(store, run)
        bad = store.bad_samples(run)
        plots = _plot_roc(store, run, summary, out) + _plot_eps(summary, out)
    results = {"fakebench_version": __version__, "run": run, "summary": summary, "bad_samples": bad,
               **(extra or {})}
    (out / "results.json").write_text(json.dumps(jsonable(results), indent=2, sort_keys=True, default=str))
    lines = [f"# {title}", "", f"Run `{run}` (fakebench {__version__}). Scores are logits (> 0: synthetic). "
             "`acc@cal`/`TPR@cal` use each detector's threshold calibrated on validation data; "
             "ASR = fraction of attacked-class images correctly classified before that are misclassified after; "
             "norms are means over attacked images in [0, 1] pixel units (Linf shown in grey levels).", ""]
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
    rej = [s for s in summary if s.get("rejected") is not None]
    if rej:
        lines += ["## Rejected as adversarial", "",
                  "Detectors with an adversarial-input detector give three verdicts (real / synthetic / rejected); a "
                  "rejected image is counted as flagged (caught) in every metric above: a rejected attacked fake as "
                  "detected, a rejected real as a false positive.", ""]
        lines += [f"- {s['detector']} / {s['attack']} {s['label']}: {s['rejected']:.3f} of the attacked images rejected"
                  for s in rej] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if bad:
        lines += [f"## Skipped files ({len(bad)})", ""] + [f"- {r}" for r in bad.values()] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    (out / "report.md").write_text("\n".join(lines))
    return results
