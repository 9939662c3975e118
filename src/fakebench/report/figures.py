"""The report's matplotlib figures, each drawn from the store's rows and the run summary alone.

Every function writes one PNG into ``out`` and returns ``(path, notes)`` (``None`` when the
run has no data for that figure); ``notes`` are sentences the page prints under the figure
(e.g. an attacked ROC curve that coincides with the clean one and hides it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics

Groups = dict[tuple[str, str, str], list[dict[str, Any]]]  # (detector, attack, params key) -> rows
DPI = 100


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def setting_name(s: dict[str, Any]) -> str:
    return s["attack"] + (f" {s['label']}" if s.get("label") else "")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path


def _arrays(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] for r in rows], dtype=float)


def plot_roc_det(det: str, entries: list[tuple[dict[str, Any], list[dict[str, Any]]]], out: Path
                 ) -> tuple[Path | None, list[str]]:
    """ROC (linear axes) and DET (normal-deviate axes) of one detector, clean vs every attack
    setting. An attacked curve whose ROC points equal the clean ones is drawn dashed and named."""
    from scipy.special import (
        ndtri,  # the normal quantile (scipy.stats.norm.ppf without importing scipy.stats)
    )

    plt = _plt()
    fig, (ax, ax_det) = plt.subplots(1, 2, figsize=(10, 4.8))
    clean_curve = None
    notes: list[str] = []
    drawn = 0
    lim = (1e-3, 0.6)
    for s, rows in entries:
        y, sc = np.array([r["label"] for r in rows]), _arrays(rows, "score_adv")
        if len(set(y.tolist())) < 2 or not np.isfinite(sc).all():
            continue
        fpr, tpr, _ = metrics.roc_curve(y, sc)
        is_clean = s["attack"] == "clean"
        same = (not is_clean and clean_curve is not None and len(fpr) == len(clean_curve[0])
                and np.array_equal(fpr, clean_curve[0]) and np.array_equal(tpr, clean_curve[1]))
        name = setting_name(s) + (" = clean, hidden under it" if same else "")
        if same:
            notes.append(f"{det}: the ROC under {setting_name(s)} is identical to the clean ROC (the attack changed no "
                         "decision ordering); its dashed curve lies on top of the clean one.")
        if is_clean:
            clean_curve = (fpr, tpr)
        style = {"lw": 2.2 if is_clean else 1.0, "ls": "--" if same else "-", "color": "k" if is_clean else None}
        ax.plot(fpr, tpr, label=f"{name} (AUC {s['auc']:.3f})", **style)
        fnr = 1.0 - tpr
        ax_det.plot(ndtri(np.clip(fpr, *lim)), ndtri(np.clip(fnr, *lim)), **style)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None, []
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate (real judged synthetic)")
    ax.set_ylabel("true positive rate (synthetic detected)")
    ax.set_title(f"ROC: {det}, clean vs attacked", fontsize=10)
    ax.legend(fontsize=6, loc="lower right")
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
    for setter in (ax_det.set_xticks, ax_det.set_yticks):
        setter(ndtri(ticks), [f"{100 * t:g}%" for t in ticks])
    ax_det.set_xlim(ndtri(lim[0]), ndtri(lim[1]))
    ax_det.set_ylim(ndtri(lim[0]), ndtri(lim[1]))
    ax_det.grid(alpha=0.3)
    ax_det.set_xlabel("false positive rate")
    ax_det.set_ylabel("false negative rate (synthetic missed)")
    ax_det.set_title(f"DET: {det} (normal-deviate axes, clipped to 0.1%-60%)", fontsize=10)
    return _save(fig, out / f"roc_{det}.png"), notes


def plot_histograms(det: str, entries: list[tuple[dict[str, Any], list[dict[str, Any]]]], threshold: float, out: Path,
                    max_panels: int = 12) -> tuple[Path | None, list[str]]:
    """Score histograms per class, clean (outline) vs attacked (filled), one panel per attack
    setting; the calibrated threshold as a vertical line."""
    attacked = [(s, rows) for s, rows in entries if s["attack"] != "clean" and rows]
    if not attacked:
        return None, []
    notes = []
    if len(attacked) > max_panels:
        notes.append(f"{det}: histograms of the first {max_panels} of {len(attacked)} attack settings.")
        attacked = attacked[:max_panels]
    plt = _plt()
    ncol = min(4, len(attacked))
    nrow = math.ceil(len(attacked) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.5 * nrow), squeeze=False)
    for ax, (s, rows) in zip(axes.ravel(), attacked):
        y = np.array([r["label"] for r in rows])
        clean, adv = _arrays(rows, "score_clean"), _arrays(rows, "score_adv")
        both = np.r_[clean, adv]
        both = both[np.isfinite(both)]
        bins = np.linspace(both.min(), both.max() + 1e-9, 31) if len(both) else 10
        for lab, color, name in ((0, "tab:blue", "real"), (1, "tab:red", "synthetic")):
            m = y == lab
            if not m.any():
                continue
            ax.hist(clean[m][np.isfinite(clean[m])], bins=bins, histtype="step", color=color, lw=1.2,
                    label=f"{name} clean")
            ax.hist(adv[m][np.isfinite(adv[m])], bins=bins, color=color, alpha=0.35, label=f"{name} attacked")
        ax.axvline(threshold, color="k", lw=0.8, ls="--")
        ax.set_title(setting_name(s), fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(attacked):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6)
    fig.suptitle(f"{det}: score (logit) histograms; outline = clean, filled = attacked; dashed = threshold",
                 fontsize=9)
    return _save(fig, out / f"hist_{det}.png"), notes


def plot_eps(summary: list[dict[str, Any]], out: Path) -> tuple[Path | None, list[str]]:
    """Accuracy on the attacked class (TPR for evade, TNR for spoof) at the calibrated
    threshold vs the Linf budget, eps 0 = clean."""
    series: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    clean = {s["detector"]: s for s in summary if s["attack"] == "clean"}
    for s in summary:
        if s["direction"] in ("evade", "spoof") and s["eps"] > 0 and s["params"].get("threat", {}).get("norm") == "linf":
            series.setdefault((s["detector"], s["attack"], s["direction"]), []).append(
                (s["eps"] * 255, s["tpr_cal"] if s["direction"] == "evade" else s["tnr_cal"]))
    if not series:
        return None, []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (det, atk, direction), pts in sorted(series.items()):
        c = clean.get(det)
        pts = sorted(pts)
        if c is not None:
            pts = [(0.0, c["tpr_cal"] if direction == "evade" else c["tnr_cal"])] + pts
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                label=f"{det} {atk} {direction}: {'TPR (fakes detected)' if direction == 'evade' else 'TNR (reals passed)'}")
    ax.set_xlabel("eps (grey levels, Linf)")
    ax.set_ylabel("accuracy on the attacked class (calibrated threshold)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    ax.set_title("Accuracy vs attack budget")
    return _save(fig, out / "accuracy_vs_eps.png"), []


def plot_generator_heatmap(summary: list[dict[str, Any]], out: Path) -> tuple[Path | None, list[str]]:
    """AUC of each generator's fakes vs all reals, rows = (detector, setting)."""
    rows = [s for s in summary if s.get("auc_by_generator")]
    gens = sorted({g for s in rows for g in s["auc_by_generator"]})
    if not rows or not gens:
        return None, []
    mat = np.array([[s["auc_by_generator"].get(g, float("nan")) for g in gens] for s in rows], dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2.5 + 0.9 * len(gens), 1.2 + 0.28 * len(rows)))
    im = ax.imshow(np.nan_to_num(mat, nan=0.5), vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(gens)), gens, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{s['detector']} / {setting_name(s)}" for s in rows], fontsize=6)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            ax.text(j, i, "-" if not math.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if math.isfinite(v) and v < 0.75 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04, label="AUC")
    ax.set_title("AUC per generator (its fakes vs all reals)", fontsize=9)
    return _save(fig, out / "auc_by_generator.png"), []


