"""Turn the rows of the results store into per-(detector, attack, params) metrics.

Reports are built from the store alone, so a report of a resumed run equals the report of an
uninterrupted one.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import numpy as np

from .. import metrics
from ..runner.store import Store


def describe_params(params: dict[str, Any]) -> str:
    """Short human label: ``eps=4/255 evade`` for threat-model attacks, ``quality=75`` else."""
    if not params:
        return ""
    threat = params.get("threat")
    if isinstance(threat, dict):
        parts = []
        if threat.get("norm") not in (None, "none"):
            eps = float(threat.get("eps", 0.0))
            eps_txt = f"{eps * 255:g}/255" if threat.get("norm") == "linf" else f"{eps:g}"
            parts.append(f"{threat['norm']} eps={eps_txt}")
        parts.append(str(threat.get("direction", "")))
        if threat.get("eot"):
            parts.append("eot=" + "+".join(str(t.get("op", t)) for t in threat["eot"]))
        extra = {k: v for k, v in params.items() if k not in ("threat", "seed")}
        parts += [f"{k}={v}" for k, v in sorted(extra.items())]
        return " ".join(p for p in parts if p)
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "op")


def _finite_mean(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else float("nan")


def _rejected_rate(rows: list[dict[str, Any]], mask: np.ndarray) -> float | None:
    """Fraction of the (attacked) images an adversarial-input detector rejected; None when the
    detector does not reject."""
    vals = [r.get("rejected") for r, m in zip(rows, mask) if m]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def _own_real(sample: str, generator: str) -> bool:
    """Whether a real sample (its store id: the path relative to the dataset root) lies in the
    generator's own folder, as in the CNNDetection layout ``<generator>/[<class>/]0_real``."""
    return sample.replace("\\", "/").split("/", 1)[0] == generator


def summarize_run(store: Store, run: str, ci_resamples: int = 1000) -> list[dict[str, Any]]:
    """One dict of metrics per (detector, attack, params) of ``run``, clean rows first.

    ``asr_on_correct`` is the conditional attack success rate (among attacked-class images
    decided correctly before, the fraction decided wrongly after; the report's ASR);
    ``asr`` is unconditional (all attacked-class images decided wrongly after, including the
    ones already wrong before). ``auc_ci``: 95% stratified bootstrap interval of the AUC
    (``ci_resamples`` resamples, seed 0; ``(nan, nan)`` when 0)."""
    thresholds = store.thresholds(run)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in store.rows(run):
        groups[(r["detector"], r["attack"], r["params"])].append(r)
    out = []
    for (det, atk, pkey), rows in groups.items():
        params = json.loads(pkey)
        threat = params.get("threat") if isinstance(params.get("threat"), dict) else {}
        direction = threat.get("direction", "all") if atk != "clean" else "none"
        y = np.array([r["label"] for r in rows], dtype=int)
        clean = np.array([r["score_clean"] for r in rows], dtype=float)
        adv = np.array([r["score_adv"] for r in rows], dtype=float)
        thr = thresholds.get(det, 0.0)
        s = metrics.summarize(y, adv, threshold=0.0, calibrated_threshold=thr)
        fake, real = y == 1, y == 0
        s["tpr_cal"] = float(np.mean(adv[fake] > thr)) if fake.any() else float("nan")
        s["tnr_cal"] = float(np.mean(adv[real] <= thr)) if real.any() else float("nan")
        if direction in ("evade", "spoof"):
            asr = metrics.attack_success_rate(y, clean, adv, direction, threshold=thr)
            attacked = fake if direction == "evade" else real
        elif direction == "both":
            asr = {"rate": float(np.mean((adv > thr) != (y == 1))), "rate_on_correct": float("nan"), "n": len(y)}
            attacked = np.ones_like(y, dtype=bool)
        elif direction == "all":  # degradations: how many detected fakes are now missed
            asr = metrics.attack_success_rate(y, clean, adv, "evade", threshold=thr)
            attacked = np.ones_like(y, dtype=bool)
        else:
            asr = {"rate": float("nan"), "rate_on_correct": float("nan"), "n": 0}
            attacked = np.zeros_like(y, dtype=bool)
        col = lambda k: np.array([r[k] for r in rows], dtype=float)[attacked]  # noqa: E731
        by_gen, paired = {}, {}
        for g in sorted({r["generator"] for r in rows if r["label"] == 1}):
            m = real | np.array([r["generator"] == g and r["label"] == 1 for r in rows])
            by_gen[g] = metrics.auc(y[m], adv[m])
            own = real & np.array([_own_real(r["sample"], g) for r in rows])
            if own.any():  # CNNDetection protocol: <gen>/0_real vs <gen>/1_fake
                m = own | np.array([r["generator"] == g and r["label"] == 1 for r in rows])
                paired[g] = metrics.auc(y[m], adv[m])
        out.append({
            "detector": det, "attack": atk, "params": params, "label": describe_params(params),
            "direction": direction, "eps": float(threat.get("eps", 0.0)) if threat else 0.0,
            "threshold": thr, **s,
            "asr": asr["rate"], "asr_on_correct": asr["rate_on_correct"],
            "l0": _finite_mean(col("l0")), "l2": _finite_mean(col("l2")), "linf": _finite_mean(col("linf")),
            "psnr": _finite_mean(col("psnr")), "queries": _finite_mean(col("queries")),
            "seconds_per_image": _finite_mean(np.array([r["seconds"] for r in rows], dtype=float)),
            "rejected": _rejected_rate(rows, attacked if atk != "clean" else np.ones_like(y, dtype=bool)),
            "auc_by_generator": by_gen,
            "auc_ci": (metrics.bootstrap_auc_ci(y, adv, n=ci_resamples) if ci_resamples > 0
                       else (float("nan"), float("nan"))),
            "by_generator_share": by_generator_share(rows, adv, thr),
            "auc_by_generator_paired": paired,
        })
    out.sort(key=lambda d: (d["detector"], d["attack"] != "clean", d["attack"], d["direction"], d["eps"], d["label"]))
    return out


