"""False-positive rate of the automatic perspective mode on real photographs.

The 24 Kodak photos (../shared/data/kodak or $FAKEBENCH_SHARED) and the scikit-image colour
photographs bundled with the package (fakebench.builtin.sources.bundled_photos): every image
is real, so every "inconsistent" verdict is a false positive. Abstentions ("undecidable") are
counted apart. Prints one row per image and the totals; ``--json FILE`` writes them.

    python bench/perspective_fpr.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def photos() -> list[tuple[str, np.ndarray]]:
    from fakebench.builtin.sources import bundled_photos
    from fakebench.io import load_image

    out = []
    root = Path(__file__).resolve().parents[1]
    for cand in (os.environ.get("FAKEBENCH_SHARED"), root.parent / "shared"):
        if cand and (Path(cand) / "data" / "kodak").is_dir():
            out += [(f"kodak/{p.name}", load_image(p)) for p in sorted((Path(cand) / "data" / "kodak").glob("*.png"))]
            break
    out += [(f"skimage/{p.name}", p.image.astype(np.float32) / 255.0) for p in bundled_photos()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from fakebench.forensics import AutoConfig, analyze_perspective_auto

    rows = []
    t0 = time.time()
    for name, img in photos():
        res = analyze_perspective_auto(img, AutoConfig(seed=0))
        verdict = "undecidable" if not res.decidable else ("consistent" if res.consistent else "inconsistent")
        rows.append({"image": name, "verdict": verdict, "score": round(float(res.score), 4),
                     "note": res.notes[-1] if res.notes else ""})
        print(f"{name:28s} {verdict:13s} {res.score:.3f}  {rows[-1]['note']}", flush=True)
    n = len(rows)
    fp = sum(r["verdict"] == "inconsistent" for r in rows)
    ab = sum(r["verdict"] == "undecidable" for r in rows)
    decided = n - ab
    summary = {"images": n, "inconsistent": fp, "undecidable": ab, "consistent": decided - fp,
               "fpr_of_all": fp / n if n else float("nan"), "fpr_of_decided": fp / decided if decided else float("nan"),
               "seconds": round(time.time() - t0, 1)}
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
