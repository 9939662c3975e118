"""Power spectra of adversarial perturbations.

De Rosa, Guillaro, Poggi, Cozzolino, Verdoliva, "Exploring the adversarial robustness of CLIP
for AI-generated image detection" (2024) compare the average Fourier power spectrum of the
perturbations ``x_adv - x`` that the same attack finds against different detectors: against
CNN detectors the energy sits at high frequencies (the perturbation imitates or cancels the
generators' fine traces), against CLIP-based ones it spreads to lower frequencies (semantic
features). This module computes that analysis for any set of (attack, detector) pairs.

Definitions (all in this module):

- **spectrum**: for each perturbation image and colour channel, the mean over the channel is
  removed (unless ``remove_mean=False``), a 2-D Hann window is applied (unless
  ``window=None``; it suppresses the spurious energy the image borders would otherwise leak
  along the axes), and ``|FFT2|^2 / (H W)`` is taken; the result is averaged over channels and
  images and ``fftshift``-ed so that the zero frequency is at the centre, shape (H, W).
- **radial frequency** of a bin: ``rho = sqrt(fy^2 + fx^2) / 0.5`` where ``fy, fx`` are in
  cycles per pixel (``numpy.fft.fftfreq``), so ``rho = 1`` is the Nyquist frequency along one
  axis and the corners of the spectrum reach ``sqrt(2)``.
- **bands** (:data:`BANDS`): ``low`` = ``rho < 1/4``, ``mid`` = ``1/4 <= rho < 1/2``,
  ``high`` = ``rho >= 1/2`` (including the corners). The **band fractions** are each band's
  share of the total power (they sum to 1). For reference, white noise puts about 5 % / 15 % /
  80 % of its power into low / mid / high, simply because of the bands' areas.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

#: (name, lower rho inclusive, upper rho exclusive), rho = radial frequency / 0.5 cycles per pixel
BANDS: tuple[tuple[str, float, float], ...] = (("low", 0.0, 0.25), ("mid", 0.25, 0.5), ("high", 0.5, math.inf))


def _to_tensor(a: Any) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    t = t.detach().double().cpu()
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ValueError(f"perturbations must be (N, C, H, W), (C, H, W) or (H, W), got {tuple(t.shape)}")
    return t


def power_spectrum(delta: Any, window: str | None = "hann", remove_mean: bool = True) -> np.ndarray:
    """Mean power spectrum (H, W), zero frequency at the centre, of perturbations ``delta``
    (N, C, H, W) (or (C, H, W), (H, W)); see the module docstring for the definition."""
    d = _to_tensor(delta)
    h, w = d.shape[-2:]
    if remove_mean:
        d = d - d.mean(dim=(-2, -1), keepdim=True)
    if window == "hann":
        wy = torch.hann_window(h, periodic=False, dtype=torch.float64) if h > 1 else torch.ones(1, dtype=torch.float64)
        wx = torch.hann_window(w, periodic=False, dtype=torch.float64) if w > 1 else torch.ones(1, dtype=torch.float64)
        d = d * (wy[:, None] * wx[None, :])
    elif window is not None:
        raise ValueError(f"window: expected 'hann' or None, got {window!r}")
    p = torch.fft.fft2(d).abs().pow(2) / (h * w)
    p = p.mean(dim=(0, 1))
    return torch.fft.fftshift(p).numpy()


def radial_frequency(h: int, w: int) -> np.ndarray:
    """``rho`` (H, W) of each bin of a centred spectrum (1 = Nyquist along an axis)."""
    fy = np.fft.fftshift(np.fft.fftfreq(h))
    fx = np.fft.fftshift(np.fft.fftfreq(w))
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5


def band_fractions(spectrum: np.ndarray) -> dict[str, float]:
    """Share of the total power in each of :data:`BANDS` (NaN everywhere for zero power)."""
    s = np.asarray(spectrum, dtype=np.float64)
    rho = radial_frequency(*s.shape)
    total = float(s.sum())
    out = {}
    for name, lo, hi in BANDS:
        e = float(s[(rho >= lo) & (rho < hi)].sum())
        out[name] = e / total if total > 0 else float("nan")
    return out


def radial_profile(spectrum: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Mean power in ``bins`` rings of equal width over rho in [0, sqrt(2)]:
    returns (ring centres, mean power)."""
    s = np.asarray(spectrum, dtype=np.float64)
    rho = radial_frequency(*s.shape)
    edges = np.linspace(0, math.sqrt(2) + 1e-9, bins + 1)
    idx = np.clip(np.digitize(rho.ravel(), edges) - 1, 0, bins - 1)
    sums = np.bincount(idx, weights=s.ravel(), minlength=bins)
    counts = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return (edges[:-1] + edges[1:]) / 2, prof


