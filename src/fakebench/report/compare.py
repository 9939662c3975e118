"""``fakebench compare RUN_A RUN_B ...``: the same metrics of several runs side by side, each
run's difference to the first (the baseline) with a bootstrap confidence interval.

A run is ``PATH[:RUN]``: a store file or a folder holding ``results.sqlite``, and the run id
inside it (default: the store's last run). Settings are matched by (detector, attack,
parameters); when the runs share no detector name and each has exactly one detector (a model
vs its defended version), settings are matched by (attack, parameters) alone.

Differences are ``run - baseline``. When both runs scored the same images (same sample ids
and labels) the bootstrap is paired: one stratified resample of the images for both runs, so
the interval reflects how the two differ image by image; otherwise each run is resampled on
its own. Metrics: AUC, TPR at the calibrated threshold (synthetic still detected), TNR at it
and the conditional ASR (see :func:`fakebench.report.summary.summarize_run`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..errors import ConfigError
from ..progress import progress_bar
from ..runner.store import Store
from .summary import describe_params, jsonable

STORE_FILE = "results.sqlite"
METRICS = ("auc", "tpr_cal", "tnr_cal", "asr_on_correct")
METRIC_NAMES = {"auc": "AUC", "tpr_cal": "TPR@cal", "tnr_cal": "TNR@cal", "asr_on_correct": "ASR (conditional)"}


@dataclass
class RunData:
    label: str
    store: Path
    run: str
    thresholds: dict[str, float]
    #: (detector, attack, params key) -> (sample ids, labels, clean scores, attacked scores)
    groups: dict[tuple[str, str, str], tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]


def load_run(spec: str) -> RunData:
    """``PATH[:RUN]`` -> the run's rows, sorted by sample id (one ConfigError line if unusable)."""
    path, run = spec, None
    if not Path(spec).exists() and ":" in spec:
        path, run = spec.rsplit(":", 1)
    p = Path(path)
    if p.is_dir():
        p = p / STORE_FILE
    if not p.is_file():
        raise ConfigError(f"compare {spec}: no results store at {p}")
    with Store(p) as st:
        runs = st.runs()
        if not runs:
            raise ConfigError(f"compare {spec}: {p} holds no runs")
        run = run or runs[-1]
        if run not in runs:
            raise ConfigError(f"compare {spec}: no run {run!r} in {p} (runs: {', '.join(runs)})")
        raw: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in st.rows(run):
            raw.setdefault((r["detector"], r["attack"], r["params"]), []).append(r)
        thresholds = st.thresholds(run)
    groups = {}
    for k, rows in raw.items():
        rows.sort(key=lambda r: r["sample"])
        groups[k] = ([r["sample"] for r in rows], np.array([r["label"] for r in rows], dtype=int),
                     np.array([r["score_clean"] for r in rows], dtype=float),
                     np.array([r["score_adv"] for r in rows], dtype=float))
    return RunData(f"{p.parent.name}:{run}", p, run, thresholds, groups)


def _direction(attack: str, params: dict[str, Any]) -> str:
    if attack == "clean":
        return "none"
    threat = params.get("threat") if isinstance(params.get("threat"), dict) else {}
    return threat.get("direction", "all")


def statistic(metric: str, y: np.ndarray, clean: np.ndarray, adv: np.ndarray, thr: float, direction: str
              ) -> Callable[[np.ndarray], float]:
    """``idx -> metric`` on the samples ``idx`` (the same definitions as the run summary)."""
    def fn(idx: np.ndarray) -> float:
        yy, aa = y[idx], adv[idx]
        if metric == "auc":
            return metrics.auc(yy, aa)
        if metric == "tpr_cal":
            f = yy == 1
            return float(np.mean(aa[f] > thr)) if f.any() else float("nan")
        if metric == "tnr_cal":
            r = yy == 0
            return float(np.mean(aa[r] <= thr)) if r.any() else float("nan")
        if metric == "asr_on_correct":
            if direction == "none":
                return float("nan")
            d = {"all": "evade"}.get(direction, direction)
            return metrics.attack_success_rate(yy, clean[idx], aa, d, threshold=thr)["rate_on_correct"]
        raise ConfigError(f"compare: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    return fn


def _matching(runs: Sequence[RunData]) -> list[tuple[tuple[str, str, str], list[tuple[str, str, str] | None]]]:
    base = runs[0]
    by_name = [[k if k in r.groups else None for r in runs] for k in base.groups]
    if any(all(m is not None for m in ms[1:]) for ms in by_name) or len(runs) == 1:
        return [(k, ms) for k, ms in zip(base.groups, by_name)]
    if all(len({k[0] for k in r.groups}) == 1 for r in runs):  # one detector each: match the settings
        out = []
        for k in base.groups:
            out.append((k, [next((kk for kk in r.groups if kk[1:] == k[1:]), None) for r in runs]))
        return out
    return [(k, ms) for k, ms in zip(base.groups, by_name)]


def compare_runs(specs: Sequence[str], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                 progress: bool = True) -> dict[str, Any]:
    """The comparison as a dict: ``runs`` (labels) and ``rows``, one per (setting, metric),
    with every run's value and, for each run after the first, ``diff``, ``ci`` and ``paired``."""
    if len(specs) < 2:
        raise ConfigError("compare: give at least two runs (RUN_A RUN_B ...)")
    runs = [load_run(s) for s in specs]
    matched = _matching(runs)
    rows = []
    bar = progress_bar(len(matched) * len(METRICS), "compare (bootstrap)", progress, unit="metric")
    for key, keys in matched:
        det, atk, pkey = key
        params = json.loads(pkey)
        direction = _direction(atk, params)
        for metric in METRICS:
            bar.update(1)
            stats = []
            for r, k in zip(runs, keys):
                if k is None:
                    stats.append(None)
                    continue
                _, y, c, a = r.groups[k]
                stats.append(statistic(metric, y, c, a, r.thresholds.get(k[0], 0.0), direction))
            values = [None if f is None else f(np.arange(len(runs[i].groups[keys[i]][1])))
                      for i, f in enumerate(stats)]
            if all(v is None or not math.isfinite(v) for v in values):
                continue
            row: dict[str, Any] = {"detector": det, "attack": atk, "setting": describe_params(params),
                                   "params": params, "metric": metric, "values": values,
                                   "detectors": [None if k is None else k[0] for k in keys], "diffs": []}
            ids0, y0 = runs[0].groups[key][0], runs[0].groups[key][1]
            for i in range(1, len(runs)):
                if stats[i] is None or stats[0] is None:
                    row["diffs"].append(None)
                    continue
                ids, yi = runs[i].groups[keys[i]][0], runs[i].groups[keys[i]][1]
                paired = ids == ids0 and np.array_equal(yi, y0)
                d, lo, hi = metrics.bootstrap_diff_ci(stats[0], y0, stats[i], None if paired else yi, n=n_boot,
                                                      alpha=alpha, seed=seed)
                row["diffs"].append({"diff": d, "ci": [lo, hi], "paired": paired,
                                     "significant": bool(math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0))})
            rows.append(row)
    bar.close()
    return {"runs": [r.label for r in runs], "stores": [str(r.store) for r in runs], "n_boot": n_boot,
            "alpha": alpha, "rows": rows}


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:+.3f}" \
        if isinstance(v, float) and v < 0 else (f"{v:.3f}" if isinstance(v, float) else str(v))


