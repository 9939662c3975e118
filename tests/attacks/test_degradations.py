from __future__ import annotations

import torch

from fakebench import attacks


def test_degradations_touch_every_image_and_keep_range(tiny_detector):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g)
    y = torch.tensor([1, 0, 1, 0])
    j = attacks.create("jpeg", quality=50)(tiny_detector, x, y)
    assert j.shape == x.shape and float((j - x).abs().mean()) > 0.01
    assert torch.equal(torch.round(j * 255) / 255, j)
    b = attacks.create("blur", sigma=1.5)(tiny_detector, x, y)
    assert float(b.std()) < float(x.std())
    r = attacks.create("resize", scale=0.5)(tiny_detector, x, y)
    assert r.shape == (4, 3, 16, 16) and 0 <= float(r.min()) and float(r.max()) <= 1
    assert tiny_detector(r).shape == (4,)
