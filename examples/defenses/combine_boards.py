"""One compact leaderboard from several ``robustness.json`` files (e.g. the per-row boards of
``leaderboard.py --board rowN``).

    python examples/defenses/combine_boards.py runs/leaderboard/row*/robustness.json > board.md

One line per detector: clean AUC, robust TPR (evade) and robust TNR (spoof) at every eps, the
non-adaptive PGD TPR beside the adaptive one, and how many attacked fakes were rejected.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _grey(eps: float) -> str:
    return f"{round(eps * 255)}/255"


def combine(paths: list[Path]) -> str:
    rows: dict[str, dict[str, dict]] = {}
    eps_all: list[float] = []
    settings, n_test = None, None
    for p in paths:
        board = json.loads(p.read_text())
        settings, n_test = settings or board["settings"], n_test or board["n_test"]
        for r in board["rows"]:
            rows.setdefault(r["detector"], {})[_grey(r["eps"])] = r
            if r["eps"] not in eps_all:
                eps_all.append(r["eps"])
    eps = [_grey(e) for e in sorted(eps_all)]
    head = (["defense", "clean AUC"] + [f"robust TPR {e}" for e in eps] + [f"robust TNR {e}" for e in eps]
            + [f"PGD-only TPR {e}" for e in eps] + ["rejected (evade) " + eps[len(eps) // 2]])
    lines = [f"Settings: {json.dumps(settings)}; test images: {json.dumps(n_test)}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(r: dict | None, key: str, sub: str | None = None) -> str:
        if r is None:
            return "-"
        v = r.get(key)
        if sub is not None:
            v = (v or {}).get(sub)
        return "-" if v is None else f"{v:.3f}"

    for det, by_eps in rows.items():
        first = next(iter(by_eps.values()))
        mid = by_eps.get(eps[len(eps) // 2])
        vals = ([det, f"{first['clean_auc']:.3f}"] + [cell(by_eps.get(e), "robust_tpr") for e in eps]
                + [cell(by_eps.get(e), "robust_tnr") for e in eps]
                + [cell(by_eps.get(e), "nonadaptive", "evade") for e in eps] + [cell(mid, "rejected", "evade")])
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(combine([Path(a) for a in sys.argv[1:]]))