def black_box_names(config: dict[str, Any]) -> set[str]:
    """Names (as in the store) of the run's attacks whose registry card calls them black-box."""
    from ..attacks import REGISTRY

    out = set()
    for a in config.get("attacks") or []:
        kind = str(a.get("attack", ""))
        if kind in REGISTRY.names() and "black-box" in REGISTRY.card(kind).summary.lower():
            out.add(str(a.get("name") or kind))
    return out


def success_by_queries(rows: list[dict[str, Any]], thr: float, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """``(q, rate)``: at each distinct query count q, the fraction of the attacked images that
    end decided wrongly having used at most q queries."""
    y = np.array([r["label"] for r in rows])
    attacked = {"evade": y == 1, "spoof": y == 0}.get(direction, np.ones(len(y), dtype=bool))
    if not attacked.any():
        return np.zeros(0), np.zeros(0)
    wrong = ((_arrays(rows, "score_adv") > thr) != (y == 1))[attacked]
    qa = _arrays(rows, "queries")[attacked]
    grid = np.unique(np.r_[0, qa])
    return grid, np.array([np.mean(wrong & (qa <= g)) for g in grid])


def plot_queries(summary: list[dict[str, Any]], groups: Groups, thresholds: dict[str, float], out: Path,
                 black_box: set[str]) -> tuple[Path | None, list[str]]:
    """Black-box attacks (``black_box`` names, queries recorded): fraction of the attacked
    images decided wrongly within q queries, vs q."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = 0
    for s in summary:
        if s["attack"] not in black_box or not (s.get("queries") or 0) > 0:
            continue
        rows = groups.get((s["detector"], s["attack"], _key(s["params"])), [])
        grid, rate = success_by_queries(rows, thresholds.get(s["detector"], 0.0), s["direction"])
        if not len(grid):
            continue
        ax.step(grid, rate, where="post", label=f"{s['detector']} {setting_name(s)}")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None, []
    ax.set_xlabel("queries per image")
    ax.set_ylabel("fraction of attacked images decided wrongly")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    ax.set_title("Black-box attacks: success vs queries", fontsize=10)
    return _save(fig, out / "queries_vs_success.png"), []


def _key(params: dict[str, Any]) -> str:
    from ..runner.store import canonical

    return canonical(params)
