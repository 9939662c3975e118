"""AutoGAN-style tiny autoencoders: training, determinism, and their spectral fingerprints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from fakebench.generators.autoencoders import UPSAMPLERS, TinyConvAE, apply_generator, train_autoencoder
from fakebench.generators.fingerprint import peak_bins, phase_energy_variation, upsampling_prominence


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    import skimage.data as d

    return [getattr(d, n)().astype(np.float32) / 255.0 for n in
            ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")]


@pytest.fixture(scope="module")
def patches(photos) -> torch.Tensor:
    """84 fixed 64x64 crops (12 per photo) used as evaluation images."""
    rng = np.random.default_rng(123)
    crops = []
    for a in photos:
        for _ in range(12):
            y, x = rng.integers(0, a.shape[0] - 64), rng.integers(0, a.shape[1] - 64)
            crops.append(a[y:y + 64, x:x + 64])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def l1(model: TinyConvAE, x: torch.Tensor) -> float:
    return float((apply_generator(model, x) - x).abs().mean())


def test_architecture_per_upsampler():
    kinds = {"tconv": nn.ConvTranspose2d, "pixelshuffle": nn.PixelShuffle}
    for up in UPSAMPLERS:
        m = TinyConvAE(up)
        n = sum(p.numel() for p in m.parameters())
        assert 20_000 < n < 150_000, (up, n)
        mods = list(m.decoder.modules())
        if up in kinds:
            assert any(isinstance(mm, kinds[up]) for mm in mods)
        else:
            assert any(isinstance(mm, nn.Upsample) and mm.mode == up for mm in mods)
        assert m.factor == 4
        y = m.roundtrip(torch.rand(1, 3, 30, 42))  # any size: padded and cropped back
        assert y.shape == (1, 3, 30, 42) and float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    with pytest.raises(ValueError, match="unknown upsampler"):
        TinyConvAE("deconv")


STEPS = 200  # as in the built-in benchmark


@pytest.fixture(scope="module")
def trained(photos) -> dict[str, TinyConvAE]:
    """One AE per up-sampler, seed 0, trained once for the whole module."""
    return {up: train_autoencoder(photos, up, seed=0, steps=STEPS) for up in UPSAMPLERS}


@pytest.mark.parametrize("upsampler", UPSAMPLERS)
def test_training_reduces_reconstruction_error(photos, patches, trained, upsampler):
    untrained = train_autoencoder(photos, upsampler, seed=0, steps=0)  # same initial weights
    before, after = l1(untrained, patches), l1(trained[upsampler], patches)
    assert after < 0.3 * before, (before, after)
    hist = trained[upsampler].history
    assert len(hist) == STEPS and np.mean(hist[-10:]) < 0.5 * np.mean(hist[:10])


def test_same_seed_same_model_and_rng_untouched(photos, patches):
    state = torch.get_rng_state()
    a = train_autoencoder(photos, "tconv", seed=3, steps=15)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's global RNG is untouched
    b = train_autoencoder(photos, "tconv", seed=3, steps=15)
    c = train_autoencoder(photos, "tconv", seed=4, steps=15)
    x = patches[:4]
    assert torch.equal(apply_generator(a, x), apply_generator(b, x))
    assert a.history == b.history
    assert not torch.equal(apply_generator(a, x), apply_generator(c, x))


def test_threads_restored(photos):
    before = torch.get_num_threads()
    train_autoencoder(photos, "nearest", seed=0, steps=2, num_threads=before + 1)
    assert torch.get_num_threads() == before


def test_peak_bins():
    assert peak_bins((64, 64), periods=(2,)) == [(0, 32), (32, 0), (32, 32)]
    assert (16, 16) in peak_bins((64, 64)) and (16, 16) not in peak_bins((64, 64), axes_only=True)


@pytest.fixture(scope="module")
def fingerprints(patches, trained) -> dict[str, dict[str, float]]:
    """Prominence (natural-log power above the surrounding bins) of the N/2 and N/4 peaks in
    the noise-residual spectrum: real patches vs the same patches through trained AEs."""
    out = {"real": {"all": upsampling_prominence(patches), "axes": upsampling_prominence(patches, axes_only=True),
                    "phase": phase_energy_variation(patches)}}
    for up in UPSAMPLERS:
        y = apply_generator(trained[up], patches)
        out[up] = {"all": upsampling_prominence(y), "axes": upsampling_prominence(y, axes_only=True),
                   "phase": phase_energy_variation(y),
                   "psnr": float(10 * torch.log10(1 / ((y - patches) ** 2).mean()))}
    return out


def test_fakes_stay_photographic(fingerprints):
    for up in UPSAMPLERS:
        assert fingerprints[up]["psnr"] > 22.0, (up, fingerprints[up])  # measured 24-27 dB


def test_tconv_and_pixelshuffle_leave_strong_periodic_peaks(fingerprints):
    real = fingerprints["real"]["all"]  # measured 0.31 (JPEG grid of the source photos)
    for up in ("tconv", "pixelshuffle"):
        ratio = math.exp(fingerprints[up]["all"] - real)  # power ratio of the peaks, fake / real
        assert ratio > 10.0, (up, ratio, fingerprints)  # measured 35-50x over seeds 0-3


def test_nearest_leaves_periodic_traces(fingerprints):
    real, near = fingerprints["real"], fingerprints["nearest"]
    # second order: residual energy depends on the pixel phase mod 4
    assert near["phase"] > 2.0 * real["phase"], fingerprints  # measured 4-7x (0.16-0.25 vs 0.037)
    # first order: nearest-neighbour up-sampling is separable, its peaks sit on the axes
    assert near["axes"] > real["axes"], fingerprints  # measured +0.5 to +0.6 (power x1.6-1.9)
    for up in ("tconv", "pixelshuffle"):
        assert fingerprints[up]["phase"] > 2.0 * real["phase"], fingerprints


def test_generator_residual_has_peaks_real_residual_lacks(patches, trained):
    """Spectrum of (output - input) of the tconv generator vs the noise residual of the real
    photos."""
    from fakebench.generators.fingerprint import mean_log_spectrum, noise_residual, peak_prominence

    resid = apply_generator(trained["tconv"], patches) - patches
    gen = peak_prominence(mean_log_spectrum(resid))
    real = peak_prominence(mean_log_spectrum(noise_residual(patches)))
    assert math.exp(gen - real) > 3.0, (gen, real)  # measured 4.7-6.7x over seeds 0-3


def test_bilinear_is_the_subtle_one(fingerprints):
    """bilinear + conv leaves the weakest periodic trace (why it is the held-out family)."""
    assert fingerprints["bilinear"]["all"] < min(fingerprints["tconv"]["all"], fingerprints["pixelshuffle"]["all"])
