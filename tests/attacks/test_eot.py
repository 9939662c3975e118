"""EOT transforms: validation, sampling, differentiability, fidelity to the real codecs."""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks
from fakebench.attacks.eot import apply_eot, gaussian_blur_diff, validate_eot
from fakebench.errors import ConfigError


def _smooth(n=4, size=48, seed=0):
    """Natural-ish images: smooth colour fields + mild noise, on the 8-bit grid."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, size // 8, size // 8, generator=g)
    x = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return torch.round(x * 255) / 255


@pytest.mark.parametrize("eot,field", [
    ([{"op": "jpg", "quality": 75}], r"eot\[0\]\.op"),
    ([{"op": "jpeg", "qualty": 75}], r"eot\[0\]\.qualty"),
    ([{"op": "blur", "sigma": 1}, {"op": "jpeg", "quality": [60, 120]}], r"eot\[1\]\.quality"),
    ([{"op": "jpeg", "quality": [90, 60]}], r"eot\[0\]\.quality"),
    ([{"op": "jpeg"}], r"eot\[0\]: op 'jpeg' needs 'quality'"),
    ([{"op": "resize", "scale": 0.5, "max_side": 64}], r"eot\[0\]: op 'resize' takes only one"),
    ([{"op": "sharing", "platform": "myspace"}], r"eot\[0\]\.platform"),
    ([{"op": "crop", "fraction": 0.5, "p": 2}], r"eot\[0\]\.p"),
    (["jpeg"], r"eot\[0\]"),
])
def test_bad_entries_are_one_line_naming_the_field(eot, field):
    with pytest.raises(ConfigError, match=field) as err:
        validate_eot(eot)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=field):  # and attack construction fails early
        attacks.create("pgd", eot=eot)


def test_jpeg_diff_tracks_the_real_codec_and_has_gradients():
    from fakebench.data import degrade

    x = _smooth()
    real = degrade.jpeg(x, 75)
    xr = x.clone().requires_grad_(True)
    approx = apply_eot(xr, [{"op": "jpeg", "quality": 75}])
    err_real = (real - x).abs().mean()
    err_approx = (approx.detach() - real).abs().mean()
    assert float(err_real) > 0.004  # JPEG does change the image
    assert float(err_approx) < 0.5 * float(err_real)  # the approximation is closer to JPEG than to the input
    approx.sum().backward()
    assert xr.grad is not None and torch.isfinite(xr.grad).all() and float(xr.grad.abs().mean()) > 0.1


def test_bpda_forward_is_the_real_codec_backward_is_identity():
    from fakebench.data import degrade

    x = _smooth().requires_grad_(True)
    out = apply_eot(x, [{"op": "jpeg", "quality": 60, "mode": "bpda"}])
    assert torch.allclose(out.detach(), degrade.jpeg(x.detach(), 60), atol=1e-6)
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_ranges_are_sampled_from_the_generator():
    x = _smooth()
    eot = [{"op": "jpeg", "quality": [20, 95]}, {"op": "blur", "sigma": [0.0, 2.0]}]
    a = apply_eot(x, eot, torch.Generator().manual_seed(1))
    b = apply_eot(x, eot, torch.Generator().manual_seed(1))
    c = apply_eot(x, eot, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert float((a - c).abs().max()) > 1e-3


def test_resize_scale_and_max_side():
    x = _smooth(2, 40)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        y = apply_eot(x, [{"op": "resize", "scale": [0.5, 0.75]}], g)
        assert 20 <= y.shape[-1] <= 30 and y.shape[-1] == y.shape[-2]
    assert apply_eot(x, [{"op": "resize", "max_side": 16}]).shape[-2:] == (16, 16)
    assert apply_eot(x, [{"op": "resize", "max_side": 100}]).shape[-2:] == (40, 40)  # never enlarges
    xr = x.clone().requires_grad_(True)
    y = apply_eot(xr, [{"op": "resize", "scale": 0.5, "restore": True}])
    assert y.shape == x.shape
    y.sum().backward()
    assert float(xr.grad.abs().sum()) > 0


def test_blur_identity_at_zero_and_smooths_otherwise():
    x = _smooth()
    assert torch.equal(apply_eot(x, [{"op": "blur", "sigma": 0}]), x)
    y = gaussian_blur_diff(x, torch.tensor([0.0, 1.5, 0.0, 1.5]))
    assert torch.equal(y[0], x[0]) and torch.equal(y[2], x[2])
    hf = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean()  # noqa: E731
    assert float(hf(y[1])) < 0.6 * float(hf(x[1]))
    assert torch.allclose(y.mean((2, 3)), x.mean((2, 3)), atol=0.02)  # blur keeps the mean colour


def test_crop_is_a_window_of_the_input():
    x = _smooth(3, 32)
    y = apply_eot(x, [{"op": "crop", "fraction": 0.5}], torch.Generator().manual_seed(3))
    assert y.shape == (3, 3, 16, 16)
    for i in range(3):
        windows = x[i].unfold(1, 16, 1).unfold(2, 16, 1)  # (3, 17, 17, 16, 16)
        hit = (windows - y[i][:, None, None]).abs().amax(dim=(0, 3, 4)) == 0
        assert bool(hit.any())
    assert apply_eot(x, [{"op": "crop", "size": 24}]).shape[-2:] == (24, 24)


def test_probability_zero_skips_and_sharing_expands():
    x = _smooth()
    assert torch.equal(apply_eot(x, [{"op": "jpeg", "quality": 10, "p": 0.0}]), x)
    y = apply_eot(x, [{"op": "sharing", "platform": "telegram"}], torch.Generator().manual_seed(0))
    assert y.shape == x.shape  # small images are not resized by the 1280-px limit
    assert float((y - x).abs().mean()) > 0.002


def test_eot_pgd_counts_eot_samples_as_queries(tiny_detector):
    x = _smooth(4, 32)
    y = torch.tensor([1, 1, 0, 0])
    atk = attacks.create("pgd", eps=4 / 255, steps=2, eot=[{"op": "jpeg", "quality": [70, 90]}], eot_samples=2)
    res = atk.perturb(tiny_detector, x, y)
    adv = res.x_adv
    q = [int(v) for v in res.queries]
    assert q[0] == q[1] >= 4 and q[2:] == [0, 0]  # 2 steps x 2 EOT samples (+ a final check)
    assert float((adv - x).abs().max()) <= 4 / 255 + 1e-6


def test_eot_blur_and_resize_are_the_degradations():
    """EOT optimises through exactly what the degradations apply (issue: one operation each)."""
    from fakebench.data import degrade

    x = _smooth(4, 32)
    for sigma in (0.7, 1.0, 2.5):
        eot = apply_eot(x, [{"op": "blur", "sigma": sigma}])
        assert float((eot - degrade.blur(x, sigma)).abs().max()) < 1e-5
    per_image = degrade.blur(x, torch.tensor([0.5, 1.0, 1.7, 3.0]))
    for i, s in enumerate((0.5, 1.0, 1.7, 3.0)):
        assert float((per_image[i] - degrade.blur(x[i : i + 1], s)[0]).abs().max()) < 1e-5
    eot = apply_eot(x, [{"op": "resize", "scale": 0.5}])
    assert float((eot - degrade.resize(x, scale=0.5)).abs().max()) < 1e-6
