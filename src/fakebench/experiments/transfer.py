"""Transfer matrix: craft adversarial images on each source detector, score them on every target.

The black-box transfer setting of Carlini & Farid (2020) and De Rosa et al. (2024, transfer
between CNN and CLIP families): an attacker who cannot query the deployed detector crafts
perturbations on a surrogate and hopes they carry over. :func:`transfer_matrix` runs one
attack per source and evaluates every target on the result, giving per (source, target):

- ``asr``: attack success rate on the target (:func:`fakebench.metrics.attack_success_rate`
  in the attack's direction; ``all`` counts as ``both``) at the target's own decision
  threshold (``detector.threshold``, 0 when uncalibrated);
- ``asr_on_correct``: the same among the samples the target decided correctly before;
- ``auc`` / ``auc_clean``: the target's AUC on the attacked / clean set (needs both labels).

The diagonal (source = target, same object) is the white-box result. :meth:`TransferTable.save`
writes ``transfer.csv`` (one row per pair), ``transfer.md`` (ASR and AUC matrices) and
``transfer.png`` (ASR and AUC heatmaps).
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from .. import metrics
from ..errors import ConfigError
from ..attacks.base import Attack

log = logging.getLogger(__name__)

AttackFactory = Callable[[], Attack]


@dataclass
class TransferTable:
    """Results of :func:`transfer_matrix`. Matrices are (len(sources), len(targets))."""

    sources: list[str]
    targets: list[str]
    asr: np.ndarray
    asr_on_correct: np.ndarray
    auc: np.ndarray
    auc_clean: dict[str, float]
    direction: str
    attack: str = ""
    queries: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for i, s in enumerate(self.sources):
            for j, t in enumerate(self.targets):
                out.append({"source": s, "target": t, "attack": self.attack, "direction": self.direction,
                            "asr": float(self.asr[i, j]), "asr_on_correct": float(self.asr_on_correct[i, j]),
                            "auc": float(self.auc[i, j]), "auc_clean": float(self.auc_clean[t])})
        return out

    def markdown(self) -> str:
        def fmt(v: float) -> str:
            return "nan" if not math.isfinite(v) else f"{v:.3f}"

        head = "| source \\ target | " + " | ".join(self.targets) + " |"
        sep = "| --- |" + " --- |" * len(self.targets)
        lines = [f"## Transfer: {self.attack or 'attack'} ({self.direction})", "",
                 "Attack success rate on the target (rows: detector the attack was crafted on).", "", head, sep]
        lines += [f"| {s} | " + " | ".join(fmt(v) for v in self.asr[i]) + " |" for i, s in enumerate(self.sources)]
        lines += ["", "Target AUC on the attacked images (clean AUC in the last row).", "", head, sep]
        lines += [f"| {s} | " + " | ".join(fmt(v) for v in self.auc[i]) + " |" for i, s in enumerate(self.sources)]
        lines += ["| clean | " + " | ".join(fmt(self.auc_clean[t]) for t in self.targets) + " |", ""]
        return "\n".join(lines)

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``transfer.csv``, ``transfer.md`` and ``transfer.png`` into folder ``out``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        rows = self.rows()
        csv_path = d / "transfer.csv"
        with open(csv_path, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["source", "target"])
            wr.writeheader()
            wr.writerows(rows)
        md_path = d / "transfer.md"
        md_path.write_text(self.markdown())
        fig, axes = plt.subplots(1, 2, figsize=(2.0 + 1.4 * len(self.targets) * 2, 1.6 + 0.9 * len(self.sources)),
                                 squeeze=False)
        for ax, mat, title, cmap in ((axes[0][0], self.asr, "attack success rate", "Reds"),
                                     (axes[0][1], self.auc, "target AUC after attack", "Blues")):
            ax.imshow(np.nan_to_num(mat, nan=0.0), vmin=0.0, vmax=1.0, cmap=cmap)
            ax.set_xticks(range(len(self.targets)), self.targets, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(len(self.sources)), self.sources, fontsize=8)
            ax.set_xlabel("target")
            ax.set_ylabel("source")
            ax.set_title(title, fontsize=9)
            for i in range(mat.shape[0]):
                for j in range(mat.shape[1]):
                    v = mat[i, j]
                    ax.text(j, i, "nan" if not math.isfinite(v) else f"{v:.2f}", ha="center", va="center",
                            fontsize=8, color="white" if math.isfinite(v) and v > 0.6 else "black")
        fig.tight_layout()
        png_path = d / "transfer.png"
        fig.savefig(png_path, dpi=120)
        plt.close(fig)
        return {"csv": csv_path, "md": md_path, "png": png_path}


@torch.no_grad()
def _scores(det: torch.nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    was = det.training
    det.eval()
    try:
        return torch.cat([det(x[i : i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]).numpy()
    finally:
        det.train(was)


def transfer_matrix(sources: Mapping[str, torch.nn.Module], targets: Mapping[str, torch.nn.Module], x: torch.Tensor,
                    y: torch.Tensor, attack_factory: AttackFactory | Attack, batch_size: int = 32,
                    out: str | Path | None = None, seed: int = 0) -> TransferTable:
    """Craft on each source, evaluate on every target (see the module docstring).

    Args:
        sources / targets: ``{name: detector}``.
        x: (N, 3, H, W) images in [0, 1]; y: (N,) labels (1 = synthetic).
        attack_factory: a zero-argument callable returning a fresh :class:`Attack` (called
            once per source), or one Attack used for every source.
        batch_size: images per attack call and per scoring call.
        out: if given, :meth:`TransferTable.save` writes the files there.
        seed: each batch's attack generator is seeded with ``seed + batch index``.
    """
    if not sources or not targets:
        raise ConfigError("transfer: needs at least one source and one target detector")
    y = torch.as_tensor(y).long()
    if x.ndim != 4 or len(x) != len(y):
        raise ConfigError(f"transfer: x must be (N, 3, H, W) with one label each, got {tuple(x.shape)} and {len(y)} labels")
    yn = y.numpy()
    clean = {t: _scores(det, x, batch_size) for t, det in targets.items()}
    thr = {t: float(getattr(det, "threshold", 0.0) or 0.0) for t, det in targets.items()}
    auc_clean = {t: metrics.auc(yn, clean[t]) for t in targets}
    S, T = len(sources), len(targets)
    asr, asr_c, auc = np.full((S, T), np.nan), np.full((S, T), np.nan), np.full((S, T), np.nan)
    direction, attack_name, queries = "both", "", {}
    for i, (sname, sdet) in enumerate(sources.items()):
        atk = attack_factory if isinstance(attack_factory, Attack) else attack_factory()
        direction = atk.threat.direction
        attack_name = getattr(atk, "registry_name", atk.name)
        advs, qs = [], []
        for b, k in enumerate(range(0, len(x), batch_size)):
            gen = torch.Generator().manual_seed(int(seed) + b)
            res = atk.perturb(sdet, x[k : k + batch_size], y[k : k + batch_size], gen)
            advs.append(res.x_adv.detach())
            qs.append(res.queries.float())
        adv = torch.cat(advs)
        queries[sname] = float(torch.cat(qs).mean()) if qs else 0.0
        log.info("transfer: crafted %s on %s (%d images)", attack_name, sname, len(adv))
        for j, (tname, tdet) in enumerate(targets.items()):
            s_adv = _scores(tdet, adv, batch_size)
            d = "both" if direction == "all" else direction
            r = metrics.attack_success_rate(yn, clean[tname], s_adv, d, threshold=thr[tname])
            asr[i, j], asr_c[i, j] = r["rate"], r["rate_on_correct"]
            auc[i, j] = metrics.auc(yn, s_adv)
    table = TransferTable(list(sources), list(targets), asr, asr_c, auc, auc_clean, direction, attack_name, queries)
    if out is not None:
        table.save(out)
    return table
