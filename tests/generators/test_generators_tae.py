"""TAESD-family tiny autoencoder: state-dict layout, loading errors, round trips, tiling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from fakebench.errors import CheckpointError
from fakebench.generators.tae import TinyAutoencoder, find_weight_files

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _shared_dir() -> Path | None:
    for cand in ((REPO / ".." / "shared").resolve(), os.environ.get("FAKEBENCH_SHARED")):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


SHARED = _shared_dir()
TAEF2 = SHARED / "weights" / "taef2" if SHARED else None
KODAK = SHARED / "data" / "kodak" if SHARED else None
needs_taef2 = pytest.mark.skipif(TAEF2 is None or not TAEF2.is_dir(),
                                 reason="shared TAEF2 weights (../shared/weights/taef2 or $FAKEBENCH_SHARED) not present")
needs_kodak = pytest.mark.skipif(KODAK is None or not KODAK.is_dir(),
                                 reason="shared Kodak images (../shared/data/kodak or $FAKEBENCH_SHARED) not present")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a.double() - b.double()) ** 2).mean()))


def _lively(model: TinyAutoencoder) -> TinyAutoencoder:
    """Random weights decode to ~0 (clamped); shift/scale the RGB head so outputs vary."""
    with torch.no_grad():
        model.decoder[-1].weight.mul_(30.0)
        model.decoder[-1].bias.fill_(0.5)
    return model.eval()


# -- layout and loading (random weights, no shared files needed) ----------------------------


def test_state_dict_layout_matches_published_taesd_family():
    m = TinyAutoencoder(latent_channels=32, group_norm=True)
    ek, dk = set(m.encoder.state_dict()), set(m.decoder.state_dict())
    # encoder: conv, block, (down conv, 3 blocks) x 3, conv to latent; GN branch in last stage
    assert {"0.weight", "0.bias", "1.conv.0.weight", "1.conv.4.bias", "2.weight", "14.weight"} <= ek
    assert "2.bias" not in ek  # down-sampling convs have no bias
    assert {"11.pool.0.weight", "11.pool.1.weight", "11.pool.1.bias", "11.pool.3.weight"} <= ek
    assert not any(k.startswith("10.pool") or k.startswith("7.pool") for k in ek)
    assert m.encoder.state_dict()["14.weight"].shape == (32, 64, 3, 3)
    # decoder: clamp, conv, relu, (3 blocks, upsample, conv) x 3, block, conv to RGB
    assert {"1.weight", "3.pool.0.weight", "5.pool.3.weight", "7.weight", "18.conv.2.weight", "19.weight"} <= dk
    assert not any(k.startswith("8.pool") for k in dk)
    assert m.decoder.state_dict()["19.weight"].shape == (3, 64, 3, 3)
    plain = TinyAutoencoder(latent_channels=4)
    assert not any(".pool." in k for k in plain.state_dict())


@pytest.mark.parametrize("prefix,latent,gn", [("taesd", 4, False), ("taesd3", 16, False), ("taef2", 32, True)])
def test_save_load_roundtrip_keys_and_values(tmp_path: Path, prefix: str, latent: int, gn: bool):
    torch.manual_seed(0)
    m = TinyAutoencoder(latent_channels=latent, group_norm=gn, name=prefix)
    m.save_dir(tmp_path)
    loaded = TinyAutoencoder.from_dir(tmp_path)
    assert loaded.name == prefix
    assert loaded.latent_channels == latent and loaded.group_norm == gn
    a, b = m.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_find_weight_files_official_and_generic_names(tmp_path: Path):
    for name in ("taesdxl_encoder.pth", "taesdxl_decoder.pth"):
        (tmp_path / name).write_bytes(b"x")
    e, d, n = find_weight_files(tmp_path)
    assert (e.name, d.name, n) == ("taesdxl_encoder.pth", "taesdxl_decoder.pth", "taesdxl")
    other = tmp_path / "mine"
    other.mkdir()
    (other / "encoder.pth").write_bytes(b"x")
    (other / "decoder.pth").write_bytes(b"x")
    assert find_weight_files(other)[2] == "mine"  # no prefix: the folder name
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "taef2_encoder.pth").write_bytes(b"x")  # decoder missing
    with pytest.raises(CheckpointError, match="no TAESD-family checkpoint pair"):
        find_weight_files(empty)
    with pytest.raises(CheckpointError, match="TAE weights folder not found"):
        find_weight_files(tmp_path / "absent")


def test_mismatched_state_dict_is_one_clear_line(tmp_path: Path):
    small = TinyAutoencoder(latent_channels=4)
    big = TinyAutoencoder(latent_channels=32, group_norm=True)
    torch.save(big.encoder.state_dict(), tmp_path / "taef2_encoder.pth")
    sd = small.decoder.state_dict()  # decoder for 4 latents: does not fit the 32-latent encoder
    torch.save(sd, tmp_path / "taef2_decoder.pth")
    with pytest.raises(CheckpointError) as ei:
        TinyAutoencoder.from_dir(tmp_path)
    msg = str(ei.value)
    assert "\n" not in msg and "taef2_decoder.pth" in msg and "latent channels" in msg

    # a decoder that lost its GroupNorm branch keys: missing keys, named file
    sd = big.decoder.state_dict()
    for k in [k for k in sd if k.startswith("4.pool")]:
        del sd[k]
    sd["99.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "taef2_decoder.pth")
    with pytest.raises(CheckpointError) as ei:
        TinyAutoencoder.from_dir(tmp_path)
    msg = str(ei.value)
    assert "\n" not in msg and "taef2_decoder.pth" in msg and "missing" in msg and "unexpected: 99.weight" in msg

    (tmp_path / "taef2_decoder.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="taef2_decoder.pth: cannot read checkpoint"):
        TinyAutoencoder.from_dir(tmp_path)


def test_roundtrip_any_size_differentiable():
    torch.manual_seed(0)
    m = _lively(TinyAutoencoder(latent_channels=4, width=16))
    x = torch.rand(2, 3, 37, 45, requires_grad=True)
    y = m.roundtrip(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.detach().min()) >= 0.0 and float(y.detach().max()) <= 1.0
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    # 8-bit latent quantisation keeps gradients (straight-through)
    x.grad = None
    m.roundtrip(x, quantize_latents=True).sum().backward()
    assert float(x.grad.abs().sum()) > 0


def test_tiled_equals_untiled_with_enough_halo_random_weights():
    torch.manual_seed(1)
    m = _lively(TinyAutoencoder(latent_channels=32, group_norm=True, width=16))
    x = torch.rand(1, 3, 100, 172)
    with torch.no_grad():
        y = m.roundtrip(x)
        yt = m.roundtrip_tiled(x, tile=64, overlap=16, halo=64)
    assert float(y.std()) > 0.02  # not a saturated, trivially equal output
    assert yt.shape == y.shape
    assert float((y - yt).abs().max()) < 1e-4


# -- the real TAEF2 weights ----------------------------------------------------------------


@needs_taef2
def test_loads_real_taef2_weights():
    m = TinyAutoencoder.from_dir(TAEF2)
    assert m.name == "taef2" and m.latent_channels == 32 and m.group_norm
    n_enc = sum(p.numel() for p in m.encoder.parameters())
    n_dec = sum(p.numel() for p in m.decoder.parameters())
    assert (n_enc, n_dec) == (1338528, 1338499)
    assert next(m.parameters()).dtype == torch.float32  # fp16 files cast on load
    with torch.no_grad():
        z = m.encode(torch.rand(1, 3, 64, 48))
    assert z.shape == (1, 32, 8, 6)


def _kodak(name: str) -> torch.Tensor:
    from fakebench.io import load_image

    return torch.from_numpy(load_image(KODAK / name)).permute(2, 0, 1)[None]


@needs_taef2
@needs_kodak
def test_taef2_roundtrip_psnr_on_kodak():
    x = _kodak("kodim23.png")
    h, w = x.shape[-2:]
    crop = x[..., (h - 256) // 2:(h - 256) // 2 + 256, (w - 256) // 2:(w - 256) // 2 + 256]
    m = TinyAutoencoder.from_dir(TAEF2)
    with torch.no_grad():
        y = m.roundtrip(crop)
    assert psnr(y, crop) > 30.0  # measured 32.5 dB (DESIGN.md: 32.6 dB)
    # gradients reach the pixels through the real network (used by laundering attacks)
    xs = crop[..., :64, :64].clone().requires_grad_(True)
    m.roundtrip(xs).mean().backward()
    assert float(xs.grad.abs().sum()) > 0


@needs_taef2
@needs_kodak
def test_taef2_tiled_roundtrip_has_no_seams():
    x = _kodak("kodim03.png")[..., 64:256, 32:352]  # 192 x 320: 2 x 3 tiles
    m = TinyAutoencoder.from_dir(TAEF2)
    with torch.no_grad():
        y = m.roundtrip(x)
        # no context halo at all: only the raised-cosine blending hides the tile borders
        yt = m.roundtrip_tiled(x, tile=128, overlap=32, halo=0)
    assert psnr(yt, y) > 40.0  # measured 47-48 dB
