"""The adversarial gallery: for each (detector, attack setting) the N most and N least
affected images, with the original, the adversarial image and the perturbation amplified.

The images are the runner's thumbnails (:mod:`fakebench.runner.gallery`), picked from the
store's scores with the same ordering the runner used, so they are exactly the run's N most /
least affected whenever N does not exceed the run's ``gallery`` setting. The amplified
perturbation is ``clip(128 + f (x_adv - x), 0, 255)`` on the 8-bit thumbnails with one integer
factor ``f`` per (detector, setting), the largest that keeps every value in range (at most
:data:`MAX_FACTOR`); so ``(amplified - 128) / f`` gives back ``x_adv - x`` exactly, unless
some change exceeds 127 grey levels (then ``f = 1`` and the entry is marked ``exact: false``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..io import load_image, save_png, to_uint8
from ..runner.gallery import pushed, thumb_name, thumb_paths, unit_dir
from ..runner.store import canonical
from .html import Gallery, GalleryItem, Text

MAX_FACTOR = 64
OUT_DIR = "gallery_amplified"
#: PNG bytes the gallery may embed in report.html (base64 adds a third); settings past it are named, not shown
MAX_BYTES = 12 * 2**20


def amplify(orig: np.ndarray, adv: np.ndarray, factor: int) -> tuple[np.ndarray, bool]:
    """uint8 ``(128 + factor * (adv - orig))`` clipped; and whether nothing was clipped."""
    d = adv.astype(np.int32) - orig.astype(np.int32)
    a = 128 + int(factor) * d
    return np.clip(a, 0, 255).astype(np.uint8), bool((a >= 0).all() and (a <= 255).all())


def factor_for(max_abs: int) -> int:
    """Largest integer amplification that keeps ``128 + f d`` inside [0, 255] for |d| <= max_abs."""
    return max(1, min(MAX_FACTOR, 127 // max(int(max_abs), 1)))


def _u8(path: Path) -> np.ndarray:
    return to_uint8(load_image(path))


def pick(rows: list[dict[str, Any]], direction: str, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(most affected, least affected) attacked rows, n each, in the runner's ordering."""
    lab = {"evade": 1, "spoof": 0}.get(direction)
    cand = [r for r in rows if (lab is None or r["label"] == lab)
            and np.isfinite(pushed(r["label"], r["score_clean"], r["score_adv"]))]
    cand.sort(key=lambda r: (pushed(r["label"], r["score_clean"], r["score_adv"]), r["sample"]))
    most = cand[::-1][:n]
    least = [r for r in cand[:n] if r not in most]
    return most, least


