"""Carlini & Farid's latent-space attack with the TAEF2 decoder (../shared/weights/taef2)."""

from __future__ import annotations

import pytest
import torch
from conftest import shared_dir

from fakebench import attacks
from fakebench.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _taef2():
    root = shared_dir()
    path = None if root is None else root / "weights" / "taef2"
    if path is None or not (path / "taef2_decoder.pth").is_file():
        pytest.skip("../shared/weights/taef2 not found (set FAKEBENCH_SHARED)")
    return path


@pytest.fixture(scope="module")
def tae_fakes():
    """TAE-generated fakes: 64-px crops of Kodak photos passed through TAEF2 (encode, decode)."""
    from fakebench.generators.tae import TinyAutoencoder
    from fakebench.io import load_image

    path = _taef2()
    photos = sorted((shared_dir() / "data" / "kodak").glob("*.png"))[:2]
    if not photos:
        pytest.skip("../shared/data/kodak not found")
    crops = torch.stack([torch.from_numpy(load_image(p)[200:264, 300:364]).permute(2, 0, 1).float() for p in photos])
    tae = TinyAutoencoder.from_dir(path).eval()
    with torch.no_grad():
        fakes = tae.roundtrip(crops)
    return path, torch.round(fakes * 255) / 255


@pytest.mark.parametrize("universal", [False, True])
def test_latent_attack_lowers_the_score_of_tae_fakes_and_reports_psnr(tiny_detector, tae_fakes, universal):
    path, x = tae_fakes
    y = torch.ones(len(x), dtype=torch.long)
    atk = attacks.create("cf-latent", weights=str(path), latent_eps=0.3, steps=10, universal=universal)
    res = atk.perturb(tiny_detector, x, y)
    with torch.no_grad():
        before, after = tiny_detector(x), tiny_detector(res.x_adv)
    print(f"\n[cf-latent universal={universal}] score {before.mean():.4f} -> {after.mean():.4f}, "
          f"PSNR to decoded original {res.info['psnr'].tolist()}, to input {res.info['psnr_input'].tolist()}")
    assert bool((after < before).all())  # every fake scores lower
    assert res.x_adv.shape == x.shape and torch.equal(res.x_adv, torch.round(res.x_adv * 255) / 255)
    psnr = res.info["psnr"]
    assert psnr.shape == (len(x),) and bool(torch.isfinite(psnr).all()) and float(psnr.min()) > 15
    assert float(res.info["latent_linf"].max()) <= 0.3 + 1e-6
    assert torch.equal(res.queries, torch.full((len(x),), 10))


def test_latent_attack_needs_weights(monkeypatch):
    monkeypatch.delenv("FAKEBENCH_TAE_WEIGHTS", raising=False)
    with pytest.raises(ConfigError, match="cf-latent: needs weights=DIR"):
        attacks.create("cf-latent")
    with pytest.raises(ConfigError, match="latent_eps"):
        attacks.create("cf-latent", weights=str(_taef2()), latent_eps=0)
