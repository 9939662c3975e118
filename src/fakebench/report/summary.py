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


def summarize_run(store: Store, run: str) -> list[dict[str, Any]]:
    """One dict of metrics per (detector, attack, params) of ``run``, clean rows first."""
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
            "auc_by_generator_paired": paired,
        })
    out.sort(key=lambda d: (d["detector"], d["attack"] != "clean", d["attack"], d["direction"], d["eps"], d["label"]))
    return out


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
