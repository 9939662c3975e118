"""fakebench.data.degrade: JPEG, resize, blur, crop (torch batches and numpy images)."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

from fakebench.data import degrade
from fakebench.errors import ConfigError


@pytest.fixture()
def x() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(3, 3, 8, 8, generator=g), size=(32, 40), mode="bilinear")
    return (0.8 * smooth + 0.2 * torch.rand(3, 3, 32, 40, generator=g)).clamp(0, 1)


def chw_to_np(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


# -- JPEG ----------------------------------------------------------------------------------

def test_jpeg_is_a_real_pil_round_trip_on_the_8bit_grid(x):
    y = degrade.jpeg(x, 50)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(torch.round(y * 255) / 255, y)
    assert 0.005 < float((y - x).abs().mean()) < 0.1
    u8 = np.clip(np.rint(chw_to_np(x[1]) * 255), 0, 255).astype(np.uint8)
    buf = BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=50, subsampling=2)
    ref = np.asarray(Image.open(BytesIO(buf.getvalue())).convert("RGB")).astype(np.float32) / 255
    np.testing.assert_array_equal(chw_to_np(y[1]), ref)
    np.testing.assert_array_equal(degrade.jpeg_np(chw_to_np(x[1]), 50), ref)  # one codec path


def test_jpeg_quality_and_subsampling_matter(x):
    err = {q: float((degrade.jpeg(x, q) - x).abs().mean()) for q in (10, 50, 95)}
    assert err[10] > err[50] > err[95]
    assert not torch.equal(degrade.jpeg(x, 75, "4:4:4"), degrade.jpeg(x, 75, "4:2:0"))
    assert degrade.jpeg(x[0], 75).shape == x[0].shape  # (C, H, W) in, (C, H, W) out


@pytest.mark.parametrize("kwargs", [dict(quality=0), dict(quality=101), dict(quality=50.5), dict(quality="75"),
                                    dict(quality=75, subsampling="4:1:1")])
def test_jpeg_validates_arguments(x, kwargs):
    with pytest.raises(ConfigError) as ei:
        degrade.jpeg(x, **kwargs)
    assert "\n" not in str(ei.value)


# -- resize --------------------------------------------------------------------------------

def test_resize_sizes(x):
    assert degrade.resize(x, 0.5).shape == (3, 3, 16, 20)
    assert degrade.resize(x, 1.5).shape == (3, 3, 48, 60)
    assert degrade.resize(x, max_side=20).shape == (3, 3, 16, 20)
    assert degrade.resize(x, max_side=100).shape == x.shape  # never enlarges
    back = degrade.resize(x, 0.5, restore=True)
    assert back.shape == x.shape and float((back - x).abs().mean()) > 0.005
    assert float(back.min()) >= 0 and float(back.max()) <= 1


def test_resize_nearest_half_takes_every_other_pixel_and_np_matches(x):
    assert torch.equal(degrade.resize(x, 0.5, interpolation="nearest"), x[..., ::2, ::2])
    np.testing.assert_allclose(degrade.resize_np(chw_to_np(x[2]), 0.5), chw_to_np(degrade.resize(x, 0.5)[2]), atol=1e-6)


def test_resize_antialias_removes_more_high_frequency():
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    aa = degrade.resize(noise, 0.25, antialias=True)
    no = degrade.resize(noise, 0.25, antialias=False)  # bilinear: averages only 2x2 pixels
    assert float(aa.std()) < 0.75 * float(no.std())
    np.testing.assert_allclose(float(aa.mean()), float(noise.mean()), atol=0.02)


@pytest.mark.parametrize("kwargs", [dict(), dict(scale=0), dict(scale=-1), dict(scale=float("nan")),
                                    dict(scale=0.5, max_side=10), dict(max_side=0), dict(scale=0.5, interpolation="lanczos")])
def test_resize_validates_arguments(x, kwargs):
    with pytest.raises(ConfigError):
        degrade.resize(x, **kwargs)


# -- blur ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5, 9.0])  # 9.0: kernel wider than the image
def test_blur_equals_scipy_gaussian_filter(x, sigma):
    img = chw_to_np(x[0]).astype(np.float64)
    ref = np.stack([ndi.gaussian_filter(img[..., c], sigma, mode="reflect") for c in range(3)], axis=-1)
    np.testing.assert_allclose(chw_to_np(degrade.blur(x, sigma)[0]), ref, atol=1e-5)
    np.testing.assert_allclose(degrade.blur_np(img.astype(np.float32), sigma), ref, atol=1e-5)


def test_blur_identity_at_zero_keeps_constants_and_is_differentiable(x):
    assert torch.equal(degrade.blur(x, 0.0), x)
    const = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(degrade.blur(const, 2.0), const)
    assert float(degrade.blur(x, 1.5).std()) < float(x.std())
    xr = x.clone().requires_grad_(True)
    degrade.blur(xr, 1.0).sum().backward()
    assert xr.grad is not None and torch.isfinite(xr.grad).all()
    with pytest.raises(ConfigError):
        degrade.blur(x, -0.1)


# -- crop ----------------------------------------------------------------------------------

def test_crop_positions(x):
    assert torch.equal(degrade.crop(x, 16), x[..., 8:24, 12:28])
    assert torch.equal(degrade.crop(x, (8, 10), center=False), x[..., :8, :10])
    assert torch.equal(degrade.crop(x, 4, top=3, left=5), x[..., 3:7, 5:9])
    img = chw_to_np(x[0])
    np.testing.assert_array_equal(degrade.crop_np(img, 16), chw_to_np(degrade.crop(x, 16)[0]))
    with pytest.raises(ConfigError):
        degrade.crop(x, 64)
    with pytest.raises(ConfigError):
        degrade.crop(x, 8, top=30, left=0)
