"""Perturbation spectra: band fractions on constructed perturbations, figure and summary files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakebench.experiments.spectrum import (
    band_fractions,
    perturbation_spectra,
    power_spectrum,
    radial_frequency,
    save_spectra,
    summarize,
)


def _checkerboard(n=2, size=32, amp=2 / 255):
    i = torch.arange(size)
    cb = ((i.view(-1, 1) + i.view(1, -1)) % 2).float() * 2 - 1
    return amp * cb.expand(n, 3, size, size).clone()


def _ramp(n=2, size=32, amp=8 / 255):
    r = torch.linspace(-1, 1, size)
    g = (r.view(-1, 1) + 0.5 * r.view(1, -1)) * amp
    return g.expand(n, 3, size, size).clone()


def test_checkerboard_is_high_frequency():
    f = band_fractions(power_spectrum(_checkerboard()))
    assert f["high"] > 0.95
    assert abs(sum(f.values()) - 1) < 1e-9


def test_smooth_gradient_is_low_frequency():
    f = band_fractions(power_spectrum(_ramp()))
    assert f["low"] > 0.95 and f["high"] < 0.01


def test_band_edge_sinusoid_lands_in_mid_band():
    # a horizontal cosine at 0.18 cycles/pixel: rho = 0.36, inside [0.25, 0.5)
    x = torch.arange(64).float()
    s = torch.cos(2 * np.pi * 0.18 * x).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    f = band_fractions(power_spectrum(s))
    assert f["mid"] > 0.9


def test_white_noise_follows_band_areas():
    g = torch.Generator().manual_seed(0)
    f = band_fractions(power_spectrum(torch.randn(16, 3, 64, 64, generator=g), window=None))
    assert f["low"] == pytest.approx(np.pi / 16 / 4, abs=0.02)  # area of rho < 1/4 in the [-1, 1]^2 square
    assert f["high"] == pytest.approx(1 - np.pi / 4 / 4, abs=0.03)


def test_radial_frequency_range():
    rho = radial_frequency(32, 32)
    assert rho.min() == 0 and rho.max() == pytest.approx(np.sqrt(2))


def test_save_spectra_writes_figure_and_summary(tmp_path):
    x = torch.full((2, 3, 32, 32), 0.5)
    spectra = perturbation_spectra({("pgd", "cnn"): (x, x + _checkerboard()), ("pgd", "clip"): (x, x + _ramp()),
                                    ("none", "cnn"): (x, x.clone())})
    assert float(np.abs(spectra[("none", "cnn")]).max()) == 0.0
    paths = save_spectra(spectra, tmp_path / "spec")
    assert paths["png"].stat().st_size > 1000
    data = json.loads(paths["json"].read_text())
    by = {(r["attack"], r["detector"]): r for r in data["rows"]}
    assert by[("pgd", "cnn")]["high"] > 0.95 and by[("pgd", "clip")]["low"] > 0.95
    lines = paths["csv"].read_text().splitlines()
    assert lines[0].startswith("attack,detector,low,mid,high") and len(lines) == 4
    assert summarize(spectra[("pgd", "cnn")])["mean_rho"] > 1.0


def test_analyze_runs_attacks_per_detector(tmp_path, tiny_detector):
    from fakebench import attacks
    from fakebench.experiments.spectrum import analyze

    g = torch.Generator().manual_seed(0)
    x = torch.round(torch.rand(4, 3, 32, 32, generator=g) * 255) / 255
    y = torch.tensor([1, 1, 0, 0])
    res = analyze({"tiny": tiny_detector}, {"pgd": lambda: attacks.create("pgd", eps=4 / 255, steps=2),
                                            "none": attacks.create("none")}, x, y, out=tmp_path)
    assert set(res) == {("pgd", "tiny"), ("none", "tiny")}
    assert res[("pgd", "tiny")]["total_power"] > 0 and np.isnan(res[("none", "tiny")]["low"])
    assert abs(sum(res[("pgd", "tiny")][b] for b in ("low", "mid", "high")) - 1) < 1e-9
    assert (tmp_path / "perturbation_spectra.png").exists()


def test_spectrum_command_line(tmp_path, tiny_detector, capsys):
    """`fakebench spectrum`: every (attack, detector) pair in the printed table and the files;
    the FGSM perturbation (a sign pattern) has far more high-frequency energy than a blur's."""
    import sys
    from pathlib import Path

    from fakebench.cli import main

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_tiny_dataset

    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=4)
    tiny_detector.save(tmp_path / "A")
    out = tmp_path / "spec"
    assert main(["spectrum", "--detectors", str(tmp_path / "A"), "--attacks", "fgsm,blur", "--opt", "eps=4/255",
                 "--data", str(manifest), "--split", "all", "--out", str(out)]) == 2  # blur takes no eps
    assert "blur" in capsys.readouterr().err
    assert main(["spectrum", "--detectors", str(tmp_path / "A"), "--attacks", "fgsm", "--opt", "eps=4/255",
                 "--opt", "direction=both", "--data", str(manifest), "--split", "all", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fgsm" in printed and " A " in printed
    rows = json.loads((out / "perturbation_spectra.json").read_text())["rows"]
    assert [(r["attack"], r["detector"]) for r in rows] == [("fgsm", "A")]
    assert rows[0]["high"] > 0.3 and (out / "perturbation_spectra.png").stat().st_size > 1000