def write_comparison(comp: dict[str, Any], out: str | Path, formats: Sequence[str] = ("json", "md", "html")) -> Path:
    """``compare.json`` / ``compare.md`` / ``compare.html`` (self-contained) under ``out``."""
    from .html import Figure, Section, Table, write_page

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = comp["runs"]
    pct = f"{100 * (1 - comp['alpha']):g}%"
    headers = ["detector", "attack", "setting", "metric", *runs]
    for r in runs[1:]:
        headers += [f"{r} - {runs[0]}", f"{pct} CI", "CI excludes 0"]
    table_rows = []
    for row in comp["rows"]:
        cells: list[Any] = [row["detector"], row["attack"], row["setting"], METRIC_NAMES[row["metric"]], *row["values"]]
        for d in row["diffs"]:
            if d is None:
                cells += [None, None, None]
            else:
                cells += [(f"{d['diff']:+.3f}", d["diff"]), (f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]", d["ci"][0]),
                          "yes" if d["significant"] else "no"]
        table_rows.append(cells)
    legend = (f"Differences are run minus the baseline {runs[0]}; the interval is a {pct} percentile bootstrap "
              f"({comp['n_boot']} resamples, stratified by class; paired when both runs scored the same images). "
              "ASR is conditional (among attacked-class images decided correctly before, the fraction wrong after).")
    if "json" in formats:
        (out / "compare.json").write_text(json.dumps(jsonable(comp), indent=2, default=str))
    if "md" in formats:
        md = ["# fakebench compare", "", legend, "", "| " + " | ".join(headers) + " |",
              "|" + "|".join("---" for _ in headers) + "|"]
        for cells in table_rows:
            md.append("| " + " | ".join(c[0] if isinstance(c, tuple) else _fmt(c) for c in cells) + " |")
        (out / "compare.md").write_text("\n".join(md) + "\n")
    page = out / "compare.html"
    if "html" in formats:
        blocks: list[Any] = [Table(headers, table_rows, caption=legend, css_id="compare")]
        fig = _forest(comp, out)
        if fig is not None:
            blocks.append(Figure(fig, caption="AUC difference to the baseline with its bootstrap interval"))
        write_page(page, "fakebench compare", [Section("Comparison", blocks, "compare")],
                   subtitle=" vs ".join(runs))
    return page


def _forest(comp: dict[str, Any], out: Path) -> Path | None:
    rows = [r for r in comp["rows"] if r["metric"] == "auc" and any(d for d in r["diffs"])]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.3 * len(rows) * (len(comp["runs"]) - 1)))
    labels, k = [], 0
    for r in rows:
        for i, d in enumerate(r["diffs"]):
            if d is None:
                continue
            ax.errorbar(d["diff"], k, xerr=[[max(d["diff"] - d["ci"][0], 0)], [max(d["ci"][1] - d["diff"], 0)]],
                        fmt="o", color="tab:red" if d["significant"] else "tab:grey", capsize=3)
            labels.append(f"{r['detector']} {r['attack']} {r['setting']} ({comp['runs'][i + 1]})")
            k += 1
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(k), labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel(f"AUC difference to {comp['runs'][0]}")
    fig.tight_layout()
    p = out / "compare_auc.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
