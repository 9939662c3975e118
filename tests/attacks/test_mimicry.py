"""Mimicry (Boato et al. 2024): features move to the opposite class's centroid; hide lowers
the score of synthetic images, a decoy region raises the score of real ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fakebench import attacks, detectors
from fakebench.errors import ConfigError
from fakebench.io import save_png


def fingerprint_data(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Reals: smooth colour fields + white noise. Fakes: the same kind of fields + a period-2
    checkerboard (the trace of a transposed-convolution upsampler). 8-bit."""
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(2 * n, 3, size // 4, size // 4, generator=g), scale_factor=4, mode="bilinear",
                         align_corners=False) * 0.8 + 0.1
    i = torch.arange(size)
    cb = ((i.view(-1, 1) + i.view(1, -1)) % 2).float() * 2 - 1
    real = (base[:n] + 0.04 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    fake = (base[n:] + 0.04 * cb).clamp(0, 1)
    return torch.round(real * 255) / 255, torch.round(fake * 255) / 255


@pytest.fixture(scope="module")
def trained(one_thread):
    """A CPU-sized CNNSpot (ResNet-10, width 8) trained for 30 seeded steps on fingerprint_data."""
    return _train()


def _train():
    torch.manual_seed(0)
    det = detectors.create("cnnspot", arch="resnet10", width=8)
    opt = torch.optim.Adam(det.parameters(), lr=1e-2)
    for step in range(30):
        r, f = fingerprint_data(16, seed=100 + step)
        x = torch.cat([r, f])
        y = torch.cat([torch.zeros(16), torch.ones(16)])
        det.train()
        loss = F.binary_cross_entropy_with_logits(det(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    det.eval()
    ref_real, ref_fake = fingerprint_data(24, seed=1)
    test_real, test_fake = fingerprint_data(8, seed=2)
    with torch.no_grad():
        assert float(det(test_fake).min()) > 0 > float(det(test_real).max())  # the detector works
    return det, ref_real, ref_fake, test_real, test_fake


def _distances(res):
    """The feature distances before / after of the targeted samples (the result's info)."""
    hit = torch.isfinite(res.info["feature_distance_before"])
    return {k: res.info[f"feature_distance_{k}"][hit] for k in ("before", "after")}


def test_hide_moves_features_to_real_centroid_and_lowers_score(trained):
    det, rr, rf, tr, tf = trained
    atk = attacks.create("mimicry", mode="hide", layer="layer3", eps=8 / 255, steps=20, step_size=1 / 255)
    cents = atk.fit(det, rr, rf)
    assert set(cents) == {"real", "fake"}
    x = torch.cat([tf, tr])
    y = torch.cat([torch.ones(len(tf)), torch.zeros(len(tr))]).long()
    res = atk.perturb(det, x, y)
    adv = res.x_adv
    d = _distances(res)
    assert float((d["after"] / d["before"]).max()) < 0.5  # every fake's features halfway to the real centroid
    with torch.no_grad():
        before, after = det(x), det(adv)
    fake = y == 1
    print(f"[mimicry hide] fake score {before[fake].mean():.2f} -> {after[fake].mean():.2f}, "
          f"feature distance {d['before'].mean():.3f} -> {d['after'].mean():.3f}, "
          f"judged real after {(after[fake] < 0).float().mean():.2f}")
    assert bool((after[fake] < before[fake]).all())
    assert float((before[fake] - after[fake]).mean()) > 1.0
    assert torch.equal(adv[~fake], x[~fake])  # evade leaves real images alone
    assert float((adv - x).abs().max()) <= 8 / 255 + 1e-6
    assert torch.equal(torch.round(adv * 255) / 255, adv)


def test_decoy_plants_a_synthetic_region_in_a_real_photo(trained):
    det, rr, rf, tr, _ = trained
    box = (0, 0, 16, 32)  # top half
    atk = attacks.create("mimicry", mode="decoy", box=box, eps=8 / 255, steps=20, step_size=1 / 255)
    atk.fit(det, rr, rf)
    assert atk.threat.direction == "spoof"
    y = torch.zeros(len(tr), dtype=torch.long)
    res = atk.perturb(det, tr, y)
    adv = res.x_adv
    assert atk.layer_name == "layer4"  # deepest layer with a spatial map
    d = _distances(res)
    assert float(d["after"].mean()) < 0.5 * float(d["before"].mean())
    assert torch.equal(adv[..., 16:, :], tr[..., 16:, :])  # nothing outside the region changes
    assert float((adv[..., :16, :] - tr[..., :16, :]).abs().max()) > 0
    with torch.no_grad():
        before, after = det(tr), det(adv)
    print(f"[mimicry decoy] real score {before.mean():.2f} -> {after.mean():.2f}")
    assert bool((after > before).all())


def test_patch_mode_matches_each_patch(trained):
    det, rr, rf, _, tf = trained
    atk = attacks.create("mimicry", patch=16, layer="layer2", eps=8 / 255, steps=10, step_size=1 / 255)
    atk.fit(det, rr, rf)
    feats = atk.features(det, tf[:2])
    assert feats.shape[:2] == (2, 4)  # four 16x16 patches per 32x32 image
    res = atk.perturb(det, tf, torch.ones(len(tf), dtype=torch.long))
    d = _distances(res)
    assert float(d["after"].mean()) < 0.6 * float(d["before"].mean())


def test_reference_folders_give_the_same_centroids(trained, tmp_path):
    det, rr, rf, _, tf = trained
    for sub, xs in (("real", rr[:6]), ("fake/cb", rf[:6])):
        for k, im in enumerate(xs):
            save_png(tmp_path / "ref" / sub / f"{k}.png", im.permute(1, 2, 0).numpy())
    a = attacks.create("mimicry", layer="layer4", reference=str(tmp_path / "ref"), steps=2)
    a(det, tf[:2], torch.ones(2, dtype=torch.long))  # fits from the dataset on first use
    b = attacks.create("mimicry", layer="layer4", steps=2)
    b.fit(det, rr[:6], rf[:6])
    for k in ("real", "fake"):
        assert torch.allclose(a.centroids[k], b.centroids[k], atol=1e-5)
    c = attacks.create("mimicry", layer="layer4", real_ref=str(tmp_path / "ref" / "real"),
                       fake_ref=str(tmp_path / "ref" / "fake"), steps=2)
    c(det, tf[:2], torch.ones(2, dtype=torch.long))
    assert torch.allclose(c.centroids["fake"], b.centroids["fake"], atol=1e-5)


def test_errors_are_one_line_config_errors(trained):
    det, _, _, _, tf = trained
    with pytest.raises(ConfigError, match="no centroids"):
        attacks.create("mimicry")(det, tf[:1], torch.ones(1, dtype=torch.long))
    fitted = attacks.create("mimicry", layer="layer4")
    fitted.fit(det, tf[:2], tf[2:4])
    other = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    with pytest.raises(ConfigError, match="another detector"):
        fitted(other, tf[:1], torch.ones(1, dtype=torch.long))
    with pytest.raises(ConfigError, match="needs a region"):
        attacks.create("mimicry", mode="decoy")
    with pytest.raises(ConfigError, match="layer"):
        a = attacks.create("mimicry", layer="nope")
        a.fit(det, tf[:1], tf[:1])


def _tiny(device="cpu", dtype=torch.float64):
    torch.manual_seed(0)
    return detectors.create("cnnspot", arch="resnet10", width=8).eval().to(device=device, dtype=dtype)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_probe_and_references_go_to_the_detector_device_and_dtype(device):
    """A float64 detector (on the GPU when there is one): the default-layer probe and the float32
    CPU reference images are moved to the parameters' device and dtype before the forward."""
    det = _tiny(device)
    seen = []
    det.register_forward_pre_hook(lambda _m, inp: seen.append((inp[0].device.type, inp[0].dtype)))
    rr, rf = fingerprint_data(4, seed=3)  # float32, CPU
    atk = attacks.create("mimicry", mode="decoy", box=(0, 0, 16, 32), eps=4 / 255, steps=2)
    atk.fit(det, rr, rf)  # resolves the default layer with the probe, then the centroids
    assert atk.layer_name == "layer4"
    assert seen and set(seen) == {(torch.device(device).type, torch.float64)}
    assert atk.centroids["real"].device.type == torch.device(device).type
    x = torch.round(rr[:2].to(device=device, dtype=torch.float64) * 255) / 255  # on the float64 8-bit grid
    adv = atk(det, x, torch.zeros(2, dtype=torch.long))
    assert adv.dtype == torch.float64 and adv.device.type == torch.device(device).type
    assert torch.equal(adv[..., 16:, :], x[..., 16:, :])


def test_default_layer_probe_matches_the_parameters(monkeypatch):
    from fakebench.attacks import mimicry

    det = _tiny()
    made = []
    real_rand = torch.rand

    def rand(*shape, **kw):
        out = real_rand(*shape, **kw)
        made.append((out.device.type, out.dtype))
        return out

    monkeypatch.setattr(mimicry.torch, "rand", rand)
    atk = attacks.create("mimicry", mode="decoy", box=(0, 0, 8, 8))
    layers = det.feature_layers()
    assert atk._default_layer(det, layers) == "layer4"
    assert made == [("cpu", torch.float64)]