def build_gallery(run_dir: Path, summary: list[dict[str, Any]], groups: dict[tuple[str, str, str], list[dict[str, Any]]],
                  thresholds: dict[str, float], out: Path, n: int = 3, max_bytes: int = MAX_BYTES
                  ) -> tuple[list[Any], list[dict[str, Any]]]:
    """Gallery blocks and the entries written to ``out/gallery.json``. Settings whose
    thumbnails are missing (a run with ``gallery: 0``, or resize attacks) are left out; once
    the embedded images reach ``max_bytes``, the remaining settings are only named."""
    blocks: list[Any] = []
    entries: list[dict[str, Any]] = []
    used, omitted = 0, []
    for s in summary:
        if s["attack"] == "clean":
            continue
        key = canonical(s["params"])
        rows = groups.get((s["detector"], s["attack"], key), [])
        if not rows or not unit_dir(run_dir, s["detector"], s["attack"], key).is_dir():
            continue
        most, least = pick(rows, s["direction"], n)
        loaded = []
        for kind, chosen in (("most affected", most), ("least affected", least)):
            for r in chosen:
                p_o, p_a = thumb_paths(run_dir, s["detector"], s["attack"], key, r["sample"])
                if p_o.exists() and p_a.exists():
                    loaded.append((kind, r, _u8(p_o), _u8(p_a)))
        loaded = [t for t in loaded if t[2].shape == t[3].shape]
        if not loaded:
            continue
        if used >= max_bytes:
            omitted.append(f"{s['detector']} / {s['attack']} {s['label']}".strip())
            continue
        max_abs = max(int(np.abs(a.astype(np.int32) - o.astype(np.int32)).max()) for _, _, o, a in loaded)
        f = factor_for(max_abs)
        thr = thresholds.get(s["detector"], 0.0)
        sub = out / OUT_DIR / unit_dir(Path("."), s["detector"], s["attack"], key).relative_to("gallery")
        items = []
        for kind, r, o, a in loaded:
            amp, exact = amplify(o, a, f)
            amp_path = save_png(sub / f"{thumb_name(r['sample'])}.x{f}.png", amp)
            p_o, p_a = thumb_paths(run_dir, s["detector"], s["attack"], key, r["sample"])
            used += sum(q.stat().st_size for q in (p_o, p_a, amp_path))
            flipped = (r["score_adv"] > thr) != (r["score_clean"] > thr)
            entries.append({"detector": s["detector"], "attack": s["attack"], "setting": s["label"],
                            "params": s["params"], "kind": kind, "sample": r["sample"], "label": r["label"],
                            "orig": str(p_o), "adv": str(p_a), "amplified": str(amp_path), "factor": f,
                            "exact": exact, "score_clean": r["score_clean"], "score_adv": r["score_adv"],
                            "threshold": thr, "decision_flipped": bool(flipped), "l2": r["l2"],
                            "linf": r["linf"], "psnr": r["psnr"], "shape": list(o.shape)})
            items.append(GalleryItem(
                title=f"{kind}: {r['sample']} ({'synthetic' if r['label'] else 'real'})",
                images=[("original", p_o),
                        ("adversarial", p_a), (f"perturbation x{f}", amp_path)],
                lines=[f"score {r['score_clean']:+.3f} -> {r['score_adv']:+.3f} (threshold {thr:+.3f})"
                       + (", decision flipped" if flipped else ""),
                       f"full image: Linf {r['linf'] * 255:.2f}/255, L2 {r['l2']:.3f}, PSNR {r['psnr']:.1f} dB",
                       f"crop {o.shape[1]}x{o.shape[0]}" + ("" if exact else ", perturbation clipped at x1")]))
        blocks.append(Gallery(items, caption=f"{s['detector']} / {s['attack']} {s['label']}: perturbation shown as "
                                             f"128 + {f} (x_adv - x), grey = unchanged"))
    if omitted:
        blocks.append(Text(f"Not shown (report.html gallery capped at {max_bytes / 2**20:.0f} MB of images): "
                           + "; ".join(omitted) + "."))
    if entries:
        (out / "gallery.json").write_text(json.dumps(entries, indent=1, default=float))
    return blocks, entries


def spectra_figure(run_dir: Path, summary: list[dict[str, Any]], out: Path, max_pairs: int = 24
                   ) -> tuple[Path | None, list[str]]:
    """Mean power spectrum of ``x_adv - x`` per (attack setting, detector)
    (:mod:`fakebench.experiments.spectrum`), computed from the thumbnails the runner kept
    (up to ``max_pairs`` per setting, the most common crop size): the gallery's images, not
    every attacked image."""
    from ..experiments.spectrum import perturbation_spectra, save_spectra

    pairs = {}
    counts = []
    for s in summary:
        if s["attack"] == "clean":
            continue
        d = unit_dir(run_dir, s["detector"], s["attack"], canonical(s["params"]))
        if not d.is_dir():
            continue
        loaded = []
        for p_o in sorted(d.glob("*.orig.png"))[: 2 * max_pairs]:
            p_a = p_o.with_name(p_o.name[: -len(".orig.png")] + ".adv.png")
            if p_a.exists():
                o, a = load_image(p_o), load_image(p_a)
                if o.shape == a.shape:
                    loaded.append((o, a))
        if not loaded:
            continue
        shapes = [o.shape for o, _ in loaded]
        common = max(set(shapes), key=shapes.count)
        use = [(o, a) for o, a in loaded if o.shape == common and not np.array_equal(o, a)][:max_pairs]
        name = f"{s['attack']} {s['label']}".strip() + f" / {s['detector']}"
        if not use:
            counts.append(f"{name}: no image changed")
            continue
        x = np.stack([o for o, _ in use]).transpose(0, 3, 1, 2)
        xa = np.stack([a for _, a in use]).transpose(0, 3, 1, 2)
        pairs[(f"{s['attack']} {s['label']}".strip(), s["detector"])] = (x, xa)
        counts.append(f"{name}: {len(use)}")
    if not pairs:
        return None, []
    paths = save_spectra(perturbation_spectra(pairs), out)
    return paths["png"], ["Computed from the thumbnails the runner kept for the gallery (the most and least affected "
                          "images of each chunk, central crops), not from every attacked image; images per panel: "
                          + "; ".join(counts) + "."]
