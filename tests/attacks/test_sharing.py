"""Social-network sharing: platform chains as attack, EOT transform and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakebench import attacks
from fakebench.attacks.eot import apply_eot
from fakebench.data.sharing import PLATFORMS, eot_entries, share, share_np
from fakebench.data import degrade
from fakebench.errors import ConfigError


def _img(n=2, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    return torch.round((x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1) * 255) / 255


def test_platform_table():
    assert (PLATFORMS["facebook"].max_side, PLATFORMS["facebook"].quality) == (2048, 80)
    assert (PLATFORMS["x"].max_side, PLATFORMS["x"].quality) == (4096, 85)
    assert (PLATFORMS["telegram"].max_side, PLATFORMS["telegram"].quality) == (1280, 87)
    assert PLATFORMS["twitter"] is PLATFORMS["x"]
    for p in PLATFORMS.values():
        lo, hi = p.quality_range
        assert lo <= p.quality <= hi and p.subsampling == "4:2:0" and p.source


def test_share_is_resize_then_jpeg():
    x = _img(2, 300, 200)
    out = share(x, "telegram", max_side=150)
    assert out.shape[-2:] == (150, 100)
    ref = degrade.jpeg(degrade.resize(x, scale=0.5, antialias=True), 87, subsampling="4:2:0")
    assert torch.equal(out, ref)
    assert torch.equal(torch.round(out * 255) / 255, out)
    small = _img(2, 48, 64)
    assert share(small, "facebook").shape == small.shape  # below the limit: JPEG only
    assert torch.equal(share(small, "facebook"), degrade.jpeg(small, 80))


def test_assume_side_scales_patches_of_large_photos():
    x = _img(1, 64, 64)
    out = share(x, "telegram", assume_side=2560)  # a patch of a 2560-px photo: scaled by 1/2
    assert out.shape[-2:] == (32, 32)
    assert share(x, "x", assume_side=2560).shape[-2:] == (64, 64)  # X keeps up to 4096
    assert share(x, "facebook", crop=0.5).shape[-2:] == (32, 32)


def test_share_np_keeps_dtype_and_jitter_is_seeded():
    img = _img(1, 40, 40)[0].permute(1, 2, 0).numpy()
    u8 = np.round(img * 255).astype(np.uint8)
    out8 = share_np(u8, "telegram", np.random.default_rng(0))
    assert out8.dtype == np.uint8 and out8.shape == u8.shape
    a = share_np(img, "facebook", np.random.default_rng(1))
    b = share_np(img, "facebook", np.random.default_rng(1))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    lo, hi = PLATFORMS["facebook"].quality_range
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    candidates = [share(t, "facebook", quality=q)[0].permute(1, 2, 0).numpy() for q in range(lo, hi + 1)]
    assert any(np.array_equal(a, c) for c in candidates)  # some quality inside the platform's range
    fixed = share_np(img, "facebook", np.random.default_rng(1), jitter=False)
    assert np.array_equal(fixed, share(t, "facebook")[0].permute(1, 2, 0).numpy())


def test_share_attack_touches_every_image(tiny_detector):
    x, y = _img(4, 32, 32), torch.tensor([1, 0, 1, 0])
    atk = attacks.create("share", platform="x")
    out = atk(tiny_detector, x, y)
    assert torch.equal(out, degrade.jpeg(x, 85))
    assert not torch.equal(out[y == 0], x[y == 0])
    assert atk.params()["platform"] == "x"
    with pytest.raises(ConfigError, match="platform"):
        attacks.create("share", platform="myspace")


def test_eot_approximation_is_close_to_the_real_chain():
    x = _img(2, 64, 64)
    entries = eot_entries("telegram", assume_side=2560)
    assert entries[0] == {"op": "resize", "scale": 0.5} and entries[1]["op"] == "jpeg"
    real = share(x, "telegram", assume_side=2560)
    approx = apply_eot(x, entries, torch.Generator().manual_seed(0))
    assert approx.shape == real.shape
    # the differentiable chain is much closer to the real one than the resize alone is
    resized = degrade.resize(x, scale=0.5)
    assert float((approx - real).abs().mean()) < 0.6 * float((resized - real).abs().mean()) + 1e-3
    xr = x.clone().requires_grad_(True)
    apply_eot(xr, [{"op": "sharing", "platform": "facebook"}]).sum().backward()
    assert float(xr.grad.abs().mean()) > 0.1