def summarize(spectrum: np.ndarray) -> dict[str, float]:
    """Band fractions plus total power and the power-weighted mean radial frequency."""
    s = np.asarray(spectrum, dtype=np.float64)
    rho = radial_frequency(*s.shape)
    total = float(s.sum())
    out = band_fractions(s)
    out["total_power"] = total
    out["mean_rho"] = float((s * rho).sum() / total) if total > 0 else float("nan")
    return out


def perturbation_spectra(pairs: Mapping[tuple[str, str], tuple[Any, Any]], window: str | None = "hann"
                         ) -> dict[tuple[str, str], np.ndarray]:
    """``{(attack, detector): (x, x_adv)}`` -> ``{(attack, detector): spectrum}``. Images that
    the attack left unchanged (all-zero perturbation) are left out of the mean; a pair whose
    perturbations are all zero gets an all-zero spectrum."""
    out = {}
    for key, (x, x_adv) in pairs.items():
        d = _to_tensor(x_adv) - _to_tensor(x)
        moved = d.flatten(1).abs().amax(1) > 0
        out[key] = power_spectrum(d[moved], window) if bool(moved.any()) else np.zeros(d.shape[-2:])
    return out


def save_spectra(spectra: Mapping[tuple[str, str], np.ndarray], out: str | Path, name: str = "perturbation_spectra"
                 ) -> dict[str, Path]:
    """Write ``<name>.png`` (one log-power panel per (attack, detector) pair plus the radial
    profiles), ``<name>.csv`` and ``<name>.json`` (the :func:`summarize` numbers per pair)
    into folder ``out``. Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for (atk, det), s in spectra.items():
        rows.append({"attack": atk, "detector": det, **summarize(s)})
    cols = ["attack", "detector", "low", "mid", "high", "mean_rho", "total_power"]
    csv_path = d / f"{name}.csv"
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=cols)
        wr.writeheader()
        for r in rows:
            wr.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in cols})
    json_path = d / f"{name}.json"
    json_path.write_text(json.dumps({"bands": [list(b[:2]) + [b[2] if math.isfinite(b[2]) else None] for b in BANDS],
                                     "rows": rows}, indent=2, default=float))
    n = max(len(spectra), 1)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3.2), squeeze=False)
    for ax, ((atk, det), s) in zip(axes[0], spectra.items()):
        ax.imshow(np.log10(np.asarray(s) + 1e-12), cmap="magma", extent=(-0.5, 0.5, 0.5, -0.5))
        f = band_fractions(s)
        ax.set_title(f"{atk} / {det}\nlow {f['low']:.2f} mid {f['mid']:.2f} high {f['high']:.2f}", fontsize=8)
        ax.set_xlabel("cycles/pixel", fontsize=7)
        ax.tick_params(labelsize=6)
    prof_ax = axes[0][-1]
    for (atk, det), s in spectra.items():
        c, p = radial_profile(s)
        prof_ax.semilogy(c, p + 1e-20, label=f"{atk}/{det}")
    for _, lo, _ in BANDS[1:]:
        prof_ax.axvline(lo, color="grey", lw=0.5, ls="--")
    prof_ax.set_xlabel("radial frequency (1 = Nyquist)", fontsize=7)
    prof_ax.set_title("radial profile", fontsize=8)
    prof_ax.tick_params(labelsize=6)
    if spectra:
        prof_ax.legend(fontsize=6)
    fig.tight_layout()
    png_path = d / f"{name}.png"
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return {"png": png_path, "csv": csv_path, "json": json_path}


def analyze(detectors: Mapping[str, torch.nn.Module], attack_factories: Mapping[str, Any], x: torch.Tensor,
            y: torch.Tensor, out: str | Path | None = None, seed: int = 0, window: str | None = "hann"
            ) -> dict[tuple[str, str], dict[str, float]]:
    """Run every attack (``{name: zero-argument factory or Attack}``) on every detector with the
    same images and labels, and return :func:`summarize` per (attack, detector); with ``out``,
    also write the figure and tables (:func:`save_spectra`). Images an attack leaves unchanged
    (outside its direction) are not part of the mean."""
    pairs = {}
    for aname, fac in attack_factories.items():
        for dname, det in detectors.items():
            atk = fac() if callable(fac) and not hasattr(fac, "threat") else fac
            adv = atk.perturb(det, x, y, torch.Generator().manual_seed(int(seed))).x_adv
            pairs[(aname, dname)] = (x, adv)
    spectra = perturbation_spectra(pairs, window)
    if out is not None:
        save_spectra(spectra, out)
    return {k: summarize(s) for k, s in spectra.items()}
