"""Adaptive robustness evaluation in one call, in the spirit of RobustBench / AutoAttack.

For every detector (plain or defended), every budget and both directions, each test image is
attacked by an ensemble of attacks that know the detector, and the worst case per image
counts (Croce & Hein, ICML 2020; Tramèr, Carlini, Brendel, Madry, NeurIPS 2020):

- ``apgd``: APGD with the score loss (the binary form of APGD-CE);
- ``apgd-margin``: APGD with the margin loss at the detector's threshold (``kappa``);
- ``square``: the Square attack (score-based black box: no gradients needed, so gradient
  masking does not help);
- ``eot``: for randomised detectors (random purification, smoothing, TRIM's shifts) every
  gradient attack averages ``eot_iter`` forward/backward passes per step (expectation over the
  defense's randomness); the entry records that;
- ``bpda``: for detectors with non-differentiable parts (real JPEG, a TAE run without
  gradients) APGD runs with those parts straight-through;
- detection defenses (kNN / TRIM rejection) are attacked on their combined logit, i.e. the
  base detector and the adversarial-input detector together; an image rejected as adversarial
  counts as caught (a rejected fake is "detected", a rejected real a false positive);
- ``pgd``: plain non-adaptive PGD (no EOT, no BPDA) is run too and reported separately, so the
  gap between non-adaptive and adaptive numbers is visible; it takes part in the worst case.

Decisions are made at ONE threshold per detector: the score giving ``fpr`` (10%) false
positives on the clean validation reals, so that the threshold cannot buy robustness. Outputs
per (detector, eps): clean AUC and clean TPR / TNR at that threshold, robust TPR (evade: fakes
still detected), robust TNR (spoof: reals still passed), robust AUC (worst-case scores of both
classes), each attack's own success rate, rejections, and for smoothed detectors certified
accuracy against L2 radii. :meth:`Leaderboard.save` writes ``robustness.md``, ``.json`` and
``.png``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .. import attacks, metrics
from ..data import Sample, load_dataset, select
from ..data.pipeline import iter_batches
from ..errors import ConfigError
from ..progress import progress_bar

log = logging.getLogger(__name__)

DIRECTIONS = ("evade", "spoof")


@dataclass
class Settings:
    """The threat model and the attack ensemble (stated in every leaderboard row)."""

    eps: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    norm: str = "linf"
    fpr: float = 0.10
    steps: int = 100
    restarts: int = 1
    kappa: float = 1.0
    queries: int = 1000
    eot_iter: int = 8
    pgd_steps: int = 10
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        self.eps = tuple(float(e) for e in self.eps)
        if not self.eps or any(not (e > 0) or not math.isfinite(e) for e in self.eps):
            raise ConfigError(f"eps: expected positive budgets, got {self.eps!r}")
        if not 0 < float(self.fpr) < 1:
            raise ConfigError(f"fpr: expected a fraction in (0, 1), got {self.fpr!r}")
        for name in ("steps", "restarts", "queries", "eot_iter", "pgd_steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ConfigError(f"{name}: expected an integer >= 1, got {v!r}")
        if self.norm not in ("linf", "l2"):
            raise ConfigError(f"norm: expected linf or l2, got {self.norm!r}")

    def threat_text(self, eps: float) -> str:
        e = f"{eps * 255:g}/255" if self.norm == "linf" else f"{eps:g}"
        return (f"{self.norm} eps={e}; threshold at {self.fpr:.0%} FPR on clean val reals; evade on test fakes, "
                f"spoof on test reals")


@dataclass
class Row:
    """One leaderboard row: a detector at one budget."""

    detector: str
    eps: float
    threshold: float
    clean_auc: float
    clean_tpr: float
    clean_tnr: float
    robust_tpr: float
    robust_tnr: float
    robust_auc: float
    attack_success: dict[str, dict[str, float]]
    nonadaptive: dict[str, float]
    rejected: dict[str, float]
    ensemble: list[str]
    threat: str
    certified: dict[str, float] = field(default_factory=dict)


@dataclass
class Leaderboard:
    rows: list[Row]
    settings: Settings
    n_test: dict[str, int]
    seconds: float = 0.0

    def markdown(self) -> str:
        lines = ["# Adaptive robustness leaderboard", "",
                 f"Threat model: {self.settings.norm}, threshold at {self.settings.fpr:.0%} FPR on clean validation "
                 "reals (one per detector). Robust TPR: synthetic images still detected after the worst attack of "
                 "the ensemble (evade); robust TNR: real images still passed (spoof). Rejections by an "
                 "adversarial-input detector count as caught. Test images: "
                 + ", ".join(f"{k} {v}" for k, v in self.n_test.items()) + ".", "",
                 "| detector | eps | clean AUC | clean TPR | clean TNR | robust TPR | robust TNR | robust AUC | "
                 "non-adaptive PGD TPR | rejected (evade) | attack ensemble |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(self.rows, key=lambda r: (r.eps, -r.robust_tpr, r.detector)):
            lines.append(f"| {r.detector} | {_eps(r.eps, self.settings.norm)} | {r.clean_auc:.3f} | {r.clean_tpr:.3f} | "
                         f"{r.clean_tnr:.3f} | **{r.robust_tpr:.3f}** | {r.robust_tnr:.3f} | {r.robust_auc:.3f} | "
                         f"{_f(r.nonadaptive.get('evade'))} | {_f(r.rejected.get('evade'))} | {', '.join(r.ensemble)} |")
        cert = [r for r in self.rows if r.certified]
        if cert:
            lines += ["", "Certified accuracy (randomized smoothing, L2 radius in [0, 1] pixel units):", ""]
            seen = set()
            for r in cert:
                if r.detector in seen:
                    continue
                seen.add(r.detector)
                lines.append(f"- **{r.detector}**: " + ", ".join(f"r={k} {v:.3f}" for k, v in r.certified.items()))
        lines += ["", "Per-attack success rates (among the targeted images the detector got right before the "
                  "attack, the fraction it gets wrong after):", ""]
        for r in self.rows:
            parts = [f"{d}: " + ", ".join(f"{a} {v:.3f}" for a, v in s.items()) for d, s in r.attack_success.items()]
            lines.append(f"- {r.detector} @ {_eps(r.eps, self.settings.norm)}: " + "; ".join(parts))
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"settings": {**self.settings.__dict__, "eps": list(self.settings.eps)}, "n_test": self.n_test,
                "seconds": self.seconds, "rows": [r.__dict__ for r in self.rows]}

    def save(self, out: str | Path) -> dict[str, Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        md, js, png = d / "robustness.md", d / "robustness.json", d / "robustness.png"
        md.write_text(self.markdown())
        js.write_text(json.dumps(_jsonable(self.to_json()), indent=2))
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in sorted({r.detector for r in self.rows}):
            rows = sorted((r for r in self.rows if r.detector == name), key=lambda r: r.eps)
            e = [0.0] + [r.eps * (255 if self.settings.norm == "linf" else 1) for r in rows]
            line, = ax.plot(e, [rows[0].clean_tpr] + [r.robust_tpr for r in rows], marker="o", label=f"{name} TPR")
            ax.plot(e, [rows[0].clean_tnr] + [r.robust_tnr for r in rows], marker="x", ls="--", color=line.get_color(),
                    label=f"{name} TNR")
        ax.set_xlabel("eps (grey levels)" if self.settings.norm == "linf" else "eps (L2)")
        ax.set_ylabel(f"robust rate at {self.settings.fpr:.0%} clean FPR")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        ax.set_title("Worst case over the adaptive attack ensemble")
        fig.tight_layout()
        fig.savefig(png, dpi=110)
        plt.close(fig)
        return {"md": md, "json": js, "png": png}


def _eps(e: float, norm: str) -> str:
    return f"{e * 255:g}/255" if norm == "linf" else f"{e:g}"


def _f(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    return obj


# -- scoring --------------------------------------------------------------------------------

def _batches(samples: Sequence[Sample], batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor, list[int]]]:
    """Decoded, same-size batches (the shared pipeline, bucketed by size)."""
    out = []
    for x, y, idx, _ in iter_batches(samples, batch_size, bucket=True):
        if len(x):
            out.append((x.float(), y, idx.tolist()))
    return out


def _reseed(det: torch.nn.Module, seed: int) -> None:
    if callable(getattr(det, "reseed", None)):
        det.reseed(seed)


@torch.no_grad()
def _score(det: torch.nn.Module, x: torch.Tensor, seed: int, device: torch.device) -> np.ndarray:
    _reseed(det, seed)
    return det(x.to(device)).float().cpu().numpy()


def calibrate_at_fpr(det: torch.nn.Module, val: Sequence[Sample], fpr: float, batch_size: int = 64, seed: int = 0,
                     device: str | torch.device = "cpu") -> float:
    """The score at which ``fpr`` of the clean validation reals are flagged (``score > thr``)."""
    reals = [s for s in val if int(s.label) == 0]
    if not reals:
        raise ConfigError("robustness: the validation split has no real images to set the threshold on")
    scores = np.concatenate([_score(det, x, seed + b, torch.device(device))
                             for b, (x, _, _) in enumerate(_batches(reals, batch_size))])
    return metrics.threshold_at_fpr(scores, fpr)


def _ensemble(det: torch.nn.Module, s: Settings) -> list[tuple[str, dict[str, Any], bool]]:
    """(name, attack options, run under BPDA) of the adaptive ensemble for ``det``."""
    stochastic = bool(getattr(det, "stochastic", False))
    eot = {"eot_iter": s.eot_iter} if stochastic else {}
    out: list[tuple[str, dict[str, Any], bool]] = []
    if getattr(det, "differentiable", True):
        bpda = bool(getattr(det, "has_bpda", False))
        base = {"attack": "apgd", "steps": s.steps, "restarts": s.restarts, **eot}
        out.append(("apgd" + ("+eot" if eot else "") + ("+bpda" if bpda else ""), {**base, "loss": "score"}, bpda))
        out.append(("apgd-margin" + ("+eot" if eot else "") + ("+bpda" if bpda else ""),
                    {**base, "loss": "margin", "kappa": s.kappa}, bpda))
    out.append(("square", {"attack": "square", "n_queries": s.queries}, False))
    return out


def _attack_all(det: torch.nn.Module, name: str, opts: dict[str, Any], bpda: bool, batches: list, eps: float,
                direction: str, s: Settings, device: torch.device) -> dict[int, tuple[float, torch.Tensor]]:
    """{sample index: (deployed score of the adversarial image, adversarial image)} for one attack."""
    opts = dict(opts)
    atk = attacks.create(opts.pop("attack"), eps=eps, norm=s.norm, direction=direction, seed=s.seed, **opts)
    out = {}
    for b, (x, y, idx) in enumerate(batches):
        gen = torch.Generator().manual_seed(s.seed * 7919 + b)
        _reseed(det, s.seed + b)
        ctx = det.bpda() if bpda and hasattr(det, "bpda") else nullcontext()
        with ctx:
            x_adv = atk.perturb(det, x.to(device), y.to(device), gen).x_adv.detach()
        scores = _score(det, x_adv, s.seed + 10_000 + b, device)
        for k, i in enumerate(idx):
            out[i] = (float(scores[k]), x_adv[k].cpu())
    return out


def evaluate_detector(name: str, det: torch.nn.Module, val: Sequence[Sample], test: Sequence[Sample],
                      s: Settings, device: str | torch.device = "cpu", progress: bool = True) -> list[Row]:
    """Every budget of ``s`` on one detector (see the module docstring). Sets ``det.threshold``
    to the calibrated one (the margin loss and the decisions use it)."""
    dev = torch.device(device)
    det = det.to(dev).eval()
    thr = calibrate_at_fpr(det, val, s.fpr, s.batch_size, s.seed, dev)
    det.threshold = thr
    batches = _batches(test, s.batch_size)
    y = np.concatenate([yb.numpy() for _, yb, _ in batches])
    order = [i for _, _, idx in batches for i in idx]
    clean = np.concatenate([_score(det, x, s.seed + 10_000 + b, dev) for b, (x, _, _) in enumerate(batches)])
    clean_by = dict(zip(order, clean))
    fake = y == 1
    clean_tpr = float(np.mean(clean[fake] > thr)) if fake.any() else float("nan")
    clean_tnr = float(np.mean(clean[~fake] <= thr)) if (~fake).any() else float("nan")
    clean_auc = metrics.auc(y, clean)
    ens = _ensemble(det, s)
    cert = _certified(det, batches, y) if hasattr(det, "certify") else {}
    rows = []
    bar = progress_bar(len(s.eps) * 2 * (len(ens) + 1), f"robustness {name}", progress, unit="attack")
    for eps in s.eps:
        worst = dict(clean_by)
        worst_x: dict[int, torch.Tensor] = {}
        success: dict[str, dict[str, float]] = {}
        nonadaptive: dict[str, float] = {}
        for direction in DIRECTIONS:
            target = 1 if direction == "evade" else 0
            tb = [(x[yb == target], yb[yb == target], [i for i, v in zip(idx, yb.tolist()) if v == target])
                  for x, yb, idx in batches]
            tb = [b for b in tb if len(b[2])]
            if not tb:
                continue
            success[direction] = {}
            runs = [(n, o, bp) for n, o, bp in ens] + [("pgd (non-adaptive)", {"attack": "pgd", "steps": s.pgd_steps},
                                                       False)]
            if not getattr(det, "differentiable", True):
                runs = runs[:-1]
            for aname, opts, bpda in runs:
                res = _attack_all(det, aname, opts, bpda, tb, eps, direction, s, dev)
                wrong = {i: (v[0] <= thr) if target == 1 else (v[0] > thr) for i, v in res.items()}
                if aname.startswith("pgd (non"):
                    nonadaptive[direction] = 1.0 - float(np.mean(list(wrong.values())))
                else:  # success among the images the detector got right before the attack
                    right = [i for i in wrong if (clean_by[i] > thr) == (target == 1)]
                    success[direction][aname] = float(np.mean([wrong[i] for i in right])) if right else float("nan")
                for i, (sc, xa) in res.items():
                    if (target == 1 and sc < worst[i]) or (target == 0 and sc > worst[i]):
                        worst[i], worst_x[i] = sc, xa
                bar.update(1)
        w = np.array([worst[i] for i in order])
        robust_tpr = float(np.mean(w[fake] > thr)) if fake.any() else float("nan")
        robust_tnr = float(np.mean(w[~fake] <= thr)) if (~fake).any() else float("nan")
        rejected = _rejections(det, worst_x, order, y, dev)
        rows.append(Row(name, eps, thr, clean_auc, clean_tpr, clean_tnr, robust_tpr, robust_tnr, metrics.auc(y, w),
                        success, nonadaptive, rejected, [n for n, _, _ in ens] + ["pgd (non-adaptive, reported apart)"],
                        s.threat_text(eps), cert))
    bar.close()
    return rows


@torch.no_grad()
def _rejections(det: torch.nn.Module, worst_x: dict[int, torch.Tensor], order: list[int], y: np.ndarray,
                device: torch.device) -> dict[str, float]:
    """Fraction of the worst-case adversarial images the adversarial-input detector rejects."""
    if not hasattr(det, "rejects") or not worst_x:
        return {}
    lab = dict(zip(order, y.tolist()))
    out = {}
    for direction, target in (("evade", 1), ("spoof", 0)):
        ids = [i for i in worst_x if lab[i] == target]
        if ids:
            xs = torch.stack([worst_x[i] for i in ids]).to(device)
            out[direction] = float(det.rejects(xs).float().mean())
    return out


def _certified(det: Any, batches: list, y: np.ndarray, radii: Sequence[float] = (0.0, 0.25, 0.5, 1.0)) -> dict[str, float]:
    from ..defenses.smoothing import certified_accuracy

    x = torch.cat([b[0] for b in batches])
    cert = det.certify(x)
    acc = certified_accuracy(cert, y, np.asarray(radii))
    return {f"{r:g}": float(a) for r, a in zip(radii, acc)}


def robustness(detectors: Mapping[str, Any], data: str | Path, settings: Settings | None = None,
               limit: int | None = None, val_limit: int | None = None, out: str | Path | None = None,
               device: str = "cpu", progress: bool = True) -> Leaderboard:
    """Evaluate ``{name: detector or checkpoint folder}`` on ``data`` (its ``val`` split sets
    each threshold, its ``test`` split is attacked; ``limit`` / ``val_limit`` take seeded random
    subsets). With ``out``, :meth:`Leaderboard.save` writes the files there."""
    from ..defenses.base import as_detector

    s = settings or Settings()
    samples = load_dataset(data)
    val = select(samples, split="val", limit=val_limit, seed=s.seed)
    test = select(samples, split="test", limit=limit, seed=s.seed)
    if not val or not test:
        raise ConfigError(f"{data}: robustness needs a 'val' split (thresholds) and a 'test' split (attacks)")
    t0 = time.time()
    rows: list[Row] = []
    for name, spec in detectors.items():
        det = as_detector(spec, f"detectors[{name}]")
        rows += evaluate_detector(name, det, val, test, s, device, progress)
    n_test = {"real": sum(1 for t in test if int(t.label) == 0), "synthetic": sum(1 for t in test if int(t.label) == 1)}
    board = Leaderboard(rows, s, n_test, time.time() - t0)
    if out is not None:
        board.save(out)
    return board