def by_generator_share(rows: list[dict[str, Any]], scores: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """The TrueFake paper's table layout: one cell per (generator, share) with the metrics of
    that generator's fakes shared that way against the reals shared the same way (AUC, AP,
    TPR at 1% FPR, accuracy on the pair and on the fakes alone (``tpr_cal``) at the calibrated
    threshold), one ``all`` generator per share, and one row per real set (``real:FFHQ``: the
    folder below ``Real/`` in the sample id, else ``real``) with its accuracy ``tnr_cal``.
    Empty when the dataset records no shares."""
    shares = np.array([r.get("share") or "" for r in rows])
    if not shares.any():
        return []
    y = np.array([r["label"] for r in rows], dtype=int)
    gens = np.array([r["generator"] for r in rows])
    real_sets = np.array([_real_set(r["sample"]) for r in rows])
    above = scores > threshold
    out = []
    for share in sorted(set(shares.tolist()) - {""}, key=_share_order):
        real = (shares == share) & (y == 0)
        for g in sorted(set(gens[(shares == share) & (y == 1)].tolist())) + ["all"]:
            fake = (shares == share) & (y == 1) & ((gens == g) if g != "all" else True)
            m = real | fake
            cell = {"generator": g, "share": share, "n_fake": int(fake.sum()), "n_real": int(real.sum())}
            if fake.any():
                cell["tpr_cal"] = float(above[fake].mean())
            if real.any() and fake.any():
                cell.update({"auc": metrics.auc(y[m], scores[m]), "ap": metrics.average_precision(y[m], scores[m]),
                             "tpr@1%fpr": metrics.tpr_at_fpr(y[m], scores[m], 0.01),
                             "acc_cal": metrics.accuracy(y[m], scores[m], threshold)})
            out.append(cell)
        for rs in sorted(set(real_sets[real].tolist())):
            sel = real & (real_sets == rs)
            out.append({"generator": f"real:{rs}", "share": share, "n_fake": 0, "n_real": int(sel.sum()),
                        "tnr_cal": float((~above[sel]).mean())})
    return out


def _real_set(sample: str) -> str:
    """``FFHQ`` for ``PreSocial/Real/FFHQ/...``; ``real`` for ids of other layouts."""
    parts = sample.replace("\\", "/").split("/")
    return parts[2] if len(parts) > 3 and parts[1] == "Real" else "real"


def sharing_vs_real(store: Store, run: str) -> list[dict[str, Any]]:
    """The ``share`` attack's simulated sharing of PreSocial images against the real shared
    copies of the same images (TrueFake), per detector and attack setting: pairs, mean score
    difference (simulated - real copy) and its absolute value, Pearson correlation, fraction of
    equal decisions at the calibrated threshold, mean PSNR of the simulation vs the copy and of
    the unshared original vs the copy (finite values), fraction of simulations of the copy's
    size and fraction identical to it."""
    pairs = store.share_pairs(run)
    if not pairs:
        return []
    thresholds = store.thresholds(run)
    adv: dict[tuple[str, str, str], float] = {}
    clean: dict[tuple[str, str], float] = {}
    for r in store.rows(run):
        if r["attack"] == "clean":
            clean[(r["detector"], r["sample"])] = r["score_clean"]
        else:
            adv[(r["detector"], r["params"], r["sample"])] = r["score_adv"]
    out = []
    for det in sorted({d for d, _ in clean}):
        thr = thresholds.get(det, 0.0)
        for pkey in sorted({p["params"] for p in pairs}):
            got = [(adv[(det, pkey, p["sample"])], clean[(det, p["copy"])], p) for p in pairs
                   if p["params"] == pkey and (det, pkey, p["sample"]) in adv and (det, p["copy"]) in clean]
            if not got:
                continue
            sim = np.array([g[0] for g in got])
            real = np.array([g[1] for g in got])
            corr = float(np.corrcoef(sim, real)[0, 1]) if len(got) > 2 and sim.std() > 0 and real.std() > 0 else float("nan")
            out.append({
                "detector": det, "params": json.loads(pkey), "platform": json.loads(pkey).get("platform"),
                "n_pairs": len(got), "score_diff": float(np.mean(sim - real)),
                "abs_score_diff": float(np.mean(np.abs(sim - real))), "pearson": corr,
                "same_decision": float(np.mean((sim > thr) == (real > thr))),
                "psnr_sim_vs_copy": _finite_mean(np.array([g[2]["psnr_sim"] for g in got], dtype=float)),
                "psnr_orig_vs_copy": _finite_mean(np.array([g[2]["psnr_orig"] for g in got], dtype=float)),
                "same_size": float(np.mean([g[2]["size_match"] for g in got])),
                # bit-identical simulations (PSNR infinite, left out of the mean PSNR)
                "identical": float(np.mean([g[2]["psnr_sim"] == float("inf") for g in got])),
            })
    return out


#: TrueFake's order of the shares (non-shared first); others follow alphabetically
SHARE_ORDER = ("PreSocial", "Facebook", "Telegram", "Twitter")


def _share_order(share: str) -> tuple[int, str]:
    return (SHARE_ORDER.index(share) if share in SHARE_ORDER else len(SHARE_ORDER), share)


def jsonable(obj: Any) -> Any:
    """NaN/inf -> None so results.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return jsonable(obj.item())
    return obj
