"""``report.html`` for the experiments that do not go through the store: the transfer matrix
and the adaptive robustness leaderboard (same page builder, same self-contained HTML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .html import Figure, Section, Table, Text, write_page
from .page import reproduction_section


def _environment(device: str) -> dict[str, Any]:
    from ..runner.run import environment

    return environment(device)


def transfer_page(table: Any, out: str | Path, settings: dict[str, Any], log_file: str | Path | None = None,
                  device: str = "cpu") -> Path:
    """``out/report.html`` for a :class:`~fakebench.experiments.transfer.TransferTable` saved in ``out``."""
    out = Path(out)
    head = ["source \\ target", *table.targets]
    mats = [(("Attack success rate on the target (conditional: among the images the target decided correctly "
             "before, the fraction wrong after)"), table.asr_on_correct),
            ("Wrong after (unconditional: all attacked-class images decided wrongly after the attack)", table.asr),
            ("Target AUC on the attacked images", table.auc)]
    blocks: list[Any] = [Text(f"Attack {table.attack or 'attack'} ({table.direction}) crafted on each source "
                              "(rows), scored by every target (columns); the diagonal is white-box.")]
    for caption, m in mats:
        blocks.append(Table(head, [[s, *[float(v) for v in m[i]]] for i, s in enumerate(table.sources)],
                            caption=caption))
    blocks.append(Table(["target", "clean AUC"], [[t, float(table.auc_clean[t])] for t in table.targets]))
    png = out / "transfer.png"
    secs = [Section("Transfer matrix", blocks, "transfer"),
            Section("Transfer heatmap", [Figure(png, caption="left: ASR (unconditional), right: target AUC after "
                                                             "the attack")] if png.exists() else [], "heatmap"),
            reproduction_section(settings, _environment(device), {}, log_file, out)]
    return write_page(out / "report.html", "fakebench transfer", secs, subtitle=f"{table.attack} {table.direction}")


def robustness_page(board: Any, out: str | Path, settings: dict[str, Any], log_file: str | Path | None = None,
                    device: str = "cpu") -> Path:
    """``out/report.html`` for a :class:`~fakebench.experiments.robustness.Leaderboard` saved in ``out``."""
    out = Path(out)
    scale = 255 if board.settings.norm == "linf" else 1
    head = ["detector", "eps", "clean AUC", "clean TPR", "clean TNR", "robust TPR", "robust TNR", "robust AUC",
            "non-adaptive PGD TPR", "rejected (evade)", "attack ensemble"]
    rows = [[r.detector, (f"{r.eps * scale:g}" + ("/255" if scale == 255 else ""), r.eps), r.clean_auc, r.clean_tpr,
             r.clean_tnr, r.robust_tpr, r.robust_tnr, r.robust_auc, r.nonadaptive.get("evade"),
             r.rejected.get("evade"), ", ".join(r.ensemble)] for r in board.rows]
    legend = (f"Threshold at {board.settings.fpr:.0%} FPR on clean validation reals (one per detector). Robust TPR: "
              "synthetic images still detected after the worst attack of the ensemble (evade); robust TNR: real "
              "images still passed (spoof). Test images: " + ", ".join(f"{k} {v}" for k, v in board.n_test.items()))
    asr_rows = [[r.detector, (f"{r.eps * scale:g}", r.eps), d, a, v] for r in board.rows
                for d, per in r.attack_success.items() for a, v in per.items()]
    png = out / "robustness.png"
    secs = [Section("Adaptive robustness leaderboard", [Table(head, rows, caption=legend, css_id="robustness")],
                    "leaderboard"),
            Section("Robust rate vs eps", [Figure(png, caption="worst case over the ensemble")] if png.exists() else [],
                    "eps"),
            Section("Per-attack success (conditional ASR)",
                    [Table(["detector", "eps", "direction", "attack", "ASR"], asr_rows)] if asr_rows else [], "asr"),
            reproduction_section(settings, _environment(device), {r.detector: r.threshold for r in board.rows},
                                 log_file, out)]
    return write_page(out / "report.html", "fakebench robustness", secs)
